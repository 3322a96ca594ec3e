"""A crafted image for every item of the security checklist's sections 5 and 3.

Each :class:`Case` names the checklist items it covers (``5.1`` .. ``5.8``
for the inputs a correct loader must reject, ``W1`` .. ``W9`` for upstream's
weaknesses), builds its image from :mod:`tee.factory` pieces, and states the
answer of LOAD_FW under ``optee`` and under ``strict``; a strict-only
rejection also states what its reason must say. TOCTOU items (5.6) carry the
buffer change to make at one phase of the load (``on_phase`` hook); state
machine items (5.7) are command scripts (:data:`SCRIPTS`).

Where the expected ``optee`` answer is not spelled out in the spec, it is
derived from the step-by-step LOAD_FW of ``optee-remoteproc.md`` (sections
2.5-2.7) and the derivation is given in ``note``.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rproctee.tee import TeeResult
from tee.factory import (
    Seg,
    default_tlvs,
    pad8,
    r8,
    sign,
    signed_image,
    tlv_area,
)
from tee.fuzz_helpers import hash_table_of

from .images import (
    DEFAULT_ELF,
    RAW,
    TABLE,
    default_segs,
    make_elf_with_table,
    resource_table,
    trace_entry,
    vdev_entry,
)

R = TeeResult
S, BP, BF = R.TEE_SUCCESS, R.TEE_ERROR_BAD_PARAMETERS, R.TEE_ERROR_BAD_FORMAT
ND, NS, AD = R.TEE_ERROR_NO_DATA, R.TEE_ERROR_NOT_SUPPORTED, R.TEE_ERROR_ACCESS_DENIED
SEC, SI = R.TEE_ERROR_SECURITY, R.TEE_ERROR_SIGNATURE_INVALID
OOM, CO = R.TEE_ERROR_OUT_OF_MEMORY, R.TEE_ERROR_CORRUPT_OBJECT
DEAD, STATE = R.TEE_ERROR_TARGET_DEAD, R.TEE_ERROR_BAD_STATE

Mutation = Callable[[bytearray], None]
Blob = bytes | bytearray
Builder = Callable[[], Blob]
#: (phase name, which call of that phase, change to the caller's buffer)
During = tuple[str, Callable[[dict[str, Any]], bool], Mutation]


@dataclass(frozen=True)
class Case:
    """One crafted input and its expected LOAD_FW answers."""

    name: str
    refs: tuple[str, ...]
    build: Builder
    optee: TeeResult
    strict: TeeResult
    #: regex the strict reason must match (strict-only rejections)
    why: str = ""
    platform: str = "dk2"
    world_kw: dict[str, Any] = field(default_factory=dict)
    during: During | None = None
    note: str = ""

    def image(self) -> bytes:
        return _built(self.build)


@functools.cache
def _built(build: Builder) -> bytes:
    return bytes(build())


# -- layout of the default image (tests/security/images.py) ------------------------

ELF = DEFAULT_ELF
PH0, PH1 = 52, 84
RSC_SHDR = ELF.rsc_shdr or 0
SH_NAME, SH_ADDR, SH_OFFSET, SH_SIZE = (RSC_SHDR + k for k in (0, 12, 16, 20))
RSC_OFF = struct.unpack_from("<I", RAW, SH_OFFSET)[0]  # table's file offset
RSC_DA = struct.unpack_from("<I", RAW, SH_ADDR)[0]
SEG0, SEG1 = ELF.seg_offsets
GOOD = bytes(signed_image([RAW]))
TLV_LEN = struct.unpack_from("<I", GOOD, 8)[0]
SIG_OFF = 20 + r8(TLV_LEN)
IMG_OFF = SIG_OFF + 256


def put(buf: bytes | bytearray, off: int, fmt: str, *vals: int) -> bytearray:
    out = bytearray(buf)
    struct.pack_into(fmt, out, off, *vals)
    return out


def unsigned(off: int, fmt: str, *vals: int) -> Builder:
    """The ELF edited after signing (the signed hash table is the original)."""
    return lambda: signed_image([bytes(put(RAW, off, fmt, *vals))], signed_elves=[RAW])


def signed(elf: Builder) -> Builder:
    """A validly signed image around ``elf()``: only the TA's checks stop it."""
    return lambda: signed_image([bytes(elf())], signed_elves=None)


def signed_edit(off: int, fmt: str, *vals: int) -> Builder:
    return signed(lambda: put(RAW, off, fmt, *vals))


def signed_segs(segs: list[Seg], table: Blob = TABLE, rsc_in: int | None = 0
                ) -> Builder:  # fmt: skip
    return signed(lambda: make_elf_with_table(segs, table, rsc_in=rsc_in).raw)


def with_table(table: Blob) -> Builder:
    """The default segments, validly signed, with another resource table."""

    def elf() -> bytearray:
        built = make_elf_with_table(default_segs(), table)
        raw, sh = built.raw, built.rsc_shdr or 0
        at, size = struct.unpack_from("<2I", raw, sh + 16)
        assert raw[at : at + size] == table  # the table is the one asked for
        return raw

    return signed(elf)


