"""Recovery keeps the carveouts and cached_table; failures unwind as the kernel."""

from __future__ import annotations

import pytest
from linux_helpers import (
    ANY,
    TABLE_DA,
    demo_table,
    fail_with,
    fake_rproc,
    tee_system,
    u32,
)

from rproctee.linux.errors import RprocErrno, eio, enomem
from rproctee.linux.state import CrashType, RprocState
from rproctee.rsctable import CarveoutRsc, parse_resource_table


@pytest.mark.parametrize("series", ["v15", "v22"])
def test_recovery_keeps_carveout_objects_and_cached_table(series: str) -> None:
    system = tee_system(series)
    rproc = system.rproc
    rproc.boot()
    carveouts = list(rproc.carveouts)
    addresses = [(m.name, m.da, m.dma, m.len) for m in carveouts]
    cached = rproc.cached_table
    cached_bytes = bytes(cached or b"")
    loaded = rproc.loaded_table
    assert loaded is not None
    vrings_before = parse_resource_table(system.memory.read_da(loaded.da, loaded.size))
    system.remote.firmware.request_crash(CrashType.WATCHDOG)
    rproc.tick()
    assert rproc.state == RprocState.RUNNING
    # the very same objects, at the same addresses, never released
    assert rproc.carveouts == carveouts
    assert all(a is b for a, b in zip(rproc.carveouts, carveouts, strict=True))
    assert [(m.name, m.da, m.dma, m.len) for m in rproc.carveouts] == addresses
    assert all(m.history == ["alloc"] for m in carveouts if m.alloc is not None)
    assert rproc.cached_table is cached and bytes(cached or b"") == cached_bytes
    # cached_table was copied into the freshly loaded table: vrings survive
    after = parse_resource_table(system.memory.read_da(loaded.da, loaded.size))
    assert after.vdevs()[0].vrings == vrings_before.vdevs()[0].vrings


def test_vring_addresses_land_in_the_named_carveouts() -> None:
    system = tee_system("v22")
    rproc = system.rproc
    rproc.boot()
    loaded = rproc.loaded_table
    assert loaded is not None
    table = parse_resource_table(system.memory.read_da(loaded.da, loaded.size))
    vdev = table.vdevs()[0]
    for i, vring in enumerate(vdev.vrings):
        mem = rproc.find_carveout_by_name(f"vdev0vring{i}")
        assert mem is not None and vring.da == mem.da
        assert vring.notifyid == i  # idr_alloc from 0, written into the table
    assert vdev.status & 4  # DRIVER_OK, set by the running firmware
    # the host's cached copy has the notify ids but not the runtime status
    cached = parse_resource_table(bytes(rproc.cached_table or b""))
    assert [v.notifyid for v in cached.vdevs()[0].vrings] == [0, 1]
    assert cached.vdevs()[0].status == 0


def test_any_carveout_is_resolved_and_written_back() -> None:
    table = demo_table(carveout=CarveoutRsc(0, ANY, 0, 0x1000, 0, 0, "scratch"))
    rproc, _ = fake_rproc(table)
    rproc.boot()
    mem = rproc.find_carveout_by_name("scratch")
    assert mem is not None and mem.da != ANY and mem.dma == mem.da
    cached = bytes(rproc.cached_table or b"")
    body = parse_resource_table(cached).carveouts()[0].offset + 4
    assert (u32(cached, body), u32(cached, body + 4), u32(cached, body + 8)) == (
        mem.da, mem.dma, 0x1000,
    )  # fmt: skip


def test_named_carveout_ties_to_the_platform_region() -> None:
    rsc = CarveoutRsc(0, 0x10000000, 0, 0x2000, 0, 0, "mcuram2")
    rproc, _ = fake_rproc(demo_table(carveout=rsc))
    rproc.boot()
    mem = rproc.find_carveout_by_name("mcuram2")
    assert mem is not None and mem.rsc_offset != ANY
    cached = bytes(rproc.cached_table or b"")
    # rproc_alloc_registered_carveouts writes the whole region's len back
    assert u32(cached, mem.rsc_offset + 8) == 0x40000
    assert u32(cached, mem.rsc_offset + 4) == 0x10000000


def test_carveout_that_does_not_fit_is_enomem() -> None:
    rsc = CarveoutRsc(0, 0x10000000, 0, 0x80000, 0, 0, "mcuram2")
    rproc, driver = fake_rproc(demo_table(carveout=rsc))
    with pytest.raises(RprocErrno) as exc:
        rproc.boot()
    assert exc.value.name == "ENOMEM" and "doesn't fit len" in exc.value.message
    assert (rproc.state, rproc.power, rproc.carveouts) == (RprocState.OFFLINE, 0, [])
    assert driver.calls[-1] == "unprepare"


