"""ARM ``NT_PRSTATUS`` notes, and ELF cores that carry one.

An ELF core file says where a program died through a ``PT_NOTE`` segment
holding an ``NT_PRSTATUS`` note: Linux's ``struct elf_prstatus`` for 32-bit
ARM, 148 bytes, whose ``pr_reg`` is ``elf_gregset_t`` (r0-r15, cpsr,
orig_r0). gdb (``gdb-multiarch``) and pyelftools read it; for a Cortex-M
core the cpsr slot holds xPSR.

Layout of ``struct elf_prstatus`` (ARM EABI, little-endian)::

    0   pr_info      si_signo, si_code, si_errno   3 x int32
    12  pr_cursig    int16, then 2 bytes of padding
    16  pr_sigpend   uint32
    20  pr_sighold   uint32
    24  pr_pid, pr_ppid, pr_pgrp, pr_sid           4 x int32
    40  pr_utime, pr_stime, pr_cutime, pr_cstime   4 x (int32 sec, int32 usec)
    72  pr_reg       18 x uint32
    144 pr_fpvalid   int32
"""

from __future__ import annotations

import struct

from rproctee.emu.faults import Registers

NT_PRSTATUS = 1
PT_NOTE = 4
EM_ARM = 40
PRSTATUS_SIZE = 148
PR_REG_OFFSET = 72
_EHDR, _PHDR = 52, 32


def prstatus_desc(registers: Registers, signal: int = 0, pid: int = 1) -> bytes:
    """The 148-byte ARM ``struct elf_prstatus`` for ``registers``."""
    head = struct.pack("<3ih2x2I4i", signal, 0, 0, signal, 0, 0, pid, 0, pid, pid)
    times = bytes(32)
    regs = struct.pack("<18I", *(v & 0xFFFFFFFF for v in registers.pr_reg()))
    desc = head + times + regs + struct.pack("<i", 0)
    assert len(desc) == PRSTATUS_SIZE and len(head) + len(times) == PR_REG_OFFSET
    return desc


def note(name: bytes, note_type: int, desc: bytes) -> bytes:
    """One ELF note record: header, NUL-terminated name and desc, 4-aligned."""
    name_z = name + b"\0"
    pad_name = bytes(-len(name_z) % 4)
    pad_desc = bytes(-len(desc) % 4)
    header = struct.pack("<3I", len(name_z), len(desc), note_type)
    return header + name_z + pad_name + desc + pad_desc


def prstatus_note(registers: Registers, signal: int = 0) -> bytes:
    """A ``CORE`` / ``NT_PRSTATUS`` note record for ``registers``."""
    return note(b"CORE", NT_PRSTATUS, prstatus_desc(registers, signal))


def add_note(core: bytes, note_bytes: bytes) -> bytes:
    """A copy of an ELF32 little-endian core with a ``PT_NOTE`` put first.

    The note segment goes right after the (grown) program-header table and
    every other segment's ``p_offset`` moves by the bytes inserted. An
    ``e_machine`` of ``EM_NONE`` (what the stm32 driver declares) becomes
    ``EM_ARM``: the registers in the note are ARM registers, and a debugger
    needs the machine to read them.

    Parameters
    ----------
    core : bytes
        An ``ET_CORE`` ELF32 LSB file as ``rproc_coredump`` writes it
        (program headers right after the ELF header).
    note_bytes : bytes
        One or more note records (:func:`prstatus_note`).

    Raises
    ------
    ValueError
        ``core`` is not such a file (names the field and its value).
    """
    phoff, phnum = _check_core(core)
    shift = _PHDR + len(note_bytes)
    table_end = phoff + phnum * _PHDR
    phdrs = []
    for i in range(phnum):
        fields = list(struct.unpack_from("<8I", core, phoff + i * _PHDR))
        if fields[1] >= table_end:
            fields[1] += shift  # data after the table moves down
        phdrs.append(struct.pack("<8I", *fields))
    note_off = _EHDR + (phnum + 1) * _PHDR
    note_phdr = struct.pack("<8I", PT_NOTE, note_off, 0, 0, len(note_bytes), 0, 0, 4)
    ehdr = bytearray(core[:_EHDR])
    machine = struct.unpack_from("<H", ehdr, 18)[0]
    if machine == 0:
        struct.pack_into("<H", ehdr, 18, EM_ARM)
    struct.pack_into("<H", ehdr, 44, phnum + 1)
    struct.pack_into("<I", ehdr, 28, _EHDR)
    return bytes(ehdr) + note_phdr + b"".join(phdrs) + note_bytes + core[table_end:]


def _check_core(core: bytes) -> tuple[int, int]:
    """``(e_phoff, e_phnum)`` of an ELF32 LSB core with phdrs after the header."""
    if len(core) < _EHDR or core[:4] != b"\x7fELF":
        raise ValueError(f"core: not an ELF file (first bytes {core[:4]!r})")
    if core[4] != 1 or core[5] != 1:
        raise ValueError(
            f"core: EI_CLASS {core[4]} / EI_DATA {core[5]}: only ELF32 LSB cores"
        )
    e_type, _, _, _, phoff = struct.unpack_from("<HHIII", core, 16)
    if e_type != 4:
        raise ValueError(f"core: e_type {e_type} is not ET_CORE (4)")
    (phnum,) = struct.unpack_from("<H", core, 44)
    if phoff != _EHDR or phoff + phnum * _PHDR > len(core):
        raise ValueError(
            f"core: e_phoff {phoff:#x} with {phnum} program headers is not a "
            f"table right after the ELF header inside the {len(core)}-byte file"
        )
    return phoff, phnum


def has_note(core: bytes) -> bool:
    """Whether an ELF32 LSB core already has a ``PT_NOTE`` segment.

    Raises
    ------
    ValueError
        ``core`` is not such a file (as :func:`add_note`).
    """
    phoff, phnum = _check_core(core)
    return any(
        struct.unpack_from("<I", core, phoff + i * _PHDR)[0] == PT_NOTE
        for i in range(phnum)
    )


def core_with_registers(core: bytes, registers: Registers, signal: int = 0) -> bytes:
    """``core`` with an ``NT_PRSTATUS`` note of ``registers`` (see :func:`add_note`)."""
    return add_note(core, prstatus_note(registers, signal))
