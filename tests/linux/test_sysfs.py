"""sysfs and debugfs: the kernel's answers to legal and illegal writes,
and racing writers keep power and state consistent."""

from __future__ import annotations

import threading

import pytest
from linux_helpers import fake_rproc, tee_system

from rproctee.linux.errors import RprocErrno
from rproctee.linux.state import RprocState
from rproctee.linux.sysfs import Debugfs, Sysfs


def _errno(fn, *args) -> str:
    with pytest.raises(RprocErrno) as exc:
        fn(*args)
    return exc.value.name


def test_reads() -> None:
    rproc, _ = fake_rproc()
    sysfs = Sysfs(rproc)
    assert [sysfs.read(n) for n in ("state", "firmware", "recovery", "coredump",
                                    "name")] == [
        "offline\n", "rproc-m4-fw\n", "enabled\n", "disabled\n", "m4\n"]  # fmt: skip


def test_illegal_writes() -> None:
    rproc, _ = fake_rproc()
    sysfs = Sysfs(rproc)
    assert _errno(sysfs.write, "state", "reboot") == "EINVAL"
    assert _errno(sysfs.write, "state", "stop") == "EINVAL"  # not running
    assert _errno(sysfs.write, "state", "detach") == "EINVAL"  # not attached
    assert _errno(sysfs.write, "recovery", "maybe") == "EINVAL"
    assert _errno(sysfs.write, "coredump", "default") == "EINVAL"  # today: enabled
    assert _errno(sysfs.write, "firmware", "\n") == "EINVAL"
    assert _errno(sysfs.write, "name", "x") == "EACCES"
    assert sysfs.write("state", "start\n") == 6
    assert sysfs.read("state") == "running\n"
    assert _errno(sysfs.write, "firmware", "new.elf") == "EBUSY"
    assert sysfs.write("state", "start") == 5  # 6.12: counted, no -EBUSY
    assert rproc.power == 2
    rproc.recovery_disabled = True
    rproc.report_crash(1)
    assert sysfs.read("state") == "crashed\n"
    assert _errno(sysfs.write, "coredump", "inline") == "EBUSY"
    assert sysfs.write("recovery", "recover") == 7
    assert sysfs.read("state") == "running\n" and sysfs.read("recovery") == "disabled\n"
    assert rproc.firmware == "rproc-m4-fw" and rproc.dump_conf.word == "disabled"
    rproc.sysfs_read_only = True
    assert _errno(sysfs.write, "state", "stop") == "EACCES"


def test_debugfs_files() -> None:
    system = tee_system("v22")
    debugfs = Debugfs(system.rproc)
    assert debugfs.read("resource_table") == "No resource table found\n"
    system.rproc.boot()
    assert debugfs.files()[-1] == "trace0"
    assert debugfs.read("trace0") == "cm4: firmware up (boot #1), rpmsg ready\n"
    table = debugfs.read("resource_table")
    assert "Entry 0 is of type trace" in table and "  Status 0x4\n" in table
    assert "Name: vdev0vring0" in debugfs.read("carveout_memories")
    assert _errno(debugfs.write, "crash", "watchdog") == "EINVAL"
    assert _errno(debugfs.write, "recovery", "") == "EINVAL"
    # rproc_recovery_write: no word matches "whatever" (strncmp over 8 bytes)
    assert _errno(debugfs.write, "recovery", "whatever") == "EINVAL"
    assert system.rproc.recovery_disabled is False
    assert debugfs.write("crash", "0x2") == 3
    assert system.rproc.crash_cnt == 1 and system.rproc.state == RprocState.RUNNING
    assert debugfs.read("trace0") == "cm4: firmware up (boot #2), rpmsg ready\n"
    system.rproc.shutdown()
    assert "trace0" not in debugfs.files()


def test_racing_sysfs_writers_keep_power_and_state_consistent() -> None:
    rproc, driver = fake_rproc()
    sysfs = Sysfs(rproc)
    errors: list[str] = []
    done: list[str] = []
    barrier = threading.Barrier(6)

    def worker(words: list[str]) -> None:
        barrier.wait()
        for word in words:
            try:
                sysfs.write("state" if word != "recover" else "recovery", word)
                done.append(word)
            except RprocErrno as exc:
                errors.append(exc.name)

    plans = [["start", "stop"] * 20, ["start", "stop"] * 20, ["start"] * 10,
             ["stop"] * 10, ["recover"] * 20, ["start", "stop"] * 15]  # fmt: skip
    threads = [threading.Thread(target=worker, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(errors) <= {"EINVAL"}
    starts, stops = driver.calls.count("start"), driver.calls.count("stop")
    # every start has been matched by a stop, except the last boot if running
    running = rproc.state == RprocState.RUNNING
    assert rproc.state in (RprocState.RUNNING, RprocState.OFFLINE)
    assert starts - stops == (1 if running else 0)
    assert (rproc.power > 0) == running
    # each accepted start took one reference, each accepted stop gave one back
    assert rproc.power == done.count("start") - done.count("stop")
    assert errors.count("EINVAL") == sum(w == "stop" for p in plans for w in p) - (
        done.count("stop")
    )
    while rproc.power:
        sysfs.write("state", "stop")
    assert rproc.state == RprocState.OFFLINE and rproc.carveouts == []


def test_state_words_past_rproc_last_are_invalid() -> None:
    from rproctee.linux.sysfs import state_word

    assert [state_word(v) for v in (0, 5, 6, 7, 99)] == [
        "offline", "attached", "detached", "invalid", "invalid"]  # fmt: skip
