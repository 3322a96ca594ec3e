"""Structured mutations of a signed image, as hypothesis strategies.

An image is kept as its parts (ELF files, TLV records, header fields) and
mutated field by field: ELF header fields, program headers (fields, swaps,
copies, removal), section headers, resource-table words, segment bytes, TLV
records (removed, duplicated, reordered, replaced, added), hash-table
entries, header words. :func:`assemble` then builds the image either

* **signed**: hash table and IMGSIZE recomputed from the mutated ELF files,
  TLV mutations applied, header and TLVs re-signed with the test key, so the
  mutation reaches the TA's deep checks (a hostile or careless signer); or
* **unsigned**: signed as the base was, then the mutations made to the
  finished image (an attacker without the key).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import strategies as st

from tee.factory import DK2, default_tlvs, pad8, r8, signed_image, tlv_area
from tee.fuzz_helpers import Base, hash_table_of

from .images import ROM, TOP

#: Values on the edges the loader's arithmetic and checks care about.
EDGES = (
    0, 1, 2, 3, 4, 7, 8, 0x10, 0x14, 0x20, 0x28, 0x34, 0x40, 0x7F, 0xFF, 0x100,
    0x1000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFF000, 0xFFFFFFF0,
    0xFFFFFFF8, 0xFFFFFFF9, 0xFFFFFFFC, 0xFFFFFFFF,
)  # fmt: skip
#: Region edges (just inside, on, just outside) of every test platform.
REGION_EDGES = tuple(
    sorted(
        {
            (x + d) & 0xFFFFFFFF
            for r in (*DK2, ROM, TOP[-1])
            for x in (r.da, r.da + r.size)
            for d in (-0x40, -8, 0, 8)
        }
    )
)
U32 = st.one_of(
    st.sampled_from(EDGES), st.sampled_from(REGION_EDGES), st.integers(0, 0xFFFFFFFF)
)
U16 = st.one_of(st.sampled_from((0, 1, 2, 3, 40, 52, 0x7FFF, 0xFFFF)),
                st.integers(0, 0xFFFF))  # fmt: skip
#: ELF header fields: (offset, struct format).
EHDR_FIELDS = ((4, "<B"), (5, "<B"), (6, "<B"), (16, "<H"), (18, "<H"), (24, "<I"),
               (28, "<I"), (32, "<I"), (42, "<H"), (44, "<H"), (46, "<H"),
               (48, "<H"), (50, "<H"))  # fmt: skip
TLV_TYPES = (1, 2, 3, 4, 5, 0x10, 0x11, 7, 0x10000, 0x1FFFF, 0x20000)
HEADER_FIELDS = ("magic", "version", "tlv_len", "sign_len", "img_len")


@dataclass
class Parts:
    """A signed image taken apart (mutable)."""

    base: Base
    elves: list[bytearray]
    records: list[tuple[int, bytes]] = field(default_factory=list)
    header: dict[str, int] = field(default_factory=dict)
    #: TLV record edits, applied to whichever records the image gets
    tlv_edits: list[Callable[[list[tuple[int, bytes]]], None]] = field(
        default_factory=list
    )


def parts_of(base: Base) -> Parts:
    return Parts(base, [bytearray(e) for e in base.elves])


# -- ELF field helpers ---------------------------------------------------------------


def u16(raw: bytes | bytearray, off: int) -> int:
    return int(struct.unpack_from("<H", raw, off)[0]) if off + 2 <= len(raw) else 0


def u32(raw: bytes | bytearray, off: int) -> int:
    return int(struct.unpack_from("<I", raw, off)[0]) if off + 4 <= len(raw) else 0


def store(raw: bytearray, off: int, fmt: str, value: int) -> None:
    """Pack ``value`` at ``off`` when it fits (a truncated ELF may not hold it)."""
    size = struct.calcsize(fmt)
    if 0 <= off and off + size <= len(raw):
        struct.pack_into(fmt, raw, off, value & ((1 << (8 * size)) - 1))


def phdr_offsets(raw: bytearray) -> list[int]:
    phoff, phnum = u32(raw, 28), min(u16(raw, 44), 64)
    return [phoff + 32 * i for i in range(phnum) if phoff + 32 * i + 32 <= len(raw)]


def shdr_offsets(raw: bytearray) -> list[int]:
    shoff, shnum = u32(raw, 32), min(u16(raw, 48), 64)
    return [shoff + 40 * i for i in range(shnum) if shoff + 40 * i + 40 <= len(raw)]


def rsc_offset(raw: bytearray) -> int | None:
    """File offset of the resource table (the shdr whose sh_name is 1)."""
    for sh in shdr_offsets(raw):
        if u32(raw, sh) == 1 and u32(raw, sh + 4) == 1:
            return u32(raw, sh + 16)
    return None


# -- the mutations ------------------------------------------------------------------

Mutator = Callable[[st.DrawFn, Parts], None]


def m_ehdr(draw: st.DrawFn, p: Parts) -> None:
    raw = draw(st.sampled_from(p.elves), label="elf")
    off, fmt = draw(st.sampled_from(EHDR_FIELDS), label="ehdr field")
    store(raw, off, fmt, draw(U16 if fmt != "<I" else U32, label="value"))


def m_phdr_field(draw: st.DrawFn, p: Parts) -> None:
    raw = draw(st.sampled_from(p.elves), label="elf")
    offs = phdr_offsets(raw)
    if offs:
        ph = draw(st.sampled_from(offs), label="phdr")
        store(raw, ph + 4 * draw(st.integers(0, 7), label="word"), "<I",
              draw(U32, label="value"))  # fmt: skip


def m_phdr_table(draw: st.DrawFn, p: Parts) -> None:
    """Swap, copy or drop program headers; change e_phnum."""
    raw = draw(st.sampled_from(p.elves), label="elf")
    offs = phdr_offsets(raw)
    if len(offs) < 1:
        return
    a, b = draw(st.sampled_from(offs)), draw(st.sampled_from(offs))
    kind = draw(st.sampled_from(["swap", "copy", "null", "phnum"]), label="op")
    if kind == "swap":
        raw[a : a + 32], raw[b : b + 32] = raw[b : b + 32], raw[a : a + 32]
    elif kind == "copy":
        raw[b : b + 32] = raw[a : a + 32]
    elif kind == "null":
        store(raw, a, "<I", 0)
    else:
        store(raw, 44, "<H", u16(raw, 44) + draw(st.integers(-2, 2), label="delta"))


def m_shdr_field(draw: st.DrawFn, p: Parts) -> None:
    raw = draw(st.sampled_from(p.elves), label="elf")
    offs = shdr_offsets(raw)
    if offs:
        sh = draw(st.sampled_from(offs), label="shdr")
        store(raw, sh + 4 * draw(st.integers(0, 9), label="word"), "<I",
              draw(U32, label="value"))  # fmt: skip


def m_rsc_word(draw: st.DrawFn, p: Parts) -> None:
    """A word of the resource table (header, offsets or entries)."""
    raw = p.elves[0]
    at = rsc_offset(raw)
    if at is not None:
        k = draw(st.integers(0, 36), label="rsc word")
        store(raw, at + 4 * k, "<I", draw(U32, label="value"))


def m_bytes(draw: st.DrawFn, p: Parts) -> None:
    """Flip a bit anywhere in an ELF (segment bytes, padding, tables)."""
    raw = draw(st.sampled_from(p.elves), label="elf")
    if raw:
        i = draw(st.integers(0, len(raw) - 1), label="byte")
        raw[i] ^= 1 << draw(st.integers(0, 7), label="bit")


def m_resize(draw: st.DrawFn, p: Parts) -> None:
    raw = draw(st.sampled_from(p.elves), label="elf")
    n = draw(st.integers(1, 96), label="bytes")
    if draw(st.booleans(), label="truncate"):
        del raw[max(len(raw) - n, 0) :]
    else:
        raw += bytes([0xA5]) * n


def m_tlv(draw: st.DrawFn, p: Parts) -> None:
    """A TLV record removed, duplicated, moved, replaced or added."""
    kind = draw(st.sampled_from(["drop", "dup", "move", "value", "type", "add"]),
                label="tlv op")  # fmt: skip
    k = draw(st.integers(0, 5), label="record")
    value = draw(st.one_of(st.binary(max_size=12),
                           U32.map(lambda v: struct.pack("<I", v))), label="value")
    kind_new = draw(st.sampled_from(TLV_TYPES), label="type")
    pos = draw(st.integers(0, 8), label="position")

    def edit(records: list[tuple[int, bytes]]) -> None:
        if not records and kind != "add":
            return
        i = k % max(len(records), 1)
        if kind == "drop":
            del records[i]
        elif kind == "dup":
            records.insert(pos % (len(records) + 1), records[i])
        elif kind == "move":
            records.insert(pos % len(records), records.pop(i))
        elif kind == "value":
            records[i] = (records[i][0], value)
        elif kind == "type":
            records[i] = (kind_new, records[i][1])
        else:
            records.insert(pos % (len(records) + 1), (kind_new, value))

    p.tlv_edits.append(edit)


def m_hash_entry(draw: st.DrawFn, p: Parts) -> None:
    """A word of a signed hash-table entry (program header or digest)."""
    word = draw(st.integers(0, 15), label="entry word")
    k = draw(st.integers(0, 7), label="entry")
    value = draw(U32, label="value")

    def edit(records: list[tuple[int, bytes]]) -> None:
        for i, (t, v) in enumerate(records):
            if t == 0x10 and len(v) >= 64:
                table = bytearray(v)
                struct.pack_into("<I", table, 64 * (k % (len(v) // 64)) + 4 * word,
                                 value)  # fmt: skip
                records[i] = (t, bytes(table))
                return

    p.tlv_edits.append(edit)


def m_header(draw: st.DrawFn, p: Parts) -> None:
    name = draw(st.sampled_from(HEADER_FIELDS), label="header field")
    p.header[name] = draw(U32, label="value")


ELF_MUTATORS: tuple[Mutator, ...] = (m_ehdr, m_phdr_field, m_phdr_field, m_phdr_table,
                                     m_shdr_field, m_rsc_word, m_rsc_word, m_bytes,
                                     m_resize)  # fmt: skip
META_MUTATORS: tuple[Mutator, ...] = (m_tlv, m_hash_entry, m_header)


@st.composite
def mutated(draw: st.DrawFn, bases: tuple[Base, ...], *, meta: bool = True) -> Parts:
    """One base image with 1-4 structured mutations."""
    p = parts_of(draw(st.sampled_from(bases), label="base"))
    pool = ELF_MUTATORS + (META_MUTATORS if meta else ())
    for _ in range(draw(st.integers(1, 4), label="mutations")):
        draw(st.sampled_from(pool), label="mutator")(draw, p)
    return p


# -- building the image -------------------------------------------------------------


def signed_records(p: Parts) -> list[tuple[int, bytes]]:
    """TLVs describing the mutated ELF files (a table per readable ELF)."""
    records = default_tlvs([bytes(e) for e in p.base.elves])
    tables = [hash_table_of(bytes(e)) for e in p.elves]
    if all(t is not None for t in tables):
        table = b"".join(t for t in tables if t is not None)
        records = [(t, table if t == 0x10 else v) for t, v in records]
    sizes = b"".join(struct.pack("<I", r8(len(e))) for e in p.elves)
    return [(t, sizes if t == 5 else v) for t, v in records]


def assemble(p: Parts, *, signed: bool) -> bytes:
    """The image of ``p``, re-signed or with the base's signature kept."""
    elves = [bytes(e) for e in p.elves]
    if signed:
        records = signed_records(p)
        for edit in p.tlv_edits:
            edit(records)
        return bytes(signed_image(elves, tlvs=records, **p.header))  # type: ignore[arg-type]
    records = default_tlvs([bytes(e) for e in p.base.elves])
    sig = bytes(signed_image(list(p.base.elves)))
    tlv_len0 = u32(sig, 8)
    signature = sig[20 + r8(tlv_len0) : 20 + r8(tlv_len0) + 256]
    for edit in p.tlv_edits:
        edit(records)
    area = tlv_area(records)
    images = b"".join(pad8(e) for e in elves)
    words = {"magic": 0x3543A468, "version": 1, "tlv_len": len(area),
             "sign_len": 256, "img_len": len(images), **p.header}  # fmt: skip
    hdr = struct.pack("<5I", *(words[k] for k in HEADER_FIELDS))
    return hdr + area + signature + images
