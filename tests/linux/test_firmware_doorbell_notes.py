"""The firmware hook's optional parts: the host's doorbell and a crash note.

``stm32_rproc_kick`` (``ops->kick``) rings the running firmware's
``host_kick``; ``rproc_coredump`` puts the running firmware's
``crash_note()`` in a ``PT_NOTE`` first and declares ``EM_ARM``.
"""

from __future__ import annotations

import io
import struct

import pytest
from elftools.elf.elffile import ELFFile
from linux_helpers import elf_system, tee_system

from rproctee.linux.coredump import ELFCLASS64, elf_header
from rproctee.linux.firmware_hook import (
    DefaultFirmware,
    HostDoorbell,
    RunningFirmware,
    ring_firmware,
)
from rproctee.linux.state import CrashType, DumpConf

#: An ARM ``struct elf_prstatus`` (148 bytes) with pc = 0x1234 and SIGBUS.
PC = 0x1234
_DESC = (struct.pack("<3ih2x", 7, 0, 0, 7) + bytes(56)
         + struct.pack("<18I", *range(15), PC, 0x01000000, 0) + bytes(4))  # fmt: skip
NOTE = struct.pack("<3I", 5, len(_DESC), 1) + b"CORE\0\0\0\0" + _DESC


class NoteFirmware(DefaultFirmware):
    """The default firmware, plus the registers of its crash as a note."""

    def __init__(self, note: bytes | None = NOTE) -> None:
        super().__init__()
        self.note = note

    def crash_note(self) -> bytes | None:
        return self.note


class Silent:
    """A firmware with only the three required hooks (no doorbell)."""

    def on_start(self, ctx: object) -> None: ...
    def on_stop(self, ctx: object) -> None: ...
    def on_tick(self, ctx: object) -> None: ...


def _kicks(system: object) -> list[int]:
    return [e.detail["vqid"] for e in system.log.events if e.name == "kick"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["tee", "elf"])
def test_kick_rings_the_running_firmware(kind: str) -> None:
    fw = DefaultFirmware()
    system = tee_system("v15", firmware=fw) if kind == "tee" else elf_system(
        firmware=fw)  # fmt: skip
    rproc = system.rproc
    assert rproc.ops.kick is not None
    rproc.ops.kick(rproc, 1)  # offline: the core is in reset, nothing rings
    assert fw.host_kicks == []
    rproc.boot()
    rproc.ops.kick(rproc, 1)
    rproc.ops.kick(rproc, 0)
    assert fw.host_kicks == [1, 0]
    assert _kicks(system) == [1, 1, 0]  # Linux logs every kick, rung or not
    rproc.shutdown()
    rproc.ops.kick(rproc, 1)
    assert fw.host_kicks == [1, 0]


def test_a_firmware_without_a_doorbell_is_still_a_running_firmware() -> None:
    silent = Silent()
    assert isinstance(silent, RunningFirmware)
    assert not isinstance(silent, HostDoorbell)
    assert ring_firmware(silent, 1) is False
    assert isinstance(DefaultFirmware(), HostDoorbell)
    system = elf_system(firmware=silent)
    system.rproc.boot()
    system.rproc.ops.kick(system.rproc, 1)  # ignored, not an error
    assert _kicks(system) == [1]


def _dump(system: object, mode: DumpConf) -> bytes:
    rproc = system.rproc  # type: ignore[attr-defined]
    rproc.dump_conf = mode
    rproc.boot()
    system.remote.firmware.request_crash(CrashType.FATAL_ERROR)  # type: ignore[attr-defined]
    rproc.tick()
    assert len(rproc.coredumps) == 1
    return bytes(rproc.coredumps[0])


@pytest.mark.parametrize("mode", [DumpConf.ENABLED, DumpConf.INLINE])
@pytest.mark.parametrize("kind", ["tee", "elf"])
def test_coredump_carries_the_firmware_crash_note(kind: str, mode: DumpConf) -> None:
    plain = _dump(tee_system() if kind == "tee" else elf_system(), mode)
    fw = NoteFirmware()
    system = tee_system(firmware=fw) if kind == "tee" else elf_system(firmware=fw)
    core = _dump(system, mode)
    elf = ELFFile(io.BytesIO(core))
    assert (elf["e_type"], elf["e_machine"]) == ("ET_CORE", "EM_ARM")
    segs = list(elf.iter_segments())
    assert segs[0]["p_type"] == "PT_NOTE"
    notes = list(segs[0].iter_notes())
    assert [(n["n_name"], n["n_type"]) for n in notes] == [("CORE", "NT_PRSTATUS")]
    desc = notes[0]["n_desc"]
    raw = desc if isinstance(desc, bytes) else desc.encode("latin-1")
    assert struct.unpack_from("<18I", raw, 72)[15] == PC
    # the PT_LOAD entries and their bytes are the plain dump's, moved down
    plain_elf = ELFFile(io.BytesIO(plain))
    loads = [(s["p_vaddr"], s["p_filesz"], s.data()) for s in segs[1:]]
    assert loads == [(s["p_vaddr"], s["p_filesz"], s.data())
                     for s in plain_elf.iter_segments()]  # fmt: skip
    assert len(core) == len(plain) + 32 + len(NOTE)


def test_no_crash_note_no_note_segment() -> None:
    core = _dump(elf_system(firmware=NoteFirmware(None)), DumpConf.ENABLED)
    elf = ELFFile(io.BytesIO(core))
    assert elf["e_machine"] == "EM_NONE"
    assert all(s["p_type"] == "PT_LOAD" for s in elf.iter_segments())


def test_a_note_in_an_elf64_dump_is_refused() -> None:
    system = elf_system()
    system.rproc.coredump_set_elf_info(ELFCLASS64, 0)
    with pytest.raises(ValueError, match="elf_class 2: a register note goes in"):
        elf_header(system.rproc, (), NOTE)
    # and rproc_coredump leaves the note out of an ELF64 dump
    system.remote.firmware = NoteFirmware()
    core = _dump(system, DumpConf.ENABLED)
    elf = ELFFile(io.BytesIO(core))
    assert elf.elfclass == 64
    assert all(s["p_type"] == "PT_LOAD" for s in elf.iter_segments())
