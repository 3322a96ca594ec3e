"""streamhash: the digest is of the destination; streaming == one-shot."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_calls import outcome


@given(
    data=st.binary(max_size=3000), chunk=st.integers(1, 4096), off=st.integers(0, 64)
)
def test_copy_and_hash_equals_one_shot(backend, data, chunk, off):
    dst = np.zeros(off + len(data), dtype=np.uint8)
    digest = backend["streamhash"].copy_and_hash(dst, off, data, chunk)
    assert digest == hashlib.sha256(data).digest()
    assert bytes(dst[off:]) == data


@given(data=st.binary(max_size=5000), chunk=st.integers(1, 6000))
def test_sha256_chunked_equals_one_shot(backend, data, chunk):
    assert (
        backend["streamhash"].sha256_chunked(data, chunk)
        == hashlib.sha256(data).digest()
    )


@given(
    dst_len=st.integers(0, 40),
    off=st.one_of(st.integers(-2, 50), st.sampled_from([2**63, 2**64 - 1, 2**64])),
    data=st.binary(max_size=30),
    chunk=st.integers(-2, 8),
)
def test_copy_and_hash_parity(both_backends, dst_len, off, data, chunk):
    results = []
    for mods in both_backends:
        dst = np.full(dst_len, 7, dtype=np.uint8)
        results.append(
            (
                outcome(mods["streamhash"].copy_and_hash, dst, off, data, chunk),
                dst.tobytes(),
            )
        )
    assert results[0] == results[1]


def test_digest_describes_destination_not_source(backend):
    # A source the caller changes after the call cannot change the answer:
    # the digest equals what landed in device memory.
    src = bytearray(b"A" * 1000)
    dst = np.zeros(1000, dtype=np.uint8)
    digest = backend["streamhash"].copy_and_hash(dst, 0, src, 64)
    src[:] = b"B" * 1000
    assert digest == hashlib.sha256(dst.tobytes()).digest()


def test_large_buffer_from_memmap(backend, tmp_path):
    data = np.random.default_rng(3).integers(
        0, 256, 3 * 1024 * 1024 + 5, dtype=np.uint8
    )
    dst = np.memmap(tmp_path / "dev.bin", dtype=np.uint8, mode="w+", shape=(data.size,))
    digest = backend["streamhash"].copy_and_hash(dst, 0, data)
    assert digest == hashlib.sha256(data).digest()


@pytest.mark.parametrize("chunk", [0, -1])
def test_bad_chunk_size(backend, chunk):
    with pytest.raises(ValueError, match="chunk_size"):
        backend["streamhash"].sha256_chunked(b"x", chunk)


@given(data=st.binary(max_size=5000), chunk=st.integers(1, 6000))
def test_sha256_staged_equals_one_shot(backend, data, chunk):
    digest = backend["streamhash"].sha256_staged(data, chunk)
    assert digest == hashlib.sha256(data).digest()


@given(data=st.binary(max_size=64), chunk=st.integers(-3, 70))
def test_sha256_staged_parity(both_backends, data, chunk):
    native, reference = (
        outcome(m["streamhash"].sha256_staged, data, chunk) for m in both_backends
    )
    assert native == reference
