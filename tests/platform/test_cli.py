"""``rproctee check`` and ``rproctee platform show``: output and exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from platform_helpers import DK2_DTB, Seg, make_elf

from rproctee.cli import main


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _elf(tmp_path: Path, segs: list[Seg]) -> str:
    path = tmp_path / "fw.elf"
    path.write_bytes(make_elf(segs))
    return str(path)


def test_check_would_load(tmp_path: Path) -> None:
    code, out = _run("check", _elf(tmp_path, [Seg(0x0)]), "-p", "stm32mp15-dk2")
    assert code == 0
    assert "retram (pa 0x38000000)" in out and "TEE_SUCCESS (would load)" in out
    assert "development key" in out


def test_check_would_not_load_json(tmp_path: Path) -> None:
    path = _elf(tmp_path, [Seg(0x20000000)])
    code, out = _run("check", path, "--platform", "stm32mp15-dk2", "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["schema_version"] == 1 and doc["would_load"] is False
    assert doc["ta_result"] == "TEE_ERROR_ACCESS_DENIED"


def test_check_text_shows_both_wordings(tmp_path: Path) -> None:
    code, out = _run("check", _elf(tmp_path, [Seg(0x20000000)]), "-p", "stm32mp15-dk2")
    assert code == 1
    assert "TEE_ERROR_ACCESS_DENIED" in out
    assert 'Linux: "bad phdr da 0x20000000 mem 0x10"' in out


def test_check_strict_fails_on_warnings(tmp_path: Path) -> None:
    # overlapping segments: upstream's TA loads them (a warning), the strict
    # TA refuses them, as load would
    path = _elf(tmp_path, [Seg(0x0, b"a" * 64), Seg(0x20, b"b" * 8)])
    optee = ("check", path, "-p", "stm32mp15-dk2", "--policy", "optee")
    assert _run(*optee)[0] == 0
    assert _run(*optee, "--strict")[0] == 1
    code, out = _run("check", path, "-p", "stm32mp15-dk2")
    assert code == 1 and "overlap" in out


def test_check_exit_statuses(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not firmware")
    assert _run("check", str(junk), "-p", "stm32mp15-dk2")[0] == 4
    assert _run("check", str(tmp_path / "none"), "-p", "stm32mp15-dk2")[0] == 3
    code, out = _run("check", str(junk), "-p", "no-such-board")
    assert code == 2 and "no-such-board" in out


def test_check_against_device_tree(tmp_path: Path) -> None:
    if not DK2_DTB.is_file():
        return
    path = _elf(tmp_path, [Seg(0x10048000)])  # ipc_shmem: not in the Linux tree
    assert _run("check", path, "-p", "stm32mp15-dk2")[0] == 0
    assert _run("check", path, "-p", str(DK2_DTB))[0] == 1


def test_platform_show_json() -> None:
    code, out = _run("platform", "show", "stm32mp15-dk2", "--json")
    assert code == 0
    doc = json.loads(out)
    assert [r["name"] for r in doc["regions"]][-1] == "ipc_shmem"


def test_platform_show_text_and_node_error() -> None:
    code, out = _run("platform", "show", "stm32mp15-dhcom")
    assert code == 0 and "vdev0buffer" in out and "\nipc_shmem " not in out
    code, out = _run("platform", "show", "stm32mp15-dk2", "--node", "m4")
    assert code == 2 and "device trees only" in out
