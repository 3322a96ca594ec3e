"""The running-firmware hook: the default behaviour and a custom firmware."""

from __future__ import annotations

import pytest
from linux_helpers import dk2, elf_system, signed_demo_image, signing_key, tee_system

from rproctee.firmware import Segment, build_elf, cortex_m_segments
from rproctee.image import public_key_pem
from rproctee.linux.errors import RprocErrno
from rproctee.linux.firmware_hook import (
    Crash,
    DefaultFirmware,
    FirmwareContext,
    RunningFirmware,
)
from rproctee.linux.state import CrashType, RprocState
from rproctee.linux.sysfs import Debugfs
from rproctee.linux.system import build_system


def test_default_firmware_is_a_running_firmware() -> None:
    assert isinstance(DefaultFirmware(), RunningFirmware)


def test_watchdog_after_n_ticks_then_recovered_and_quiet() -> None:
    system = tee_system("v22", firmware=DefaultFirmware(crash_after=5))
    rproc = system.rproc
    rproc.boot()
    assert rproc.tick(4) == 4 and rproc.state == RprocState.RUNNING
    assert rproc.tick(10) == 1  # the fifth tick crashes
    assert rproc.crash_cnt == 1 and rproc.state == RprocState.RUNNING
    assert rproc.tick(50) == 50  # only the first run crashes by itself
    assert ("err", "crash detected in m4: type watchdog") in rproc.messages
    assert Debugfs(rproc).trace(0) == "cm4: firmware up (boot #2), rpmsg ready\n"


class Chatty:
    """A custom firmware: kicks vq 1 on every tick, fatal error on tick 3."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.ticks = 0

    def on_start(self, ctx: FirmwareContext) -> None:
        self.events.append(f"start rsc {ctx.rsc_da:#x}+{ctx.rsc_size}")

    def on_stop(self, ctx: FirmwareContext) -> None:
        self.events.append("stop")

    def on_tick(self, ctx: FirmwareContext) -> Crash | None:
        self.ticks += 1
        ctx.kick(1)
        if ctx.boot_count == 1 and self.ticks == 3:
            return Crash(CrashType.FATAL_ERROR, "assert in rpmsg")
        return None


def test_a_custom_firmware_drives_crash_and_recovery() -> None:
    firmware = Chatty()
    assert isinstance(firmware, RunningFirmware)
    system = build_system(dk2(), signed_demo_image(), series="v15",
                          key_pem=public_key_pem(signing_key()),
                          firmware=firmware)  # fmt: skip
    system.rproc.boot()
    assert system.rproc.tick(5) == 3  # stops at the crash; recovery ran
    assert system.rproc.tick(2) == 2
    system.rproc.shutdown()
    assert firmware.events == ["start rsc 0x200+140", "stop", "start rsc 0x200+140",
                               "stop"]  # fmt: skip
    kicks = [e for e in system.log.events if e.name == "vq_interrupt"]
    assert len(kicks) == 5 and kicks[0].detail["vqid"] == 1
    assert system.log.states() == ["RUNNING", "CRASHED", "OFFLINE", "RUNNING",
                                   "OFFLINE"]  # fmt: skip


def test_elf_ops_refuse_a_segment_outside_the_carveouts() -> None:
    segments, rsc_offset = cortex_m_segments(4)
    stray = Segment(".stray", 0x50000000, b"\x01" * 16, 16, 4)
    elf = build_elf([*segments, stray], (rsc_offset, 140))
    system = build_system(dk2(), elf, tee=False)
    with pytest.raises(RprocErrno) as exc:
        system.rproc.boot()
    assert exc.value.name == "EINVAL"
    assert "bad phdr da 0x50000000 mem 0x10" in exc.value.message
    assert ("err", "Failed to load program segments: -22") in system.rproc.messages
    assert system.rproc.state == RprocState.OFFLINE and system.rproc.carveouts == []


def test_elf_ops_copy_through_recorded_device_writes() -> None:
    system = elf_system()
    system.rproc.boot()
    writes = [(e.layer, e.name, e.detail["da"], e.detail["len"])
              for e in system.log.events if e.kind == "write"][:4]  # fmt: skip
    assert writes == [
        ("linux", "copy", 0x0, 0x1000), ("linux", "copy", 0x30000000, 0x1000),
        ("linux", "copy", 0x10000000, 0x100), ("linux", "zero", 0x10000100, 0x800),
    ]  # fmt: skip
