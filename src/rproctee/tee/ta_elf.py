"""ELF32 reads and checks of the remoteproc TA (``elf_parser.c``), step by step.

The TA reads the images in place, in the caller's shared memory. Reads go
through :class:`SharedReader`, which models the mapping: bytes past the memref
but inside its last 4 KiB page read as zero (what W8 reads), anything further
is an abort, i.e. a TA panic. Pointer arithmetic is 32-bit, with the memref's
model address, so "wraps the address space" means what it means on the TA.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rproctee.elf import Phdr
from rproctee.tee.results import TaPanic, TeeError, TeeResult

EHDR_SIZE = 52
PHDR_SIZE = 32
SHDR_SIZE = 40
RSC_HDR_SIZE = 16
PT_LOAD = 1
EM_ARM = 40
ET_EXEC = 2
U32 = 0xFFFFFFFF
PAGE = 4096
RSC_NAME = b".resource_table\0"


class SharedReader:
    """Bounded reads of a memref as the TA sees it.

    Parameters
    ----------
    view : memoryview
        The memref's bytes (shared, may change under the TA).
    addr : int
        Model address of its first byte.
    """

    def __init__(self, view: memoryview, addr: int) -> None:
        self.view = view
        self.addr = addr
        self.mapped = (len(view) + PAGE - 1) // PAGE * PAGE

    def read(self, off: int, n: int) -> bytes:
        """``n`` bytes at offset ``off`` of the memref."""
        if off < 0 or off + n > self.mapped:
            raise TaPanic(
                f"TA read of {n} bytes at memref offset {off:#x} is outside the "
                f"mapped shared memory ({self.mapped:#x} bytes): data abort"
            )
        data = bytes(self.view[off : off + n])
        return data + bytes(n - len(data))

    def u32(self, off: int) -> int:
        """Little-endian u32 at ``off``."""
        return int.from_bytes(self.read(off, 4), "little")

    def u16(self, off: int) -> int:
        """Little-endian u16 at ``off``."""
        return int.from_bytes(self.read(off, 2), "little")


@dataclass(frozen=True)
class Ehdr:
    """The ELF header fields the TA reads."""

    ident: bytes
    e_type: int
    e_machine: int
    e_phoff: int
    e_shoff: int
    e_phentsize: int
    e_phnum: int
    e_shentsize: int
    e_shnum: int
    e_shstrndx: int


def read_ehdr(r: SharedReader, base: int) -> Ehdr:
    """Read the ELF header of the image at memref offset ``base``."""
    raw = r.read(base, EHDR_SIZE)
    e_type, e_machine = struct.unpack_from("<2H", raw, 16)
    e_phoff, e_shoff = struct.unpack_from("<2I", raw, 28)
    phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<5H", raw, 42)
    return Ehdr(
        raw[:16], e_type, e_machine, e_phoff, e_shoff,
        phentsize, phnum, shentsize, shnum, shstrndx,
    )  # fmt: skip


def _fmt(reason: str) -> TeeError:
    return TeeError(TeeResult.TEE_ERROR_BAD_FORMAT, reason)


def check_ehdr(r: SharedReader, base: int, size: int) -> Ehdr:
    """``e32_parse_ehdr``: spec 2.5 step 9, upstream checks in upstream order."""
    if (r.addr + base) % 4:
        raise TeeError(
            TeeResult.TEE_ERROR_BAD_PARAMETERS,
            f"ELF image at address {r.addr + base:#x} is not 4-byte aligned",
        )
    if size < EHDR_SIZE:
        raise _fmt(f"image size {size:#x} < ELF header size {EHDR_SIZE}")
    e = read_ehdr(r, base)
    # `size < e_shoff + sizeof(Elf32_Shdr)` in 32-bit size_t: the sum can wrap
    if size < (e.e_shoff + SHDR_SIZE) & U32:
        raise _fmt(f"e_shoff = {e.e_shoff:#x}: + 40 beyond image size {size:#x}")
    if e.ident[:4] != b"\x7fELF":
        raise _fmt(f"ELF magic = {e.ident[:4].hex()}, expected 7f454c46")
    if e.ident[6] != 1:
        raise _fmt(f"EI_VERSION = {e.ident[6]}, expected 1")
    if e.ident[4] != 1:
        raise _fmt(f"EI_CLASS = {e.ident[4]}, expected 1 (ELFCLASS32)")
    if e.e_phentsize != PHDR_SIZE:
        raise _fmt(f"e_phentsize = {e.e_phentsize}, expected {PHDR_SIZE}")
    if e.e_shentsize != SHDR_SIZE:
        raise _fmt(f"e_shentsize = {e.e_shentsize}, expected {SHDR_SIZE}")
    if e.e_phnum == 0:
        raise _fmt("e_phnum = 0: no program header")
    return e


def check_ehdr_strict(e: Ehdr) -> None:
    """Strict-only ELF header checks (checklist W4)."""
    if e.ident[5] != 1:
        raise _fmt(f"EI_DATA = {e.ident[5]}, expected 1 (little-endian)")
    if e.e_machine != EM_ARM:
        raise _fmt(f"e_machine = {e.e_machine}, expected {EM_ARM} (EM_ARM)")
    if e.e_type != ET_EXEC:
        raise _fmt(f"e_type = {e.e_type}, expected {ET_EXEC} (ET_EXEC)")


def in_image(addr: int, fw: int, size: int) -> bool:
    """``va_in_fwm_image_range``: fw <= addr < fw + size (32-bit addresses)."""
    return fw <= addr < fw + size


def phdr_table_start(
    r: SharedReader, base: int, size: int, e: Ehdr | None = None
) -> tuple[Ehdr, int]:
    """Spec 2.6 preamble: image bound and phdr table placement.

    Upstream reads the ELF header from the shared buffer again here; the
    strict plan passes the header it already read (``e``), so that the caller
    cannot show one header to the checks and another to the loader.

    Returns
    -------
    (Ehdr, int)
        The header and the memref offset of the program-header table.
    """
    fw = r.addr + base
    if size == 0 or fw + size > U32 + 1:
        raise TeeError(
            TeeResult.TEE_ERROR_BAD_PARAMETERS,
            f"image size {size:#x} at {fw:#x} is empty or wraps the address space",
        )
    e = read_ehdr(r, base) if e is None else e
    phdr = (fw + e.e_phoff) & U32
    if phdr % 4 or not in_image(phdr, fw, size):
        raise _fmt(f"e_phoff = {e.e_phoff:#x}: table misaligned or outside the image")
    return e, base + e.e_phoff


def read_phdr(r: SharedReader, base: int, size: int, table: int, i: int) -> Phdr:
    """Program header ``i``; the 32-byte entry must lie inside the image."""
    fw = r.addr + base
    entry = r.addr + table + i * PHDR_SIZE
    if not (in_image(entry, fw, size) and in_image(entry + PHDR_SIZE - 1, fw, size)):
        raise _fmt(f"program header {i} at offset {entry - fw:#x} outside the image")
    return Phdr.unpack(r.read(table + i * PHDR_SIZE, PHDR_SIZE))


def read_phdr_table(
    r: SharedReader, base: int, size: int, table: int, count: int
) -> list[tuple[int, ...]]:
    """Program headers ``0 .. count-1`` in one read, as :func:`read_phdr` each.

    The strict plan's private copy of the table: one bounded read of the
    entries that lie inside the image, unpacked together into the eight
    ELF32 words of each (65,535 headers in milliseconds; the caller makes a
    :class:`Phdr` only of the entries it uses), then the first entry outside
    the image is refused with the same error :func:`read_phdr` gives it.
    """
    return list(struct.iter_unpack("<8I", read_phdr_bytes(r, base, size, table, count)))


def read_phdr_bytes(
    r: SharedReader, base: int, size: int, table: int, count: int
) -> bytes:
    """The bytes of :func:`read_phdr_table`: one bounded read of the entries
    inside the image; the first entry outside it refused as :func:`read_phdr`
    refuses it."""
    fw = r.addr + base
    start = r.addr + table
    inside = 0
    if fw <= start:
        inside = max(0, min(count, (fw + size - start) // PHDR_SIZE))
    raw = r.read(table, inside * PHDR_SIZE)
    if inside < count:
        read_phdr(r, base, size, table, inside)  # raises: outside the image
    return raw


def check_segment_range(i: int, ph: Phdr, size: int) -> None:
    """[p_offset, p_offset + p_filesz) must lie inside the image (BAD_FORMAT)."""
    if ph.p_offset >= size or ph.p_offset + ph.p_filesz > size:
        raise _fmt(
            f"program header {i}: p_offset {ph.p_offset:#x} + p_filesz "
            f"{ph.p_filesz:#x} beyond image size {size:#x}"
        )


@dataclass(frozen=True)
class RscSection:
    """Where a ``.resource_table`` section says the table is."""

    sh_addr: int
    sh_offset: int
    sh_size: int
    index: int


def _shdr(r: SharedReader, off: int) -> tuple[int, int, int, int, int]:
    raw = r.read(off, SHDR_SIZE)
    name, _t, _f, addr, offset, size = struct.unpack_from("<6I", raw, 0)
    return name, addr, offset, size, 0


def section_names(
    r: SharedReader, base: int, size: int, e: Ehdr
) -> tuple[int, int, int]:
    """Checks of spec 2.7 on the section-header and name tables.

    Returns
    -------
    (int, int, int)
        memref offset of the section-header table, of the name table, and the
        name table size.
    """
    shdrs = check_shdr_table(r, base, size, e)
    names = _shdr(r, shdrs + e.e_shstrndx * SHDR_SIZE)
    str_off, str_size = check_name_table(names, size)
    return shdrs, base + str_off, str_size


def check_shdr_table(r: SharedReader, base: int, size: int, e: Ehdr) -> int:
    """The section-header table lies in the image, aligned; the memref offset."""
    fw = r.addr + base
    if fw + size > U32 + 1 or fw + e.e_shoff > U32 + 1:
        raise TeeError(
            TeeResult.TEE_ERROR_BAD_PARAMETERS,
            f"e_shoff = {e.e_shoff:#x} wraps the address space",
        )
    end = e.e_shoff + e.e_shnum * SHDR_SIZE
    if (fw + e.e_shoff) % 4 or end > size or e.e_shstrndx >= e.e_shnum:
        raise _fmt(
            f"section headers: e_shoff {e.e_shoff:#x}, e_shnum {e.e_shnum}, "
            f"e_shstrndx {e.e_shstrndx}: misaligned, outside the image or bad index"
        )
    return base + e.e_shoff


def check_name_table(
    shdr: tuple[int, int, int, int, int], size: int
) -> tuple[int, int]:
    """The name table's (offset, size) from its section header, in the image."""
    _n, _a, str_off, str_size, _ = shdr
    if str_off >= size or str_off + str_size > size:
        raise _fmt(
            f"section-name table [{str_off:#x}, +{str_size:#x}) outside the image"
        )
    return str_off, str_size


