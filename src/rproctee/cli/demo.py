"""``rproctee demo``: the main job on built-in defaults, the whole life.

1. The life of a TEE-managed remote processor: generate a signing key, build
   a Cortex-M-shaped firmware, sign it in OP-TEE's format, register it with
   the Linux remoteproc core of an ``stm32mp15-dk2`` model (TEE-backed ops,
   whose PTA trusts the new key), boot it through Linux -> TEE -> TA -> PTA,
   show the resource table, carveouts and trace buffer, crash it (watchdog),
   let the core take a coredump and recover it, shut it down; then where the
   time went per phase and per segment (bytes, GB/s).
2. The kernels at scale: load a large synthetic image with the copy+hash
   kernel and compare with memcpy and SHA-256 measured in the same run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, NoReturn

import click
import numpy as np

from rproctee import kernels
from rproctee.cli import exitcodes
from rproctee.cli.life_report import print_life
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


KEY_TYPE = "rsa2048"


def _timed(phases: list[dict[str, Any]], name: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    result = fn()
    phases.append({"phase": name, "seconds": time.perf_counter() - t0})
    return result


def run_life_demo(
    policy: str = "strict", series: str = "v22", code_kib: int = 64
) -> dict[str, Any]:
    """Key, firmware, signed image, then the whole life on ``stm32mp15-dk2``.

    Returns
    -------
    dict
        The ``rproctee boot`` report (``life``) plus the preparation phases,
        the per-phase and per-segment timings, the image size and the key's
        fingerprint.
    """
    from rproctee.firmware import demo_firmware
    from rproctee.image import (
        KeySigner,
        build_image,
        fingerprint,
        generate_key,
        public_key_pem,
    )
    from rproctee.linux.lifecycle import report_dict, run_life
    from rproctee.linux.state import CrashType, DumpConf
    from rproctee.linux.system import build_system
    from rproctee.platform.board import load_platform

    phases: list[dict[str, Any]] = []
    key = _timed(phases, f"keygen {KEY_TYPE}", lambda: generate_key(KEY_TYPE))
    elf = _timed(phases, "build ELF", lambda: demo_firmware(code_kib))
    image = _timed(phases, "sign", lambda: build_image([elf], KeySigner(key)))
    system = _timed(phases, "register (probe, TEE session)", lambda: build_system(
        load_platform("stm32mp15-dk2"), image, series=series, policy=policy,
        key_pem=public_key_pem(key)))  # fmt: skip
    report = run_life(system, crash=CrashType.WATCHDOG, coredump_mode=DumpConf.ENABLED)
    phases += [{"phase": s.name, "seconds": s.seconds} for s in report.steps]
    assert system.world is not None
    segments = [
        {"op": t.op, "da": t.da, "bytes": t.len, "seconds": t.seconds,
         "gb_per_s": t.len / t.seconds / 1e9 if t.seconds > 0 else None}
        for t in system.world.pta.timings
    ]  # fmt: skip
    return {
        "ok": report.ok,
        "policy": policy,
        "series": series,
        "image_bytes": len(image),
        "key_fingerprint": fingerprint(key),
        "phases": phases,
        "segments": segments,
        "life": report_dict(system, report),
    }


def _print_life_demo(doc: dict[str, Any]) -> None:
    click.echo(
        f"Signed a {doc['image_bytes']}-byte image with a fresh {KEY_TYPE} key "
        f"(sha256 {doc['key_fingerprint'][:16]}...), TA policy {doc['policy']}"
    )
    print_life(doc["life"])
    click.echo("\nWhere the time went")
    for p in doc["phases"]:
        click.echo(f"  {p['phase']:<32} {p['seconds'] * 1e3:9.3f} ms")
    click.echo("Device-memory writes by the PTA (LOAD_FW at boot and at recovery)")
    for s in doc["segments"]:
        rate = f"{s['gb_per_s']:.2f} GB/s" if s["gb_per_s"] else "-"
        click.echo(f"  {s['op']:<5} da {s['da']:#010x} {s['bytes']:>8} bytes  {rate}")


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
        "--series",
        type=click.Choice(["v15", "v22"]),
        default="v22",
        show_default=True,
        help="Version of the Linux TEE series.",
    )
    @click.option(
        "--size-mib",
        default=16,
        show_default=True,
        help="Size of the kernel throughput run (0 skips it).",
    )
    @click.option(
        "--emulate",
        is_flag=True,
        help="Run a real compiled Cortex-M4 firmware on the emulated core "
        "(pip install 'rproctee[emu]'): trace, vring echo, a fault, recovery, "
        "the registers from the coredump. The kernel run only with --size-mib.",
    )
    @click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
    def demo(
        policy: str, series: str, size_mib: int, emulate: bool, as_json: bool
    ) -> None:
        """Sign a firmware, then boot, crash, recover and stop it through
        Linux -> TEE -> TA -> PTA; then measure the kernels."""
        if emulate:
            _emulated(policy, series, size_mib, as_json)
        life = run_life_demo(policy, series)
        kernels_run = run_kernel_demo(size_mib) if size_mib > 0 else None
        if as_json:
            emit_json({"life_demo": life, "kernels": kernels_run})
        else:
            _print_life_demo(life)
            if kernels_run:
                _print_kernels(kernels_run)
        if not life["ok"]:
            raise SystemExit(exitcodes.TEE_ERROR)


def _emulated(policy: str, series: str, size_mib: int, as_json: bool) -> NoReturn:
    """``demo --emulate`` (:mod:`rproctee.cli.emulate`); kernels if asked for."""
    from click.core import ParameterSource

    from rproctee.cli.emulate import demo_emulated, print_emulated_demo

    out = demo_emulated(policy, series, as_json)
    ctx = click.get_current_context()
    asked = ctx.get_parameter_source("size_mib") is not ParameterSource.DEFAULT
    kernels_run = run_kernel_demo(size_mib) if asked and size_mib > 0 else None
    if as_json:
        emit_json({"emulated_demo": out, "kernels": kernels_run})
    else:
        print_emulated_demo(out)
        if kernels_run:
            _print_kernels(kernels_run)
    raise SystemExit(exitcodes.OK if out["ok"] else exitcodes.WOULD_NOT_LOAD)


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
