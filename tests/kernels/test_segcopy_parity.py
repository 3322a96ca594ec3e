"""segcopy: native == reference, on random and edge inputs, errors included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_calls import outcome

EDGE = st.sampled_from([0, 1, 15, 16, 17, 2**32 - 1, 2**63, 2**64 - 1, 2**64, -1])
OFFSETS = st.one_of(st.integers(-4, 40), EDGE)


def _run(mods, name, dst_len, *args):
    dst = np.full(dst_len, 0xAA, dtype=np.uint8)
    result = outcome(getattr(mods["segcopy"], name), dst, *args)
    return result, dst


@given(dst_len=st.integers(0, 32), off=OFFSETS, data=st.binary(max_size=40))
def test_copy_segment_parity(both_backends, dst_len, off, data):
    native, reference = both_backends
    (r1, d1), (r2, d2) = (
        _run(m, "copy_segment", dst_len, off, data) for m in both_backends
    )
    assert r1 == r2
    assert np.array_equal(d1, d2)


@given(dst_len=st.integers(0, 32), off=OFFSETS, size=OFFSETS)
def test_zero_fill_parity(both_backends, dst_len, off, size):
    (r1, d1), (r2, d2) = (
        _run(m, "zero_fill", dst_len, off, size) for m in both_backends
    )
    assert r1 == r2
    assert np.array_equal(d1, d2)


@given(
    dst_len=st.integers(0, 48), off=OFFSETS, data=st.binary(max_size=20), memsz=OFFSETS
)
def test_load_segment_parity(both_backends, dst_len, off, data, memsz):
    (r1, d1), (r2, d2) = (
        _run(m, "load_segment", dst_len, off, data, memsz) for m in both_backends
    )
    assert r1 == r2
    assert np.array_equal(d1, d2)


def test_load_segment_copies_then_zeroes_tail(backend):
    dst = np.full(16, 0xAA, dtype=np.uint8)
    backend["segcopy"].load_segment(dst, 2, b"\x01\x02\x03", 7)
    assert dst.tolist() == [0xAA, 0xAA, 1, 2, 3, 0, 0, 0, 0] + [0xAA] * 7


@pytest.mark.parametrize(
    ("off", "memsz", "exc"),
    [
        (-1, 4, ValueError),
        (13, 4, IndexError),
        (0, 17, IndexError),
        (0, 2, ValueError),
        (2**64 - 1, 4, IndexError),
        (2**64, 4, ValueError),
    ],
)
def test_load_segment_rejects_and_writes_nothing(backend, off, memsz, exc):
    dst = np.full(16, 0xAA, dtype=np.uint8)
    with pytest.raises(exc):
        backend["segcopy"].load_segment(dst, off, b"\x01\x02\x03", memsz)
    assert (dst == 0xAA).all()


def test_exact_fit_and_one_past(backend):
    dst = np.zeros(8, dtype=np.uint8)
    backend["segcopy"].copy_segment(dst, 4, b"abcd")
    assert bytes(dst[4:]) == b"abcd"
    with pytest.raises(IndexError, match="exceeds buffer"):
        backend["segcopy"].copy_segment(dst, 5, b"abcd")


def test_read_only_destination_is_refused(backend):
    dst = np.zeros(8, dtype=np.uint8)
    dst.flags.writeable = False
    with pytest.raises(ValueError):
        backend["segcopy"].copy_segment(dst, 0, b"ab")
