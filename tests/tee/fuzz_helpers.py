"""Oracles and image surgery for the TA fuzz and TOCTOU tests.

The oracles are the security checklist's section 5 requirements, as listed in
its section 6 take-aways: no device-memory write outside a region, memory
outside the written ranges still zero, no executable state after a failed
LOAD_FW and recovery by RELEASE_FW + a valid LOAD_FW, strict: untouched or
wiped after a failure and exactly the signed content after a success, and
only answers from the spec's result table (no Python exception crosses the
TEE boundary).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

from rproctee.tee import TeeResult
from rproctee.tee.core import Answer
from rproctee.tee.params import value_in
from rproctee.tee.ta_remoteproc import TaCommand
from rproctee.tee.world import SecureWorld

from .factory import (
    Elf,
    Seg,
    default_elf,
    default_tlvs,
    load,
    make_elf,
    r8,
    rsc,
    session,
    sign,
    signed_image,
    world,
)

R = TeeResult
PT_LOAD = 1
HDR = 20
SIG_LEN = 256  # RSA-2048, the factory's key

#: Every code LOAD_FW may answer (spec 2.9, minus what LOAD_FW in state OFF
#: cannot produce: BAD_STATE, BUSY, GENERIC, NOT_IMPLEMENTED, ...).
LOAD_CODES = frozenset(
    {
        R.TEE_SUCCESS,
        R.TEE_ERROR_ACCESS_DENIED,
        R.TEE_ERROR_BAD_FORMAT,
        R.TEE_ERROR_BAD_PARAMETERS,
        R.TEE_ERROR_NOT_SUPPORTED,
        R.TEE_ERROR_NO_DATA,
        R.TEE_ERROR_OUT_OF_MEMORY,
        R.TEE_ERROR_SECURITY,
        R.TEE_ERROR_SIGNATURE_INVALID,
        R.TEE_ERROR_CORRUPT_OBJECT,
        R.TEE_ERROR_TARGET_DEAD,
    }
)

# -- base images ---------------------------------------------------------------


@dataclass(frozen=True)
class Base:
    """A validly signed image and where its pieces are (absolute offsets)."""

    name: str
    image: bytes
    elves: tuple[bytes, ...]
    elf: Elf  # layout of the first ELF

    @property
    def tlv_len(self) -> int:
        return int(struct.unpack_from("<I", self.image, 8)[0])

    @property
    def img_off(self) -> int:
        return HDR + r8(self.tlv_len) + r8(SIG_LEN)

    def spans(self) -> dict[str, tuple[int, int]]:
        """Named [start, end) byte ranges of the image, for targeted mutation."""
        e, o = self.elf, self.img_off
        phnum = struct.unpack_from("<H", self.elf.raw, 44)[0]
        shnum = struct.unpack_from("<H", self.elf.raw, 48)[0]
        out = {
            "header": (0, HDR),
            "tlvs": (HDR, HDR + self.tlv_len),
            "signature": (HDR + r8(self.tlv_len), self.img_off),
            "ehdr": (o, o + 52),
            "phdrs": (o + e.phoff, o + e.phoff + 32 * phnum),
            "shdrs": (o + e.shoff, o + e.shoff + 40 * shnum),
            "elf": (o, o + len(e.raw)),
        }
        for k, seg_off in enumerate(e.seg_offsets):
            filesz = struct.unpack_from("<I", e.raw, e.phoff + 32 * k + 16)[0]
            if filesz:
                out[f"seg{k}"] = (o + seg_off, o + seg_off + filesz)
        return out


def _base(name: str, elves: list[Elf]) -> Base:
    raws = [bytes(e.raw) for e in elves]
    return Base(name, bytes(signed_image(raws)), tuple(raws), elves[0])


BASES: tuple[Base, ...] = (
    # fw1-like: code + resource table in RETRAM, data + .bss in MCUSRAM2
    _base("default", [default_elf()]),
    # a non-PT_LOAD entry (ARM_EXIDX), an empty PT_LOAD, p_paddr != p_vaddr
    _base(
        "exidx",
        [
            make_elf(
                [
                    Seg(0x30000000, b"\x5a" * 48, 0x80, vaddr=0x8000),
                    Seg(0x30000100, b"\x77" * 8, p_type=0x70000001),
                    Seg(0x10000000, b"", 0x40),
                    Seg(0x10000100, bytes(range(256)) * 2),
                ],
                rsc_in=3,
            )
        ],
    ),
    # two images, the second without a resource table
    _base(
        "two-images",
        [
            default_elf(),
            make_elf([Seg(0x30000000, b"\xc3" * 40, 0x60)], rsc_in=None),
        ],
    ),
)
GOOD = BASES[0].image

# -- helpers to forge ----------------------------------------------------------


def resign(buf: bytearray) -> bytearray:
    """Re-sign header + TLV area as the (mutated) header lays them out.

    Left as is when the header no longer describes a signature slot that fits
    (the mutation then has to get through without a valid signature).
    """
    if len(buf) < HDR:
        return buf
    tlv_len, sign_len = struct.unpack_from("<2I", buf, 8)
    sig_off = HDR + r8(tlv_len)
    if sign_len != SIG_LEN or sig_off + SIG_LEN > len(buf):
        return buf
    buf[sig_off : sig_off + SIG_LEN] = sign(bytes(buf[:sig_off]))
    return buf


def hash_table_of(elf: bytes) -> bytes | None:
    """HASHTABLE for an arbitrary (possibly broken) ELF; None if unreadable."""
    if len(elf) < 52:
        return None
    (phoff,) = struct.unpack_from("<I", elf, 28)
    (phnum,) = struct.unpack_from("<H", elf, 44)
    if phnum > 64 or phoff + 32 * phnum > len(elf):
        return None
    out = b""
    for i in range(phnum):
        ph = elf[phoff + 32 * i : phoff + 32 * i + 32]
        off, filesz = (
            struct.unpack_from("<I", ph, 4)[0],
            struct.unpack_from("<I", ph, 16)[0],
        )
        out += ph + hashlib.sha256(elf[off : off + filesz]).digest()
    return out


def resign_elf(base: Base, elf: bytes) -> bytearray:
    """``base`` with its first ELF replaced by ``elf`` and a hash table (and
    signature) made for it: a validly signed image around a hostile ELF."""
    elves = [elf, *base.elves[1:]]
    table = hash_table_of(elf)
    records = default_tlvs([bytes(e) for e in base.elves])
    if table is not None:
        rest = b"".join(hash_table_of(e) or b"" for e in base.elves[1:])
        records = [(t, table + rest if t == 0x10 else v) for t, v in records]
    sizes = b"".join(struct.pack("<I", r8(len(e))) for e in elves)
    records = [(t, sizes if t == 5 else v) for t, v in records]
    return signed_image(elves, tlvs=records)


def hash_entries(image: bytes | bytearray) -> list[tuple[tuple[int, ...], bytes]]:
    """(8 phdr words, digest) of the first HASHTABLE TLV of an image."""
    tlv_len = struct.unpack_from("<I", image, 8)[0]
    pos, end = HDR, HDR + tlv_len
    while pos + 8 <= end:
        t, n = struct.unpack_from("<2I", image, pos)
        if t == 0x10:
            raw = bytes(image[pos + 8 : pos + 8 + n])
            return [
                (struct.unpack_from("<8I", raw, k), raw[k + 32 : k + 64])
                for k in range(0, len(raw) - 63, 64)
            ]
        pos += 8 + r8(n)
    return []


# -- oracles -------------------------------------------------------------------


def written_masks(w: SecureWorld) -> list[np.ndarray]:
    """Per region, which bytes any recorded write touched."""
    masks = [np.zeros(r.size, dtype=bool) for r in w.memory.regions]
    for rec in w.memory.writes:
        index = w.memory.locate_da(rec.da, rec.len)  # raises if outside (inv. 1)
        off = rec.da - w.memory.regions[index].da
        masks[index][off : off + rec.len] = True
    return masks


def check_writes(w: SecureWorld) -> None:
    """Invariant 1: every write inside one writable region, nothing else set."""
    for rec in w.memory.writes:
        index = w.memory.locate_da(rec.da, rec.len)
        region = w.memory.regions[index]
        assert region.da <= rec.da and rec.da + rec.len <= region.da + region.size
        assert rec.len > 0
    for index, mask in enumerate(written_masks(w)):
        stray = w.memory.array(index)[~mask]
        assert not stray.any(), f"region {index}: bytes set outside every write"


def memory_is_zero(w: SecureWorld) -> bool:
    return not any(w.memory.array(i).any() for i in range(len(w.memory.regions)))


def check_signed_content(w: SecureWorld, image: bytes | bytearray) -> None:
    """Strict success: memory is exactly the signed PT_LOAD content.

    Every signed PT_LOAD's file part hashes to its signed digest, its tail up
    to p_memsz is zero, and every byte outside the signed segments is zero.
    """
    masks = [np.zeros(r.size, dtype=bool) for r in w.memory.regions]
    for words, digest in hash_entries(image):
        _t, _o, _v, paddr, filesz, memsz = words[:6]
        if words[0] != PT_LOAD:
            continue
        if filesz:
            got = w.memory.read_da(paddr, filesz)
            assert hashlib.sha256(got).digest() == digest, hex(paddr)
        if memsz > filesz:
            assert w.memory.read_da(paddr + filesz, memsz - filesz) == bytes(
                memsz - filesz
            )
        if memsz:
            index = w.memory.locate_da(paddr, memsz)
            off = paddr - w.memory.regions[index].da
            masks[index][off : off + memsz] = True
    for index, mask in enumerate(masks):
        assert not w.memory.array(index)[~mask].any(), f"region {index}: stray bytes"


def check_rsc_in_loaded(w: SecureWorld, s: object, image: bytes | bytearray) -> None:
    """Strict success: the reported table lies in a signed segment's file part."""
    ans, pa, size = rsc(s)  # type: ignore[arg-type]
    assert ans.ok  # type: ignore[attr-defined]
    if not size:
        return
    da = w.memory.pa_to_da(pa, size)
    for words, _digest in hash_entries(image):
        paddr, filesz = words[3], words[4]
        if words[0] == PT_LOAD and paddr <= da and da + size <= paddr + filesz:
            return
    raise AssertionError(f"resource table da {da:#x}+{size:#x} not in a segment")


