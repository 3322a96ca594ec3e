"""``rproctee load`` / ``rproctee invoke`` through click, JSON checked."""

from __future__ import annotations

import json

from click.testing import CliRunner

from rproctee.cli import main

from .factory import VECTORS, Seg, make_elf, signed_image

KEY = str(VECTORS / "keys" / "rsa2048_pub.pem")
V01 = str(VECTORS / "signed" / "v01_rsa2048_fw1.sig")
V06 = str(VECTORS / "signed" / "v06_ecp256_fw1.sig")
BASE = ["--platform", "stm32mp15-dk2", "--key", KEY, "--json"]


def test_load_json_success() -> None:
    res = CliRunner().invoke(main, ["load", V01, *BASE, "--policy", "optee"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["result"] == "TEE_SUCCESS" and doc["code"] == 0
    table = doc["rsc_table"]
    assert (table["pa"], table["size"], table["da"]) == (0x38000038, 0x44, 0x38)
    assert [e["type_name"] for e in table["decoded"]["entries"]] == ["trace"]
    assert table["decoded"]["entries"][0]["name"] == "cm4_log"
    assert [w["op"] for w in doc["writes"]] == ["copy", "copy", "zero"]
    assert [w["region"] for w in doc["writes"]] == ["retram", "mcuram2", "mcuram2"]
    assert any(p["phase"] == "LOAD_FW" for p in doc["timings"])


def test_load_json_failure_exit_status() -> None:
    ecdsa_key = str(VECTORS / "keys" / "ecp256_pub.pem")
    args = ["load", V06, "--platform", "stm32mp15-dk2", "--key", ecdsa_key, "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 7
    doc = json.loads(res.stdout)
    assert doc["result"] == "TEE_ERROR_NOT_SUPPORTED"
    assert doc["code"] == 0xFFFF000A and doc["rsc_table"] is None
    ok = CliRunner().invoke(main, [*args, "--accept-ecdsa"])
    assert ok.exit_code == 0, ok.output


def test_invoke_steps() -> None:
    steps = [f"LOAD_FW:0:{V01}", "GET_RSC_TABLE:0", "START_FW:0", "RELEASE_FW:0",
             "0x42:0", "START_FW:0@0051", "GET_COREDUMP:0"]  # fmt: skip
    res = CliRunner().invoke(main, ["invoke", *BASE, "--policy", "optee", *steps])
    assert res.exit_code == 0, res.output
    got = [(s["cmd"], s["result"]) for s in json.loads(res.stdout)["steps"]]
    assert got == [
        ("LOAD_FW", "TEE_SUCCESS"), ("GET_RSC_TABLE", "TEE_SUCCESS"),
        ("START_FW", "TEE_SUCCESS"), ("RELEASE_FW", "TEE_ERROR_BAD_STATE"),
        ("0x42", "TEE_ERROR_BAD_PARAMETERS"), ("START_FW", "TEE_ERROR_BAD_PARAMETERS"),
        ("GET_COREDUMP", "TEE_ERROR_NOT_IMPLEMENTED"),
    ]  # fmt: skip
    assert json.loads(res.stdout)["steps"][1]["rsc_pa"] == 0x38000038


def test_invoke_unknown_session_id() -> None:
    res = CliRunner().invoke(main, ["invoke", *BASE, "--session-id", "5", "START_FW:0"])
    assert res.exit_code == 7
    assert json.loads(res.stdout)["open_session"]["result"] == "TEE_ERROR_NOT_SUPPORTED"


def test_strict_coredump_is_an_elf_core() -> None:
    res = CliRunner().invoke(main, ["invoke", *BASE, f"LOAD_FW:0:{V01}",
                                    "GET_COREDUMP:0"])  # fmt: skip
    step = json.loads(res.stdout)["steps"][1]
    assert step["result"] == "TEE_SUCCESS"
    assert step["coredump_size"] > 0x90000


def test_load_text_shows_the_table_regions_and_phases() -> None:
    args = ["load", V01, *BASE[:-1]]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "    [0x14] trace da 0x10000000 len 0x100 name cm4_log" in out
    assert "(retram)" in out and "(mcuram2)" in out
    lines = out.splitlines()
    at = lines.index(next(x for x in lines if x.strip().startswith("LOAD_FW ")))
    assert lines[at + 1].startswith("      ")  # sub-phases indented under it
    assert any(x.strip().startswith("total") for x in lines)


def test_optee_table_that_is_not_in_memory_is_a_warning(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """W3: optee takes the table's place from unsigned section headers; one
    moved onto zero-filled memory is reported, not decoded as garbage."""
    segs = [Seg(0x0, bytes(range(64)) * 2), Seg(0x10000000, b"\x11" * 8, 0x208)]
    elf = make_elf(segs)
    raw = bytearray(elf.raw)
    assert elf.rsc_shdr is not None
    raw[elf.rsc_shdr + 12 : elf.rsc_shdr + 16] = (0x10000100).to_bytes(4, "little")
    image = tmp_path / "fw.sig"
    image.write_bytes(signed_image([bytes(raw)], signed_elves=[bytes(elf.raw)]))
    res = CliRunner().invoke(main, ["load", str(image), *BASE, "--policy", "optee"])
    assert res.exit_code == 0, res.output
    table = json.loads(res.stdout)["rsc_table"]
    assert "decoded" not in table and "not a valid table" in table["warning"]
    strict = CliRunner().invoke(main, ["load", str(image), *BASE])
    assert json.loads(strict.stdout)["result"] == "TEE_ERROR_BAD_FORMAT"


def test_load_names_a_plain_elf(tmp_path) -> None:  # type: ignore[no-untyped-def]
    elf = VECTORS / "inputs" / "fw1.elf"
    res = CliRunner().invoke(main, ["load", str(elf), *BASE])
    assert res.exit_code == 4
    assert "this is an ELF file, not a signed image: sign it first" in res.output


def test_load_refuses_a_private_key_for_the_platform() -> None:
    private = str(VECTORS / "keys" / "rsa2048.pem")
    args = ["load", V01, "--platform", "stm32mp15-dk2", "--key", private]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2
    assert "private key" in res.output and "rproctee pubkey" in res.output


def test_load_takes_node_on_a_device_tree() -> None:
    dtb = str(VECTORS.parents[1] / "dts" / "stm32mp157c-dk2.dtb")
    args = ["load", V01, "-p", dtb, "--node", "m4", "--key", KEY, "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    bad = CliRunner().invoke(main, [*args[:4], "--node", "nowhere", *args[6:]])
    assert bad.exit_code == 2 and "nowhere" in bad.output


def test_ecdsa_refusal_suggests_the_option() -> None:
    ecdsa_key = str(VECTORS / "keys" / "ecp256_pub.pem")
    args = ["load", V06, "--platform", "stm32mp15-dk2", "--key", ecdsa_key]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 7 and "--accept-ecdsa" in res.output


def test_invoke_names_are_case_insensitive_and_listed() -> None:
    steps = [f"load_fw:0:{V01}", "Get_Rsc_Table:0", "RELEASE_FW:0"]
    res = CliRunner().invoke(main, ["invoke", *BASE, "--id", "0", *steps])
    assert res.exit_code == 0, res.output
    got = [s["result"] for s in json.loads(res.stdout)["steps"]]
    assert got == ["TEE_SUCCESS"] * 3
    bad = CliRunner().invoke(main, ["invoke", *BASE, "bogus:0"])
    assert bad.exit_code == 2 and "load_fw, start_fw" in bad.output
    helptext = CliRunner().invoke(main, ["invoke", "--help"]).output
    assert "get_rsc_table" in helptext and "release_fw" in helptext


def test_progress_bar_follows_the_segment_copies(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """On a terminal, a large load draws a bar fed by the platform's copy
    timings, without a phase hook (a hook would keep the load off its fast
    paths)."""
    import sys

    from rich.progress import Progress

    from rproctee.cli import tee_cmds

    from .factory import load, session, world

    seen: list[float] = []
    update = Progress.update

    def spy(self, task, **kw):  # type: ignore[no-untyped-def]
        if "completed" in kw:
            seen.append(kw["completed"])
        update(self, task, **kw)

    monkeypatch.setattr(tee_cmds, "PROGRESS_MIN_BYTES", 0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(Progress, "update", spy)
    w = world("strict")
    image = signed_image([bytes(make_elf([Seg(0x0, bytes(256))]).raw)])
    with tee_cmds._progress(w, len(image)):
        assert w.on_phase is None
        assert load(session(w), image).ok
    assert seen and seen[-1] == 256 + 32  # code + the table
    assert seen == sorted(seen)
