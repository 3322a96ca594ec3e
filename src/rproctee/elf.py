"""Bounds-checked ELF32/ELF64 reader over any buffer, backed by the scan kernel.

The program and section header tables come back as numpy structured arrays
(every field widened to uint64), so loaders can check and iterate segments
without building per-segment Python objects.  pyelftools stays the oracle in
the tests and the tool for rich inspection.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rproctee import kernels
from rproctee._typing import Buffer
from rproctee.errors import ElfFormatError

PHDR_DTYPE = np.dtype(
    [
        (f, np.uint64)
        for f in (
            "p_type",
            "p_offset",
            "p_vaddr",
            "p_paddr",
            "p_filesz",
            "p_memsz",
            "p_flags",
            "p_align",
        )
    ]
)
SHDR_DTYPE = np.dtype(
    [
        (f, np.uint64)
        for f in (
            "sh_name",
            "sh_type",
            "sh_flags",
            "sh_addr",
            "sh_offset",
            "sh_size",
            "sh_link",
            "sh_info",
            "sh_addralign",
            "sh_entsize",
        )
    ]
)


@dataclass(frozen=True)
class Phdr:
    """One program header, widths normalised to Python ints.

    The ELF32 layout of these eight words is also the first 32 bytes of an
    OP-TEE hash-table record.
    """

    p_type: int
    p_offset: int
    p_vaddr: int
    p_paddr: int
    p_filesz: int
    p_memsz: int
    p_flags: int
    p_align: int

    @classmethod
    def unpack(cls, raw: bytes) -> Phdr:
        """From the 32 little-endian bytes of an ELF32 program header."""
        return cls(*struct.unpack_from("<8I", raw, 0))

    def words(self) -> tuple[int, int, int, int, int, int, int, int]:
        """The eight fields in ELF32 order (as in a hash-table record)."""
        return (self.p_type, self.p_offset, self.p_vaddr, self.p_paddr,
                self.p_filesz, self.p_memsz, self.p_flags, self.p_align)  # fmt: skip


@dataclass(frozen=True)
class ElfScan:
    """The headers of one ELF file, read once from ``buf``."""

    buf: memoryview
    elf_class: int  # 32 or 64
    data: int  # 1 = little-endian, 2 = big-endian
    ident_version: int
    osabi: int
    type: int
    machine: int
    version: int
    entry: int
    phoff: int
    shoff: int
    flags: int
    ehsize: int
    phentsize: int
    phnum: int
    shentsize: int
    shnum: int
    shstrndx: int
    phdrs: npt.NDArray[np.void]
    shdrs: npt.NDArray[np.void]

    def section_name(self, index: int) -> str:
        """Name of section ``index`` from the section-name string table.

        Raises
        ------
        ElfFormatError
            No string table, or ``sh_name`` / the table lies outside the file.
        """
        strtab = self._strtab()
        off = int(self.shdrs["sh_name"][index])
        if off >= len(strtab):
            raise ElfFormatError(
                f"section[{index}].sh_name",
                off,
                f"beyond the {len(strtab)}-byte section-name table",
            )
        end = strtab.find(b"\0", off)
        return strtab[off : end if end >= 0 else len(strtab)].decode("latin-1")

    def find_section(self, name: str) -> int | None:
        """Index of the first section called ``name``, or None."""
        if self.shnum == 0 or self.shstrndx == 0:
            return None
        for i in range(self.shnum):
            if self.section_name(i) == name:
                return i
        return None

    def segment_bytes(self, index: int) -> memoryview:
        """A zero-copy view of program header ``index``'s file bytes.

        Raises
        ------
        ElfFormatError
            ``[p_offset, p_offset + p_filesz)`` is not inside the file.
        """
        ph = self.phdrs[index]
        off, size = int(ph["p_offset"]), int(ph["p_filesz"])
        check_range(f"segment[{index}] p_offset+p_filesz", off, size, len(self.buf))
        return self.buf[off : off + size]

    def section_bytes(self, index: int) -> memoryview:
        """A zero-copy view of section ``index``'s file bytes (checked)."""
        sh = self.shdrs[index]
        off, size = int(sh["sh_offset"]), int(sh["sh_size"])
        check_range(f"section[{index}] sh_offset+sh_size", off, size, len(self.buf))
        return self.buf[off : off + size]

    def _strtab(self) -> bytes:
        if self.shnum == 0 or self.shstrndx == 0:
            raise ElfFormatError("e_shstrndx", self.shstrndx, "no section-name table")
        return bytes(self.section_bytes(self.shstrndx))


def check_range(field: str, offset: int, size: int, limit: int) -> None:
    """Raise :class:`ElfFormatError` unless ``[offset, offset+size)`` fits.

    Parameters
    ----------
    field : str
        Name used in the error message.
    offset, size : int
        The range (non-negative).
    limit : int
        Size of the containing buffer.

    Raises
    ------
    ElfFormatError
        If the range does not lie inside ``[0, limit)`` (checked without
        forming ``offset + size``).
    """
    if not (size <= limit and offset <= limit - size):
        raise ElfFormatError(
            field,
            offset,
            f"range of {size:#x} bytes ends past the {limit:#x}-byte file",
        )


