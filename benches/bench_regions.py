"""Region checks: a realistic call (8 segments x 8 regions) and 10**5 intervals."""

from __future__ import annotations

import numpy as np
import pytest

# shared with rproctee bench
from rproctee.cli.bench_plan import PLAN_SEGMENTS
from rproctee.cli.bench_plan import plan_image as _plan_image
from rproctee.cli.bench_plan import plan_load as _plan_load


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


# -- the strict plan ---------------------------------------------------------------
# LOAD_FW's strict plan for images of many small segments (issue: 4096 segments
# of 4 KiB load at >= 0.5x the throughput of one 16 MiB segment; region checks
# of 65,535 segments under 5 ms). The images are built once per module, without
# a resource table (the region checks can then run again and again on one plan).


@pytest.fixture(scope="module", params=sorted(PLAN_SEGMENTS))
def plan_image(request):
    return request.param, *_plan_image(request.param)


@pytest.mark.parametrize("path", ["vectorised", "per-segment"])
def test_strict_plan_build(benchmark, plan_image, path):
    """``StrictPlan.build()`` (the whole plan: headers, hash table, segment
    checks, overlaps, region checks) on a fresh load each round."""
    from rproctee import kernels
    from rproctee.tee.ta_strict import StrictPlan

    count, image, key = plan_image
    vectorised = path == "vectorised"
    if count > 4096 and not vectorised:
        pytest.skip("seconds per round; measured once in the report instead")

    def setup():
        return (StrictPlan(_plan_load(image, key)),), {}

    benchmark.group = "strict-plan"
    benchmark.name = f"StrictPlan.build [{path}, {kernels.BACKEND}] n={count}"
    benchmark.extra_info["segments"] = count
    benchmark.pedantic(
        lambda plan: plan.build(vectorised=vectorised), setup=setup, rounds=5
    )


def test_strict_plan_region_checks(benchmark, plan_image):
    """The plan's region checks of every segment: the (da, size) ranges
    built from the plan's records and PTA RANGES_WRITABLE on all of them
    (``StrictPlan._regions_fast``), as the ``region checks`` mark times it."""
    from rproctee import kernels
    from rproctee.tee.ta_strict import StrictPlan

    count, image, key = plan_image
    plan = StrictPlan(_plan_load(image, key))
    plan.build(vectorised=True)
    benchmark.group = "strict-plan"
    benchmark.name = f"region checks [{kernels.BACKEND}] n={count}"
    benchmark.extra_info["segments"] = count
    benchmark.pedantic(plan._regions_fast, rounds=20, warmup_rounds=2)