def tlvs(change: Callable[[list[tuple[int, bytes]]], object]) -> Builder:
    """The default TLV records changed, then signed."""

    def build() -> Blob:
        records = default_tlvs([RAW])
        change(records)
        return signed_image([RAW], tlvs=records)

    return build


def setitem(k: int, record: tuple[int, bytes]) -> Callable[[list[Any]], None]:
    return lambda t: t.__setitem__(k, record)


def header(**fields: int) -> Builder:
    """Signed header fields overridden (signature over the new header)."""
    return lambda: signed_image([RAW], **fields)  # type: ignore[arg-type]


def image_edit(off: int, fmt: str, *vals: int) -> Builder:
    """Any byte of the finished image changed (no re-signing)."""
    return lambda: put(GOOD, off, fmt, *vals)


def from_area(area: bytes, *, tlv_len: int | None = None,
              signed_part: Callable[[bytes, bytes], bytes] | None = None,
              sign_len: int = 256) -> bytes:  # fmt: skip
    """An image around a raw TLV area (its records as they are)."""
    n = len(area) if tlv_len is None else tlv_len
    hdr = struct.pack("<5I", 0x3543A468, 1, n, sign_len, len(pad8(RAW)))
    message = signed_part(hdr, area) if signed_part else hdr + area[: r8(n)]
    return hdr + area + pad8(sign(message)) + pad8(RAW)


@functools.cache
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signed_by_other_key() -> Blob:
    sig = other_key().sign(GOOD[:SIG_OFF], padding.PKCS1v15(), hashes.SHA256())
    return GOOD[:SIG_OFF] + sig + GOOD[IMG_OFF:]


def tlv_len_wraps() -> Blob:
    """W1: tlv_len 0xFFFFFFFF rounds up to 0 in 32 bits: the TA sees no TLV
    area at all (header, signature, images) and a balanced size sum."""
    images = pad8(RAW)
    hdr = struct.pack("<5I", 0x3543A468, 1, 0xFFFFFFFF, 256, len(images))
    return hdr + sign(hdr) + images


def other_elf_spliced() -> Blob:
    """Mix-and-match: same layout, other content, validly signed elsewhere."""
    segs = [Seg(0x0, bytes(range(64, 128)) * 2), Seg(0x10000000, b"\x22" * 8, 0x208)]
    other = bytes(make_elf_with_table(segs).raw)
    assert len(other) == len(RAW)
    return GOOD[:IMG_OFF] + pad8(other)


def elf_with(*edits: tuple[int, str, int]) -> bytearray:
    raw = bytearray(RAW)
    for off, fmt, val in edits:
        struct.pack_into(fmt, raw, off, val)
    return raw


def phdr_copy(dst: int, src: int = PH0, phnum: int | None = None) -> bytearray:
    """Program header ``src`` copied over ``dst`` (and e_phnum set)."""
    raw = bytearray(RAW)
    raw[dst : dst + 32] = RAW[src : src + 32]
    if phnum is not None:
        struct.pack_into("<H", raw, 44, phnum)
    return raw


def phdrs_swapped() -> bytearray:
    raw = bytearray(RAW)
    raw[PH0 : PH0 + 32], raw[PH1 : PH1 + 32] = RAW[PH1 : PH1 + 32], RAW[PH0 : PH0 + 32]
    return raw


def duplicate_signed_phdr() -> Blob:
    """Finding 1: program header 0 copied over header 1, hash table rebuilt
    from the edited ELF, re-signed."""
    elf = bytes(phdr_copy(PH1))
    records = default_tlvs([elf])
    table = hash_table_of(elf)
    assert table is not None
    records = [(t, table if t == 0x10 else v) for t, v in records]
    return signed_image([elf], tlvs=records)


def validated_differs_from_reported() -> Blob:
    """sh_offset names a valid table the loader never writes (appended after
    the section headers); the loaded, signed table at sh_addr is invalid."""
    raw = put(RAW, RSC_OFF, "<I", 2)  # the loaded table: ver 2
    at = len(raw) + (-len(raw) % 4)
    raw = bytearray(raw.ljust(at, b"\0")) + TABLE
    struct.pack_into("<I", raw, SH_OFFSET, at)
    return signed_image([bytes(raw)])


def two_rsc_sections() -> Blob:
    """The name-table section renamed ``.resource_table`` too (sh_name 1)."""
    shstr = RSC_SHDR + 40
    return signed_image([bytes(put(RAW, shstr, "<I", 1))])


def long_tlv_past_area(length: int, value: bytes) -> Builder:
    """A platform TLV whose length runs past the area, after the real ones."""

    def build() -> Blob:
        area = tlv_area(default_tlvs([RAW]))
        return from_area(area + struct.pack("<2I", 0x10000, length) + value)

    return build


def unpadded_signature() -> Blob:
    """The signature covers the TLV area without its final padding."""
    area = tlv_area([*default_tlvs([RAW]), (0x10000, b"abc")])
    n = len(area) - 5
    return from_area(area, tlv_len=n, signed_part=lambda h, a: h + a[:n])


