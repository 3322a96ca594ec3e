"""``rproctee bench``: the emulated core's instructions-per-second rows."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from click.testing import CliRunner

from rproctee.cli import main
from rproctee.cli.bench_cmds import IPS_ROWS, emulated_ips, format_ips_table


@pytest.mark.skipif(
    importlib.util.find_spec("unicorn") is None,
    reason="the emulated core needs unicorn 2.x (pip install 'rproctee[emu]')",
)
def test_bench_reports_emulated_instructions_per_second() -> None:
    result = CliRunner().invoke(
        main, ["bench", "--size", "64KiB", "--segments", "1", "--rounds", "1",
               "--policy", "strict", "--json"],
    )  # fmt: skip
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
    table = format_ips_table({"rows": rows})
    assert "| emulated core, RAM loop | 2,000,000 |" in table
    assert table.splitlines()[0].split(" | ")[1:] == [
        "instructions", "seconds", "instructions/s |"
    ]


def test_without_unicorn_the_rows_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "unicorn", None)  # import unicorn fails
    ips = emulated_ips()
    assert ips["rows"] == {}
    assert "pip install 'rproctee[emu]'" in ips["unavailable"]
    assert format_ips_table(ips).startswith("emulated core: not measured (")