def panic_allowed(policy: str, image: bytes | bytearray) -> bool:
    """Where the spec lets a LOAD_FW end in TEE_ERROR_TARGET_DEAD (optee only).

    W1: sign_len rounds up past 32 bits and the core refuses the 4 GiB
    signature memref. W6: signed IMGSIZE values that do not add up to
    img_len make the TA walk ELF bounds past the shared buffer (data abort).
    """
    if policy != "optee" or len(image) < HDR:
        return False
    sign_len, img_len = struct.unpack_from("<2I", image, 12)
    if sign_len > 0xFFFFFFF8:
        return True
    tlv_len = struct.unpack_from("<I", image, 8)[0]
    pos, end = HDR, min(HDR + tlv_len, len(image))
    while pos + 8 <= end:
        t, n = struct.unpack_from("<2I", image, pos)
        if t == 5:
            sizes = image[pos + 8 : pos + 8 + n]
            return (
                sum(
                    int.from_bytes(sizes[k : k + 4], "little")
                    for k in range(0, len(sizes), 4)
                )
                != img_len
                or len(sizes) % 4 != 0
            )
        pos += 8 + r8(n)
    return False


@dataclass
class Outcome:
    policy: str
    answer: Answer
    world: SecureWorld


def check_load(policy: str, image: bytes | bytearray, **world_kw: object) -> Outcome:
    """LOAD_FW ``image`` under ``policy`` and hold the answer to every oracle."""
    w = world(policy, **world_kw)
    s = session(w)
    buf = bytearray(image)
    # invariant 4: any Python exception escaping the TEE fails the test here
    ans = load(s, buf)
    assert isinstance(ans.result, TeeResult)
    assert ans.result in LOAD_CODES, ans
    if ans.result == R.TEE_ERROR_TARGET_DEAD:
        assert panic_allowed(policy, image), ans.reason
    check_writes(w)  # invariant 1
    if ans.ok:
        if policy == "strict":  # invariant 3, success half
            check_signed_content(w, image)
            check_rsc_in_loaded(w, s, image)
        return Outcome(policy, ans, w)
    assert ans.reason
    if policy == "strict":  # invariant 3, failure half: untouched or wiped
        assert memory_is_zero(w)
        ops = [x.op for x in w.memory.writes]
        if set(ops) - {"scrub"}:
            assert ops[-len(w.memory.regions) :] == ["scrub"] * len(w.memory.regions)
    # invariant 2: no executable state, then RELEASE_FW + valid LOAD_FW succeed
    if ans.result == R.TEE_ERROR_TARGET_DEAD:
        dead = s.invoke_command(TaCommand.START_FW, [value_in(0)])
        assert dead.result == R.TEE_ERROR_TARGET_DEAD
        s.close()
        s = session(w)  # a fresh instance: no context at all
        start = s.invoke_command(TaCommand.START_FW, [value_in(0)])
        assert start.result == R.TEE_ERROR_BAD_PARAMETERS
    else:
        assert rsc(s)[0].result == R.TEE_ERROR_BAD_STATE  # type: ignore[attr-defined]
        start = s.invoke_command(TaCommand.START_FW, [value_in(0)])
        assert start.result == R.TEE_ERROR_BAD_STATE
        assert s.invoke_command(TaCommand.RELEASE_FW, [value_in(0)]).ok
        assert memory_is_zero(w)
    again = load(s, GOOD)
    assert again.ok, again
    check_writes(w)
    if policy == "strict":
        check_signed_content(w, GOOD)
    return Outcome(policy, ans, w)


__all__ = [
    "BASES",
    "GOOD",
    "LOAD_CODES",
    "Base",
    "Outcome",
    "check_load",
    "check_signed_content",
    "check_writes",
    "hash_entries",
    "hash_table_of",
    "memory_is_zero",
    "resign",
    "resign_elf",
]
