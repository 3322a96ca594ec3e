"""Coredumps as rproc_coredump writes them, read back with pyelftools."""

from __future__ import annotations

import io

import pytest
from elftools.elf.elffile import ELFFile
from linux_helpers import elf_system, fake_rproc, tee_system

from rproctee.linux.coredump import DumpSegment
from rproctee.linux.state import CrashType, DumpConf

DK2_SEGMENTS = [  # stm32_rproc_prepare: every carveout but vdev0buffer
    (0x0, 0x10000), (0x30000000, 0x40000), (0x10000000, 0x40000),
    (0x10040000, 0x1000), (0x10041000, 0x1000),
]  # fmt: skip


def _crash(system, mode: DumpConf) -> bytes:
    system.rproc.dump_conf = mode
    system.rproc.boot()
    system.remote.firmware.request_crash(CrashType.FATAL_ERROR)
    system.rproc.tick()
    assert len(system.rproc.coredumps) == 1
    return system.rproc.coredumps[0]


@pytest.mark.parametrize("mode", [DumpConf.ENABLED, DumpConf.INLINE])
@pytest.mark.parametrize("kind", ["tee", "elf"])
def test_coredump_reads_back_with_pyelftools(mode: DumpConf, kind: str) -> None:
    system = tee_system("v22") if kind == "tee" else elf_system()
    core = _crash(system, mode)
    elf = ELFFile(io.BytesIO(core))
    assert (elf.elfclass, elf["e_type"], elf["e_machine"]) == (32, "ET_CORE", "EM_NONE")
    assert elf.num_sections() == 0
    segs = list(elf.iter_segments())
    assert [(s["p_vaddr"], s["p_filesz"]) for s in segs] == DK2_SEGMENTS
    assert all(s["p_type"] == "PT_LOAD" and s["p_flags"] == 7 and s["p_paddr"] ==
               s["p_vaddr"] and s["p_align"] == 0 for s in segs)  # fmt: skip
    # what the firmware had in memory when it crashed: its trace line in .bss
    mcuram2 = segs[2].data()
    assert mcuram2[0x100:0x110] == b"cm4: firmware up"
    retram = segs[0].data()
    assert retram[0x200:0x204] == b"\x01\x00\x00\x00"  # the loaded table


def test_inline_dump_is_served_lazily_from_device_memory() -> None:
    system = tee_system("v22")
    reads = []

    def reader(dump):
        data = dump.read_all(chunk=0x8000)
        reads.extend(dump.reads)
        return data

    system.rproc.dump_reader = reader
    core = _crash(system, DumpConf.INLINE)
    assert len(reads) > 1 and reads[0] == (0, 0x8000)
    assert len(core) == 52 + len(DK2_SEGMENTS) * 32 + sum(s for _, s in DK2_SEGMENTS)


def test_disabled_dumps_nothing_and_unmapped_segment_is_0xff() -> None:
    system = elf_system()
    system.rproc.boot()
    system.remote.firmware.request_crash(CrashType.WATCHDOG)
    system.rproc.tick()
    assert system.rproc.coredumps == []  # zero-initialised dump_conf: disabled
    rproc, _ = fake_rproc()
    rproc.boot()
    assert rproc.copy_segment(DumpSegment(0x90000000, 8), 0, 8) == b"\xff" * 8
    assert any("invalid copy request" in text for _, text in rproc.messages)


def test_tee_coredump_is_served_by_the_ta_after_stop() -> None:
    """Recovery dumps after STOP_FW; the strict TA serves GET_COREDUMP until
    RELEASE_FW, so the core is the secure world's dump of every region."""
    system = tee_system("v22", tee_coredump=True)
    core = _crash(system, DumpConf.ENABLED)
    elf = ELFFile(io.BytesIO(core))
    regions = system.world.memory.regions  # type: ignore[attr-defined]
    assert [(s["p_vaddr"], s["p_filesz"]) for s in elf.iter_segments()] == [
        (r.da, r.size) for r in regions
    ]
    assert not any("GET_COREDUMP refused" in t for _, t in system.rproc.messages)
    assert ("GET_COREDUMP", "TEE_SUCCESS") in [
        (c["cmd"], c["result"]) for c in system.log.tee_calls()
    ]
