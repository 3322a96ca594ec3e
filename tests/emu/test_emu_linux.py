"""The emulated core behind the Linux rproc core's running-firmware hook.

Whole path: ``rproc_boot`` -> TEE-backed ops -> remoteproc TA -> stm32mp PTA
(FIRMWARE_START) -> :class:`EmulatedFirmware` boots the core out of the
PTA's arrays; ticks run it; a fault is ``rproc_report_crash``-ed, recovered,
and the coredump gets the core's registers in an ``NT_PRSTATUS`` note.
"""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

pytest.importorskip(
    "unicorn",
    reason="the emulated core needs unicorn 2.x (pip install 'rproctee[emu]')",
)

from elftools.elf.elffile import ELFFile  # noqa: E402
from emu_helpers import FW, dk2, key_pem, signed, symbols  # noqa: E402

from rproctee.emu import EmulatedFirmware, FaultKind  # noqa: E402
from rproctee.emu.prstatus import PR_REG_OFFSET  # noqa: E402
from rproctee.emu.vring import HostVirtqueue  # noqa: E402
from rproctee.linux.firmware_hook import RunningFirmware  # noqa: E402
from rproctee.linux.state import RprocState  # noqa: E402
from rproctee.linux.sysfs import Debugfs, Sysfs  # noqa: E402
from rproctee.linux.system import System, build_system  # noqa: E402
from rproctee.rsctable import parse_resource_table  # noqa: E402

BUDGET = 20_000


def system(
    name: str, series: str = "v22", **kw: object
) -> tuple[System, EmulatedFirmware]:
    """A DK2 board whose remote core runs firmware ``name`` emulated."""
    fw = EmulatedFirmware(budget=BUDGET, **kw)  # type: ignore[arg-type]
    board = build_system(
        dk2(), signed(name), series=series, key_pem=key_pem(), firmware=fw
    )
    return board, fw


def log_texts(board: System) -> list[str]:
    return [e.name for e in board.log.events if e.kind == "log"]


def test_adapter_is_a_running_firmware() -> None:
    assert isinstance(EmulatedFirmware(), RunningFirmware)


@pytest.mark.parametrize("series", ["v15", "v22"])
def test_virtio_firmware_boots_through_the_tee(series: str) -> None:
    board, fw = system("fw_virtio", series)
    rproc = board.rproc
    rproc.boot()
    assert rproc.state is RprocState.RUNNING
    assert rproc.tick(2) == 2
    assert Debugfs(rproc).read("trace0") == "cm4: virtio firmware up\n"
    table = rproc.loaded_table
    assert table is not None
    vdev_status = board.memory.read_da(table.da + _status_offset(board), 1)
    assert vdev_status == b"\x04"  # DRIVER_OK: the firmware's byte, seen by Linux
    assert fw.doorbells == 1
    assert "vq_interrupt" in log_texts(board)


def _status_offset(board: System) -> int:
    table = board.rproc.loaded_table
    assert table is not None
    raw = board.memory.read_da(table.da, board.rproc.table_sz)
    return parse_resource_table(raw, has_iommu=False).vdevs()[0].status_offset


def test_core_runs_on_the_arrays_linux_and_the_tee_share() -> None:
    board, fw = system("fw_virtio")
    board.rproc.boot()
    assert fw.core is not None and fw.core.memory is board.memory
    hosts = {m.name: m.host for m in fw.core.mappings if m.kind == "direct"}
    for i, region in enumerate(board.memory.regions):
        assert hosts[region.name] == board.memory.array(i).ctypes.data


def test_uart_lines_reach_the_callback() -> None:
    lines: list[str] = []
    board, fw = system("fw_uart", on_uart_line=lines.append)
    board.rproc.boot()
    board.rproc.tick(3)
    assert (
        lines
        == fw.uart_lines
        == [
            "hello from the M4 uart",
            "second line, no newline yet... done",
        ]
    )


@pytest.mark.parametrize(
    ("name", "word", "kind"),
    [
        ("fw_fault_bus", "mmufault", FaultKind.BUS_FAULT),
        ("fw_fault_udf", "fatal error", FaultKind.UNDEFINED_INSTRUCTION),
        ("fw_fault_bkpt", "fatal error", FaultKind.HARD_FAULT),
        ("fw_hang", "watchdog", FaultKind.WATCHDOG),
    ],
)
def test_fault_is_reported_and_recovered(name: str, word: str, kind: FaultKind) -> None:
    board, fw = system(name, watchdog_ticks=2)
    rproc = board.rproc
    rproc.boot()
    ran = rproc.tick(10)
    assert ran < 10  # stopped at the crash
    assert f"crash detected in m4: type {word}" in log_texts(board)
    assert rproc.crash_cnt == 1
    assert rproc.state is RprocState.RUNNING  # recovered: booted again
    assert fw.crashes[0].kind is kind
    # the recovered core runs the firmware from its reset vector again
    rproc.tick(10)
    assert rproc.crash_cnt == 2
    assert fw.crashes[1].registers.pc == fw.crashes[0].registers.pc


