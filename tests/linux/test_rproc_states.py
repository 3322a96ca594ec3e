"""States, power refcount and crash handling of the rproc core (spec 1.1-1.8)."""

from __future__ import annotations

import pytest
from linux_helpers import fail_with, fake_rproc

from rproctee.linux.errors import RprocErrno, enomem
from rproctee.linux.state import CrashType, DumpConf, RprocState, crash_word


def test_kernel_values() -> None:
    assert [(s.name, int(s)) for s in RprocState] == [
        ("OFFLINE", 0), ("SUSPENDED", 1), ("RUNNING", 2), ("CRASHED", 3),
        ("DELETED", 4), ("ATTACHED", 5), ("DETACHED", 6),
    ]  # fmt: skip
    assert [crash_word(i) for i in range(4)] == [
        "mmufault", "watchdog", "fatal error", "unknown",
    ]  # fmt: skip
    assert [(c.word, int(c)) for c in DumpConf] == [
        ("disabled", 0), ("enabled", 1), ("inline", 2),
    ]  # fmt: skip
    assert CrashType.parse("fatal") is CrashType.FATAL_ERROR
    with pytest.raises(ValueError, match="unknown crash type 'bogus'"):
        CrashType.parse("bogus")


def test_power_refcount_cells() -> None:
    rproc, driver = fake_rproc()
    assert (rproc.state, rproc.power) == (RprocState.OFFLINE, 0)
    rproc.boot()
    assert (rproc.state, rproc.power) == (RprocState.RUNNING, 1)
    rproc.boot()  # a second user: counted, nothing else happens
    assert (rproc.state, rproc.power) == (RprocState.RUNNING, 2)
    assert driver.calls.count("start") == 1
    rproc.shutdown()  # the other user keeps it running
    assert (rproc.state, rproc.power) == (RprocState.RUNNING, 1)
    assert "stop" not in driver.calls
    rproc.shutdown()
    assert (rproc.state, rproc.power) == (RprocState.OFFLINE, 0)
    assert rproc.cached_table is None and rproc.table_ptr is None
    assert rproc.table_sz == 0 and rproc.carveouts == []


def test_shutdown_of_an_offline_rproc_is_einval() -> None:
    rproc, _ = fake_rproc()
    with pytest.raises(RprocErrno) as exc:
        rproc.shutdown()
    assert exc.value.name == "EINVAL" and rproc.power == 0


def test_boot_of_a_deleted_rproc_is_enodev() -> None:
    rproc, _ = fake_rproc()
    rproc.delete()
    assert rproc.state == RprocState.DELETED
    with pytest.raises(RprocErrno) as exc:
        rproc.boot()
    assert exc.value.name == "ENODEV" and rproc.power == 0
    assert "can't boot deleting rproc m4" in exc.value.message
    with pytest.raises(RprocErrno) as exc:
        rproc.trigger_recovery()
    assert exc.value.name == "ENODEV"


def test_failed_boot_gives_power_back() -> None:
    rproc, driver = fake_rproc()
    driver.fail["start"] = fail_with(enomem)
    with pytest.raises(RprocErrno) as exc:
        rproc.boot()
    assert exc.value.name == "ENOMEM"
    assert (rproc.state, rproc.power) == (RprocState.OFFLINE, 0)
    assert rproc.carveouts == [] and rproc.cached_table is None
    assert driver.calls[-1] == "unprepare"


def test_crash_recovers_and_keeps_power() -> None:
    rproc, driver = fake_rproc()
    rproc.boot()
    rproc.boot()
    rproc.report_crash(CrashType.WATCHDOG)
    assert rproc.state == RprocState.RUNNING and rproc.crash_cnt == 1
    assert rproc.power == 2
    assert rproc.log.states() == ["RUNNING", "CRASHED", "OFFLINE", "RUNNING"]
    assert ("err", "crash detected in m4: type watchdog") in rproc.messages
    assert ("err", "handling crash #1 in m4") in rproc.messages


def test_crash_after_stop_and_second_crash_are_ignored() -> None:
    rproc, _ = fake_rproc()
    rproc.report_crash(CrashType.FATAL_ERROR)  # OFFLINE: ignored
    assert rproc.state == RprocState.OFFLINE and rproc.crash_cnt == 0
    rproc.boot()
    rproc.recovery_disabled = True
    rproc.report_crash(CrashType.WATCHDOG)
    rproc.report_crash(CrashType.WATCHDOG)  # already CRASHED: only the first counts
    assert rproc.state == RprocState.CRASHED and rproc.crash_cnt == 1


def test_queued_crash_work_runs_once() -> None:
    rproc, _ = fake_rproc()
    rproc.boot()
    rproc.defer_crash_work = True
    rproc.report_crash(CrashType.WATCHDOG)
    rproc.report_crash(CrashType.MMUFAULT)  # queue_work of a queued item: nothing
    assert rproc.state == RprocState.RUNNING
    rproc.flush_crash_work()
    assert rproc.crash_cnt == 1 and rproc.state == RprocState.RUNNING