def many_tlvs() -> Blob:
    noise = [(0x10000 + i % 0x10000, struct.pack("<I", i)) for i in range(20_000)]
    return signed_image([RAW], tlvs=noise + default_tlvs([RAW]))


def carveout_entry(da: int, length: int) -> bytes:
    return struct.pack("<6I32s", 0, da, da, length, 0, 0, b"outside")


def vdev_table(**kw: Any) -> bytes:
    return resource_table([vdev_entry([(0x10040000, 16, 8), (0x10041000, 16, 8)],
                                      **kw)])  # fmt: skip


def rsc_offsets(*offsets: int) -> bytes:
    """The default table's entries with their offset array replaced."""
    return resource_table(
        [trace_entry(0x10048000, 0x1000),
         vdev_entry([(0x10040000, 16, 8), (0x10041000, 16, 8)])],
        offsets=list(offsets),
    )  # fmt: skip


# -- TOCTOU mutations --------------------------------------------------------------


def first(_info: dict[str, Any]) -> bool:
    return True


def copy_no(k: int) -> Callable[[dict[str, Any]], bool]:
    return lambda info: info.get("copy") == k


def phdr_no(k: int) -> Callable[[dict[str, Any]], bool]:
    return lambda info: info.get("index") == k


def at(off: int, fmt: str, *vals: int) -> Mutation:
    def mutate(buf: bytearray) -> None:
        struct.pack_into(fmt, buf, off, *vals)

    return mutate


def flip(off: int) -> Mutation:
    def mutate(buf: bytearray) -> None:
        buf[off] ^= 0xFF

    return mutate


def overwrite(data: Callable[[], bytes], start: int = 0, end: int | None = None
              ) -> Mutation:  # fmt: skip
    def mutate(buf: bytearray) -> None:
        new = data()
        buf[start : end if end is not None else len(new)] = new[start:end]

    return mutate


def other_signed_image() -> bytes:
    """Same layout as GOOD, other content: other hashes, other signature."""
    segs = [Seg(0x0, bytes(range(64, 128)) * 2), Seg(0x10000000, b"\x22" * 8, 0x208)]
    img = bytes(signed_image([bytes(make_elf_with_table(segs).raw)]))
    assert len(img) == len(GOOD) and img[:20] == GOOD[:20]
    return img


def good() -> bytes:
    return GOOD


class TaFault(RuntimeError):
    """Stands for any defect that makes the TA abort mid-call."""


def fault(_buf: bytearray) -> None:
    raise TaFault("injected through on_phase")


E = IMG_OFF  # ELF offsets below are relative to the image start


# -- the cases ---------------------------------------------------------------------

W1_NOTE = (
    "checklist W1 and spec 2.9: the 4 GiB signature memref is refused by the "
    "core and libutee panics the TA (TARGET_DEAD, state lost)"
)
PHNUM_NOTE = (
    "spec 2.6: upstream loops over 65535 entries read in place; the zero "
    "bytes after the table are PT_NULL entries (skipped) until an entry "
    "leaves the image: BAD_FORMAT (no garbage entry of this layout is PT_LOAD)"
)

