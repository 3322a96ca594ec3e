"""``rproctee bench``: the emulated core's instructions-per-second rows."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from click.testing import CliRunner

from rproctee.cli import main
from rproctee.cli.bench_cmds import IPS_ROWS, emulated_ips, format_ips_table


def _stub_load_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    """The LOAD_FW rounds are not under test here: one fake method row."""
    import rproctee.cli.bench_cmds as bench_cmds

    row = {"median": 1e9, "min": 1e9, "max": 1e9, "x_sha256": 1.0, "x_memcpy": 1.0,
           "x_pyelftools": 1.0, "x_mmap": 1.0}  # fmt: skip
    result = {"machine": {"cpu": "c", "cores": 1, "kernel": "k", "python": "p",
                          "fused": "f"}, "size": 1, "segments": 1,
              "policy": "strict", "rounds": 1, "methods": {"memcpy": row}}  # fmt: skip
    monkeypatch.setattr(bench_cmds, "run_bench", lambda *a, **k: dict(result))
    over = {"size": 16 << 20, "segments": 4096, "policies": {"optee": {
        "one": 1e9, "many": 6e8, "ratio": 0.6, "us_per_segment": 1.5}}}
    monkeypatch.setattr(bench_cmds, "run_overhead", lambda *a, **k: over)
    import rproctee.cli.bench_plan as bench_plan

    checks = {"segments": 65535, "region_checks_ms": {"median": 4.0, "min": 3.5},
              "plan_ms": {"median": 20.0, "min": 18.0}}  # fmt: skip
    monkeypatch.setattr(bench_plan, "time_region_checks", lambda *a, **k: checks)


@pytest.mark.skipif(
    importlib.util.find_spec("unicorn") is None,
    reason="the emulated core needs unicorn 2.x (pip install 'rproctee[emu]')",
)
def test_bench_reports_emulated_instructions_per_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _stub_load_bench(monkeypatch)
    result = CliRunner().invoke(main, ["bench", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["emulated_core"]["rows"]
    assert list(rows) == list(IPS_ROWS.values())
    ram, mmio = rows.values()
    assert ram["instructions"] == 2_000_000 and mmio["instructions"] == 200_000
    for row in rows.values():
        assert row["seconds"] > 0
        assert row["instructions_per_second"] == pytest.approx(
            row["instructions"] / row["seconds"]
        )
    text = CliRunner().invoke(main, ["bench"]).stdout
    assert "| memcpy | 1.00 |" in text  # the load table, then the emulated one
    assert "| optee | 1.00 | 0.60 | 0.60 | 1.5 |" in text  # per-segment cost
    assert "strict plan of 65,535 segments: region checks 4.00 ms" in text
    assert "| method | instructions | seconds | instructions/s |" in text
    assert "| emulated core, RAM loop | 2,000,000 |" in text
    assert "| emulated core, MMIO polling | 200,000 |" in text


def test_without_unicorn_the_rows_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "unicorn", None)  # import unicorn fails
    ips = emulated_ips()
    assert ips["rows"] == {}
    assert "pip install 'rproctee[emu]'" in ips["unavailable"]
    assert format_ips_table(ips).startswith("emulated core: not measured (")


def test_per_segment_cost_and_region_checks_really_run() -> None:
    """Small shapes of the two extra sections, measured for real."""
    from rproctee.cli.bench_cmds import format_overhead_table, run_overhead
    from rproctee.cli.bench_plan import time_region_checks

    over = run_overhead(64, "both", 1, False)
    assert over["segments"] == 64 and set(over["policies"]) == {"optee", "strict"}
    for row in over["policies"].values():
        assert row["one"] > 0 and row["many"] > 0 and row["ratio"] > 0
    assert format_overhead_table(over).count("\n") == 3
    checks = time_region_checks(4096, 1)
    assert checks["segments"] == 4096
    assert 0 < checks["region_checks_ms"]["min"] <= checks["plan_ms"]["median"]


def test_footprint_measures_children() -> None:
    """--footprint's parts on a small image: the child loads (exit 0) and its
    peak RSS is read; start-up medians are positive."""
    from rproctee.cli.bench_footprint import format_footprint, load_rss, startup

    rss = load_rss(size=4 << 20, segments=4)
    assert rss["image_bytes"] > 4 << 20 and rss["memory_bytes"] >= 4 << 20
    assert rss["peak_rss_bytes"] > rss["image_bytes"]
    assert rss["ratio"] == rss["peak_rss_bytes"] / (
        rss["image_bytes"] + rss["memory_bytes"]
    )
    times = startup(1)
    assert all(v > 0 for v in times.values())
    text = format_footprint({"rounds": 1, "rss": rss, "startup": times})
    assert "import rproctee" in text and "peak RSS of rproctee load" in text
