"""Overflow-safe region-bounds checks over 64-bit (address, size) intervals.

Never forms ``addr + size`` on fixed-width values: a region may end exactly
at 2**32 or 2**64, and a hostile size may wrap.
"""

import numpy as np

from libc.stdint cimport int64_t, uint8_t, uint64_t

from _bounds cimport contains_u64, intersects_u64
from rproctee._kernel_args import check_offset

cdef enum:
    _OUTSIDE = -1
    _STRADDLE = -2
    _ZERO_SIZE = -3

LOC_OUTSIDE = _OUTSIDE
LOC_STRADDLE = _STRADDLE
LOC_ZERO_SIZE = _ZERO_SIZE


cdef int64_t _locate(uint64_t addr, uint64_t size, const uint64_t[::1] bases,
                     const uint64_t[::1] rsizes) noexcept nogil:
    cdef Py_ssize_t i
    cdef bint touched = False
    if size == 0:
        return _ZERO_SIZE
    for i in range(bases.shape[0]):
        if rsizes[i] == 0:
            continue
        if contains_u64(bases[i], rsizes[i], addr, size):
            return i
        if intersects_u64(bases[i], rsizes[i], addr, size):
            touched = True
    return _STRADDLE if touched else _OUTSIDE


def _check_table(const uint64_t[::1] a, const uint64_t[::1] b, str what):
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{what}: {a.shape[0]} addresses but {b.shape[0]} sizes")


def locate(addr, size, const uint64_t[::1] bases not None,
           const uint64_t[::1] sizes not None):
    """Index of the first region holding ``[addr, addr+size)`` whole, or a code.

    Parameters
    ----------
    addr, size : int
        The interval (non-negative, 64-bit).
    bases, sizes : uint64 arrays
        The region table.

    Returns
    -------
    int
        Region index, or ``LOC_OUTSIDE`` (touches no region), ``LOC_STRADDLE``
        (touches a region but fits in none) or ``LOC_ZERO_SIZE``.

    Raises
    ------
    ValueError
        Negative or over-64-bit values; table columns of different lengths.
    """
    check_offset("address", addr)
    check_offset("size", size)
    _check_table(bases, sizes, "region table")
    return _locate(addr, size, bases, sizes)


def locate_intervals(const uint64_t[::1] addrs not None,
                     const uint64_t[::1] sizes not None,
                     const uint64_t[::1] bases not None,
                     const uint64_t[::1] region_sizes not None):
    """Vector form of :func:`locate`: one int64 code per interval.

    Raises
    ------
    ValueError
        Columns of different lengths.
    """
    _check_table(addrs, sizes, "intervals")
    _check_table(bases, region_sizes, "region table")
    out = np.empty(addrs.shape[0], dtype=np.int64)
    cdef int64_t[::1] res = out
    cdef Py_ssize_t i
    with nogil:
        for i in range(addrs.shape[0]):
            res[i] = _locate(addrs[i], sizes[i], bases, region_sizes)
    return out


def first_unwritable(const uint64_t[:] addrs not None,
                     const uint64_t[:] sizes not None,
                     const uint64_t[::1] bases not None,
                     const uint64_t[::1] region_sizes not None,
                     const uint8_t[::1] writable not None):
    """Index of the first interval the loader may not write, or ``len(addrs)``.

    An interval may be written when the first region holding it whole (as
    :func:`locate` finds it) has ``writable[region]`` set. One pass, stops
    at the first refusal; the columns may be strided (two columns of one
    ``(n, 2)`` array).

    Raises
    ------
    ValueError
        Columns of different lengths, or ``writable`` not one flag a region.
    """
    if addrs.shape[0] != sizes.shape[0]:
        raise ValueError(
            f"intervals: {addrs.shape[0]} addresses but {sizes.shape[0]} sizes"
        )
    _check_table(bases, region_sizes, "region table")
    if writable.shape[0] != bases.shape[0]:
        raise ValueError(
            f"writable: {writable.shape[0]} flags for {bases.shape[0]} regions"
        )
    cdef Py_ssize_t i, n = addrs.shape[0], first = addrs.shape[0]
    cdef int64_t k
    with nogil:
        for i in range(n):
            k = _locate(addrs[i], sizes[i], bases, region_sizes)
            if k < 0 or not writable[k]:
                first = i
                break
    return first