CASES: tuple[Case, ...] = (
    # ---- 5.1 header --------------------------------------------------------------
    Case("bad-magic", ("5.1",), header(magic=0x12345678), BP, BP),
    Case("unknown-version", ("5.1",), header(version=2), BP, BP),
    Case("tlv_len-0", ("5.1",), header(tlv_len=0), BP, BP),
    Case("sign_len-0", ("5.1",), image_edit(12, "<I", 0), BP, BP),
    Case("img_len-off", ("5.1",), header(img_len=len(pad8(RAW)) + 8), BP, BP),
    Case("truncated-file", ("5.1",), lambda: GOOD[:-8], BP, BP),
    Case("trailing-bytes", ("5.1",), lambda: GOOD + bytes(8), BP, BP),
    Case("shorter-than-header", ("5.1", "W8"), lambda: GOOD[:12], BP, BP,
         note="spec 2.5 step 5: upstream reads the header first (W8: the "
              "rest of the mapped page reads as zero), then n <= L"),
    Case("empty-buffer", ("5.1",), lambda: b"", BP, BP),
    Case("size-sum-overflows", ("5.1",),
         header(tlv_len=0x80000000, sign_len=0x7FFFFFF0), BP, BP),
    Case("tlv_len-round-up-wraps", ("5.1", "W1"), tlv_len_wraps, BP, BP,
         why="wraps",
         note="checklist W1 (run on the real 32-bit TA): the TLV walk's end "
              "pointer wraps, SIGNTYPE counts as missing: BAD_PARAMETERS"),
    Case("sign_len-round-up-wraps", ("5.1", "W1"),
         lambda: signed_image([RAW], sign_len=0xFFFFFFFF, signature=b""),
         DEAD, BP, why="wraps", note=W1_NOTE),
    Case("sign_len-0xfffffff9", ("5.1", "W1"),
         lambda: signed_image([RAW], sign_len=0xFFFFFFF9, signature=b""),
         DEAD, BP, why="wraps", note=W1_NOTE),
    Case("img_len-0xffffffff", ("5.1",), header(img_len=0xFFFFFFFF), BP, BP,
         note="spec 2.5 steps 5-6: r8 wraps to 0, the sum is then L = n - "
              "images, so either n <= L or the total differs: BAD_PARAMETERS"),
    Case("tlv_len-beyond-file", ("5.1",), header(tlv_len=0x10000), BP, BP),
    Case("tlv_len-cuts-last-tlv", ("5.1",), header(tlv_len=TLV_LEN - 4), ND, BP,
         note="spec 1.3: a record whose value does not fit is skipped, so the "
              "walk bounded by tlv_len misses HASHTABLE (step 10: NO_DATA)"),
    Case("huge-img_len", ("5.1", "5.8"), header(img_len=0x7FFFFFF8), BP, BP),
    # ---- 5.2 signature and signed metadata ---------------------------------------
    Case("wrong-key", ("5.2",), signed_by_other_key, SI, SI),
    Case("signature-flipped", ("5.2",),
         image_edit(SIG_OFF + 7, "<B", GOOD[SIG_OFF + 7] ^ 0x01), SI, SI),
    Case("signature-zeroed", ("5.2",), lambda: GOOD[:SIG_OFF] + bytes(256)
         + GOOD[IMG_OFF:], SI, SI),
    Case("signature-truncated", ("5.2",), header(sign_len=255), SI, SI,
         note="spec 3.2: the stm32mp PTA wants exactly the modulus length"),
    Case("tlv-byte-after-signing", ("5.2",),
         image_edit(20 + 8 * 9, "<B", GOOD[20 + 72] ^ 1), SI, SI),
    Case("header-byte-after-signing", ("5.2",),
         lambda: put(GOOD, 16, "<I", len(pad8(RAW)) + 8) + bytes(8), SI, SI),
    Case("signed-header-only", ("5.2",),
         lambda: from_area(tlv_area(default_tlvs([RAW])),
                           signed_part=lambda h, a: h), SI, SI),
    Case("signed-header-tlvs-image", ("5.2",),
         lambda: from_area(tlv_area(default_tlvs([RAW])),
                           signed_part=lambda h, a: h + a + pad8(RAW)), SI, SI),
    Case("signed-tlvs-without-padding", ("5.2",), unpadded_signature, SI, SI),
    Case("unknown-algorithm", ("5.2",), tlvs(setitem(0, (1, b"\3"))), NS, NS),
    Case("ecdsa-on-rsa-only-platform", ("5.2",), tlvs(setitem(0, (1, b"\2"))), NS, NS),
    Case("algorithm-confusion", ("5.2",), tlvs(setitem(0, (1, b"\2"))), SI, SI,
         world_kw={"accept_ecdsa": True},
         note="the platform key (RSA) fixes the algorithm: an RSA signature "
              "under SIGNTYPE ECDSA does not verify as ECDSA"),
    Case("signtype-missing", ("5.2",), tlvs(lambda t: t.pop(0)), BP, BP),
    Case("signtype-wrong-length", ("5.2",), tlvs(setitem(0, (1, b"\1\1"))), BP, BP),
    Case("signtype-duplicated", ("5.2", "W6"), tlvs(lambda t: t.append((1, b"\2"))),
         S, BP, why="duplicated"),
    Case("pkeyinfo-on-platform-ignoring-it", ("5.2",),
         tlvs(lambda t: t.append((0x11, b"key-0"))), S, BP, why="PKEYINFO",
         note="issue 7: key-selection data must never reach a platform that "
              "ignores it; stm32mp ignores PKEYINFO (spec 1.3), upstream loads"),
    Case("hashtable-missing", ("5.2",), tlvs(lambda t: t.pop(5)), ND, ND),
    Case("hashtable-empty", ("5.2",), tlvs(setitem(5, (0x10, b""))), ND, ND),
    Case("hashtable-not-multiple-of-64", ("5.2",),
         tlvs(lambda t: t.__setitem__(5, (0x10, t[5][1][:-1]))), BP, BP),
    Case("hashtable-duplicated", ("5.2", "W6"), tlvs(lambda t: t.append(t[5])),
         S, BP, why="duplicated"),
    Case("unknown-generic-tlv", ("5.2", "W6"), tlvs(lambda t: t.append((7, b"x"))),
         S, BP, why="unknown generic"),
    Case("tlv-length-huge", ("5.2",), long_tlv_past_area(0xFFFFFFF0, b""), S, BP,
         why="runs past",
         note="spec 1.3: the walk skips a record whose value does not fit; "
              "placed last, every record the TA needs comes before it"),
    Case("tlv-length-past-area", ("5.2",), long_tlv_past_area(16, bytes(8)), S, BP,
         why="runs past"),
    Case("num_img-0", ("5.2",), tlvs(setitem(1, (3, b"\0"))), ND, ND),
    Case("num_img-missing", ("5.2",), tlvs(lambda t: t.pop(1)), ND, ND),
    Case("num_img-wrong-length", ("5.2",), tlvs(setitem(1, (3, b"\1\0"))), BF, BF),
    Case("num_img-inconsistent", ("5.2",), tlvs(setitem(1, (3, b"\2"))), BP, BP,
         note="spec 2.5 step 12: IMGTYPE length 1 != NUM_IMG 2"),
    Case("imgtype-not-elf", ("5.2",), tlvs(setitem(2, (4, b"\2"))), BF, BF),
    Case("imgsize-vs-img_len", ("5.2", "W6"),
         tlvs(setitem(3, (5, struct.pack("<I", len(pad8(RAW)) + 8)))), S, BP,
         why="IMGSIZE"),
    Case("hashtype-unknown", ("5.2", "W6"), tlvs(setitem(4, (2, b"\2"))), S, NS,
         why="HASHTYPE"),
    Case("20k-tlvs", ("5.2", "5.8"), many_tlvs, OOM, OOM,
         note="spec 2.1: the 4 KiB TA heap cannot hold the header copy"),
    # ---- 5.3 ELF -----------------------------------------------------------------
    Case("elf-bad-magic", ("5.3",), unsigned(0, "<B", 0), BF, BF),
    Case("elfclass64", ("5.3",), unsigned(4, "<B", 2), BF, BF),
    Case("ei_data-big-endian", ("5.3", "W4"), unsigned(5, "<B", 2), S, BF,
         why="EI_DATA"),
    Case("ei_version-0", ("5.3",), unsigned(6, "<B", 0), BF, BF),
    Case("e_machine-x86_64", ("5.3", "W4"), unsigned(18, "<H", 62), S, BF,
         why="e_machine"),
    Case("e_type-rel", ("5.3", "W4"), unsigned(16, "<H", 1), S, BF, why="e_type"),
    Case("e_phentsize-56", ("5.3",), unsigned(42, "<H", 56), BF, BF),
    Case("e_shentsize-64", ("5.3",), unsigned(46, "<H", 64), BF, BF),
    Case("e_phnum-0", ("5.3",), unsigned(44, "<H", 0), BF, BF),
    Case("e_phoff-past-end", ("5.3",), unsigned(28, "<I", 0x10000), BF, BF),
    Case("e_phoff-misaligned", ("5.3",), unsigned(28, "<I", 54), BF, BF),
    Case("e_phnum-65535", ("5.3", "5.8"), unsigned(44, "<H", 0xFFFF), BF, BF,
         note=PHNUM_NOTE),
    Case("e_shoff-past-end", ("5.3",), unsigned(32, "<I", 0x10000), BF, BF),
    Case("e_shstrndx-out-of-range", ("5.3",), unsigned(50, "<H", 9), BF, BF),
    Case("sh_name-out-of-range", ("5.3",), unsigned(SH_NAME, "<I", 0x1000), BF, BF),
    Case("p_offset-beyond-image", ("5.3",),
         unsigned(PH1 + 4, "<I", len(pad8(RAW)) - 4), BF, BF),
    Case("p_offset-wraps", ("5.3",), signed_edit(PH1 + 4, "<I", 0xFFFFFFF0), BF, BF),
    Case("p_filesz-gt-p_memsz-unsigned", ("5.3",), unsigned(PH1 + 20, "<I", 4),
         BP, BP, note="spec 2.6: p_memsz differs from the signed entry"),
    Case("p_filesz-gt-p_memsz-signed", ("5.3", "W5"),
         signed_segs([Seg(0x0, b"a" * 0x40, 0x10), Seg(0x10000000, b"b" * 16)],
                     rsc_in=1), S, BF, why="p_filesz"),
    Case("p_memsz-edited", ("5.3",), unsigned(PH1 + 20, "<I", 0x300), BP, BP),
    Case("p_paddr-edited", ("5.3",), unsigned(PH1 + 12, "<I", 0x10000100), ND, ND),
    Case("segment-dropped-pt_null", ("5.3", "W2"), unsigned(PH1, "<I", 0), S, BP,
         why="dropped"),
    Case("segment-dropped-e_phnum", ("5.3", "W2"), unsigned(44, "<H", 1), S, BP,
         why="dropped"),
    Case("segment-duplicated-unsigned", ("5.3", "W2"),
         lambda: signed_image([bytes(phdr_copy(PH1))], signed_elves=[RAW]), S, BP,
         why="differs from signed",
         note="spec 2.6: both headers match hash entry 0 by p_paddr; the "
              "signed segment 1 is never loaded"),
    Case("segment-duplicated-signed", ("5.3", "W2", "W5", "F1"), duplicate_signed_phdr,
         S, BF, why="overlap",
         note="issue 7 finding 1: strict raised TypeError here"),
    Case("extra-pt_load-unsigned", ("5.3", "W2"),
         lambda: signed_image([bytes(phdr_copy(PH1 + 32, PH0, 3))],
                              signed_elves=[RAW]), S, BP, why="more PT_LOAD"),
    Case("extra-pt_load-unknown-paddr", ("5.3",),
         lambda: signed_image([bytes(put(phdr_copy(PH1 + 32, PH0, 3), PH1 + 44,
                                         "<I", 0x30000000))], signed_elves=[RAW]),
         ND, ND),
    Case("segments-reordered", ("5.3", "W2"),
         lambda: signed_image([bytes(phdrs_swapped())], signed_elves=[RAW]), S, BP,
         why="order"),
    Case("segment-bytes-changed", ("5.3",), unsigned(SEG1, "<B", 0xEE), SEC, SEC),
    Case("segment-bytes-changed-first", ("5.3", "W7"), unsigned(SEG0, "<B", 0xEE),
         SEC, SEC),
    Case("mix-and-match-elf", ("5.3",), other_elf_spliced, SEC, SEC),
    # ---- 5.4 device-memory regions (validly signed) ------------------------------
    Case("segment-outside-regions", ("5.4", "W7"),
         signed_segs([*default_segs(), Seg(0x20000000, b"o" * 16)]), AD, AD),
    Case("segment-straddles-region-end", ("5.4",),
         signed_segs([*default_segs(), Seg(0xFFF0, b"s" * 0x40)]), AD, AD),
    Case("segment-spans-adjacent-regions", ("5.4",),
         signed_segs([*default_segs(), Seg(0x10040F00, b"v" * 0x200)]), AD, AD),
    Case("zero-fill-beyond-region", ("5.4",),
         signed_segs([*default_segs(), Seg(0x1004FF00, b"z" * 16, 0x200)]), AD, AD),
    Case("p_memsz-2GiB", ("5.4", "5.8"),
         signed_segs([default_segs()[0], Seg(0x10000000, b"m" * 8, 0x80000000)]),
         AD, AD),
    Case("p_memsz-4GiB", ("5.4", "5.8"),
         signed_segs([default_segs()[0], Seg(0x10000000, b"m" * 8, 0xFFFFFFFF)]),
         AD, BF, why="wraps",
         note="spec 2.6 step 3: SET_MEMORY of 4 GiB - 8 is refused by the "
              "translation (ACCESS_DENIED)"),
    Case("p_paddr-plus-p_memsz-wraps", ("5.4",),
         signed_segs([*default_segs(), Seg(0xFFFFFF00, b"w" * 16, 0x200)]),
         AD, BF, platform="top", why="wraps",
         note="spec 2.6 steps 2-3: the copy lands in the top region, the "
              "zero-fill range is checked on its own and leaves it"),
    Case("zero-fill-clobbers-verified-segment", ("5.4", "W5"),
         signed_segs([default_segs()[0], Seg(0x10000080, b"v" * 16),
                      Seg(0x10000000, b"a" * 16, 0x100)]), S, BF, why="overlap"),
    Case("overlapping-file-parts", ("5.4", "W5"),
         signed_segs([default_segs()[0], Seg(0x10000000, b"a" * 0x40),
                      Seg(0x10000020, b"b" * 16, 0x40)]), S, BF, why="overlap"),
    Case("zero-size-pt_load-outside", ("5.4",),
         signed_segs([*default_segs(), Seg(0x20000000, b"", 0)]), S, S,
         note="positive control: nothing to write, nothing written"),
    Case("file-and-fill-in-adjacent-regions", ("5.4", "W9"),
         signed_segs([default_segs()[0], Seg(0x1003FF00, b"f" * 0x100, 0x200)]),
         S, AD, why="whole segment",
         note="upstream translates and writes the file bytes and the zero-fill "
              "apart, so a segment may straddle two adjacent regions; strict "
              "keeps a segment in one region, as Linux's rproc_da_to_va does"),
    # ---- 5.5 resource table ------------------------------------------------------
    Case("rsc-sh_addr-in-no-segment", ("5.5", "W3"),
         unsigned(SH_ADDR, "<I", 0x30000000), S, BF, why="resource.table"),
    Case("rsc-sh_addr-in-bss", ("5.5", "W3"), unsigned(SH_ADDR, "<I", 0x10000010),
         S, BF, why="resource.table"),
    Case("rsc-sh_addr-outside-regions", ("5.5",), unsigned(SH_ADDR, "<I", 0x20000000),
         AD, BF, why="resource.table"),
    Case("rsc-sh_offset-past-end", ("5.5",), unsigned(SH_OFFSET, "<I", 0x10000),
         BF, BF),
    Case("rsc-sh_size-lt-16", ("5.5",), unsigned(SH_SIZE, "<I", 8), BF, BF),
    Case("rsc-sh_size-0", ("5.5", "W3"), unsigned(SH_SIZE, "<I", 0), S, BF,
         why="sh_size"),
    Case("rsc-sh_size-past-segment", ("5.5", "W3"),
         unsigned(SH_SIZE, "<I", len(TABLE) + 0x40), S, BF, why="resource.table"),
    Case("rsc-validated-differs-from-reported", ("5.5", "W3"),
         validated_differs_from_reported, S, BF, why="resource.table"),
    Case("rsc-ver-2", ("5.5",), with_table(put(TABLE, 0, "<I", 2)), BF, BF),
    Case("rsc-reserved-set", ("5.5",), with_table(put(TABLE, 8, "<I", 1)), BF, BF),
    Case("rsc-num-exceeds-size", ("5.5",), with_table(put(TABLE, 4, "<I", 99)),
         BF, BF),
    Case("rsc-num-overflows", ("5.5", "5.8"),
         with_table(put(TABLE, 4, "<I", 0x40000000)), BF, BF,
         note="spec 2.7: 16 + 4 x num > sh_size (computed without wrapping, "
              "as the spec states it; a 32-bit size_t product would wrap)"),
    Case("rsc-entry-offset-past-end", ("5.5",), with_table(rsc_offsets(24, 0x1000)),
         S, BF, why="offset|truncated"),
    Case("rsc-entry-offset-negative", ("5.5",),
         with_table(rsc_offsets(24, 0xFFFFFFF0)), S, BF, why="offset|truncated"),
    Case("rsc-entry-offset-into-header", ("5.5",), with_table(rsc_offsets(4, 72)),
         S, BF, why="offset|truncated"),
    Case("rsc-entry-offset-unaligned", ("5.5",), with_table(rsc_offsets(25, 72)),
         S, BF, why="offset|misaligned"),
    Case("rsc-vdev-more-vrings-than-table", ("5.5",),
         with_table(vdev_table(num_of_vrings=4)), S, BF, why="vdev|vring|truncated"),
    Case("rsc-vdev-config_len-overruns", ("5.5",),
         with_table(vdev_table(config_len=64)), S, BF, why="vdev|truncated"),
    Case("rsc-vdev-config_len-wraps", ("5.5",),
         with_table(vdev_table(config_len=0xFFFFFFF0)), S, BF,
         why="vdev|truncated"),
    Case("rsc-vdev-too-many-vrings", ("5.5",),
         with_table(resource_table([vdev_entry([(0x10040000, 16, 8)] * 3)])),
         S, BF, why="vring"),
    Case("rsc-carveout-outside-regions", ("5.5",),
         with_table(resource_table([carveout_entry(0x20000000, 0x1000)])), S, S,
         note="not closed by either policy: the table's format is valid; "
              "whether a carveout address is usable is the host's check "
              "(rproc_check_carveout_da), see SECURITY.md"),
    Case("rsc-two-sections", ("5.5",), two_rsc_sections, S, BF,
         why="resource.table|ver"),
    Case("rsc-misaligned", ("5.5",), unsigned(SH_OFFSET, "<I", RSC_OFF + 2), CO, CO),
    # ---- 5.6 TOCTOU: the caller changes its buffer during the load ---------------
    Case("toctou-tlvs-swapped-after-auth", ("5.6",), good, S, S,
         during=("authenticated", first, overwrite(other_signed_image, 0, IMG_OFF))),
    Case("toctou-whole-buffer-swapped-after-auth", ("5.6",), good, SEC, SEC,
         during=("authenticated", first, overwrite(other_signed_image))),
    Case("toctou-segment-changed-before-copy", ("5.6",), good, SEC, SEC,
         during=("segment_copy_before", copy_no(0), flip(E + SEG0 + 3))),
    Case("toctou-segment-changed-after-copy", ("5.6",), good, S, S,
         during=("segment_copy_after", copy_no(0), flip(E + SEG0 + 3))),
    Case("toctou-phdr-changed-after-check", ("5.6",), good, S, S,
         during=("phdr_checked", phdr_no(0), at(E + PH0 + 12, "<I", 0x30000000))),
    Case("toctou-e_phoff-changed-after-ehdr-check", ("5.6", "F4"), good, BF, S,
         during=("ehdr_checked", first, at(E + 28, "<I", 0x10000)),
         note="spec 2.6: upstream reads e_phoff again for the table (double "
              "fetch); strict uses its one copy (issue 7 finding 4)"),
    Case("toctou-e_phnum-reduced-after-ehdr-check", ("5.6", "W2"), good, S, S,
         during=("ehdr_checked", first, at(E + 44, "<H", 1)),
         note="upstream re-reads e_phnum each pass and drops segment 1; "
              "strict loads both (its exact-content check)"),
    Case("toctou-e_shoff-changed-before-rsc-lookup", ("5.6", "W3", "F4"), good, BF, S,
         during=("rsc_lookup_before", first, at(E + 32, "<I", 0x10000)),
         note="spec 2.7: upstream reads the ELF header again for e_shoff; "
              "strict uses its one copy (issue 7 finding 4)"),
    Case("toctou-shdr-changed-before-rsc-lookup", ("5.6", "W3"), good, S, BF,
         during=("rsc_lookup_before", first, at(E + SH_ADDR, "<I", 0x10000000)),
         why="resource.table"),
    Case("toctou-header-sizes-changed-after-copy", ("5.6",), good, S, S,
         during=("header_copied", first, at(8, "<3I", 0xFFFFFFFF, 0, 0x7FFFFFF8))),
    # ---- issue 7 findings 2 and 3: a TA fault; a read-only region (ROM) ---------
    Case("ta-fault-after-authentication", ("F2",), good, DEAD, DEAD,
         during=("authenticated", first, fault),
         note="a real TEE answers TARGET_DEAD when a TA dies, state lost"),
    Case("ta-fault-after-first-copy", ("F2", "W7"), good, DEAD, DEAD,
         during=("segment_copy_after", copy_no(0), fault),
         note="strict: the dying TA wipes what it wrote (invariant 3)"),
    Case("rom-platform-loads", ("F3",), good, S, S, platform="rx",
         note="positive control: RELEASE_FW skips the ROM and succeeds"),
    Case("segment-aimed-at-rom", ("F3", "5.4"),
         signed_segs([*default_segs(), Seg(0x08000000, b"r" * 16)]), AD, AD,
         platform="rx", why="read-only|rom",
         note="upstream has no read-only region; the loader may not write "
              "one (strict: refused by the plan, before any write)"),
    Case("hash-mismatch-on-rom-platform", ("F3", "W7"), unsigned(SEG1, "<B", 0xEE),
         SEC, SEC, platform="rx",
         note="the first error is reported; the scrub skips the ROM"),
)


