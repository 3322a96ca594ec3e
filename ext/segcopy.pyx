"""Segment copy and zero-fill into a device-memory view (memcpy/memset, nogil)."""

from libc.stdint cimport uint8_t
from libc.string cimport memcpy, memset

from rproctee._kernel_args import check_span


cdef void _copy(uint8_t* dst, const uint8_t* src, size_t n) noexcept nogil:
    memcpy(dst, src, n)


cdef void _fill(uint8_t* dst, int value, size_t n) noexcept nogil:
    memset(dst, value, n)


def copy_segment(uint8_t[::1] dst not None, dst_off, const uint8_t[::1] src not None):
    """Copy ``src`` into ``dst[dst_off:dst_off + len(src)]``.

    Parameters
    ----------
    dst : writable uint8 buffer
        The destination (a device-memory region view).
    dst_off : int
        Byte offset in ``dst``.
    src : readable uint8 buffer
        The segment's file bytes.

    Raises
    ------
    ValueError
        ``dst_off`` negative or beyond 64 bits.
    IndexError
        The copy would not fit inside ``dst``.
    """
    cdef Py_ssize_t n = src.shape[0]
    check_span("copy", dst_off, n, dst.shape[0])
    cdef Py_ssize_t off = dst_off
    if n == 0:
        return
    with nogil:
        _copy(&dst[off], &src[0], <size_t>n)


def zero_fill(uint8_t[::1] dst not None, off, size):
    """Zero ``dst[off:off + size]`` (the ``p_memsz - p_filesz`` tail).

    Parameters
    ----------
    dst : writable uint8 buffer
    off, size : int
        Start offset and length in ``dst``.

    Raises
    ------
    ValueError
        Negative or over-64-bit ``off``/``size``.
    IndexError
        The range does not fit inside ``dst``.
    """
    check_span("zero-fill", off, size, dst.shape[0])
    cdef Py_ssize_t o = off
    cdef Py_ssize_t n = size
    if n == 0:
        return
    with nogil:
        _fill(&dst[o], 0, <size_t>n)


def load_segment(uint8_t[::1] dst not None, dst_off,
                 const uint8_t[::1] src not None, memsz):
    """Copy a segment's file bytes and zero its tail up to ``memsz``.

    Everything is checked before the first byte is written.

    Parameters
    ----------
    dst : writable uint8 buffer
    dst_off : int
        Offset of the segment in ``dst``.
    src : readable uint8 buffer
        ``p_filesz`` bytes.
    memsz : int
        ``p_memsz``; must be at least ``len(src)``.

    Raises
    ------
    ValueError
        Negative values, or ``memsz < len(src)``.
    IndexError
        ``[dst_off, dst_off + memsz)`` does not fit inside ``dst``.
    """
    cdef Py_ssize_t n = src.shape[0]
    check_span("segment", dst_off, memsz, dst.shape[0])
    if memsz < n:
        raise ValueError(f"memsz = {memsz:#x}: smaller than filesz {n:#x}")
    cdef Py_ssize_t off = dst_off
    cdef Py_ssize_t tail = <Py_ssize_t>memsz - n
    with nogil:
        if n:
            _copy(&dst[off], &src[0], <size_t>n)
        if tail:
            _fill(&dst[off + n], 0, <size_t>tail)