def segment_ranges(const uint64_t[:, ::1] rows not None):
    """The device ranges a load plan writes, in check order.

    ``rows`` are the plan's 64-byte records as ``(n, 8)`` u64 (source
    offset, da, filesz, memsz, digest). Per segment: its file bytes
    ``(da, filesz)`` when ``filesz``; its zero-filled tail
    ``(da + filesz, memsz - filesz)`` when ``memsz > filesz``; the whole
    segment ``(da, memsz)`` when it has both. Sums wrap modulo 2**64, as
    numpy's ``uint64`` does.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Where each range comes from, ``3 * segment + kind`` (intp), and the
        ``(da, size)`` rows (uint64, shape ``(m, 2)``).
    """
    if rows.shape[1] != 8:
        raise ValueError(f"rows: {rows.shape[1]} words a record, expected 8")
    cdef Py_ssize_t n = rows.shape[0], i, m = 0
    at = np.empty(3 * n, dtype=np.intp)
    out = np.empty((3 * n, 2), dtype=np.uint64)
    cdef Py_ssize_t[::1] a = at
    cdef uint64_t[:, ::1] o = out
    cdef uint64_t da, filesz, memsz
    with nogil:
        for i in range(n):
            da, filesz, memsz = rows[i, 1], rows[i, 2], rows[i, 3]
            if filesz:
                a[m] = 3 * i
                o[m, 0], o[m, 1] = da, filesz
                m += 1
            if memsz > filesz:
                a[m] = 3 * i + 1
                o[m, 0], o[m, 1] = da + filesz, memsz - filesz
                m += 1
            if filesz and memsz > filesz:
                a[m] = 3 * i + 2
                o[m, 0], o[m, 1] = da, memsz
                m += 1
    return at[:m], out[:m]


cdef bint _end_after(uint64_t a1, uint64_t s1, uint64_t a2, uint64_t s2) noexcept nogil:
    # end1 > end2 with ends possibly equal to 2**64: compare (carry, low) pairs.
    cdef uint64_t lo1 = a1 + s1, lo2 = a2 + s2
    cdef bint c1 = lo1 < a1, c2 = lo2 < a2  # carry out of bit 63
    if c1 != c2:
        return c1
    return lo1 > lo2


cdef Py_ssize_t _sweep(const uint64_t[::1] addrs, const uint64_t[::1] sizes,
                       const int64_t[::1] order, Py_ssize_t* first) noexcept nogil:
    cdef Py_ssize_t k, j, best = -1
    for k in range(order.shape[0]):
        j = order[k]
        if sizes[j] == 0:
            continue
        if best >= 0 and intersects_u64(addrs[best], sizes[best], addrs[j], sizes[j]):
            first[0] = best
            return j
        if best < 0 or _end_after(addrs[j], sizes[j], addrs[best], sizes[best]):
            best = j
    return -1


def find_overlap(const uint64_t[::1] addrs not None, const uint64_t[::1] sizes not None):
    """First pair of overlapping non-empty intervals found by an address sweep.

    Intervals are visited in increasing address order (ties by index); the
    result pairs the visited interval with the one reaching furthest so far.

    Returns
    -------
    tuple of (int, int) or None
        ``(i, j)`` with ``i < j``, or None when no two intervals overlap.

    Raises
    ------
    ValueError
        Columns of different lengths.
    """
    _check_table(addrs, sizes, "intervals")
    order = np.argsort(np.asarray(addrs), kind="stable").astype(np.int64)
    cdef const int64_t[::1] o = order
    cdef Py_ssize_t first = -1, second
    with nogil:
        second = _sweep(addrs, sizes, o, &first)
    if second < 0:
        return None
    return (min(first, second), max(first, second))
