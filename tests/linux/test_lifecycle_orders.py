"""Boot, crash + recovery and shutdown orders of each series, held against
lists written from the spec (linux-remoteproc.md 1.4-1.6, 2.3, 2.5, 2.6;
optee-remoteproc.md 4)."""

from __future__ import annotations

import pytest
from linux_helpers import elf_system, tee_system

from rproctee.linux.state import CrashType, DumpConf, RprocState

# rproc_fw_boot (spec 2.3): sanity_check, prepare, get_boot_addr, parse_fw,
# [handle resources, carveouts], rproc_start: load, find_loaded_rsc_table,
# start. TEE ops have no sanity_check/get_boot_addr; v15 adds rproc_load_fw
# before rproc_fw_boot.
BOOT_OPS = {
    "v15": ["load_fw", "prepare", "parse_fw", "load", "find_loaded_rsc_table", "start"],
    "v22": ["prepare", "parse_fw", "load", "find_loaded_rsc_table", "start"],
    "elf": ["sanity_check", "prepare", "get_boot_addr", "parse_fw", "load",
            "find_loaded_rsc_table", "start"],
}  # fmt: skip
# rproc_boot_recovery (spec 1.6, 2.5): stop, coredump, [v15 load_fw], rproc_start.
RECOVERY_OPS = {
    "v15": ["stop", "coredump", "load_fw", "load", "find_loaded_rsc_table", "start"],
    "v22": ["stop", "coredump", "load", "find_loaded_rsc_table", "start"],
    "elf": ["stop", "coredump", "load", "find_loaded_rsc_table", "start"],
}
# rproc_shutdown (spec 1.5): stop, [resource cleanup, unprepare], release_fw.
SHUTDOWN_OPS = {"v15": ["stop", "release_fw"], "v22": ["stop", "release_fw"],
                "elf": ["stop"]}  # fmt: skip
# The TEE invokes each op makes (spec 2.6, optee 4).
BOOT_TEE = ["LOAD_FW", "GET_RSC_TABLE", "LOAD_FW", "GET_RSC_TABLE", "START"]
RECOVERY_TEE = {
    "v15": ["STOP", "LOAD_FW", "LOAD_FW", "GET_RSC_TABLE", "START"],
    "v22": ["STOP", "LOAD_FW", "GET_RSC_TABLE", "START"],
}
SHUTDOWN_TEE = ["STOP", "RELEASE_FW"]


def _ops_between(system, start: int) -> list[str]:
    return [e.name for e in system.log.events[start:] if e.kind == "op"]


def _tee_between(system, start: int) -> list[str]:
    return [e.name for e in system.log.events[start:] if e.kind == "invoke_ret"]


def _run(system):
    marks = []
    rproc = system.rproc
    rproc.dump_conf = DumpConf.ENABLED
    marks.append(len(system.log.events))
    rproc.boot()
    marks.append(len(system.log.events))
    system.remote.firmware.request_crash(CrashType.WATCHDOG)
    assert rproc.tick() == 1
    marks.append(len(system.log.events))
    rproc.shutdown()
    return marks


@pytest.mark.parametrize("series", ["v15", "v22"])
def test_tee_series_orders(series: str) -> None:
    system = tee_system(series)
    boot, crash, down = _run(system)
    ops = [e.name for e in system.log.events if e.kind == "op"]
    n_boot, n_rec = len(BOOT_OPS[series]), len(RECOVERY_OPS[series])
    assert ops[:n_boot] == BOOT_OPS[series]
    assert ops[n_boot : n_boot + n_rec] == RECOVERY_OPS[series]
    assert ops[n_boot + n_rec :] == SHUTDOWN_OPS[series]
    assert _tee_between(system, boot)[: len(BOOT_TEE)] == BOOT_TEE
    assert _tee_between(system, crash)[: len(RECOVERY_TEE[series])] == RECOVERY_TEE[
        series
    ]
    assert _tee_between(system, down) == SHUTDOWN_TEE
    assert all(c["id"] == 0 and c["result"] == "TEE_SUCCESS"
               for c in system.log.tee_calls())  # fmt: skip
    assert system.log.states() == ["RUNNING", "CRASHED", "OFFLINE", "RUNNING",
                                   "OFFLINE"]  # fmt: skip


def test_elf_ops_orders() -> None:
    system = elf_system()
    _run(system)
    ops = system.log.op_calls()
    assert ops == BOOT_OPS["elf"] + RECOVERY_OPS["elf"] + SHUTDOWN_OPS["elf"]
    assert system.log.tee_calls() == []


def test_v22_second_load_fw_is_a_no_op_but_recovery_reloads() -> None:
    system = tee_system("v22")
    system.rproc.boot()
    copies = [e for e in system.log.events if e.kind == "write" and e.layer == "pta"]
    first_load = len(copies)
    assert first_load == 4  # three segments and one bss zero-fill, once
    system.remote.firmware.request_crash(CrashType.FATAL_ERROR)
    system.rproc.tick()
    copies = [e for e in system.log.events if e.kind == "write" and e.layer == "pta"]
    assert len(copies) == 2 * first_load  # the TA reloaded after STOP


def test_ta_states_follow_the_invokes() -> None:
    system = tee_system("v22")
    system.rproc.boot()
    system.rproc.shutdown()
    ta = [e.detail["to"] for e in system.log.events if e.kind == "ta_state"]
    assert ta == ["LOADED", "STARTED", "OFF"]


def test_firmware_hook_runs_where_the_pta_starts_the_core() -> None:
    system = tee_system("v22")
    system.rproc.boot()
    names = [(e.layer, e.kind, e.name) for e in system.log.events]
    start = names.index(("pta", "pta_ret", "FIRMWARE_START"))
    assert names[start + 1] == ("remote", "remote", "on_start")
    assert system.rproc.state == RprocState.RUNNING


def test_writes_are_attributed_to_the_layer_that_made_them() -> None:
    from rproctee.linux.lifecycle import run_life

    system = tee_system("v22")
    run_life(system, crash=CrashType.WATCHDOG)
    writes = [(e.detail.get("phase"), e.layer, e.name, e.detail["da"], e.detail["len"])
              for e in system.log.events if e.kind == "write"]  # fmt: skip
    recovery = [w[1:] for w in writes if w[0] == "crash+recovery"]
    # the PTA reloads, Linux copies cached_table into the loaded table (da
    # 0x200) and sets the vrings up, the restarted firmware writes its status
    # byte and its trace line
    assert ("pta", "copy", 0x30000000, 0x1000) in recovery
    assert ("linux", "copy", 0x200, 140) in recovery
    assert ("remote", "copy", 0x10000100, 41) in recovery
    assert {w[0] for w in recovery} == {"pta", "linux", "remote"}
    # shutdown: RELEASE_FW scrubs every region, in the PTA
    assert {w[1:3] for w in writes if w[0] == "shutdown" and w[2] == "scrub"} == {
        ("pta", "scrub")}  # fmt: skip
