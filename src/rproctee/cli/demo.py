"""``rproctee demo``: the main job on built-in defaults.

For now: load a synthetic Cortex-M-shaped firmware (several segments, some
with .bss tails) into a device-memory model with the copy+hash kernel and
report the throughput against the two yardsticks measured in the same run:
memcpy (``numpy.copyto``) and one-shot hashlib SHA-256.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import click
import numpy as np

from rproctee import kernels
from rproctee.cli.output import emit_json
from rproctee.platform import DeviceMemory, RegionSpec

MIB = 1 << 20


def _synthetic_segments(total: int, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, total // count, dtype=np.uint8) for _ in range(count)]


def _best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_kernel_demo(
    size_mib: int = 64, segments: int = 4, repeat: int = 3
) -> dict[str, Any]:
    """Measure copy+hash loading of a synthetic image against memcpy and SHA-256.

    Returns
    -------
    dict
        Bytes, seconds and GB/s for each row, plus the ratios.
    """
    segs = _synthetic_segments(size_mib * MIB, segments, seed=1)
    seg_size = segs[0].size
    regions = [
        RegionSpec(
            f"ram{i}", 0x10000000 * (i + 1), 0x80000000 + i * 0x10000000, seg_size
        )
        for i in range(segments)
    ]
    mem = DeviceMemory(regions)
    flat = np.concatenate(segs)
    dst = np.empty_like(flat)
    dst[:] = 1  # pre-fault so the yardstick measures copy, not page faults

    def load() -> None:
        mem.writes.clear()
        for region, seg in zip(regions, segs, strict=True):
            mem.copy_in_hashed(region.da, seg)

    load()  # first touch of the device memories
    total = flat.nbytes
    rows = {
        "memcpy (numpy.copyto)": _best_of(repeat, lambda: np.copyto(dst, flat)),
        "sha256 (hashlib, one shot)": _best_of(
            repeat, lambda: hashlib.sha256(flat).digest()
        ),
        f"load: copy+hash kernel ({kernels.BACKEND})": _best_of(repeat, load),
    }
    return {
        "bytes": total,
        "backend": kernels.BACKEND,
        "rows": {
            name: {"seconds": t, "gb_per_s": total / t / 1e9}
            for name, t in rows.items()
        },
    }


def register(group: click.Group) -> None:
    """Add ``demo`` to ``group``."""

    @group.command()
    @click.option(
        "--size-mib", default=64, show_default=True, help="Synthetic image size."
    )
    @click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
    def demo(size_mib: int, as_json: bool) -> None:
        """Load a synthetic firmware and compare with memcpy and SHA-256."""
        result = run_kernel_demo(size_mib)
        if as_json:
            emit_json(result)
            return
        rows = result["rows"]
        sha = rows["sha256 (hashlib, one shot)"]["gb_per_s"]
        click.echo(f"{result['bytes'] / MIB:.0f} MiB, kernels: {result['backend']}")
        for name, row in rows.items():
            click.echo(
                f"  {name:<40} {row['gb_per_s']:7.2f} GB/s  "
                f"({row['gb_per_s'] / sha:5.2f}x SHA-256)"
            )
