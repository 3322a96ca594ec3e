"""Argument checks shared by the native kernels and their reference twins.

Both backends call these before doing any work, so a bad argument raises the
same builtin exception with the same message whichever backend runs.
"""

from __future__ import annotations

U64_MAX = (1 << 64) - 1


def check_offset(name: str, value: int) -> None:
    """Raise ``ValueError`` for a negative or over-64-bit offset/size."""
    if value < 0:
        raise ValueError(f"{name} = {value}: negative values are rejected")
    if value > U64_MAX:
        raise ValueError(f"{name} = {value:#x}: does not fit in 64 bits")


def check_span(what: str, off: int, size: int, limit: int) -> None:
    """Raise ``IndexError`` unless ``[off, off+size)`` lies inside ``[0, limit)``."""
    check_offset(f"{what} offset", off)
    check_offset(f"{what} size", size)
    if not (size <= limit and off <= limit - size):
        raise IndexError(
            f"{what} [{off:#x}, +{size:#x}) exceeds buffer of {limit:#x} bytes"
        )


def check_chunk_size(chunk_size: int) -> None:
    """Raise ``ValueError`` unless the chunk size is positive."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size = {chunk_size}: must be positive")
