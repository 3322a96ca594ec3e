"""Fused copy + SHA-256 in one pass (SHA-NI / Armv8 SHA-2), GIL released.

Every 64-byte block of the source is loaded once: the same registers are
stored to the destination and fed to the SHA-256 rounds (``fusedsha_impl.h``),
so the copy hides under the hash and the digest is by construction of what
was stored.  The instruction set is chosen at import by CPU feature
detection; without one, ``copy_and_hash_fused`` falls back to the chunked
copy-then-hashlib kernel (``streamhash.copy_and_hash``), which gives the same
digest and the same destination bytes.
"""

from libc.stdint cimport uint8_t
from libc.stdlib cimport free, malloc

from rproctee._kernel_args import check_span
from rproctee._native.streamhash import copy_and_hash as _chunked


cdef extern from "fusedsha_impl.h" nogil:
    int RP_IMPL_NONE
    int RP_IMPL_X86_SHA
    int RP_IMPL_ARM_SHA2
    int rp_fused_cpu_impl()
    int rp_fused_compiled(int impl)
    void rp_fused_copy_sha256(int impl, uint8_t* dst, const uint8_t* src,
                              size_t n, uint8_t* out)
    void rp_touch_pages(uint8_t* p, size_t n, size_t page)
    ctypedef struct rp_job:
        uint8_t* dst
        const uint8_t* src
        size_t n
        uint8_t* out
    void rp_fused_many(int impl, rp_job* jobs, size_t njobs)


cdef int _CPU = rp_fused_cpu_impl()
_NAMES = {RP_IMPL_X86_SHA: "x86-sha", RP_IMPL_ARM_SHA2: "arm-sha2"}
_CODES = {name: code for code, name in _NAMES.items()}

#: The implementation ``impl="auto"`` uses here: ``"x86-sha"``,
#: ``"arm-sha2"`` or ``"chunked"`` (no SHA instructions on this CPU).
FUSED_IMPL = _NAMES.get(_CPU, "chunked")


def fused_impls():
    """Implementations this machine can run, fastest first (``"chunked"`` last).

    Returns
    -------
    list of str
    """
    return ([FUSED_IMPL] if FUSED_IMPL != "chunked" else []) + ["chunked"]


cdef int _resolve(str impl) except -1:
    if impl == "auto":
        return _CPU
    if impl == "chunked":
        return RP_IMPL_NONE
    code = _CODES.get(impl)
    if code is None:
        raise ValueError(
            f"impl = {impl!r}: expected 'auto', 'chunked', 'x86-sha' or 'arm-sha2'"
        )
    if not rp_fused_compiled(code) or code != _CPU:
        raise ValueError(f"impl = {impl!r}: not available on this CPU or build")
    return code


def copy_and_hash_fused(uint8_t[::1] dst not None, dst_off,
                        const uint8_t[::1] src not None, str impl="auto"):
    """Copy ``src`` to ``dst[dst_off:]`` and return SHA-256 of what was stored.

    One pass, GIL released for the whole call.

    Parameters
    ----------
    dst : writable uint8 buffer
    dst_off : int
        Offset of the segment in ``dst``.
    src : readable uint8 buffer
    impl : str, optional
        ``"auto"`` (default: the CPU's SHA instructions, else chunked),
        ``"chunked"``, or a name from :func:`fused_impls`.

    Returns
    -------
    bytes
        The 32-byte SHA-256 digest of ``dst[dst_off:dst_off + len(src)]``.

    Raises
    ------
    ValueError
        Negative offset, or an unknown or unavailable ``impl``.
    IndexError
        The copy would not fit inside ``dst``.
    """
    cdef Py_ssize_t n = src.shape[0]
    check_span("copy", dst_off, n, dst.shape[0])
    cdef int code = _resolve(impl)
    if code == RP_IMPL_NONE:
        return _chunked(dst, dst_off, src)
    cdef Py_ssize_t off = dst_off
    cdef uint8_t out[32]
    cdef uint8_t* d = NULL
    cdef const uint8_t* s = NULL
    if n:
        d = &dst[off]
        s = &src[0]
    with nogil:
        rp_fused_copy_sha256(code, d, s, <size_t>n, out)
    return bytes(out[:32])


def copy_and_hash_many(jobs, str impl="auto"):
    """Several :func:`copy_and_hash_fused` jobs, two messages at a time.

    SHA-256 rounds are latency-bound on one message; two independent
    messages in lockstep keep the SHA unit busy, so one core copies and
    hashes up to twice as fast. Every job is checked before the first byte
    is written; the GIL is released for the whole batch.

    Parameters
    ----------
    jobs : sequence of (dst, dst_off, src)
        As the arguments of :func:`copy_and_hash_fused`; destinations must
        not overlap.
    impl : str, optional
        As for :func:`copy_and_hash_fused`.

    Returns
    -------
    list of bytes
        The digest of each job, in order.

    Raises
    ------
    ValueError, IndexError
        As :func:`copy_and_hash_fused`, for the first bad job (nothing is
        written then).
    """
    cdef int code = _resolve(impl)
    items = list(jobs)
    views = []
    cdef uint8_t[::1] d
    cdef const uint8_t[::1] s
    for dst, dst_off, src in items:
        d = dst
        s = src
        check_span("copy", dst_off, s.shape[0], d.shape[0])
        views.append((d, dst_off, s))
    if code == RP_IMPL_NONE:
        return [_chunked(d2, o2, s2) for d2, o2, s2 in views]
    cdef size_t count = len(views), k
    out = bytearray(32 * count)
    cdef uint8_t[::1] digests = out
    cdef rp_job* table = <rp_job*>malloc(max(count, 1) * sizeof(rp_job))
    if table == NULL:
        raise MemoryError()
    try:
        for k in range(count):
            d, off, s = views[k]
            table[k].n = s.shape[0]
            table[k].dst = &d[<Py_ssize_t>off] if s.shape[0] else NULL
            table[k].src = &s[0] if s.shape[0] else NULL
            table[k].out = &digests[32 * k]
        with nogil:
            rp_fused_many(code, table, count)
    finally:
        free(table)
    return [bytes(out[32 * k : 32 * k + 32]) for k in range(count)]


def touch_pages(uint8_t[::1] dst not None, page_size=4096):
    """Write-touch every page of ``dst`` without changing a byte (prefault).

    Parameters
    ----------
    dst : writable uint8 buffer
    page_size : int
        Stride in bytes (the system page size).

    Raises
    ------
    ValueError
        Non-positive ``page_size``.
    """
    if page_size <= 0:
        raise ValueError(f"page_size = {page_size}: must be positive")
    cdef Py_ssize_t n = dst.shape[0]
    cdef size_t page = page_size
    if n == 0:
        return
    with nogil:
        rp_touch_pages(&dst[0], <size_t>n, page)
