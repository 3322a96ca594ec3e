"""``rproctee bench``: LOAD_FW against memcpy, SHA-256 and what users run.

Builds a synthetic signed image (``--size`` bytes in ``--segments`` PT_LOAD
segments, the resource table in the smallest one, as real firmware keeps it
in a small data segment) and times, in interleaved rounds so that drift on a
shared machine hits every method alike:

* ``memcpy``: ``numpy.copyto`` of the segment bytes into warm memory;
* ``sha256``: ``hashlib.sha256`` of each segment (the ceiling of a verified
  load on one core);
* ``pyelftools``: ``ELFFile`` + ``seg.data()`` + copy + hashlib, compared
  with the signed digests (what a Python user writes with the usual tool);
* ``mmap``: an ``mmap`` of the ELF + ``struct`` program headers + copy from a
  ``memoryview`` + hashlib per segment, no checks at all (the fastest
  hand-written loader);
* ``LOAD_FW``: the whole secure path (TA -> PTA, every check of the
  policy) into prefaulted device memory: ``optee`` and ``strict`` with one
  PTA call per segment, and ``strict`` with its segments in one batched call
  on 1 and N worker threads (the fused kernel hashing two at a time).

Then the emulated Cortex-M core's instructions per second
(:func:`rproctee.emu.bench.measure_ips`: a RAM loop and an MMIO-polling
loop), when unicorn (the ``emu`` extra) is installed.

Heavy imports (numpy, the secure world, rich, matplotlib) happen inside the
command, never at ``import rproctee.cli``.
"""

from __future__ import annotations

import re
import statistics
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

MIB = 1 << 20
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": MIB, "mib": MIB,
          "g": 1 << 30, "gib": 1 << 30}  # fmt: skip
#: Sizes and segment counts of the ``--plot`` sweeps.
PLOT_SIZES = (1 * MIB, 4 * MIB, 16 * MIB, 64 * MIB, 256 * MIB, 1024 * MIB)
PLOT_SEGMENTS = (1, 8, 64, 512, 4096)
BASE_DA = 0x10000000
RSC_OFFSET = 0x200


def parse_size(text: str) -> int:
    """``"256MiB"``, ``"4k"``, ``"1GiB"``, ``"4096"`` -> bytes.

    Raises
    ------
    click.BadParameter
        Not a positive size with a known unit.
    """
    m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS or int(m.group(1)) <= 0:
        raise click.BadParameter(f"size {text!r}: expected e.g. 256MiB, 4KiB, 1GiB")
    return int(m.group(1)) * _UNITS[unit]


@dataclass
class BenchImage:
    """A synthetic signed firmware and the platform that takes it."""

    elf: bytes
    image: bytes
    key_pem: bytes
    #: (memref offset of the ELF's segment bytes, da, size, digest) per segment
    segments: list[tuple[int, int, int, bytes]]
    total: int
    platform: Any = None


