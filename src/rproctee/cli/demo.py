"""``rproctee demo``: the main job on built-in defaults.

1. The secure load: generate a signing key, build a Cortex-M-shaped
   firmware, sign it in OP-TEE's format, open a TEE session to the remoteproc
   TA of an ``stm32mp15-dk2`` model (whose PTA trusts the new key) and send
   LOAD_FW and GET_RSC_TABLE; show what was written where, the resource table
   read back from device memory, and where the time went.
2. The kernels at scale: load a large synthetic image with the copy+hash
   kernel and compare with memcpy and SHA-256 measured in the same run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from rproctee import kernels
from rproctee.cli import exitcodes
from rproctee.cli.output import emit_json
from rproctee.cli.tee_cmds import run_load
from rproctee.firmware import demo_firmware
from rproctee.image import (
    KeySigner,
    build_image,
    fingerprint,
    generate_key,
    parse_rsc_table,
    public_key_pem,
)
from rproctee.platform import DeviceMemory, RegionSpec
from rproctee.platform.board import load_platform
from rproctee.tee import build_secure_world

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


SECURE_STEPS = ("keygen", "build ELF", "sign")


def run_secure_demo(
    policy: str = "strict", key_type: str = "rsa3072", code_kib: int = 64
) -> dict[str, Any]:
    """Key, firmware, signed image, then LOAD_FW through a TEE session.

    Returns
    -------
    dict
        The ``rproctee load`` report plus ``prepare`` timings, the image size,
        the key fingerprint and the decoded resource table.
    """
    prepare: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    key = generate_key(key_type)
    prepare.append({"phase": "keygen " + key_type, "seconds": time.perf_counter() - t0})
    t0 = time.perf_counter()
    elf = demo_firmware(code_kib)
    prepare.append({"phase": "build ELF", "seconds": time.perf_counter() - t0})
    t0 = time.perf_counter()
    image = build_image([elf], KeySigner(key))
    prepare.append({"phase": "sign", "seconds": time.perf_counter() - t0})
    platform = load_platform("stm32mp15-dk2")
    world = build_secure_world(platform, policy=policy, key_pem=public_key_pem(key))
    report = run_load(world, image)
    report["prepare"] = prepare
    report["image_bytes"] = len(image)
    report["key_fingerprint"] = fingerprint(key)
    report["rsc_table_decoded"] = _decoded_table(world, report["rsc_table"])
    return report


def _decoded_table(world: Any, table: dict[str, int] | None) -> Any:
    """Decode the resource table from device memory at the address the TA gave."""
    if not table or not table["size"]:
        return None
    view = world.memory.view_pa(table["pa"], table["size"])
    decoded = parse_rsc_table(memoryview(view))
    return [
        {"offset": e.offset, "type": e.type_name, **e.fields} for e in decoded.entries
    ]


def _print_secure(report: dict[str, Any]) -> None:
    console = Console()
    console.print(
        f"[bold]Secure load[/bold] on {report['platform']} "
        f"(policy {report['policy']}): {report['result']} "
        f"({report['code']:#010x})"
    )
    if report["reason"]:
        console.print(f"reason: {report['reason']}")
    console.print(
        f"signed image {report['image_bytes']} bytes, key sha256 "
        f"{report['key_fingerprint'][:16]}..."
    )
    writes = Table("op", "da", "pa", "bytes", "GB/s", title="Device-memory writes")
    for w, seg in zip(report["writes"], report["segments"], strict=False):
        rate = seg["gb_per_s"]
        writes.add_row(
            w["op"],
            f"{w['da']:#010x}",
            f"{w['pa']:#010x}",
            str(w["len"]),
            f"{rate:.2f}" if rate else "-",
        )
    console.print(writes)
    table = report["rsc_table"]
    if table:
        console.print(f"resource table at pa {table['pa']:#x}, {table['size']} bytes:")
        for entry in report["rsc_table_decoded"] or []:
            console.print(f"  {entry}")
    times = Table("phase", "ms", title="Where the time went")
    for p in report["prepare"] + report["timings"]:
        times.add_row(p["phase"], f"{p['seconds'] * 1e3:.3f}")
    console.print(times)


def register(group: click.Group) -> None:
    """Add ``demo`` to ``group``."""

    @group.command()
    @click.option(
        "--policy",
        type=click.Choice(["optee", "strict"]),
        default="strict",
        show_default=True,
        help="TA policy.",
    )
    @click.option(
        "--size-mib",
        default=64,
        show_default=True,
        help="Size of the kernel throughput run (0 skips it).",
    )
    @click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
    def demo(policy: str, size_mib: int, as_json: bool) -> None:
        """Sign and securely load a firmware, then measure the kernels."""
        secure = run_secure_demo(policy)
        kernels_run = run_kernel_demo(size_mib) if size_mib > 0 else None
        if as_json:
            emit_json({"secure_load": secure, "kernels": kernels_run})
        else:
            _print_secure(secure)
            if kernels_run:
                _print_kernels(kernels_run)
        if secure["code"] != 0:
            raise SystemExit(exitcodes.TEE_ERROR)


def _print_kernels(result: dict[str, Any]) -> None:
    rows = result["rows"]
    sha = rows["sha256 (hashlib, one shot)"]["gb_per_s"]
    click.echo(
        f"\nKernels at scale: {result['bytes'] / MIB:.0f} MiB, "
        f"backend {result['backend']}"
    )
    for name, row in rows.items():
        click.echo(
            f"  {name:<40} {row['gb_per_s']:7.2f} GB/s  "
            f"({row['gb_per_s'] / sha:5.2f}x SHA-256)"
        )
