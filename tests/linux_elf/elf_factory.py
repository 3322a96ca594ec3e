"""ELF32/ELF64 little-endian files built in the tests, with every field settable.

Layout: ELF header, program headers (native stride), segment bytes,
section bytes, ``.shstrtab``, section headers.  Every header field can be
overridden afterwards with :func:`patch` at the offsets :func:`ehdr_field`,
:func:`phdr_field` and :func:`shdr_field` give.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

EHDR = {32: 52, 64: 64}
PHDR = {32: 32, 64: 56}
SHDR = {32: 40, 64: 64}

_EHDR_FIELDS = {
    32: {"e_entry": (24, 4), "e_phoff": (28, 4), "e_shoff": (32, 4),
         "e_phentsize": (42, 2), "e_phnum": (44, 2), "e_shentsize": (46, 2),
         "e_shnum": (48, 2), "e_shstrndx": (50, 2)},
    64: {"e_entry": (24, 8), "e_phoff": (32, 8), "e_shoff": (40, 8),
         "e_phentsize": (54, 2), "e_phnum": (56, 2), "e_shentsize": (58, 2),
         "e_shnum": (60, 2), "e_shstrndx": (62, 2)},
}  # fmt: skip
_PHDR_FIELDS = {
    32: {"p_type": (0, 4), "p_offset": (4, 4), "p_vaddr": (8, 4),
         "p_paddr": (12, 4), "p_filesz": (16, 4), "p_memsz": (20, 4)},
    64: {"p_type": (0, 4), "p_offset": (8, 8), "p_vaddr": (16, 8),
         "p_paddr": (24, 8), "p_filesz": (32, 8), "p_memsz": (40, 8)},
}  # fmt: skip
_SHDR_FIELDS = {
    32: {"sh_name": (0, 4), "sh_addr": (12, 4), "sh_offset": (16, 4),
         "sh_size": (20, 4)},
    64: {"sh_name": (0, 4), "sh_addr": (16, 8), "sh_offset": (24, 8),
         "sh_size": (32, 8)},
}  # fmt: skip
_FMT = {2: "<H", 4: "<I", 8: "<Q"}


@dataclass(frozen=True)
class Seg:
    """A program header: ``p_paddr``, file bytes, ``p_memsz`` (None: len)."""

    paddr: int
    data: bytes = b"\x11" * 16
    memsz: int | None = None
    p_type: int = 1


@dataclass(frozen=True)
class Sec:
    """A section: name, ``sh_addr``, bytes."""

    name: str
    addr: int
    data: bytes


@dataclass(frozen=True)
class Layout:
    """Where things landed in the file."""

    elf_class: int
    phoff: int
    seg_offsets: tuple[int, ...]
    sec_offsets: tuple[int, ...]
    strtab_offset: int
    shoff: int
    name_offsets: tuple[int, ...]


def build(
    segs: Sequence[Seg],
    sections: Sequence[Sec] = (),
    *,
    elf_class: int = 32,
    entry: int = 0x401,
) -> tuple[bytes, Layout]:
    """An ELF file and where its parts are.

    Section 0 is the null section, then ``sections`` in order, then
    ``.shstrtab`` (``e_shstrndx`` points at it).
    """
    phoff = EHDR[elf_class]
    pos = phoff + PHDR[elf_class] * len(segs)
    body, seg_offsets = b"", []
    for seg in segs:
        seg_offsets.append(pos)
        body += seg.data + bytes(-len(seg.data) % 8)
        pos += len(seg.data) + (-len(seg.data) % 8)
    sec_offsets = []
    for sec in sections:
        sec_offsets.append(pos)
        body += sec.data + bytes(-len(sec.data) % 8)
        pos += len(sec.data) + (-len(sec.data) % 8)
    names, name_offsets = b"\0", []
    for sec in sections:
        name_offsets.append(len(names))
        names += sec.name.encode() + b"\0"
    strtab_name = len(names)
    names += b".shstrtab\0"
    strtab_offset = pos
    body += names + bytes(-len(names) % 8)
    shoff = pos + len(names) + (-len(names) % 8)
    phdrs = b"".join(
        _phdr(elf_class, s, off) for s, off in zip(segs, seg_offsets, strict=True)
    )
    shdrs = _shdr(elf_class, 0, 0, 0, 0, 0)
    for sec, off, name in zip(sections, sec_offsets, name_offsets, strict=True):
        shdrs += _shdr(elf_class, name, 1, sec.addr, off, len(sec.data))
    shdrs += _shdr(elf_class, strtab_name, 3, 0, strtab_offset, len(names))
    shnum = len(sections) + 2
    ehdr = _ehdr(elf_class, entry, phoff, shoff, len(segs), shnum, shnum - 1)
    layout = Layout(
        elf_class,
        phoff,
        tuple(seg_offsets),
        tuple(sec_offsets),
        strtab_offset,
        shoff,
        tuple(name_offsets),
    )
    return ehdr + phdrs + body + shdrs, layout


def _ehdr(
    cls: int, entry: int, phoff: int, shoff: int, phnum: int, shnum: int, strndx: int
) -> bytes:
    ident = b"\x7fELF" + bytes([1 if cls == 32 else 2, 1, 1]) + bytes(9)
    if cls == 32:
        return ident + struct.pack(
            "<HHIIIIIHHHHHH", 2, 40, 1, entry, phoff, shoff, 0x5000000, 52, 32,
            phnum, 40, shnum, strndx,
        )  # fmt: skip
    return ident + struct.pack(
        "<HHIQQQIHHHHHH", 2, 183, 1, entry, phoff, shoff, 0, 64, 56,
        phnum, 64, shnum, strndx,
    )  # fmt: skip


def _phdr(cls: int, seg: Seg, offset: int) -> bytes:
    memsz = len(seg.data) if seg.memsz is None else seg.memsz
    if cls == 32:
        return struct.pack(
            "<8I", seg.p_type, offset, seg.paddr, seg.paddr, len(seg.data), memsz, 7, 8
        )
    return struct.pack(
        "<IIQQQQQQ", seg.p_type, 7, offset, seg.paddr, seg.paddr, len(seg.data),
        memsz, 8,
    )  # fmt: skip


def _shdr(cls: int, name: int, kind: int, addr: int, off: int, size: int) -> bytes:
    if cls == 32:
        return struct.pack("<10I", name, kind, 2, addr, off, size, 0, 0, 4, 0)
    return struct.pack("<IIQQQQIIQQ", name, kind, 2, addr, off, size, 0, 0, 4, 0)


def patch(data: bytes, at: tuple[int, int], value: int) -> bytes:
    """``data`` with the ``(offset, width)`` field set to ``value``."""
    off, width = at
    out = bytearray(data)
    out[off : off + width] = struct.pack(_FMT[width], value)
    return bytes(out)


def ehdr_field(elf_class: int, name: str) -> tuple[int, int]:
    """(offset, width) of an ELF header field."""
    return _EHDR_FIELDS[elf_class][name]


def phdr_field(layout: Layout, index: int, name: str) -> tuple[int, int]:
    """(offset, width) of program header ``index``'s field."""
    off, width = _PHDR_FIELDS[layout.elf_class][name]
    return layout.phoff + PHDR[layout.elf_class] * index + off, width


def shdr_field(layout: Layout, index: int, name: str) -> tuple[int, int]:
    """(offset, width) of section header ``index``'s field (0 is the null one)."""
    off, width = _SHDR_FIELDS[layout.elf_class][name]
    return layout.shoff + SHDR[layout.elf_class] * index + off, width


def rsc_table(*, ver: int = 1, num: int = 0, reserved: int = 0) -> bytes:
    """A resource-table header with ``num`` zero offsets."""
    return struct.pack("<4I", ver, num, reserved, 0) + bytes(4 * num)
