"""fusedhash: one-pass copy + SHA-256 equals hashlib of what landed, at every
length and alignment, on every implementation this machine runs."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_calls import outcome

from rproctee import kernels

IMPLS = (
    kernels.load_backend("native")["fusedhash"].fused_impls()
    if ("native" in kernels.available_backends())
    else ["chunked"]
)
BLOCK = 64


def _impls(backend):
    return backend["fusedhash"].fused_impls()


@pytest.mark.parametrize("impl", IMPLS)
def test_every_length_and_alignment_up_to_a_few_kib(backend, impl):
    """Lengths 0..3 KiB + 2 blocks, every source and destination offset in a
    block: the block loop, the tail copy and both padding shapes (one and two
    final blocks) all meet hashlib."""
    if impl not in _impls(backend):
        pytest.skip(f"{impl} not in this backend")
    fused = backend["fusedhash"].copy_and_hash_fused
    pool = np.random.default_rng(7).integers(0, 256, 3200 + 2 * BLOCK, dtype=np.uint8)
    dst = np.zeros(3200 + 3 * BLOCK, dtype=np.uint8)
    for n in range(0, 3072 + 2 * BLOCK + 1):
        s_off, d_off = n % BLOCK, (n * 7) % BLOCK
        src = pool[s_off : s_off + n]
        dst[:] = 0xA5
        digest = fused(dst, d_off, src, impl)
        assert digest == hashlib.sha256(src).digest(), (n, s_off, d_off)
        assert bytes(dst[d_off : d_off + n]) == bytes(src), n
        # nothing outside [d_off, d_off + n) is touched
        assert not (dst[:d_off] != 0xA5).any()
        assert not (dst[d_off + n :] != 0xA5).any()


@pytest.mark.parametrize("impl", IMPLS)
@given(
    data=st.binary(max_size=4096),
    s_off=st.integers(0, BLOCK - 1),
    d_off=st.integers(0, BLOCK - 1),
)
def test_random_bytes_at_random_alignment(backend, impl, data, s_off, d_off):
    if impl not in _impls(backend):
        pytest.skip(f"{impl} not in this backend")
    raw = bytearray(s_off) + data
    src = memoryview(raw)[s_off:]
    dst = np.zeros(d_off + len(data), dtype=np.uint8)
    digest = backend["fusedhash"].copy_and_hash_fused(dst, d_off, src, impl)
    assert digest == hashlib.sha256(data).digest()
    assert bytes(dst[d_off:]) == data


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("size", [(1 << 20) + 13, (8 << 20) - 1, 8 << 20])
def test_random_large_buffers(backend, impl, size):
    if impl not in _impls(backend):
        pytest.skip(f"{impl} not in this backend")
    src = np.random.default_rng(size).integers(0, 256, size + 3, dtype=np.uint8)[3:]
    dst = np.empty(size + 5, dtype=np.uint8)
    digest = backend["fusedhash"].copy_and_hash_fused(dst, 5, src, impl)
    assert digest == hashlib.sha256(src).digest()
    assert np.array_equal(dst[5:], src)


def test_auto_is_the_first_listed_impl(backend):
    mod = backend["fusedhash"]
    assert mod.fused_impls()[0] == mod.FUSED_IMPL
    assert mod.fused_impls()[-1] == "chunked"


@given(
    dst_len=st.integers(0, 40),
    off=st.one_of(st.integers(-2, 50), st.sampled_from([2**63, 2**64 - 1, 2**64])),
    data=st.binary(max_size=30),
    impl=st.sampled_from(["auto", "chunked", "x86-sha", "arm-sha2", "md5", ""]),
)
def test_errors_match_the_reference(both_backends, dst_len, off, data, impl):
    native, reference = both_backends
    if impl in native["fusedhash"].fused_impls() and impl != "chunked":
        impl = "auto"  # the twin cannot run it; compare on the same input
    results = []
    for mods in both_backends:
        dst = np.full(dst_len, 7, dtype=np.uint8)
        got = outcome(mods["fusedhash"].copy_and_hash_fused, dst, off, data, impl)
        results.append((got, dst.tobytes()))
    assert results[0] == results[1]


def test_unknown_impl_names_the_value(backend):
    dst = np.zeros(8, dtype=np.uint8)
    with pytest.raises(ValueError, match="impl = 'md5'"):
        backend["fusedhash"].copy_and_hash_fused(dst, 0, b"x", "md5")


def test_read_only_destination_is_refused(backend):
    dst = np.zeros(8, dtype=np.uint8)
    dst.flags.writeable = False
    with pytest.raises(ValueError):
        backend["fusedhash"].copy_and_hash_fused(dst, 0, b"x")


def test_releases_the_gil_and_runs_in_threads(backend):
    """Two threads at once give each the right digest (the call holds no
    shared state)."""
    rng = np.random.default_rng(3)
    srcs = [rng.integers(0, 256, 3 << 20, dtype=np.uint8) for _ in range(4)]
    dsts = [np.empty_like(s) for s in srcs]
    out: dict[int, bytes] = {}

    def work(k: int) -> None:
        out[k] = backend["fusedhash"].copy_and_hash_fused(dsts[k], 0, srcs[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, s in enumerate(srcs):
        assert out[k] == hashlib.sha256(s).digest()
        assert np.array_equal(dsts[k], s)


@given(data=st.binary(min_size=0, max_size=20000), page=st.integers(1, 5000))
def test_touch_pages_changes_nothing(backend, data, page):
    arr = np.frombuffer(bytearray(data), dtype=np.uint8)
    backend["fusedhash"].touch_pages(arr, page)
    assert arr.tobytes() == data


def test_touch_pages_refuses_bad_page_size(backend):
    with pytest.raises(ValueError, match="page_size = 0"):
        backend["fusedhash"].touch_pages(np.zeros(4, dtype=np.uint8), 0)


@given(
    sizes=st.lists(st.integers(0, 700), max_size=7),
    offs=st.lists(st.integers(0, 63), min_size=7, max_size=7),
    seed=st.integers(0, 2**32 - 1),
)
def test_many_jobs_two_at_a_time_equal_hashlib(backend, sizes, offs, seed):
    """Lanes of different lengths end at different blocks and take the next
    job: every digest and every copy is still hashlib's."""
    rng = np.random.default_rng(seed)
    srcs = [rng.integers(0, 256, n, dtype=np.uint8) for n in sizes]
    dsts = [
        np.full(n + o, 0xA5, dtype=np.uint8) for n, o in zip(sizes, offs, strict=False)
    ]
    jobs = [(d, o, s) for d, o, s in zip(dsts, offs, srcs, strict=False)]
    digests = backend["fusedhash"].copy_and_hash_many(jobs)
    assert digests == [hashlib.sha256(s).digest() for s in srcs]
    for d, o, s in jobs:
        assert np.array_equal(d[o:], s)
        assert not (d[:o] != 0xA5).any()


def test_many_large_jobs_of_unequal_sizes(backend):
    rng = np.random.default_rng(11)
    sizes = [(3 << 20) + 5, 1 << 20, 0, (2 << 20) - 64, 17]
    srcs = [rng.integers(0, 256, n, dtype=np.uint8) for n in sizes]
    dsts = [np.empty(n, dtype=np.uint8) for n in sizes]
    got = backend["fusedhash"].copy_and_hash_many(
        list(zip(dsts, [0] * 5, srcs, strict=True))
    )
    assert got == [hashlib.sha256(s).digest() for s in srcs]
    assert all(np.array_equal(d, s) for d, s in zip(dsts, srcs, strict=True))


def test_many_checks_every_job_before_writing(both_backends):
    """A bad third job: the same error from both backends, nothing written."""
    for mods in both_backends:
        dsts = [np.zeros(8, dtype=np.uint8) for _ in range(3)]
        jobs = [(dsts[0], 0, b"a" * 8), (dsts[1], 0, b"b" * 8), (dsts[2], 4, b"c" * 8)]
        with pytest.raises(IndexError, match=r"copy \[0x4, \+0x8\)"):
            mods["fusedhash"].copy_and_hash_many(jobs)
        assert not any(d.any() for d in dsts)
