"""Pure-Python twin of ``rproctee._native.streamhash``."""

from __future__ import annotations

import hashlib

import numpy as np

from rproctee._kernel_args import check_chunk_size, check_span
from rproctee._reference.segcopy import _u8, _u8_writable
from rproctee._typing import Buffer, WritableBuffer

DEFAULT_CHUNK = 256 * 1024


def copy_and_hash(
    dst: WritableBuffer, dst_off: int, src: Buffer, chunk_size: int = DEFAULT_CHUNK
) -> bytes:
    """Copy chunk by chunk and return SHA-256 of the destination (see native)."""
    d = _u8_writable(dst)
    s = _u8(src)
    check_chunk_size(chunk_size)
    check_span("copy", dst_off, s.size, d.size)
    h = hashlib.sha256()
    for start in range(0, s.size, chunk_size):
        stop = min(start + chunk_size, s.size)
        piece = d[dst_off + start : dst_off + stop]
        piece[:] = s[start:stop]
        h.update(piece)
    return h.digest()


def sha256_chunked(src: Buffer, chunk_size: int = DEFAULT_CHUNK) -> bytes:
    """SHA-256 of ``src`` fed in ``chunk_size`` pieces (see native)."""
    check_chunk_size(chunk_size)
    view = memoryview(src).cast("B")
    h = hashlib.sha256()
    for start in range(0, len(view), chunk_size):
        h.update(view[start : start + chunk_size])
    return h.digest()


def sha256_staged(src: Buffer, chunk_size: int = DEFAULT_CHUNK) -> bytes:
    """SHA-256 with each chunk staged in a cache-resident buffer (see native)."""
    check_chunk_size(chunk_size)
    s = _u8(src)
    stage = np.empty(min(chunk_size, s.size), dtype=np.uint8)
    h = hashlib.sha256()
    for start in range(0, s.size, chunk_size):
        piece = stage[: min(chunk_size, s.size - start)]
        np.copyto(piece, s[start : start + piece.size])
        h.update(piece)
    return h.digest()
