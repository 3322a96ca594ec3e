"""The image layer's view of an ELF file, read with :func:`rproctee.elf.scan_elf`.

The package-wide scanner does the bounds-checked header, program-header and
section-header reads; this adapter turns its numpy tables into small frozen
records (a firmware has a handful of segments) with resolved section names.
"""

from __future__ import annotations

from dataclasses import dataclass

from rproctee.elf import ElfScan, Phdr, scan_elf

ELFCLASS32 = 32
ELFCLASS64 = 64
ELFDATA2LSB = 1
ELFDATA2MSB = 2
_PHDR_FIELDS = ("p_type", "p_offset", "p_vaddr", "p_paddr",
                "p_filesz", "p_memsz", "p_flags", "p_align")  # fmt: skip
_SHDR_FIELDS = ("sh_type", "sh_flags", "sh_addr", "sh_offset", "sh_size")


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


def _sections(scan: ElfScan) -> tuple[Shdr, ...]:
    if scan.shnum == 0 or scan.shstrndx == 0:
        return ()
    out = []
    for i, row in enumerate(scan.shdrs):
        values = (int(row[f]) for f in _SHDR_FIELDS)
        out.append(Shdr(scan.section_name(i), *values))
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
        Class (32/64), data encoding, machine, type, entry, program and
        section headers.

    Raises
    ------
    ElfFormatError
        On a bad identification, entry size, or a table outside the buffer.
    """
    scan = scan_elf(buf)
    phdrs = tuple(Phdr(*(int(row[f]) for f in _PHDR_FIELDS)) for row in scan.phdrs)
    return ElfInfo(
        elf_class=scan.elf_class,
        data=scan.data,
        machine=scan.machine,
        type=scan.type,
        entry=scan.entry,
        phdrs=phdrs,
        shdrs=_sections(scan),
    )