def name_matches(r: SharedReader, names: int, names_size: int, sh_name: int) -> bool:
    """``strncmp(name, ".resource_table", bytes left in the table) == 0``."""
    left = names_size - sh_name
    got = r.read(names + sh_name, min(left, len(RSC_NAME)))
    for k in range(min(left, len(RSC_NAME))):
        if got[k] != RSC_NAME[k]:
            return False
        if got[k] == 0:
            return True
    return True


def _exact_name(r: SharedReader, names: int, names_size: int, sh_name: int) -> bool:
    want = len(RSC_NAME)
    if names_size - sh_name < want:
        return False
    return r.read(names + sh_name, want) == RSC_NAME


def find_rsc_table(r: SharedReader, base: int, size: int) -> RscSection:
    """Spec 2.7 as upstream does it: the first ``.resource_table``, checked.

    Names match with upstream's bounded ``strncmp``, every header is read
    from the shared buffer where it is used, and the first match wins
    (strict's lookup is :func:`find_rsc_section_strict`).

    Raises
    ------
    TeeError
        NO_DATA when there is no table (fine: it is optional), BAD_FORMAT,
        BAD_PARAMETERS or CORRUPT_OBJECT as spec 2.7 says.
    """
    e = read_ehdr(r, base)
    shdrs, names, names_size = section_names(r, base, size, e)
    for i in range(_first_deciding_section(r, shdrs, names, names_size, e.e_shnum),
                   e.e_shnum):  # fmt: skip
        sh_name, sh_addr, sh_offset, sh_size, _ = _shdr(r, shdrs + i * SHDR_SIZE)
        if sh_name >= names_size:
            raise _fmt(f"section {i}: sh_name {sh_name:#x} >= name table size")
        if name_matches(r, names, names_size, sh_name):
            found = RscSection(sh_addr, sh_offset, sh_size, i)
            check_rsc_table(r, base, size, found, strict=False)
            return found
    raise TeeError(TeeResult.TEE_ERROR_NO_DATA, "no .resource_table section")


