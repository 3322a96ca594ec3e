"""Issue 10's ratios in one pytest-benchmark run: the 256 MiB / 8-segment
image of ``rproctee bench`` through LOAD_FW (optee and strict with one PTA
call per segment, strict batched on 1 and 2 threads) beside the yardsticks
(memcpy, hashlib SHA-256) and the two peer loaders (pyelftools; mmap +
memoryview + copy + hashlib), then per-segment overhead (4096 x 4 KiB against
1 x 16 MiB) and the strict plan's region checks of 65,532 segments.

``python benches/report.py bench.json`` prints the ratios. pytest-benchmark
runs each method's rounds back to back; ``rproctee bench`` interleaves them
(better on a shared machine).
"""

from __future__ import annotations

import pytest

from rproctee.cli.bench_cmds import _methods, build_bench_image

MIB = 1 << 20


@pytest.fixture(scope="module")
def image256():
    return build_bench_image(256 * MIB, 8)


@pytest.fixture(scope="module")
def methods256(image256):
    return {m.name: m for m in _methods(image256, [1, 2], "both")}


NAMES = [
    "memcpy",
    "sha256",
    "pyelftools",
    "mmap",
    "LOAD_FW optee per-segment calls",
    "LOAD_FW strict per-segment calls",
    "LOAD_FW strict x1",
    "LOAD_FW strict x2",
]


def _bench(
    benchmark, method, group: str, nbytes: int, rounds: int = 5, suffix: str = ""
) -> None:
    benchmark.group = group
    benchmark.name = {"memcpy": "yardstick memcpy (numpy.copyto)",
                      "sha256": "yardstick sha256 (hashlib)"}.get(
        method.name, method.name) + suffix  # fmt: skip
    benchmark.extra_info["bytes"] = nbytes

    def setup():
        method.reset()
        return (), {}

    method.reset()
    method.run()  # warm-up: device memory, page cache
    benchmark.pedantic(method.run, setup=setup, rounds=rounds)


@pytest.mark.parametrize("name", NAMES)
def test_load_256mib_8_segments(benchmark, methods256, image256, name):
    _bench(benchmark, methods256[name], "issue10-256MiB-8seg", image256.total)


@pytest.mark.parametrize("count", [1, 4096])
@pytest.mark.parametrize("policy", ["optee", "strict"])
def test_per_segment_overhead(benchmark, count, policy):
    """16 MiB as one segment or as 4096 of 4 KiB (goal: >= 0.5x)."""
    img = build_bench_image(16 * MIB, count)
    name = (
        "LOAD_FW optee per-segment calls" if policy == "optee" else "LOAD_FW strict x1"
    )
    m = {x.name: x for x in _methods(img, [1], policy)}[name]
    _bench(benchmark, m, f"per-segment-{policy}", img.total, suffix=f" [{count} seg]")


def test_region_checks_of_65532_segments(benchmark):
    """The strict plan's region checks (one vectorised PTA call)."""
    import numpy as np

    from rproctee.platform import DeviceMemory, RegionSpec

    n = 65532
    mem = DeviceMemory([RegionSpec("ram", 0x10000000, 0x80000000, 64 * n)],
                       prefault="lazy")  # fmt: skip
    das = np.arange(n, dtype=np.uint64) * 64 + 0x10000000
    sizes = np.full(n, 64, dtype=np.uint64)
    benchmark.group = "region-checks"
    benchmark.name = f"writable_prefix of {n} segments"
    assert benchmark(mem.writable_prefix, das, sizes) == n
