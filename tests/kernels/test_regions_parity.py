"""regions: overflow-safe containment, checked against exact integer maths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_calls import outcome

U64 = 2**64
EDGES = [0, 1, 2**31, 2**32 - 1, 2**32, 2**63, U64 - 2, U64 - 1]
VALUES = st.one_of(st.integers(0, U64 - 1), st.sampled_from(EDGES), st.integers(0, 64))


def _oracle(addr, size, regions):
    if size == 0:
        return -3
    touched = False
    for i, (base, rsize) in enumerate(regions):
        if rsize == 0:
            continue
        if base <= addr and addr + size <= base + rsize:
            return i
        if addr < base + rsize and base < addr + size:
            touched = True
    return -2 if touched else -1


def _table(regions):
    return (
        np.array([b for b, _ in regions], dtype=np.uint64),
        np.array([s for _, s in regions], dtype=np.uint64),
    )


REGION = st.tuples(VALUES, VALUES).filter(lambda r: r[0] + r[1] <= U64)


@given(addr=VALUES, size=VALUES, regions=st.lists(REGION, max_size=6))
def test_locate_matches_exact_maths(backend, addr, size, regions):
    bases, sizes = _table(regions)
    assert backend["regions"].locate(addr, size, bases, sizes) == _oracle(
        addr, size, regions
    )


@given(
    intervals=st.lists(st.tuples(VALUES, VALUES), max_size=12),
    regions=st.lists(REGION, max_size=6),
)
def test_locate_intervals_matches_scalar(backend, intervals, regions):
    bases, sizes = _table(regions)
    addrs, lens = _table(intervals)
    codes = backend["regions"].locate_intervals(addrs, lens, bases, sizes)
    assert codes.tolist() == [_oracle(a, s, regions) for a, s in intervals]


@pytest.mark.parametrize(
    ("addr", "size", "expected"),
    [
        (0xFFFFF000, 0x1000, 0),  # region ends exactly at 2**32
        (0xFFFFF000, 0x1001, -2),  # one past the end straddles
        (0xFFFFFFFF_FFFFF000, 0x1000, 1),  # region ends exactly at 2**64
        (0xFFFFFFFF_FFFFF001, 0xFFFFFFFF_FFFFFFFF, -2),  # addr+size wraps
        (0xFFFFF000, 0, -3),
        (0x10, 0x10, -1),
    ],
)
def test_region_ends_at_word_limits(backend, addr, size, expected):
    bases, sizes = _table([(0xFFFFF000, 0x1000), (0xFFFFFFFF_FFFFF000, 0x1000)])
    assert backend["regions"].locate(addr, size, bases, sizes) == expected


@given(addr=st.one_of(st.integers(-3, -1), st.just(U64)), size=st.integers(0, 4))
def test_negative_and_oversized_rejected_identically(both_backends, addr, size):
    bases, sizes = _table([(0, 16)])
    native, reference = (
        outcome(m["regions"].locate, addr, size, bases, sizes) for m in both_backends
    )
    assert native == reference
    assert native[0] == "ValueError"


def _overlaps(a, s, i, j):
    return s[i] and s[j] and a[i] < a[j] + s[j] and a[j] < a[i] + s[i]


@given(intervals=st.lists(st.tuples(VALUES, VALUES), max_size=10))
def test_find_overlap_is_sound_and_complete(both_backends, intervals):
    a = [x for x, _ in intervals]
    s = [y for _, y in intervals]
    addrs, sizes = _table(intervals)
    found = [m["regions"].find_overlap(addrs, sizes) for m in both_backends]
    assert found[0] == found[1]
    any_overlap = any(
        _overlaps(a, s, i, j) for i in range(len(a)) for j in range(i + 1, len(a))
    )
    if found[0] is None:
        assert not any_overlap
    else:
        i, j = found[0]
        assert i < j and _overlaps(a, s, i, j)


def test_overlap_at_the_top_of_the_address_space(backend):
    addrs, sizes = _table([(U64 - 0x10, 0x10), (U64 - 1, 1)])
    assert backend["regions"].find_overlap(addrs, sizes) == (0, 1)


def test_mismatched_columns(backend):
    with pytest.raises(ValueError, match="2 addresses but 1 sizes"):
        backend["regions"].find_overlap(np.zeros(2, np.uint64), np.zeros(1, np.uint64))


@given(
    intervals=st.lists(st.tuples(VALUES, VALUES), max_size=12),
    regions=st.lists(REGION, min_size=1, max_size=5),
    flags=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_first_unwritable_matches_the_oracle(backend, intervals, regions, flags):
    """The first interval whose first holding region is not writable (or
    that no region holds whole), from strided columns of one array."""
    pairs = np.array(intervals, dtype=np.uint64).reshape(-1, 2)
    bases, sizes = _table(regions)
    writable = np.array(flags[: len(regions)], dtype=np.uint8)
    got = backend["regions"].first_unwritable(
        pairs[:, 0], pairs[:, 1], bases, sizes, writable
    )
    codes = [_oracle(a, s, regions) for a, s in intervals]
    bad = [i for i, k in enumerate(codes) if k < 0 or not flags[k]]
    assert got == (bad[0] if bad else len(intervals))


def test_first_unwritable_refuses_mismatched_tables(backend):
    one = np.zeros(1, np.uint64)
    with pytest.raises(ValueError, match="writable"):
        backend["regions"].first_unwritable(
            one, one, one, one, np.zeros(2, np.uint8)
        )


SEG = st.tuples(VALUES, st.sampled_from([0, 1, 7, 2**32 - 1, U64 - 1]),
                st.sampled_from([0, 1, 8, 2**32, U64 - 1]))  # fmt: skip


@given(segs=st.lists(SEG, max_size=10))
def test_segment_ranges_twins_agree_with_the_rule(both_backends, segs):
    rows = np.zeros((len(segs), 8), dtype=np.uint64)
    for i, (da, filesz, memsz) in enumerate(segs):
        rows[i, 1:4] = (da, filesz, memsz)
    want_at, want = [], []
    for i, (da, filesz, memsz) in enumerate(segs):
        if filesz:
            want_at.append(3 * i)
            want.append((da, filesz))
        if memsz > filesz:
            want_at.append(3 * i + 1)
            want.append(((da + filesz) % U64, memsz - filesz))
        if filesz and memsz > filesz:
            want_at.append(3 * i + 2)
            want.append((da, memsz))
    for mods in both_backends:
        at, ranges = mods["regions"].segment_ranges(rows)
        assert at.tolist() == want_at
        assert ranges.shape == (len(want), 2)
        assert [tuple(r) for r in ranges.tolist()] == want