def test_coredump_carries_the_faulting_registers() -> None:
    board, fw = system("fw_fault_bus")
    rproc = board.rproc
    Sysfs(rproc).write("coredump", "enabled")
    rproc.boot()
    rproc.tick(3)
    assert len(rproc.coredumps) == 1
    core = fw.coredump_with_registers(rproc.coredumps[0])
    elf = ELFFile(io.BytesIO(core))
    assert elf["e_type"] == "ET_CORE" and elf["e_machine"] == "EM_ARM"
    notes = [n for seg in elf.iter_segments() if seg["p_type"] == "PT_NOTE"
             for n in seg.iter_notes()]  # fmt: skip
    assert [(n["n_name"], n["n_type"]) for n in notes] == [("CORE", "NT_PRSTATUS")]
    desc = notes[0]["n_desc"]
    raw = desc if isinstance(desc, bytes) else desc.encode("latin-1")
    pr_reg = struct.unpack_from("<18I", raw, PR_REG_OFFSET)
    assert pr_reg[15] == symbols("fw_fault_bus")["fault_insn"]  # pc
    assert struct.unpack_from("<h", raw, 12)[0] == 7  # SIGBUS
    # the dumped retram holds the faulting instruction itself
    retram = next(s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD")
    assert retram["p_vaddr"] == 0
    pc = pr_reg[15]
    assert retram.data()[pc : pc + 4] == board.memory.read_da(pc, 4)


def test_no_crash_no_registers() -> None:
    with pytest.raises(ValueError, match="no crash recorded"):
        EmulatedFirmware().coredump_with_registers(b"")
    assert EmulatedFirmware().crash_note() is None


def test_crash_note_is_the_prstatus_record() -> None:
    board, fw = system("fw_fault_udf")
    board.rproc.boot()
    board.rproc.tick(2)
    note = fw.crash_note()
    assert note is not None
    namesz, descsz, kind = struct.unpack_from("<3I", note)
    assert (namesz, descsz, kind) == (5, 148, 1) and note[12:17] == b"CORE\0"
    pc = struct.unpack_from("<I", note, 20 + PR_REG_OFFSET + 15 * 4)[0]
    assert pc == symbols("fw_fault_udf")["fault_insn"]
    assert struct.unpack_from("<h", note, 20 + 12)[0] == 4  # SIGILL


def test_shutdown_holds_the_core_in_reset() -> None:
    board, fw = system("fw_virtio")
    board.rproc.boot()
    board.rproc.tick(1)
    board.rproc.shutdown()
    assert board.rproc.state is RprocState.OFFLINE
    assert fw.core is not None and not fw.core.running
    ticks = fw.core.ticks
    board.rproc.tick(3)
    assert fw.core.ticks == ticks


def test_message_through_the_vrings_linux_set_up() -> None:
    board, fw = system("fw_virtio")
    rproc = board.rproc
    rproc.boot()
    rproc.tick(1)
    table = rproc.loaded_table
    assert table is not None
    raw = board.memory.read_da(table.da, rproc.table_sz)
    rings = parse_resource_table(raw, has_iommu=False).vdevs()[0].vrings
    to_host, from_host = (
        HostVirtqueue(board.memory, r.da, r.num, r.align) for r in rings
    )
    buffer = board.platform.region("vdev0buffer").da
    to_host.offer(buffer, 64, device_writes=True)
    board.memory.copy_in(buffer + 64, b"hello m4")
    from_host.offer(buffer + 64, 8, device_writes=False)
    fw.host_kick(1)
    rproc.tick(1)
    assert to_host.take_used() == [(0, 8)]
    assert board.memory.read_da(buffer, 8) == b"hello m4"
    assert Debugfs(rproc).read("trace0").endswith("cm4: host kick\n")
    assert log_texts(board).count("vq_interrupt") == 2


def test_host_kick_before_start_is_refused() -> None:
    with pytest.raises(RuntimeError, match="never started"):
        EmulatedFirmware().host_kick(1)


def test_trace_lines_stream_and_the_run_is_reported() -> None:
    seen: list[str] = []
    board, fw = system("fw_virtio", on_trace_line=seen.append)
    board.rproc.boot()
    board.rproc.tick(1)
    assert seen == ["cm4: virtio firmware up"]
    fw.host_kick(1)
    fw.host_kick(1)  # still pending: one doorbell, one line
    board.rproc.tick(2)
    assert seen == fw.trace_lines == ["cm4: virtio firmware up", "cm4: host kick"]
    report = fw.report()
    assert report["ticks"] == 3 and report["idle_ticks"] == 3
    assert report["doorbells"] == 2 and report["crashes"] == []
    assert report["trace_lines"] == seen and report["cpu"] == "cortex-m4"


def test_report_names_the_crash() -> None:
    board, fw = system("fw_fault_udf")
    board.rproc.boot()
    board.rproc.tick(2)
    crash = fw.report()["crashes"][0]
    assert crash["kind"] == "undefined instruction"
    assert crash["crash_type"] == "fatal error"
    assert crash["registers"]["pc"] == symbols("fw_fault_udf")["fault_insn"]


def test_crash_channel_kills_a_running_firmware_at_crash_insn() -> None:
    board, fw = system("fw_virtio")
    board.rproc.boot()
    board.rproc.tick(2)
    fw.host_kick(5)
    board.rproc.tick(2)
    crash = fw.last_crash
    assert crash is not None and crash.kind is FaultKind.BUS_FAULT
    assert crash.registers.pc == symbols("fw_virtio")["crash_insn"]
    assert board.rproc.crash_cnt == 1 and board.rproc.state is RprocState.RUNNING


def test_emulated_demo_boots_echoes_crashes_recovers_and_dumps() -> None:
    from emu_helpers import firmware

    from rproctee.emu.demo import run_emulated_demo

    lines: list[tuple[str, str]] = []
    out = run_emulated_demo(
        firmware("fw_virtio"), budget=BUDGET, on_line=lambda s, t: lines.append((s, t))
    )
    assert out["boot"] == {"state": "running", "trace0": "cm4: virtio firmware up\n"}
    assert out["echo"] == {"sent": "hello from linux", "echo": "hello from linux"}
    assert out["crash"]["kind"] == "bus fault"
    assert out["crash"]["crash_type"] == "mmufault"
    assert out["recovery"]["state"] == "running" and out["recovery"]["crash_cnt"] == 1
    pc = symbols("fw_virtio")["crash_insn"]
    assert out["coredump"]["registers"]["pc"] == out["crash"]["registers"]["pc"] == pc
    assert ("trace", "cm4: crash requested") in lines
    assert lines[-1] == ("trace", "cm4: virtio firmware up")  # after recovery


@pytest.mark.skipif(
    shutil.which("gdb-multiarch") is None,
    reason="gdb-multiarch not installed (apt-get install gdb-multiarch)",
)
def test_gdb_multiarch_shows_where_the_firmware_died(tmp_path: Path) -> None:
    board, fw = system("fw_fault_bus")
    Sysfs(board.rproc).write("coredump", "enabled")
    board.rproc.boot()
    board.rproc.tick(3)
    core = tmp_path / "m4.core"
    core.write_bytes(fw.coredump_with_registers(board.rproc.coredumps[0]))
    out = subprocess.run(
        ["gdb-multiarch", "-batch", "-nx", "-ex", "info registers pc",
         "-ex", "x/i $pc", str(FW / "fw_fault_bus.elf"), str(core)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    pc = symbols("fw_fault_bus")["fault_insn"]
    assert "signal SIGBUS" in out
    shown = re.search(r"^pc\s+(0x[0-9a-f]+)", out, re.MULTILINE)
    assert shown is not None and int(shown.group(1), 16) == pc
    assert "str\t" in out and "<main+" in out


@pytest.mark.parametrize(
    ("name", "trace"),
    [
        ("fw_irq", "cm4: svc and 3 systick irqs\n"),
        ("fw_tasks", "cm4: task b runs\n"),
        ("fw_uart", "cm4: systick wrapped\n"),
    ],
)
def test_interrupt_driven_firmware_runs_behind_linux(name: str, trace: str) -> None:
    board, fw = system(name)
    board.rproc.boot()
    assert board.rproc.tick(4) == 4
    assert board.rproc.state is RprocState.RUNNING and fw.crashes == []
    assert Debugfs(board.rproc).read("trace0") == trace
