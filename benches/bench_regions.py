"""Region checks: a realistic call (8 segments x 8 regions) and 10**5 intervals."""

from __future__ import annotations

import numpy as np
import pytest


def _table(n, seed):
    rng = np.random.default_rng(seed)
    bases = np.sort(rng.integers(0, 2**32, n, dtype=np.uint64))
    sizes = rng.integers(1, 2**20, n, dtype=np.uint64)
    return bases, sizes


@pytest.mark.parametrize("count", [8, 100_000])
def test_locate_intervals(benchmark, kmods, count):
    backend, mods = kmods
    mod = mods["regions"]
    bases, sizes = _table(8, 1)
    addrs, lens = _table(count, 2)
    benchmark.group = "regions"
    benchmark.name = f"locate_intervals[{backend}] n={count}"
    benchmark.extra_info["intervals"] = count
    benchmark(mod.locate_intervals, addrs, lens, bases, sizes)