def _first_deciding_section(
    r: SharedReader, shdrs: int, names: int, names_size: int, shnum: int
) -> int:
    """Where upstream's section loop first stops: a bad ``sh_name`` or a name
    that matches; the sections before it only pass by.

    A firmware of thousands of sections would otherwise cost a read and a
    compare in Python each. Found on one read of both tables (all in the
    memref; when not, 0: the loop reads header by header and meets the
    fault where upstream would); the loop then reads that section again
    and decides, so the answer is the loop's own.
    """
    table_end, names_end = shdrs + shnum * SHDR_SIZE, names + names_size
    if min(shdrs, names) < 0 or max(table_end, names_end) > len(r.view):
        return 0
    sh_name = np.frombuffer(r.view, "<u4", shnum * 10, shdrs)[::10]
    hits = _deciding_sections(sh_name, bytes(r.view[names:names_end]))
    return int(hits[0]) if hits.size else shnum


def _deciding_sections(
    sh_names: npt.NDArray[np.uint32], names: bytes
) -> npt.NDArray[np.intp]:
    """Indexes of the sections whose ``sh_name`` is past the name table
    ``names`` or names what strncmp takes for ``.resource_table``: the only
    ones that can decide a section loop (the others pass by)."""
    bad = sh_names >= len(names)
    return np.flatnonzero(bad | np.isin(sh_names, _rsc_name_offsets(names)))


