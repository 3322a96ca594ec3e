"""``rproctee boot``: JSON keys, exit statuses, Mermaid output, coredump file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from elftools.elf.elffile import ELFFile
from linux_helpers import DK2_DTB, signed_demo_image, signing_key

from rproctee.cli import main
from rproctee.firmware import demo_firmware
from rproctee.image import public_key_pem


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    image, key, elf = tmp_path / "fw.img", tmp_path / "k.pub", tmp_path / "fw.elf"
    image.write_bytes(signed_demo_image())
    key.write_bytes(public_key_pem(signing_key()))
    elf.write_bytes(demo_firmware(4))
    return {"image": image, "key": key, "elf": elf, "dir": tmp_path}


def _boot(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["boot", *args, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}


@pytest.mark.parametrize("series", ["v15", "v22"])
def test_boot_crash_recover_json(files: dict[str, Path], series: str) -> None:
    core = files["dir"] / "core.elf"
    seq = files["dir"] / "seq.md"
    code, doc = _boot(str(files["image"]), "-p", "stm32mp15-dk2", "--key",
                      str(files["key"]), "--series", series, "--crash", "fatal",
                      "--coredump", str(core), "--coredump-mode", "inline",
                      "--sequence", str(seq))  # fmt: skip
    assert code == 0, doc
    assert doc["states"] == ["RUNNING", "CRASHED", "OFFLINE", "RUNNING", "OFFLINE"]
    assert {c["id"] for c in doc["tee_calls"]} == {0}
    assert set(doc["tee_calls"][0]) == {"cmd", "id", "result"}
    assert [e["type_name"] for e in doc["rsc_table"]] == ["trace", "vdev"]
    assert doc["trace"] == "cm4: firmware up (boot #1), rpmsg ready\n"
    assert [c["name"] for c in doc["carveouts"]][:3] == ["retram", "mcuram", "mcuram2"]
    assert set(doc["carveouts"][0]) == {"name", "da", "pa", "len"}
    assert doc["coredump"] == str(core) and doc["crash"] == "fatal error"
    # every carveout but vdev0buffer (stm32_rproc_prepare's dump segments)
    assert ELFFile(io.BytesIO(core.read_bytes())).num_segments() == 5
    assert doc["events"] and {"seq", "layer", "kind", "name"} <= set(doc["events"][0])
    text = seq.read_text()
    assert text.startswith("# fw.img on stm32mp15-dk2, TEE series " + series)
    assert "```mermaid\nsequenceDiagram\n" in text
    assert "R-)L: crash (fatal error" in text


def test_no_tee_boots_the_plain_elf(files: dict[str, Path]) -> None:
    code, doc = _boot(str(files["elf"]), "-p", str(DK2_DTB), "--no-tee")
    assert code == 0
    assert doc["tee"] is False and doc["tee_calls"] == [] and doc["coredump"] is None
    assert doc["states"] == ["RUNNING", "OFFLINE"]
    assert [c["name"] for c in doc["carveouts"]] == [
        "retram", "mcuram", "mcuram2", "vdev0vring0", "vdev0vring1", "vdev0buffer",
    ]  # fmt: skip


def test_wrong_key_exits_7_and_says_why(files: dict[str, Path]) -> None:
    code, doc = _boot(str(files["image"]), "-p", "stm32mp15-dk2")
    assert code == 7 and doc["ok"] is False
    assert doc["steps"][0]["step"] == "boot" and "LOAD_FW invoke failed" in (
        doc["steps"][0]["error"]
    )
    assert doc["states"] == [] and doc["rsc_table"] is None


def test_unsigned_elf_under_the_tee_and_junk_without(files: dict[str, Path]) -> None:
    key = str(files["key"])
    code, _ = _boot(str(files["elf"]), "-p", "stm32mp15-dk2", "--key", key)
    assert code == 7  # the TA refuses a bare ELF
    garbage = files["dir"] / "junk.bin"
    garbage.write_bytes(b"\x7fELF" + bytes(60))
    code, doc = _boot(str(garbage), "-p", "stm32mp15-dk2", "--no-tee")
    assert code == 1 and "-EINVAL" in doc["steps"][0]["error"]


def test_usage_and_io_errors(files: dict[str, Path]) -> None:
    runner = CliRunner()
    none = str(files["dir"] / "none")
    missing = runner.invoke(main, ["boot", none, "-p", "stm32mp15-dk2"])
    assert missing.exit_code == 3
    bad = runner.invoke(main, ["boot", str(files["image"]), "-p", "nowhere"])
    assert bad.exit_code == 2 and "--platform" in bad.output
    both = runner.invoke(main, ["boot", str(files["elf"]), "-p", "stm32mp15-dk2",
                                "--no-tee", "--key", str(files["key"])])  # fmt: skip
    assert both.exit_code == 2


def test_terminal_output(files: dict[str, Path]) -> None:
    result = CliRunner().invoke(main, ["boot", str(files["image"]), "-p",
                                       "stm32mp15-dk2", "--key", str(files["key"]),
                                       "--crash", "watchdog"])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    states = "OFFLINE -> RUNNING -> CRASHED -> OFFLINE -> RUNNING -> OFFLINE"
    assert f"states: {states}" in out
    assert "trace0: cm4: firmware up (boot #1), rpmsg ready" in out
    assert "coredump: disabled" in out
