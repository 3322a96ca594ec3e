"""Start-up cost of the command line, measured in imported modules (not time).

``rproctee --help`` must not import the heavy dependencies: the lazy group
lists commands from its index and imports a command module only to run it.
"""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from rproctee import cli

HEAVY = ("numpy", "cryptography", "rich", "elftools", "libfdt", "devicetree")
#: Generous: Python + click + rproctee.cli import about 140 modules today.
MODULE_BUDGET = 220


def _imported(code: str) -> list[str]:
    """Top-level names of the modules ``python -X importtime -c code`` imports."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    names = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        name = line.rsplit("|", 1)[1].strip()
        if name != "package":  # the header line
            names.append(name)
    return names


def _heavy(names: list[str]) -> list[str]:
    return sorted({n for n in names if n.split(".", 1)[0] in HEAVY})


def test_import_cli_is_light() -> None:
    names = _imported("import rproctee.cli")
    assert "rproctee.cli" in names
    assert _heavy(names) == []
    assert len(names) < MODULE_BUDGET, f"{len(names)} modules imported"


def test_help_imports_no_command_module_and_no_heavy_dependency() -> None:
    code = (
        "import sys; from rproctee.cli import main; "
        "sys.argv = ['rproctee', '--help']; main()"
    )
    names = _imported(code)
    assert _heavy(names) == []
    assert not [
        n
        for n in names
        if n.startswith("rproctee.cli.")
        and n not in ("rproctee.cli.output", "rproctee.cli.exitcodes")
    ]


def test_import_rproctee_is_light_and_names_resolve_lazily() -> None:
    assert _heavy(_imported("import rproctee")) == []
    import rproctee

    assert rproctee.kernels.BACKEND in ("native", "reference")
    assert callable(rproctee.load_platform)


def test_index_names_every_registered_command_with_its_module() -> None:
    registered: dict[str, str] = {}
    for module_name in cli.COMMAND_MODULES:
        group = click.Group()
        __import__(f"rproctee.cli.{module_name}")
        sys.modules[f"rproctee.cli.{module_name}"].register(group)
        registered.update(dict.fromkeys(group.commands, module_name))
    indexed = {name: entry[0] for name, entry in cli.COMMAND_INDEX.items()}
    assert indexed == registered


def test_help_lists_every_command_and_the_exit_statuses() -> None:
    result = CliRunner().invoke(cli.main, ["--help"])
    assert result.exit_code == 0
    for name in cli.COMMAND_INDEX:
        assert f"\n  {name} " in result.output
    assert "Exit status: 0 ok" in result.output and "``" not in result.output
