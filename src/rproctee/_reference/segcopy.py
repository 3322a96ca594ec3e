"""Pure-Python twin of ``rproctee._native.segcopy``: same names, checks, errors."""

from __future__ import annotations

import numpy as np

from rproctee._kernel_args import check_span
from rproctee._typing import Buffer, WritableBuffer


def _u8(buf: Buffer) -> np.ndarray:
    return np.frombuffer(buf, dtype=np.uint8)


def _u8_writable(buf: WritableBuffer) -> np.ndarray:
    arr = np.asarray(memoryview(buf).cast("B"))
    if not arr.flags.writeable:
        raise ValueError("buffer source array is read-only")
    return arr


def copy_segment(dst: WritableBuffer, dst_off: int, src: Buffer) -> None:
    """Copy ``src`` into ``dst[dst_off:dst_off + len(src)]`` (see native docs)."""
    d = _u8_writable(dst)
    s = _u8(src)
    check_span("copy", dst_off, s.size, d.size)
    d[dst_off : dst_off + s.size] = s


def zero_fill(dst: WritableBuffer, off: int, size: int) -> None:
    """Zero ``dst[off:off + size]`` (see native docs)."""
    d = _u8_writable(dst)
    check_span("zero-fill", off, size, d.size)
    d[off : off + size] = 0


def load_segment(dst: WritableBuffer, dst_off: int, src: Buffer, memsz: int) -> None:
    """Copy file bytes and zero the tail up to ``memsz`` (see native docs)."""
    d = _u8_writable(dst)
    s = _u8(src)
    check_span("segment", dst_off, memsz, d.size)
    if memsz < s.size:
        raise ValueError(f"memsz = {memsz:#x}: smaller than filesz {s.size:#x}")
    d[dst_off : dst_off + s.size] = s
    d[dst_off + s.size : dst_off + memsz] = 0
