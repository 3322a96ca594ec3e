"""Per-segment cost: 16 MiB as one PT_LOAD segment against 4096 of 4 KiB.

Every segment still goes through its own TA -> PTA LOAD_SEGMENT_SHA256 call
(no batching: ``TeeCore.batch_segments`` off). The report's ratio of the two
groups' throughput is the issue's goal (>= 0.5x, both policies).
"""

from __future__ import annotations

import pytest

from rproctee.cli.bench_cmds import OVERHEAD_SIZE, _load_method, build_bench_image

SHAPES = {"1x16MiB": 1, "4096x4KiB": 4096}


@pytest.fixture(scope="module", params=list(SHAPES))
def shape(request: pytest.FixtureRequest):
    return request.param, build_bench_image(OVERHEAD_SIZE, SHAPES[request.param])


@pytest.mark.parametrize("policy", ["optee", "strict"])
def test_load_fw_per_segment_calls(benchmark, shape, policy):
    name, img = shape
    method = _load_method(img, policy, 1, batch=False)
    method.reset()
    method.run()  # warm: imports, device memory
    benchmark.group = f"segments-{policy}"
    benchmark.name = f"LOAD_FW {policy} {name}"
    benchmark.extra_info["bytes"] = OVERHEAD_SIZE
    benchmark.extra_info["segments"] = SHAPES[name]
    benchmark.pedantic(method.run, setup=method.reset, rounds=7)
