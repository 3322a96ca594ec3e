"""``rproctee bench --footprint``: start-up time and peak memory of a load.

The issue's last two goals, measured in child processes so that nothing of
the benchmark itself is counted:

* start-up: ``import rproctee`` (cumulative ``-X importtime``, goal
  <= 80 ms) and ``rproctee --help`` (wall time of a whole process, goal
  <= 150 ms), beside ``python -c pass`` (the interpreter alone);
* memory: the peak RSS of ``rproctee load`` of a 1 GiB signed image into
  1 GiB of device memory, as a ratio to (image + device memory), goal
  <= 1.05 (the image is mapped, never read into ``bytes``); the child's own
  high-water mark (``VmHWM``, Linux).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GIB = 1 << 30
#: The child of load_rss: the CLI, then its own peak RSS (kB) on stderr.
_LOAD_AND_HWM = """
import sys
from rproctee.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open("/proc/self/status") as status:
    hwm = [line.split()[1] for line in status if line.startswith("VmHWM:")]
print(hwm[0], file=sys.stderr)
sys.exit(code)
"""
_HELP = "from rproctee.cli import main; main(['--help'])"


def importtime_us(module: str) -> int:
    """Cumulative time to import ``module`` (us), in a fresh interpreter
    (``-X importtime``): its own line, not the interpreter's start-up
    (``site`` and the ``.pth`` files of the environment)."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    for line in err.splitlines():
        parts = line.split("|")
        if (
            len(parts) == 3
            and parts[2].strip() == module
            and not parts[2].startswith("  ")
        ):
            return int(parts[1])
    raise RuntimeError(f"-X importtime printed no line for {module}")


def wall_seconds(args: list[str]) -> float:
    """Wall time of one whole child process."""
    t0 = time.perf_counter()
    subprocess.run(args, capture_output=True, check=True)
    return time.perf_counter() - t0


def startup(rounds: int) -> dict[str, float]:
    """Medians over ``rounds`` fresh interpreters, in milliseconds."""
    n = max(1, rounds)
    return {
        "import_rproctee_ms": statistics.median(
            importtime_us("rproctee") / 1e3 for _ in range(n)
        ),
        "import_cli_ms": statistics.median(
            importtime_us("rproctee.cli") / 1e3 for _ in range(n)
        ),
        "help_ms": statistics.median(
            wall_seconds([sys.executable, "-c", _HELP]) * 1e3 for _ in range(n)
        ),
        "python_alone_ms": statistics.median(
            wall_seconds([sys.executable, "-c", "pass"]) * 1e3 for _ in range(n)
        ),
    }


def load_rss(size: int = GIB, segments: int = 8) -> dict[str, Any]:
    """Peak RSS of ``rproctee load`` of a ``size``-byte image into device
    memory of the same size, in a child process.

    Returns
    -------
    dict
        ``image_bytes``, ``memory_bytes``, ``peak_rss_bytes`` and ``ratio``
        (peak RSS over image + memory).
    """
    from rproctee.cli.bench_cmds import build_bench_image

    with tempfile.TemporaryDirectory(prefix="rproctee-rss-") as tmp:
        at = Path(tmp)
        img = build_bench_image(size, segments)
        image_bytes, region = len(img.image), img.platform.regions[0]
        (at / "fw.img").write_bytes(img.image)
        (at / "key.pem").write_bytes(img.key_pem)
        (at / "board.toml").write_text(
            '[platform]\nname = "rss"\nkey = "key.pem"\n[[regions]]\n'
            f'name = "ram"\nda = {region.da}\npa = {region.pa}\n'
            f"size = {region.size}\n"
        )
        del img
        # the child's own high-water mark (VmHWM of its address space since
        # exec): ru_maxrss of a child also counts the parent's pages it
        # shared between fork and exec, gigabytes here
        done = subprocess.run(
            [sys.executable, "-c", _LOAD_AND_HWM, "load", str(at / "fw.img"),
             "-p", str(at / "board.toml")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    peak = int(done.stderr.strip().splitlines()[-1]) * 1024
    return {
        "image_bytes": image_bytes,
        "memory_bytes": region.size,
        "peak_rss_bytes": peak,
        "ratio": peak / (image_bytes + region.size),
    }


def format_footprint(fp: dict[str, Any]) -> str:
    """Two lines: start-up, then the load's peak RSS."""
    s, m = fp["startup"], fp["rss"]
    return (
        f"start-up (median of {fp['rounds']} fresh interpreters, -X importtime): "
        f"import rproctee {s['import_rproctee_ms']:.1f} ms; rproctee --help imports "
        f"{s['import_cli_ms']:.1f} ms (rproctee.cli), {s['help_ms']:.0f} ms wall "
        f"in all (python -c pass alone: {s['python_alone_ms']:.0f} ms)\n"
        f"peak RSS of rproctee load, {m['image_bytes'] / GIB:.2f} GiB image into "
        f"{m['memory_bytes'] / GIB:.2f} GiB of device memory: "
        f"{m['peak_rss_bytes']:,} bytes, {m['ratio']:.3f} x (image + memory)"
    )
