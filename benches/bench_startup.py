"""Start-up cost, measured with ``-X importtime`` in fresh interpreters
(goals: ``import rproctee`` <= 80 ms, ``rproctee --help`` <= 150 ms)."""

from __future__ import annotations

import subprocess
import sys
import time


def _importtime_us(code: str) -> int:
    """Cumulative import time of the top-level imports of ``code`` (us)."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    total = 0
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and not parts[2].startswith("  "):
            try:
                total += int(parts[1])
            except ValueError:
                continue
    return total


def _wall(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, capture_output=True, check=True)
    return time.perf_counter() - t0


def test_import_rproctee(benchmark):
    benchmark.group = "startup"
    benchmark.name = "import rproctee (-X importtime, cumulative)"
    us = benchmark.pedantic(_importtime_us, ("import rproctee",), rounds=5)
    benchmark.extra_info["importtime_ms"] = us / 1000


def test_cli_help(benchmark):
    benchmark.group = "startup"
    benchmark.name = "rproctee --help (wall, whole process)"
    code = "from rproctee.cli import main; main(['--help'])"
    benchmark.pedantic(_wall, ([sys.executable, "-c", code],), rounds=5)
    us = _importtime_us("import rproctee.cli")
    benchmark.extra_info["importtime_ms"] = us / 1000
