"""Minimal bounds-checked ELF32/ELF64 reader used by the image layer.

The image layer only needs the file header, the program headers and the named
section headers of an untrusted buffer.  Every table is range-checked with
overflow-safe arithmetic before it is read; nothing is copied except the
header words themselves.  (Kept to this one module so the image layer can
switch to the package-wide ``rproctee.elf`` scanner in one place.)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rproctee.errors import ElfFormatError

ELF_MAGIC = b"\x7fELF"
ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
ELFDATA2MSB = 2

# (file header, program header, section header) layouts after e_ident.
_LAYOUTS = {
    ELFCLASS32: ("HHIIIIIHHHHHH", "8I", "10I"),
    ELFCLASS64: ("HHIQQQIHHHHHH", "2I6Q", "2I4Q2I2Q"),
}


@dataclass(frozen=True)
class Phdr:
    """One program header (widths normalised to Python ints)."""

    p_type: int
    p_offset: int
    p_vaddr: int
    p_paddr: int
    p_filesz: int
    p_memsz: int
    p_flags: int
    p_align: int


@dataclass(frozen=True)
class Shdr:
    """One section header with its resolved name."""

    name: str
    sh_type: int
    sh_flags: int
    sh_addr: int
    sh_offset: int
    sh_size: int


@dataclass(frozen=True)
class ElfInfo:
    """What the image layer reads from an ELF file."""

    elf_class: int
    data: int
    machine: int
    type: int
    entry: int
    phdrs: tuple[Phdr, ...]
    shdrs: tuple[Shdr, ...]

    def find_section(self, name: str) -> Shdr | None:
        """Return the first section called ``name``, or ``None``."""
        return next((s for s in self.shdrs if s.name == name), None)


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
        If the range does not lie inside ``[0, limit)``.
    """
    if not (size <= limit and offset <= limit - size):
        raise ElfFormatError(
            field,
            offset,
            f"range of {size:#x} bytes ends past the {limit:#x}-byte file",
        )


def _ident(buf: memoryview) -> tuple[int, int]:
    check_range("e_ident", 0, 16, len(buf))
    if bytes(buf[:4]) != ELF_MAGIC:
        raise ElfFormatError("e_ident[EI_MAG]", bytes(buf[:4]), "not \\x7fELF")
    elf_class, data = buf[4], buf[5]
    if elf_class not in _LAYOUTS:
        raise ElfFormatError("e_ident[EI_CLASS]", elf_class, "must be 1 or 2")
    if data not in (ELFDATA2LSB, ELFDATA2MSB):
        raise ElfFormatError("e_ident[EI_DATA]", data, "must be 1 or 2")
    return elf_class, data


def _table(
    buf: memoryview, end: str, fmt: str, where: tuple[int, int, int], name: str
) -> list[tuple[int, ...]]:
    """Read ``count`` fixed-size entries at ``offset`` after checking bounds."""
    offset, entsize, count = where
    layout = struct.Struct(end + fmt)
    if count and entsize != layout.size:
        raise ElfFormatError(f"e_{name}entsize", entsize, f"must be {layout.size}")
    check_range(f"e_{name}off", offset, entsize * count, len(buf))
    return [layout.unpack_from(buf, offset + i * entsize) for i in range(count)]


def _phdr(elf_class: int, words: tuple[int, ...]) -> Phdr:
    if elf_class == ELFCLASS32:
        return Phdr(*words)
    p_type, p_flags, off, vaddr, paddr, filesz, memsz, align = words
    return Phdr(p_type, off, vaddr, paddr, filesz, memsz, p_flags, align)


def _c_string(table: memoryview, offset: int) -> str:
    end = bytes(table[offset:]).find(b"\0")
    raw = table[offset:] if end < 0 else table[offset : offset + end]
    return bytes(raw).decode("latin-1")


def _sections(
    buf: memoryview, raw: list[tuple[int, ...]], shstrndx: int
) -> tuple[Shdr, ...]:
    if not raw:
        return ()
    if shstrndx >= len(raw):
        raise ElfFormatError("e_shstrndx", shstrndx, f"must be < e_shnum {len(raw)}")
    str_off, str_size = raw[shstrndx][4], raw[shstrndx][5]
    check_range("shstrtab sh_offset", str_off, str_size, len(buf))
    strtab = buf[str_off : str_off + str_size]
    out = []
    for index, (name, sh_type, flags, addr, off, size, *_rest) in enumerate(raw):
        if name and name >= str_size:
            raise ElfFormatError(
                f"section[{index}].sh_name", name, f"must be < {str_size:#x}"
            )
        out.append(Shdr(_c_string(strtab, name), sh_type, flags, addr, off, size))
    return tuple(out)


def scan_elf_info(buf: memoryview) -> ElfInfo:
    """Scan the headers of an ELF32/ELF64 file held in ``buf``.

    Parameters
    ----------
    buf : memoryview
        The ELF file bytes (format ``B``).

    Returns
    -------
    ElfInfo
        Class, data encoding, machine, type, entry, program and section headers.

    Raises
    ------
    ElfFormatError
        On a bad identification, entry size, or a table outside the buffer.
    """
    elf_class, data = _ident(buf)
    end = "<" if data == ELFDATA2LSB else ">"
    ehdr_fmt, ph_fmt, sh_fmt = _LAYOUTS[elf_class]
    ehdr = struct.Struct(end + ehdr_fmt)
    check_range("e_ehsize", 16, ehdr.size, len(buf))
    # e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags,
    # e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
    e = ehdr.unpack_from(buf, 16)
    phdrs = _table(buf, end, ph_fmt, (e[4], e[8], e[9]), "ph")
    raw_sh = _table(buf, end, sh_fmt, (e[5], e[10], e[11]), "sh")
    return ElfInfo(
        elf_class=elf_class,
        data=data,
        machine=e[1],
        type=e[0],
        entry=e[3],
        phdrs=tuple(_phdr(elf_class, w) for w in phdrs),
        shdrs=_sections(buf, raw_sh, e[12]),
    )