@pytest.mark.parametrize(
    ("step", "remaining"),
    [
        ("stop", ["stop"]),
        ("load", ["stop", "load"]),
        ("start", ["stop", "load", "find_loaded_rsc_table", "start"]),
    ],
)
def test_recovery_failure_unwinds_at_each_step(step: str, remaining: list[str]) -> None:
    rproc, driver = fake_rproc()
    rproc.boot()
    driver.calls.clear()
    driver.fail[step] = fail_with(enomem)
    rproc.report_crash(CrashType.WATCHDOG)
    assert driver.calls == remaining
    expected = RprocState.CRASHED if step == "stop" else RprocState.OFFLINE
    assert rproc.state == expected and rproc.power == 1
    assert rproc.table_ptr is rproc.cached_table  # reset on stop / start failure
    assert rproc.carveouts  # nothing released


def test_v22_recovery_failure_releases_the_firmware() -> None:
    system = tee_system("v22")
    rproc = system.rproc
    rproc.boot()
    trproc = rproc.priv["tee"]
    real = trproc.session.invoke_command

    def refuse_start(cmd, params=(), **kw):  # the TA refuses the second START
        if cmd == 2:
            from rproctee.tee import Answer, TeeResult

            return Answer(TeeResult.TEE_ERROR_BAD_STATE, reason="injected")
        return real(cmd, params, **kw)

    trproc.session.invoke_command = refuse_start
    system.remote.firmware.request_crash(CrashType.WATCHDOG)
    rproc.tick()
    calls = [(c["cmd"], c["result"]) for c in system.log.tee_calls()][-4:]
    assert calls == [
        ("LOAD_FW", "TEE_SUCCESS"), ("GET_RSC_TABLE", "TEE_SUCCESS"),
        ("START", "TEE_ERROR_BAD_STATE"), ("RELEASE_FW", "TEE_SUCCESS"),
    ]  # fmt: skip
    assert rproc.state == RprocState.OFFLINE and rproc.power == 1
    # rproc_start printed the failure (-EIO); the crash worker ignores the
    # result of rproc_trigger_recovery and prints nothing more
    assert ("err", "can't start rproc m4: -5") in rproc.messages
    assert not any("recovery of" in text for _level, text in rproc.messages)
    failed = [e for e in system.log.events if e.kind == "recovery_failed"]
    assert [e.detail["ret"] for e in failed] == [-5]


def _refuse_start(system) -> None:
    """Make the TA answer START with TEE_ERROR_GENERIC."""
    session = system.rproc.priv["tee"].session
    real = session.invoke_command

    def invoke(cmd, params=(), **kw):
        if cmd == 2:
            from rproctee.tee import Answer, TeeResult

            return Answer(TeeResult.TEE_ERROR_GENERIC, reason="injected")
        return real(cmd, params, **kw)

    session.invoke_command = invoke


def test_boot_failure_releases_twice_in_v15_once_in_v22() -> None:
    system = tee_system("v15")
    _refuse_start(system)
    with pytest.raises(RprocErrno) as exc:
        system.rproc.boot()
    assert exc.value.name == "EIO" and system.rproc.power == 0
    # rproc_fw_boot's clean-up and rproc_boot both call rproc_release_fw
    assert system.log.op_calls()[-3:] == ["start", "release_fw", "release_fw"]
    system = tee_system("v22")
    _refuse_start(system)
    with pytest.raises(RprocErrno):
        system.rproc.boot()
    assert system.log.op_calls()[-2:] == ["start", "release_fw"]


def test_fake_table_lands_at_its_address() -> None:
    rproc, driver = fake_rproc()
    rproc.boot()
    assert rproc.loaded_table is not None and rproc.loaded_table.da == TABLE_DA
    assert eio("x").name == "EIO"


def test_recovery_without_firmware_file_stops_after_the_coredump() -> None:
    from rproctee.linux.state import DumpConf

    rproc, driver = fake_rproc()
    rproc.dump_conf = DumpConf.ENABLED
    rproc.boot()
    driver.calls.clear()
    rproc._request = lambda name: (_ for _ in ()).throw(OSError("gone"))
    rproc.report_crash(CrashType.WATCHDOG)
    assert driver.calls == ["stop"]
    assert len(rproc.coredumps) == 1  # taken before request_firmware
    assert (rproc.state, rproc.power) == (RprocState.OFFLINE, 1)
    assert any("request_firmware failed" in t for _, t in rproc.messages)