def scan_elf(buf: Buffer) -> ElfScan:
    """Read an ELF file's headers with every offset and size bounds-checked.

    Parameters
    ----------
    buf : bytes-like
        The whole ELF file (bytes, mmap, numpy uint8 array, memoryview).

    Returns
    -------
    ElfScan

    Raises
    ------
    ElfFormatError
        A header rule is broken (the message names the field and value).
    """
    view = memoryview(buf).cast("B") if not isinstance(buf, memoryview) else buf
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    try:
        ident, ehdr, ph, sh = kernels.scan_headers(view)
    except ValueError as exc:
        # Kernel messages read "field = value: rule" or "field: rule".
        text = str(exc)
        head, _, rule = text.partition(": ")
        field, _, value = head.partition(" = ")
        raise ElfFormatError(field, value or None, rule, message=text) from exc
    fields = dict(zip(_EHDR_NAMES, (int(v) for v in ehdr), strict=True))
    return ElfScan(
        buf=view,
        elf_class=32 if ident[0] == 1 else 64,
        data=ident[1],
        ident_version=ident[2],
        osabi=ident[3],
        phdrs=ph.view(PHDR_DTYPE).reshape(-1),
        shdrs=sh.view(SHDR_DTYPE).reshape(-1),
        **fields,
    )


_EHDR_NAMES = (
    "type",
    "machine",
    "version",
    "entry",
    "phoff",
    "shoff",
    "flags",
    "ehsize",
    "phentsize",
    "phnum",
    "shentsize",
    "shnum",
    "shstrndx",
)


# --------------------------------------------------------------------------
# Names for messages: e_machine, p_type and p_flags in words

#: ``e_machine`` values of the processors remote firmware is built for (and a
#: few hosts), with their ``<elf.h>`` names.
MACHINE_NAMES: dict[int, str] = {
    0: "EM_NONE",
    3: "EM_386",
    8: "EM_MIPS",
    20: "EM_PPC",
    21: "EM_PPC64",
    40: "EM_ARM",
    45: "EM_ARC",
    62: "EM_X86_64",
    83: "EM_AVR",
    92: "EM_OPENRISC",
    93: "EM_ARC_COMPACT",
    94: "EM_XTENSA",
    105: "EM_MSP430",
    113: "EM_ALTERA_NIOS2",
    140: "EM_TI_C6000",
    141: "EM_TI_C2000",
    142: "EM_TI_C5500",
    143: "EM_TI_ARP32",
    144: "EM_TI_PRU",
    164: "EM_QDSP6",
    183: "EM_AARCH64",
    189: "EM_MICROBLAZE",
    195: "EM_ARC_COMPACT2",
    243: "EM_RISCV",
    247: "EM_BPF",
    252: "EM_CSKY",
    258: "EM_LOONGARCH",
}

#: ``p_type`` names (``<elf.h>``), for program-header listings.
PTYPE_NAMES: dict[int, str] = {
    0: "PT_NULL",
    1: "PT_LOAD",
    2: "PT_DYNAMIC",
    3: "PT_INTERP",
    4: "PT_NOTE",
    5: "PT_SHLIB",
    6: "PT_PHDR",
    7: "PT_TLS",
    0x6474E550: "PT_GNU_EH_FRAME",
    0x6474E551: "PT_GNU_STACK",
    0x6474E552: "PT_GNU_RELRO",
    0x70000001: "PT_ARM_EXIDX",
}


def describe_machine(e_machine: int) -> str:
    """Name an ``e_machine`` value for a message: ``"EM_ARM (40)"``.

    Parameters
    ----------
    e_machine : int
        The ELF header's ``e_machine``.

    Returns
    -------
    str
        ``"EM_TI_C6000 (140)"``, ``"EM_QDSP6 (164)"``...; an unlisted value
        reads ``"e_machine 4660 (unknown)"``.
    """
    name = MACHINE_NAMES.get(e_machine)
    return f"{name} ({e_machine})" if name else f"e_machine {e_machine} (unknown)"


def describe_ptype(p_type: int) -> str:
    """Name a ``p_type``: ``"PT_LOAD"``, else its hex value (``"0x60000000"``)."""
    return PTYPE_NAMES.get(p_type, f"{p_type:#x}")


def describe_pflags(p_flags: int) -> str:
    """``p_flags`` as readelf-style letters: ``"R X"``, ``"RW "``, ``"RWX"``.

    Bits other than PF_R/PF_W/PF_X are appended in hex (``"R X+0x100000"``).
    """
    letters = "".join(
        letter if p_flags & bit else " "
        for letter, bit in (("R", 4), ("W", 2), ("X", 1))
    )
    other = p_flags & ~7
    return f"{letters}+{other:#x}" if other else letters


def describe_ident(elf_class_bits: int, ei_data: int) -> str:
    """``"EI_CLASS = 2 (ELFCLASS64), EI_DATA = 1 (ELFDATA2LSB)"`` for messages.

    Parameters
    ----------
    elf_class_bits : int
        32 or 64 (as :class:`ElfScan` reports the class).
    ei_data : int
        ``e_ident[EI_DATA]``: 1 little-endian, 2 big-endian.
    """
    ei_class = {32: 1, 64: 2}.get(elf_class_bits, 0)
    class_name = f"ELFCLASS{elf_class_bits}" if ei_class else "ELFCLASSNONE"
    data_name = {1: "ELFDATA2LSB", 2: "ELFDATA2MSB"}.get(ei_data, "ELFDATANONE")
    return f"EI_CLASS = {ei_class} ({class_name}), EI_DATA = {ei_data} ({data_name})"
