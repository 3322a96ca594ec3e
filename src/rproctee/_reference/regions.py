"""Pure-Python twin of ``rproctee._native.regions`` (Python ints never wrap)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rproctee._kernel_args import check_offset

LOC_OUTSIDE = -1
LOC_STRADDLE = -2
LOC_ZERO_SIZE = -3

U64Array = npt.NDArray[np.uint64]


def _check_table(a: U64Array, b: U64Array, what: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{what}: {len(a)} addresses but {len(b)} sizes")


def _locate(addr: int, size: int, bases: list[int], rsizes: list[int]) -> int:
    if size == 0:
        return LOC_ZERO_SIZE
    touched = False
    for i, (base, rsize) in enumerate(zip(bases, rsizes, strict=True)):
        if rsize == 0:
            continue
        if base <= addr and addr + size <= base + rsize:
            return i
        if addr < base + rsize and base < addr + size:
            touched = True
    return LOC_STRADDLE if touched else LOC_OUTSIDE


def locate(addr: int, size: int, bases: U64Array, sizes: U64Array) -> int:
    """Index of the first region holding the interval whole, or a code."""
    check_offset("address", addr)
    check_offset("size", size)
    _check_table(bases, sizes, "region table")
    return _locate(addr, size, bases.tolist(), sizes.tolist())


def locate_intervals(
    addrs: U64Array, sizes: U64Array, bases: U64Array, region_sizes: U64Array
) -> npt.NDArray[np.int64]:
    """Vector form of :func:`locate`: one int64 code per interval."""
    _check_table(addrs, sizes, "intervals")
    _check_table(bases, region_sizes, "region table")
    b, r = bases.tolist(), region_sizes.tolist()
    codes = [
        _locate(a, s, b, r) for a, s in zip(addrs.tolist(), sizes.tolist(), strict=True)
    ]
    return np.array(codes, dtype=np.int64)


def find_overlap(addrs: U64Array, sizes: U64Array) -> tuple[int, int] | None:
    """First overlapping pair found by the same address sweep as the native."""
    _check_table(addrs, sizes, "intervals")
    a, s = addrs.tolist(), sizes.tolist()
    best = -1
    for j in np.argsort(addrs, kind="stable").tolist():
        if s[j] == 0:
            continue
        if best >= 0 and a[j] < a[best] + s[best] and a[best] < a[j] + s[j]:
            return (min(best, j), max(best, j))
        if best < 0 or a[j] + s[j] > a[best] + s[best]:
            best = j
    return None


def first_unwritable(
    addrs: U64Array,
    sizes: U64Array,
    bases: U64Array,
    region_sizes: U64Array,
    writable: npt.NDArray[np.uint8],
) -> int:
    """Index of the first interval the loader may not write (see native)."""
    _check_table(addrs, sizes, "intervals")
    _check_table(bases, region_sizes, "region table")
    if len(writable) != len(bases):
        raise ValueError(f"writable: {len(writable)} flags for {len(bases)} regions")
    b, r, w = bases.tolist(), region_sizes.tolist(), writable.tolist()
    for i, (a, s) in enumerate(zip(addrs.tolist(), sizes.tolist(), strict=True)):
        k = _locate(a, s, b, r)
        if k < 0 or not w[k]:
            return i
    return len(addrs)


def segment_ranges(
    rows: npt.NDArray[np.uint64],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint64]]:
    """The device ranges a load plan writes, in check order (see native)."""
    if rows.ndim != 2 or rows.shape[1] != 8:
        raise ValueError(f"rows: {rows.shape[-1]} words a record, expected 8")
    at: list[int] = []
    out: list[tuple[int, int]] = []
    mask = (1 << 64) - 1
    for i, (_src, da, filesz, memsz) in enumerate(rows[:, :4].tolist()):
        if filesz:
            at.append(3 * i)
            out.append((da, filesz))
        if memsz > filesz:
            at.append(3 * i + 1)
            out.append(((da + filesz) & mask, memsz - filesz))
        if filesz and memsz > filesz:
            at.append(3 * i + 2)
            out.append((da, memsz))
    return np.array(at, dtype=np.intp), np.array(out, dtype=np.uint64).reshape(-1, 2)