def _rsc_name_offsets(blob: bytes) -> list[int]:
    """Offsets in a name table where upstream's bounded strncmp reads
    ``.resource_table``: the whole name, or a prefix cut by the table's end."""
    found, at = [], blob.find(RSC_NAME)
    while at >= 0:
        found.append(at)
        at = blob.find(RSC_NAME, at + 1)
    tail = max(0, len(blob) - len(RSC_NAME) + 1)
    found += [k for k in range(tail, len(blob)) if RSC_NAME.startswith(blob[k:])]
    return found


def find_rsc_section_strict(
    r: SharedReader, base: int, size: int, e: Ehdr
) -> RscSection:
    """Strict: the one ``.resource_table`` section, every header read once.

    The section-header table and the name table are copied out of the shared
    buffer once, and every decision is taken on those private copies (no
    double fetch, checklist 5.6); the ELF header is the one the plan already
    read. Only the section's placement is checked here: the table's bytes are
    validated later, from a private copy that must be what is loaded.

    Raises
    ------
    TeeError
        NO_DATA when there is no table, BAD_FORMAT, BAD_PARAMETERS or
        CORRUPT_OBJECT as spec 2.7 says (with strict's extra refusals).
    """
    at = check_shdr_table(r, base, size, e)
    shdrs = np.frombuffer(r.read(at, e.e_shnum * SHDR_SIZE), "<u4").reshape(-1, 10)
    strtab = shdrs[e.e_shstrndx].tolist()
    str_off, str_size = check_name_table(
        (strtab[0], strtab[3], strtab[4], strtab[5], 0), size
    )
    blob = r.read(base + str_off, str_size)
    names = SharedReader(memoryview(blob), 0)
    # the other sections pass by (thousands, in a firmware of thousands of
    # segments, each costing a compare in Python)
    found: RscSection | None = None
    for i in _deciding_sections(shdrs[:, 0], blob).tolist():
        sh_name, _t, _f, sh_addr, sh_offset, sh_size = shdrs[i, :6].tolist()
        if sh_name >= str_size:
            raise _fmt(f"section {i}: sh_name {sh_name:#x} >= name table size")
        if not _exact_name(names, 0, str_size, sh_name):
            if name_matches(names, 0, str_size, sh_name):
                # upstream's bounded strncmp takes a name cut by the end of
                # the table for the resource table: refuse the ambiguity, so
                # strict never accepts what upstream would judge differently
                raise _fmt(
                    f"section {i}: name at sh_name {sh_name:#x} is cut by the "
                    "end of the name table and reads as .resource_table to "
                    "upstream's strncmp"
                )
            continue
        if found is not None:
            raise _fmt(f"sections {found.index} and {i} are both .resource_table")
        found = RscSection(sh_addr, sh_offset, sh_size, i)
        check_rsc_placement(r, base, size, found, strict=True)
    if found is None:
        raise TeeError(TeeResult.TEE_ERROR_NO_DATA, "no .resource_table section")
    return found


