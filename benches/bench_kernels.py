"""Each kernel, native and reference, beside memcpy and hashlib SHA-256 measured
in the same run (the yardsticks the project measures its limits with)."""

from __future__ import annotations

import hashlib

import numpy as np

from conftest import run
from rproctee.elf import PHDR_DTYPE  # noqa: F401  (import cost not timed)


def test_yardstick_memcpy(benchmark, source, destination, size):
    run(
        benchmark,
        lambda: np.copyto(destination, source),
        size,
        f"kernels-{size}",
        "yardstick memcpy (numpy.copyto)",
    )


def test_yardstick_sha256(benchmark, source, size):
    run(
        benchmark,
        lambda: hashlib.sha256(source).digest(),
        size,
        f"kernels-{size}",
        "yardstick sha256 (hashlib)",
    )


def test_yardstick_sha256_chunked(benchmark, source, size):
    # hashlib fed 256 KiB memoryview chunks: the fairer ceiling for a chunked
    # kernel (one-shot hashing of a huge buffer can be slower on some CPUs).
    view = memoryview(source)

    def chunked() -> bytes:
        h = hashlib.sha256()
        for off in range(0, size, 256 * 1024):
            h.update(view[off : off + 256 * 1024])
        return h.digest()

    run(
        benchmark,
        chunked,
        size,
        f"kernels-{size}",
        "yardstick sha256 (hashlib, chunked)",
    )


def test_copy_segment(benchmark, kmods, source, destination, size):
    backend, mods = kmods
    run(
        benchmark,
        lambda: mods["segcopy"].copy_segment(destination, 0, source),
        size,
        f"kernels-{size}",
        f"copy_segment[{backend}]",
    )


def test_zero_fill(benchmark, kmods, destination, size):
    backend, mods = kmods
    run(
        benchmark,
        lambda: mods["segcopy"].zero_fill(destination, 0, size),
        size,
        f"kernels-{size}",
        f"zero_fill[{backend}]",
    )


def test_copy_and_hash(benchmark, kmods, source, destination, size):
    backend, mods = kmods
    run(
        benchmark,
        lambda: mods["streamhash"].copy_and_hash(destination, 0, source),
        size,
        f"kernels-{size}",
        f"copy_and_hash[{backend}]",
    )


def test_sha256_staged(benchmark, kmods, source, size):
    backend, mods = kmods
    run(
        benchmark,
        lambda: mods["streamhash"].sha256_staged(source),
        size,
        f"kernels-{size}",
        f"sha256_staged[{backend}]",
    )
