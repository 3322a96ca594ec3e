"""Start-up cost, measured with ``-X importtime`` in fresh interpreters
(goals: ``import rproctee`` <= 80 ms, ``rproctee --help`` <= 150 ms)."""

from __future__ import annotations

import sys

from rproctee.cli.bench_footprint import importtime_us as _importtime_us
from rproctee.cli.bench_footprint import wall_seconds as _wall


def test_import_rproctee(benchmark):
    benchmark.group = "startup"
    benchmark.name = "import rproctee (-X importtime, cumulative)"
    us = benchmark.pedantic(_importtime_us, ("rproctee",), rounds=5)
    benchmark.extra_info["importtime_ms"] = us / 1000


def test_cli_help(benchmark):
    benchmark.group = "startup"
    benchmark.name = "rproctee --help (wall, whole process)"
    code = "from rproctee.cli import main; main(['--help'])"
    benchmark.pedantic(_wall, ([sys.executable, "-c", code],), rounds=5)
    us = _importtime_us("rproctee.cli")
    benchmark.extra_info["importtime_ms"] = us / 1000
