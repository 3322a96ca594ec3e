"""The emulated core wired into the Linux side: doorbell and coredump.

Linux's own ``stm32_rproc_kick`` (``ops->kick``) rings the emulated
firmware's mailbox, and the dump ``rproc_coredump`` writes carries the
crash's registers without any post-processing.
"""

from __future__ import annotations

import io
import struct

import pytest

pytest.importorskip(
    "unicorn",
    reason="the emulated core needs unicorn 2.x (pip install 'rproctee[emu]')",
)

from elftools.elf.elffile import ELFFile  # noqa: E402
from emu_helpers import dk2, key_pem, signed, symbols  # noqa: E402

from rproctee.emu import EmulatedFirmware  # noqa: E402
from rproctee.emu.prstatus import PR_REG_OFFSET  # noqa: E402
from rproctee.linux.state import DumpConf  # noqa: E402
from rproctee.linux.sysfs import Debugfs, Sysfs  # noqa: E402
from rproctee.linux.system import build_system  # noqa: E402

BUDGET = 20_000


@pytest.mark.parametrize("series", ["v15", "v22"])
def test_linux_kick_reaches_the_emulated_firmware(series: str) -> None:
    fw = EmulatedFirmware.for_platform(dk2(), budget=BUDGET)
    board = build_system(dk2(), signed("fw_virtio"), series=series,
                         key_pem=key_pem(), firmware=fw)  # fmt: skip
    rproc = board.rproc
    rproc.boot()
    rproc.tick(1)
    assert rproc.ops.kick is not None
    rproc.ops.kick(rproc, 1)  # rproc_virtio_notify -> stm32_rproc_kick
    rproc.tick(1)
    assert Debugfs(rproc).read("trace0") == (
        "cm4: virtio firmware up\ncm4: host kick\n"
    )


@pytest.mark.parametrize("mode", ["enabled", "inline"])
def test_linux_coredump_points_at_the_faulting_instruction(mode: str) -> None:
    fw = EmulatedFirmware.for_platform(dk2(), budget=BUDGET)
    board = build_system(dk2(), signed("fw_fault_bus"), key_pem=key_pem(),
                         firmware=fw)  # fmt: skip
    rproc = board.rproc
    Sysfs(rproc).write("coredump", mode)
    assert rproc.dump_conf is DumpConf[mode.upper()]
    rproc.boot()
    rproc.tick(3)
    assert len(rproc.coredumps) == 1
    core = bytes(rproc.coredumps[0])
    elf = ELFFile(io.BytesIO(core))
    assert (elf["e_type"], elf["e_machine"]) == ("ET_CORE", "EM_ARM")
    segs = list(elf.iter_segments())
    assert segs[0]["p_type"] == "PT_NOTE"
    notes = list(segs[0].iter_notes())
    assert [(n["n_name"], n["n_type"]) for n in notes] == [("CORE", "NT_PRSTATUS")]
    desc = notes[0]["n_desc"]
    raw = desc if isinstance(desc, bytes) else desc.encode("latin-1")
    pc = struct.unpack_from("<18I", raw, PR_REG_OFFSET)[15]
    assert pc == symbols("fw_fault_bus")["fault_insn"]
    retram = segs[1]
    assert retram["p_type"] == "PT_LOAD" and retram["p_vaddr"] == 0
    assert retram.data()[pc : pc + 4] == board.memory.read_da(pc, 4)
    # already noted: the firmware's own helper adds no second copy
    assert fw.coredump_with_registers(core) == core
