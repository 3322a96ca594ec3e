"""Benchmark fixtures: sizes, fixed-seed data, pre-faulted destinations."""

from __future__ import annotations

import numpy as np
import pytest

from rproctee import kernels

MIB = 1 << 20
SIZES = {"1MiB": 1 * MIB, "64MiB": 64 * MIB, "256MiB": 256 * MIB}


@pytest.fixture(scope="session", params=list(SIZES))
def size(request: pytest.FixtureRequest) -> int:
    return SIZES[request.param]


@pytest.fixture(scope="session")
def source(size: int) -> np.ndarray:
    """Random bytes (fixed seed), the 'firmware' being loaded."""
    return np.random.default_rng(1234).integers(0, 256, size, dtype=np.uint8)


@pytest.fixture(scope="session")
def destination(size: int) -> np.ndarray:
    """A warm device memory: pages touched once so faults are not timed."""
    dst = np.empty(size, dtype=np.uint8)
    dst.fill(1)
    return dst


@pytest.fixture(scope="session", params=kernels.available_backends())
def kmods(request: pytest.FixtureRequest):
    return request.param, kernels.load_backend(request.param)


def run(benchmark, fn, size: int, group: str, name: str) -> None:
    """Time ``fn`` a few rounds and record bytes so reports can give GB/s."""
    benchmark.group = group
    benchmark.name = name
    benchmark.extra_info["bytes"] = size
    rounds = 20 if size <= MIB else 5
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