def segment_sizes(size: int, count: int) -> list[int]:
    """``count`` sizes adding up to ``size``, multiples of 4.

    With several segments the first, which holds the resource table, is
    small (at most 64 KiB, like a firmware's data segment), and the others
    share the rest evenly.
    """
    if count <= 0 or size < 4 * count:
        raise click.BadParameter(
            f"--segments {count}: needs at least 4 bytes per segment of {size}"
        )
    if count == 1:
        return [size]
    first = min(size // count // 4 * 4, 64 << 10)
    unit = (size - first) // (count - 1) // 4 * 4
    sizes = [first] + [unit] * (count - 1)
    sizes[-1] += size - sum(sizes)
    return sizes


def build_bench_image(size: int, count: int, seed: int = 1) -> BenchImage:
    """The image: ``count`` PT_LOAD segments of random bytes, ``size`` in all.

    Segment 0 (the smallest) holds a valid resource table at 0x200.
    """
    import hashlib

    import numpy as np

    from rproctee.firmware import PF_R, PF_X, Segment, build_elf, resource_table
    from rproctee.image import KeySigner, build_image, generate_key, public_key_pem
    from rproctee.platform import RegionSpec
    from rproctee.platform.board import PlatformSpec

    rng = np.random.default_rng(seed)
    sizes = segment_sizes(size, count)
    table = resource_table(BASE_DA + 0x100, (BASE_DA + 0x1000, BASE_DA + 0x2000))
    segs, da = [], BASE_DA
    for i, n in enumerate(sizes):
        data = bytearray(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        if i == 0 and n >= RSC_OFFSET + len(table):
            data[RSC_OFFSET : RSC_OFFSET + len(table)] = table
        segs.append(Segment(f".s{i}", da, bytes(data), n, PF_R | PF_X))
        da += (n + 0xFFF) // 0x1000 * 0x1000
    rsc = (RSC_OFFSET, len(table)) if sizes[0] >= RSC_OFFSET + len(table) else None
    elf = build_elf(segs, rsc)
    key = generate_key("rsa2048")
    image = build_image([elf], KeySigner(key))
    elf_at = len(image) - ((len(elf) + 7) // 8 * 8)
    regions = [RegionSpec("ram", BASE_DA, 0x80000000, da - BASE_DA)]
    pem = public_key_pem(key)
    platform = PlatformSpec(
        name=f"bench-{count}x", regions=tuple(regions), accept_ecdsa=False,
        processor_ids=(0,), default_key_pem=pem, source="rproctee bench", notes=(),
    )  # fmt: skip
    out = []
    for seg, off in zip(segs, _elf_offsets(elf), strict=True):
        digest = hashlib.sha256(seg.data).digest()
        out.append((elf_at + off, seg.addr, len(seg.data), digest))
    return BenchImage(elf, image, pem, out, size, platform)


def _elf_offsets(elf: bytes) -> list[int]:
    import struct

    phoff, phnum = (
        struct.unpack_from("<I", elf, 28)[0],
        struct.unpack_from("<H", elf, 44)[0],
    )
    return [struct.unpack_from("<I", elf, phoff + 32 * i + 4)[0] for i in range(phnum)]


# -- the methods ------------------------------------------------------------------
@dataclass
class Method:
    """One timed method: ``run()`` once per round, ``reset()`` untimed before."""

    name: str
    run: Callable[[], None]
    reset: Callable[[], None] = lambda: None
    seconds: list[float] = field(default_factory=list)


def _methods(
    img: BenchImage, threads: Sequence[int], policy: str, fresh: bool = False
) -> list[Method]:
    import hashlib
    import mmap
    import tempfile

    import numpy as np

    src = memoryview(img.image)
    views = [src[off : off + n] for off, _da, n, _d in img.segments]
    dst = np.ones(img.total, dtype=np.uint8)
    tmp = tempfile.TemporaryFile()
    tmp.write(img.elf)
    tmp.flush()
    mapped = mmap.mmap(tmp.fileno(), 0, access=mmap.ACCESS_READ)

    def memcpy() -> None:
        np.copyto(dst, np.frombuffer(src, np.uint8, img.total, img.segments[0][0]))

    def sha256() -> None:
        for v in views:
            hashlib.sha256(v).digest()

    methods = [Method("memcpy", memcpy), Method("sha256", sha256),
               Method("pyelftools", _pyelftools_peer(img, tmp, dst)),
               Method("mmap", _mmap_peer(img, mapped, dst))]  # fmt: skip
    # the file and its map live as long as the peers that read them
    weakref.finalize(methods[3], _close_quietly, mapped, tmp)
    if policy in ("optee", "both"):  # upstream: one PTA call per segment
        methods.append(_load_method(img, "optee", 1, batch=False))
    if policy in ("strict", "both"):
        methods.append(_load_method(img, "strict", 1, batch=False))
        for n in threads:
            methods.append(_load_method(img, "strict", n, batch=True))
    if fresh:  # new device memory every round: first touch in or out of the load
        for how in ("lazy", "auto"):
            methods.append(_fresh_load_method(img, how))
    return methods


def _close_quietly(*files: Any) -> None:
    for f in files:
        try:
            f.close()
        except (BufferError, OSError, ValueError):  # pragma: no cover
            pass


def _pyelftools_peer(img: BenchImage, f: Any, dst: Any) -> Callable[[], None]:
    import hashlib

    import numpy as np
    from elftools.elf.elffile import ELFFile

    digests = [d for *_x, d in img.segments]

    def run() -> None:
        f.seek(0)
        at = 0
        for k, seg in enumerate(ELFFile(f).iter_segments()):
            data = seg.data()
            n = len(data)
            dst[at : at + n] = np.frombuffer(data, np.uint8)
            if hashlib.sha256(dst[at : at + n]).digest() != digests[k]:
                raise RuntimeError("pyelftools peer: digest mismatch")
            at += n

    return run


def _mmap_peer(img: BenchImage, mapped: Any, dst: Any) -> Callable[[], None]:
    import hashlib
    import struct

    import numpy as np

    def run() -> None:
        # a view per run, released at its end, so the map can be closed
        with memoryview(mapped) as view:
            phoff, phnum = (
                struct.unpack_from("<I", view, 28)[0],
                view[44] | view[45] << 8,
            )
            at = 0
            for i in range(phnum):
                _t, off, _v, _p, filesz, _m = struct.unpack_from(
                    "<6I", view, phoff + 32 * i
                )
                piece = dst[at : at + filesz]
                np.copyto(piece, np.frombuffer(view, np.uint8, filesz, off))
                hashlib.sha256(piece).digest()
                at += filesz

    return run


def _load_method(img: BenchImage, policy: str, threads: int, batch: bool) -> Method:
    from rproctee.tee import TA_UUID, TaCommand, TeeContext, build_secure_world
    from rproctee.tee.params import memref_in, value_in

    # the TA copies the hash table (64 bytes a segment) to its heap
    heap = max(4096, 2 * 64 * len(img.segments) + 16384)
    world = build_secure_world(img.platform, policy=policy, heap_size=heap)
    world.core.threads = threads
    world.core.batch_segments = batch
    session = TeeContext(world.core).open_session(TA_UUID, [value_in(0)])
    view = memoryview(img.image)

    def reset() -> None:
        session.invoke_command(TaCommand.RELEASE_FW, [value_in(0)])
        world.memory.writes.clear()
        world.pta.timings.clear()

    def run() -> None:
        answer = session.invoke_command(
            TaCommand.LOAD_FW, [value_in(0), memref_in(view)]
        )
        if not answer.ok:
            raise RuntimeError(f"LOAD_FW failed: {answer.reason}")

    how = f"x{threads}" if batch else "per-segment calls"
    return Method(f"LOAD_FW {policy} {how}", run, reset)


def _fresh_load_method(img: BenchImage, prefault: str) -> Method:
    """LOAD_FW strict x1 into device memory built just before (untimed):
    ``lazy`` takes its page faults inside the load, ``auto`` took them when
    the memory was built."""
    from rproctee.platform.memory import DeviceMemory
    from rproctee.tee import TA_UUID, TaCommand, TeeContext, build_secure_world
    from rproctee.tee.params import memref_in, value_in

    heap = max(4096, 2 * 64 * len(img.segments) + 16384)
    world = build_secure_world(img.platform, policy="strict", heap_size=heap)
    world.core.threads = 1
    view = memoryview(img.image)
    state: dict[str, Any] = {}

    def reset() -> None:
        if "session" in state:
            state["session"].invoke_command(TaCommand.RELEASE_FW, [value_in(0)])
            state["session"].close()
        world.memory = world.pta.memory = None  # type: ignore[assignment]
        mem = DeviceMemory(img.platform.regions, prefault=prefault)
        world.memory = world.pta.memory = mem
        state["session"] = TeeContext(world.core).open_session(TA_UUID, [value_in(0)])

    def run() -> None:
        answer = state["session"].invoke_command(
            TaCommand.LOAD_FW, [value_in(0), memref_in(view)]
        )
        if not answer.ok:
            raise RuntimeError(f"LOAD_FW failed: {answer.reason}")

    label = "prefaulted at build" if prefault == "auto" else "lazy, faults in load"
    return Method(f"LOAD_FW strict x1, new memory {label}", run, reset)


# -- running and reporting ----------------------------------------------------------
def run_bench(
    size: int,
    count: int,
    threads: int,
    policy: str,
    rounds: int,
    progress: bool,
    fresh: bool = False,
) -> dict[str, Any]:
    """Build the image, run every method ``rounds`` times interleaved.

    Returns
    -------
    dict
        ``machine``, the shape, and per method its median, min and max
        throughput (bytes/s) with ratios to sha256, memcpy and each peer.
    """
    img = build_bench_image(size, count)
    thread_counts = sorted({1, threads})
    methods = _methods(img, thread_counts, policy, fresh)
    for m in methods:  # one warm-up each: page cache, device memory, imports
        m.reset()
        m.run()
    _interleaved(methods, rounds, progress)
    return _summary(img, methods, policy, count, rounds)


def _interleaved(methods: list[Method], rounds: int, progress: bool) -> None:
    bar = _progress(progress)
    with bar as p:
        task = p.add_task("rounds", total=rounds * len(methods))
        for _ in range(rounds):
            for m in methods:
                m.reset()
                t0 = time.perf_counter()
                m.run()
                m.seconds.append(time.perf_counter() - t0)
                p.advance(task)


def _progress(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("[bold]bench"), BarColumn(), MofNCompleteColumn(),
        console=Console(stderr=True), disable=not enabled, transient=True,
    )  # fmt: skip


def _summary(
    img: BenchImage, methods: list[Method], policy: str, count: int, rounds: int
) -> dict[str, Any]:
    rows: dict[str, dict[str, float]] = {}
    for m in methods:
        rates = [img.total / s for s in m.seconds]
        rows[m.name] = {"median": statistics.median(rates), "min": min(rates),
                        "max": max(rates)}  # fmt: skip
    # ratios paired round by round (the methods of one round ran back to
    # back), then the median: drift from other load on the machine cancels
    by_name = {m.name: m.seconds for m in methods}
    for m in methods:
        for ref in ("sha256", "memcpy", "pyelftools", "mmap"):
            pairs = zip(by_name[ref], m.seconds, strict=True)
            rows[m.name][f"x_{ref}"] = statistics.median(r / t for r, t in pairs)
    return {"machine": machine(), "size": img.total, "segments": count,
            "policy": policy, "rounds": rounds, "methods": rows}  # fmt: skip


def machine() -> dict[str, Any]:
    """CPU model, usable cores, kernel and the fused kernel's instruction set."""
    import os
    import platform

    from rproctee import kernels
    from rproctee.tee.core import usable_cores

    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": usable_cores(),
        "kernel": os.uname().release,
        "python": platform.python_version(),
        "fused": kernels.FUSED_IMPL,
    }


def format_table(result: dict[str, Any]) -> str:
    """The result as a Markdown table (what the README shows); ratios are
    medians of per-round ratios."""
    lines = [
        "| method | median GB/s | min-max GB/s | x sha256 | x memcpy | x pyelftools "
        "| x mmap |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in result["methods"].items():
        lines.append(
            f"| {name} | {r['median'] / 1e9:.2f} | {r['min'] / 1e9:.2f}-"
            f"{r['max'] / 1e9:.2f} | {r['x_sha256']:.2f} | {r['x_memcpy']:.3f} | "
            f"{r['x_pyelftools']:.2f} | {r['x_mmap']:.2f} |"
        )
    return "\n".join(lines)


# -- per-segment overhead: many small segments against one large one --------------
#: Image size of the per-segment overhead comparison.
OVERHEAD_SIZE = 16 * MIB


def run_overhead(
    count: int, policy: str, rounds: int, progress: bool
) -> dict[str, Any]:
    """LOAD_FW of :data:`OVERHEAD_SIZE` as one segment and as ``count``
    segments, one PTA call per segment, interleaved rounds.

    Returns
    -------
    dict
        ``size``, ``segments`` and per policy the median throughput of each
        shape (bytes/s), their paired ratio (many / one) and the cost of one
        more segment in microseconds.
    """
    one = build_bench_image(OVERHEAD_SIZE, 1, seed=2)
    many = build_bench_image(OVERHEAD_SIZE, count, seed=3)
    policies = ("optee", "strict") if policy == "both" else (policy,)
    pairs = []
    for p in policies:
        a = _load_method(one, p, 1, batch=False)
        b = _load_method(many, p, 1, batch=False)
        a.name, b.name = f"{p} x1", f"{p} x{count}"
        pairs.append((p, a, b))
    methods = [m for _p, a, b in pairs for m in (a, b)]
    for m in methods:
        m.reset()
        m.run()
    _interleaved(methods, rounds, progress)
    rows = {}
    for p, a, b in pairs:
        ta, tb = statistics.median(a.seconds), statistics.median(b.seconds)
        rows[p] = {
            "one": OVERHEAD_SIZE / ta,
            "many": OVERHEAD_SIZE / tb,
            "ratio": statistics.median(
                x / y for x, y in zip(a.seconds, b.seconds, strict=True)
            ),
            "us_per_segment": (tb - ta) / count * 1e6,
        }
    return {"size": OVERHEAD_SIZE, "segments": count, "policies": rows}


def format_overhead_table(over: dict[str, Any]) -> str:
    """The per-segment overhead rows as a Markdown table."""
    n = over["segments"]
    lines = [f"| LOAD_FW {over['size'] // MIB} MiB | 1 segment GB/s | {n} segments "
             "GB/s | ratio (paired) | us per extra segment |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for p, r in over["policies"].items():
        lines.append(f"| {p} | {r['one'] / 1e9:.2f} | {r['many'] / 1e9:.2f} | "
                     f"{r['ratio']:.2f} | {r['us_per_segment']:.1f} |")  # fmt: skip
    return "\n".join(lines)


def format_region_checks(checks: dict[str, Any]) -> str:
    """One line: the strict plan's region checks and whole plan, in ms."""
    rc, plan = checks["region_checks_ms"], checks["plan_ms"]
    return (
        f"strict plan of {checks['segments']:,} segments: region checks "
        f"{rc['median']:.2f} ms median ({rc['min']:.2f} min), whole plan "
        f"{plan['median']:.1f} ms median ({plan['min']:.1f} min)"
    )


# -- emulated core: instructions per second (rproctee.emu.bench) -------------------
#: Row names of :func:`emulated_ips`' loops.
IPS_ROWS = {"ram_loop": "emulated core, RAM loop",
            "mmio_poll": "emulated core, MMIO polling"}  # fmt: skip


def emulated_ips() -> dict[str, Any]:
    """:func:`rproctee.emu.bench.measure_ips` rows, or why there are none.

    Returns
    -------
    dict
        ``{"rows": {name: {instructions, ticks, seconds,
        instructions_per_second}}}``, or ``{"rows": {}, "unavailable":
        reason}`` without unicorn (the ``emu`` extra).
    """
    from rproctee.emu.bench import measure_ips
    from rproctee.emu.core import EmulatorUnavailable

    try:
        loops = measure_ips()
    except EmulatorUnavailable as exc:
        return {"rows": {}, "unavailable": str(exc)}
    return {"rows": {IPS_ROWS[k]: v for k, v in loops.items()}}


def format_ips_table(ips: dict[str, Any]) -> str:
    """The emulated core's rows as a Markdown table."""
    if not ips["rows"]:
        return f"emulated core: not measured ({ips['unavailable']})"
    lines = ["| method | instructions | seconds | instructions/s |",
             "|---|---:|---:|---:|"]  # fmt: skip
    for name, r in ips["rows"].items():
        lines.append(f"| {name} | {r['instructions']:,} | {r['seconds']:.3f} | "
                     f"{r['instructions_per_second']:,.0f} |")  # fmt: skip
    return "\n".join(lines)


def plot(path: Path, count: int, size: int, threads: int, policy: str,
         rounds: int, progress: bool) -> None:  # fmt: skip
    """Throughput against image size and against segment count, one line per
    method (matplotlib, the ``plot`` extra)."""
    import importlib

    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError as exc:
        raise click.UsageError(
            "--plot needs matplotlib: pip install 'rproctee[plot]'"
        ) from exc
    by_size = [
        run_bench(s, count, threads, policy, rounds, progress) for s in PLOT_SIZES
    ]
    by_count = [
        run_bench(size, c, threads, policy, rounds, progress)
        for c in PLOT_SEGMENTS
        if size >= 4096 * c
    ]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), sharex="col")
    xs = [r["size"] / MIB for r in by_size]
    counts = [r["segments"] for r in by_count]
    _lines(axes[0][0], xs, by_size, "median", "GB/s (median, log)")
    _lines(axes[0][1], counts, by_count, "median", "GB/s (median, log)")
    _lines(axes[1][0], xs, by_size, "x_sha256", "x hashlib SHA-256 (paired)")
    _lines(axes[1][1], counts, by_count, "x_sha256", "x hashlib SHA-256 (paired)")
    axes[1][0].set_xlabel("image size (MiB)")
    axes[1][1].set_xlabel(f"segments ({size // MIB} MiB image)")
    m = by_size[0]["machine"]
    fig.suptitle(f"rproctee bench, {policy}: {m['cpu']}, {m['cores']} cores, "
                 f"Linux {m['kernel']}", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _lines(
    ax: Any, xs: list[float], results: list[dict[str, Any]], key: str, label: str
) -> None:
    for k, name in enumerate(results[0]["methods"]):
        if key != "median" and name == "memcpy":
            continue  # ~10x the others: it would flatten every other line
        ys = [r["methods"][name][key] for r in results]
        if key == "median":
            ys = [y / 1e9 for y in ys]
        ax.plot(xs, ys, marker="o", label=name, color=f"C{k}")  # same in every panel
    ax.set_xscale("log", base=2)
    if key == "median":
        ax.set_yscale("log")
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)


# -- the command --------------------------------------------------------------------
@click.command("bench")
@click.option("--size", default="256MiB", show_default=True, help="Image size.")
@click.option("--segments", type=click.IntRange(1, 65535), default=8,
              show_default=True)  # fmt: skip
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker threads of the parallel LOAD_FW (default: usable cores).",
)
@click.option("--policy", type=click.Choice(["optee", "strict", "both"]),
              default="both", show_default=True)  # fmt: skip
@click.option("--rounds", type=click.IntRange(1, 1000), default=7, show_default=True)
@click.option("--fresh-memory", "fresh", is_flag=True,
              help="Also load into new device memory each round, lazy and "
                   "prefaulted (first touch inside or outside the load).")  # fmt: skip
@click.option("--small-segments", type=click.IntRange(0, 65535), default=4096,
              show_default=True,
              help="Also load 16 MiB as one segment and as this many (the "
                   "per-segment cost); 0: skip.")  # fmt: skip
@click.option("--region-checks/--no-region-checks", default=True,
              show_default=True,
              help="Also time the strict plan's region checks of 65,535 "
                   "segments.")  # fmt: skip
@click.option("--footprint", is_flag=True,
              help="Also measure start-up (import, --help) and the peak RSS "
                   "of loading a 1 GiB image (needs ~4 GiB of RAM).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--plot",
    "plot_to",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also sweep sizes (1 MiB-1 GiB) and segment counts; draw to PNG.",
)
def bench_cmd(size: str, segments: int, threads: int | None, policy: str, rounds: int,
              fresh: bool, small_segments: int, region_checks: bool,
              footprint: bool, as_json: bool,
              plot_to: Path | None) -> None:  # fmt: skip
    """Time LOAD_FW against memcpy, SHA-256 and two peer loaders."""
    from rproctee.tee.core import usable_cores

    nbytes = parse_size(size)
    n = threads or usable_cores()
    result = run_bench(nbytes, segments, n, policy, rounds, True, fresh)
    if small_segments:
        result["per_segment"] = run_overhead(small_segments, policy, rounds, True)
    if region_checks:
        from rproctee.cli.bench_plan import time_region_checks

        result["region_checks"] = time_region_checks(65535, rounds)
    if footprint:
        from rproctee.cli import bench_footprint

        result["footprint"] = {"rounds": rounds, "rss": bench_footprint.load_rss(),
                               "startup": bench_footprint.startup(rounds)}  # fmt: skip
    result["emulated_core"] = emulated_ips()
    if as_json:
        from rproctee.cli.output import emit_json

        emit_json(result)
    else:
        m = result["machine"]
        click.echo(f"{m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, fused "
                   f"kernel: {m['fused']}")  # fmt: skip
        click.echo(f"{nbytes / MIB:g} MiB in {segments} segments, {policy}, "
                   f"{rounds} interleaved rounds (median, min-max)\n")  # fmt: skip
        click.echo(format_table(result))
        if "per_segment" in result:
            click.echo("\n" + format_overhead_table(result["per_segment"]))
        if "region_checks" in result:
            click.echo("\n" + format_region_checks(result["region_checks"]))
        if "footprint" in result:
            from rproctee.cli.bench_footprint import format_footprint

            click.echo("\n" + format_footprint(result["footprint"]))
        click.echo("\n" + format_ips_table(result["emulated_core"]))
    if plot_to is not None:
        plot(plot_to, segments, nbytes, n, policy, max(1, rounds // 2), True)


def register(group: click.Group) -> None:
    """Add ``bench`` to ``group``."""
    group.add_command(bench_cmd)