# -- 5.7 state machine: command scripts --------------------------------------------

#: A step: (command, processor id, image or None), expected under optee and
#: strict. Images: "good", "bad" (segment 1 hash mismatch: upstream writes
#: segment 0 first), "junk".
Step = tuple[str, int, str | None, TeeResult, TeeResult]

SCRIPTS: dict[str, tuple[Step, ...]] = {
    "start-before-load": (("START_FW", 0, None, BP, BP),
                          ("GET_RSC_TABLE", 0, None, BP, BP)),
    "second-load-while-loaded-not-reparsed": (
        ("LOAD_FW", 0, "good", S, S), ("LOAD_FW", 0, "junk", S, S),
        ("START_FW", 0, None, S, S)),
    "load-while-running": (("LOAD_FW", 0, "good", S, S), ("START_FW", 0, None, S, S),
                           ("LOAD_FW", 0, "good", STATE, STATE)),
    "stop-when-loaded-and-off": (
        ("LOAD_FW", 0, "bad", SEC, SEC), ("STOP_FW", 0, None, S, S),
        ("LOAD_FW", 0, "good", S, S), ("STOP_FW", 0, None, STATE, STATE)),
    "release-while-running": (("LOAD_FW", 0, "good", S, S), ("START_FW", 0, None, S, S),
                              ("RELEASE_FW", 0, None, STATE, STATE),
                              ("STOP_FW", 0, None, S, S),
                              ("RELEASE_FW", 0, None, S, S)),
    "unknown-processor-id": (("LOAD_FW", 5, "good", NS, NS),
                             ("START_FW", 5, None, STATE, STATE)),
    "rsc-table-before-and-after-failed-load": (
        ("GET_RSC_TABLE", 0, None, BP, BP), ("LOAD_FW", 0, "junk", BP, BP),
        ("GET_RSC_TABLE", 0, None, STATE, STATE)),
    "start-after-half-failed-load-then-recovery": (
        ("LOAD_FW", 0, "bad", SEC, SEC), ("START_FW", 0, None, STATE, STATE),
        ("RELEASE_FW", 0, None, S, S), ("LOAD_FW", 0, "good", S, S),
        ("START_FW", 0, None, S, S)),
    "restart-needs-reauthentication": (
        ("LOAD_FW", 0, "good", S, S), ("START_FW", 0, None, S, S),
        ("STOP_FW", 0, None, S, S), ("START_FW", 0, None, STATE, STATE),
        ("GET_RSC_TABLE", 0, None, STATE, STATE)),
    "release-then-start": (("LOAD_FW", 0, "good", S, S), ("RELEASE_FW", 0, None, S, S),
                           ("START_FW", 0, None, STATE, STATE)),
    "unknown-command": (("0x42", 0, None, BP, BP),),
    "empty-buffer": (("LOAD_FW", 0, "empty", BP, BP),),
    "wrong-parameter-types": (("LOAD_FW", 0, "good", S, S),
                              ("START_FW@0051", 0, None, BP, BP)),
    "get-coredump": (("GET_COREDUMP", 0, None, R.TEE_ERROR_NOT_IMPLEMENTED, BP),),
}


def script_image(name: str | None) -> bytes:
    """The images scripts name."""
    if name == "good":
        return GOOD
    if name == "bad":
        return _built(unsigned(SEG1, "<B", 0xEE))
    if name == "junk":
        return b"\x68\xa4\x43\x35" + bytes(60)
    return b""


def checklist_items() -> set[str]:
    """Every checklist item some case or script covers."""
    refs = {r for c in CASES for r in c.refs}
    return refs | ({"5.7"} if SCRIPTS else set())


__all__ = ["CASES", "GOOD", "SCRIPTS", "Case", "Step", "checklist_items",
           "script_image"]  # fmt: skip
