"""``rproctee load`` / ``rproctee invoke`` through click, JSON checked."""

from __future__ import annotations

import json

from click.testing import CliRunner

from rproctee.cli import main

from .factory import VECTORS

KEY = str(VECTORS / "keys" / "rsa2048_pub.pem")
V01 = str(VECTORS / "signed" / "v01_rsa2048_fw1.sig")
V06 = str(VECTORS / "signed" / "v06_ecp256_fw1.sig")
BASE = ["--platform", "stm32mp15-dk2", "--key", KEY, "--json"]


def test_load_json_success() -> None:
    res = CliRunner().invoke(main, ["load", V01, *BASE, "--policy", "optee"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["result"] == "TEE_SUCCESS" and doc["code"] == 0
    assert doc["rsc_table"] == {"pa": 0x38000038, "size": 0x44}
    assert [w["op"] for w in doc["writes"]] == ["copy", "copy", "zero"]
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
