"""The ELF header rules both ELF-scan backends apply, with one message each.

The native and reference scanners decode the raw fields their own way, then
call these checks, so a malformed file raises the same ``ValueError`` with
the same text whichever backend runs.
"""

from __future__ import annotations

EI_NIDENT = 16
EHDR_SIZE = {1: 52, 2: 64}
PHENT_SIZE = {1: 32, 2: 56}
SHENT_SIZE = {1: 40, 2: 64}
ELF_MAGIC = b"\x7fELF"


def check_ident(buf_len: int, magic: bytes, ei_class: int, ei_data: int) -> None:
    """Check the identification bytes and that the whole ELF header is present."""
    if buf_len < EI_NIDENT:
        raise ValueError(
            f"e_ident: buffer of {buf_len} bytes is shorter than the 16-byte "
            "identification"
        )
    if magic != ELF_MAGIC:
        raise ValueError(f"e_ident[EI_MAG] = {magic!r}: not an ELF file")
    if ei_class not in EHDR_SIZE:
        raise ValueError(f"e_ident[EI_CLASS] = {ei_class}: must be 1 or 2")
    if ei_data not in (1, 2):
        raise ValueError(f"e_ident[EI_DATA] = {ei_data}: must be 1 (LSB) or 2 (MSB)")
    if buf_len < EHDR_SIZE[ei_class]:
        raise ValueError(
            f"ELF header: buffer of {buf_len} bytes is shorter than the "
            f"{EHDR_SIZE[ei_class]}-byte header"
        )


def check_table(
    what: str, ei_class: int, off: int, num: int, entsize: int, buf_len: int
) -> None:
    """Check one header table (``program`` or ``section``) lies inside the buffer."""
    if num == 0:
        return
    want = (PHENT_SIZE if what == "program" else SHENT_SIZE)[ei_class]
    field = "e_phentsize" if what == "program" else "e_shentsize"
    if entsize != want:
        raise ValueError(f"{field} = {entsize}: must be {want} for this ELF class")
    size = num * entsize
    if not (size <= buf_len and off <= buf_len - size):
        offset_field = "e_phoff" if what == "program" else "e_shoff"
        raise ValueError(
            f"{offset_field} = {off:#x}: {what} header table of {size:#x} bytes "
            f"exceeds buffer of {buf_len:#x} bytes"
        )


def check_shstrndx(shstrndx: int, shnum: int) -> None:
    """The section-name table index must name a section (or be SHN_UNDEF)."""
    if shnum and shstrndx and shstrndx >= shnum:
        raise ValueError(f"e_shstrndx = {shstrndx}: must be below e_shnum = {shnum}")


# (offset, width) of each output column, per ELF class.  Output column order is
# the ELF32 field order: type, offset, vaddr, paddr, filesz, memsz, flags, align.
PHDR_FIELDS = {
    1: ((0, 4), (4, 4), (8, 4), (12, 4), (16, 4), (20, 4), (24, 4), (28, 4)),
    2: ((0, 4), (8, 8), (16, 8), (24, 8), (32, 8), (40, 8), (4, 4), (48, 8)),
}
# name, type, flags, addr, offset, size, link, info, addralign, entsize
SHDR_FIELDS = {
    1: tuple((4 * i, 4) for i in range(10)),
    2: (
        (0, 4),
        (4, 4),
        (8, 8),
        (16, 8),
        (24, 8),
        (32, 8),
        (40, 4),
        (44, 4),
        (48, 8),
        (56, 8),
    ),
}
# e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize,
# e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
EHDR_FIELDS = {
    1: (
        (16, 2),
        (18, 2),
        (20, 4),
        (24, 4),
        (28, 4),
        (32, 4),
        (36, 4),
        (40, 2),
        (42, 2),
        (44, 2),
        (46, 2),
        (48, 2),
        (50, 2),
    ),
    2: (
        (16, 2),
        (18, 2),
        (20, 4),
        (24, 8),
        (32, 8),
        (40, 8),
        (48, 4),
        (52, 2),
        (54, 2),
        (56, 2),
        (58, 2),
        (60, 2),
        (62, 2),
    ),
}