def test_recovery_disabled_then_recovered_by_hand() -> None:
    rproc, driver = fake_rproc()
    rproc.boot()
    rproc.boot()
    rproc.recovery_disabled = True
    rproc.report_crash(CrashType.WATCHDOG)
    assert rproc.state == RprocState.CRASHED
    rproc.shutdown()  # 6.12.117 accepts CRASHED: one user gone, still crashed
    assert rproc.state == RprocState.CRASHED and rproc.power == 1
    rproc.trigger_recovery()
    assert rproc.state == RprocState.RUNNING and rproc.power == 1
    rproc.trigger_recovery()  # not CRASHED: nothing
    assert driver.calls.count("start") == 2


def test_failed_recovery_leaves_offline_with_power_held() -> None:
    rproc, driver = fake_rproc()
    rproc.boot()
    driver.fail["start"] = fail_with()
    rproc.report_crash(CrashType.WATCHDOG)
    # (inferred in the spec) OFFLINE, power still 1, carveouts kept
    assert (rproc.state, rproc.power) == (RprocState.OFFLINE, 1)
    assert rproc.carveouts and rproc.cached_table is not None
    rproc.boot()  # only counts
    assert (rproc.state, rproc.power) == (RprocState.OFFLINE, 2)
    with pytest.raises(RprocErrno):
        rproc.shutdown()


def test_attach_and_detach() -> None:
    rproc, driver = fake_rproc(attach=True)
    rproc._set_state(RprocState.DETACHED)
    rproc.require_memory().copy_in(0x200, driver.table or b"")
    rproc.boot()
    assert (rproc.state, rproc.power) == (RprocState.ATTACHED, 1)
    assert driver.calls == ["prepare", "get_loaded_rsc_table", "attach"]
    assert rproc.cached_table is None and rproc.clean_table == driver.table
    rproc.detach()
    assert (rproc.state, rproc.power) == (RprocState.DETACHED, 0)
    assert driver.calls[-2:] == ["detach", "unprepare"]
    with pytest.raises(RprocErrno) as exc:
        rproc.detach()
    assert exc.value.name == "EINVAL"


def test_set_firmware_rules() -> None:
    rproc, _ = fake_rproc()
    rproc.set_firmware("other.elf\nignored")
    assert rproc.firmware == "other.elf"
    with pytest.raises(RprocErrno) as exc:
        rproc.set_firmware("\n")
    assert exc.value.name == "EINVAL" and rproc.firmware == "other.elf"
    rproc.boot()
    with pytest.raises(RprocErrno) as exc:
        rproc.set_firmware("x")
    assert exc.value.name == "EBUSY" and rproc.firmware == "other.elf"


def test_missing_firmware_is_enoent() -> None:
    rproc, driver = fake_rproc()
    rproc._request = lambda name: (_ for _ in ()).throw(KeyError(name))
    with pytest.raises(RprocErrno) as exc:
        rproc.boot()
    assert exc.value.name == "ENOENT" and rproc.power == 0 and driver.calls == []


def test_attach_on_recovery_detaches_and_attaches_without_reloading() -> None:
    from rproctee.linux.core import FEAT_ATTACH_ON_RECOVERY

    rproc, driver = fake_rproc(attach=True)
    rproc._set_state(RprocState.DETACHED)
    rproc.require_memory().copy_in(0x200, driver.table or b"")
    rproc.features.add(FEAT_ATTACH_ON_RECOVERY)
    rproc.boot()
    driver.calls.clear()
    rproc.report_crash(CrashType.WATCHDOG)
    assert rproc.state == RprocState.ATTACHED and rproc.power == 1
    assert driver.calls == [
        "detach", "unprepare", "prepare", "get_loaded_rsc_table", "attach",
    ]  # fmt: skip
    assert rproc.log.states()[-3:] == ["CRASHED", "DETACHED", "ATTACHED"]


def test_shutdown_of_a_crashed_rproc_stops_it_as_crashed() -> None:
    rproc, driver = fake_rproc()
    rproc.boot()
    rproc.recovery_disabled = True
    rproc.report_crash(CrashType.FATAL_ERROR)
    stops: list[bool] = []
    vdev = rproc.rvdevs[0]
    real = vdev.stop
    vdev.stop = lambda crashed: (stops.append(crashed), real(crashed))[1]  # type: ignore[method-assign]
    rproc.shutdown()
    assert (rproc.state, rproc.power, stops) == (RprocState.OFFLINE, 0, [True])
    assert rproc.carveouts == [] and driver.calls[-2:] == ["stop", "unprepare"]
