"""Pure-Python twin of ``rproctee._native.fusedhash``: same names, checks, errors.

Python has no SHA instructions to fuse with a copy, so the twin copies into
the destination and hashes the destination (numpy + hashlib): the digest is
of what was stored, as in the native kernel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from rproctee._kernel_args import check_span
from rproctee._reference.segcopy import _u8, _u8_writable
from rproctee._typing import Buffer, WritableBuffer

#: What ``impl="auto"`` uses: always ``"chunked"`` here.
FUSED_IMPL = "chunked"
_KNOWN = ("x86-sha", "arm-sha2")


def fused_impls() -> list[str]:
    """Implementations this backend can run (see native): ``["chunked"]``."""
    return ["chunked"]


def _resolve(impl: str) -> None:
    if impl in ("auto", "chunked"):
        return
    if impl not in _KNOWN:
        raise ValueError(
            f"impl = {impl!r}: expected 'auto', 'chunked', 'x86-sha' or 'arm-sha2'"
        )
    raise ValueError(f"impl = {impl!r}: not available on this CPU or build")


def copy_and_hash_fused(
    dst: WritableBuffer, dst_off: int, src: Buffer, impl: str = "auto"
) -> bytes:
    """Copy ``src`` to ``dst[dst_off:]``; SHA-256 of what was stored (see native)."""
    d = _u8_writable(dst)
    s = _u8(src)
    check_span("copy", dst_off, s.size, d.size)
    _resolve(impl)
    piece = d[dst_off : dst_off + s.size]
    piece[:] = s
    return hashlib.sha256(piece).digest()


def copy_and_hash_many(
    jobs: Sequence[tuple[WritableBuffer, int, Buffer]], impl: str = "auto"
) -> list[bytes]:
    """Several fused jobs; every one checked before any write (see native)."""
    _resolve(impl)
    items = list(jobs)
    for dst, dst_off, src in items:
        check_span("copy", dst_off, _u8(src).size, _u8_writable(dst).size)
    return [copy_and_hash_fused(d, o, s, impl) for d, o, s in items]


def touch_pages(dst: WritableBuffer, page_size: int = 4096) -> None:
    """Write-touch every page of ``dst`` without changing it (see native)."""
    if page_size <= 0:
        raise ValueError(f"page_size = {page_size}: must be positive")
    d = _u8_writable(dst)
    if d.size == 0:
        return
    # write each page's first byte back to itself (a write access per page)
    d[::page_size] = d[::page_size].copy()
    d[-1:] = d[-1:].copy()