def check_rsc_table(
    r: SharedReader, base: int, size: int, s: RscSection, *, strict: bool
) -> None:
    """Checks on the table bytes at ``sh_offset`` in the image (spec 2.7)."""
    check_rsc_placement(r, base, size, s, strict=strict)
    check_rsc_header(r, base, s, strict=strict)


def check_rsc_placement(
    r: SharedReader, base: int, size: int, s: RscSection, *, strict: bool
) -> None:
    """Where the section puts the table: non-empty, in the image, aligned."""
    if s.sh_size == 0:
        if strict:
            raise _fmt(f"section {s.index} .resource_table: sh_size = 0 hides it")
        raise TeeError(TeeResult.TEE_ERROR_NO_DATA, ".resource_table sh_size = 0")
    if s.sh_offset + s.sh_size > size:
        raise _fmt(
            f".resource_table sh_offset {s.sh_offset:#x} + sh_size "
            f"{s.sh_size:#x} beyond image size {size:#x}"
        )
    if s.sh_size < RSC_HDR_SIZE:
        raise _fmt(f".resource_table sh_size = {s.sh_size:#x} < 16-byte header")
    if (r.addr + base + s.sh_offset) % 4:
        raise TeeError(
            TeeResult.TEE_ERROR_CORRUPT_OBJECT,
            f".resource_table at offset {s.sh_offset:#x} is not 4-byte aligned",
        )


def check_rsc_header(
    r: SharedReader, base: int, s: RscSection, *, strict: bool
) -> None:
    """The table's header (and, under strict, its offsets), read from ``r``."""
    ver, num, res0, res1 = struct.unpack(
        "<4I", r.read(base + s.sh_offset, RSC_HDR_SIZE)
    )
    if ver != 1:
        raise _fmt(f"resource table ver = {ver}, expected 1")
    if res0 or res1:
        raise _fmt(f"resource table reserved = {res0:#x}, {res1:#x}, expected 0")
    if RSC_HDR_SIZE + 4 * num > s.sh_size:
        raise _fmt(f"resource table num = {num}: offsets exceed sh_size {s.sh_size}")
    if strict:
        _check_rsc_offsets(r, base + s.sh_offset, num, s.sh_size)


def _check_rsc_offsets(r: SharedReader, table: int, num: int, size: int) -> None:
    first = RSC_HDR_SIZE + 4 * num
    for k in range(num):
        off = r.u32(table + RSC_HDR_SIZE + 4 * k)
        if off < first or off % 4 or off > size - 4:
            raise _fmt(
                f"resource table offset[{k}] = {off:#x}: outside [{first:#x}, "
                f"{size - 4:#x}] or misaligned"
            )
