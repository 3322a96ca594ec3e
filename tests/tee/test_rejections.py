"""Rejection paths with crafted images: the spec's code under optee, the
strict-only rejections, and the write/scrub behaviour of each policy."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from rproctee.tee import TeeResult
from rproctee.tee.params import value_in
from rproctee.tee.ta_remoteproc import TaCommand

from .factory import (
    Seg,
    default_elf,
    default_tlvs,
    load,
    make_elf,
    rsc,
    session,
    signed_image,
    world,
    writes,
)

R = TeeResult
ELF = default_elf()
RAW = bytes(ELF.raw)


def put(buf: bytes | bytearray, off: int, fmt: str, *vals: int) -> bytearray:
    out = bytearray(buf)
    struct.pack_into(fmt, out, off, *vals)
    return out


def tlvs_with(change: Callable[[list[tuple[int, bytes]]], None]) -> bytearray:
    records = default_tlvs([RAW])
    change(records)
    return signed_image([RAW], tlvs=records)


def unsigned_elf_edit(off: int, fmt: str, *vals: int) -> bytearray:
    """Edit the ELF after signing (the hash table keeps the original)."""
    return signed_image([bytes(put(RAW, off, fmt, *vals))], signed_elves=[RAW])


def signed_elf(elf: bytes) -> bytearray:
    return signed_image([elf])


PH0, PH1 = 52, 84  # program headers
RSC = ELF.rsc_shdr or 0
GOOD = signed_image([RAW])
SIG_OFF = 20 + len(GOOD) - 20 - 256 - len(RAW) - (-len(RAW) % 8)

# name: (image, optee code, strict code)
CASES: dict[str, tuple[bytes | bytearray, R, R]] = {
    "empty-ish": (b"\x68\xa4\x43\x35", R.TEE_ERROR_BAD_PARAMETERS,
                  R.TEE_ERROR_BAD_PARAMETERS),
    "magic": (signed_image([RAW], magic=0x12345678), R.TEE_ERROR_BAD_PARAMETERS,
              R.TEE_ERROR_BAD_PARAMETERS),
    "version": (signed_image([RAW], version=2), R.TEE_ERROR_BAD_PARAMETERS,
                R.TEE_ERROR_BAD_PARAMETERS),
    "trailing-byte": (GOOD + b"\0" * 8, R.TEE_ERROR_BAD_PARAMETERS,
                      R.TEE_ERROR_BAD_PARAMETERS),
    "tlv_len-0": (signed_image([RAW], tlv_len=0), R.TEE_ERROR_BAD_PARAMETERS,
                  R.TEE_ERROR_BAD_PARAMETERS),
    "sign_len-0": (put(GOOD, 12, "<I", 0), R.TEE_ERROR_BAD_PARAMETERS,
                   R.TEE_ERROR_BAD_PARAMETERS),
    "signtype-missing": (tlvs_with(lambda t: t.pop(0)), R.TEE_ERROR_BAD_PARAMETERS,
                         R.TEE_ERROR_BAD_PARAMETERS),
    "signtype-len": (tlvs_with(lambda t: t.__setitem__(0, (1, b"\1\1"))),
                     R.TEE_ERROR_BAD_PARAMETERS, R.TEE_ERROR_BAD_PARAMETERS),
    "signtype-value": (tlvs_with(lambda t: t.__setitem__(0, (1, b"\3"))),
                       R.TEE_ERROR_NOT_SUPPORTED, R.TEE_ERROR_NOT_SUPPORTED),
    "ecdsa-on-stm32mp": (tlvs_with(lambda t: t.__setitem__(0, (1, b"\2"))),
                         R.TEE_ERROR_NOT_SUPPORTED, R.TEE_ERROR_NOT_SUPPORTED),
    "signature-flipped": (put(GOOD, 300, "<B", GOOD[300] ^ 1),
                          R.TEE_ERROR_SIGNATURE_INVALID, R.TEE_ERROR_SIGNATURE_INVALID),
    "tlv-byte-after-signing": (put(GOOD, 150, "<B", GOOD[150] ^ 1),
                               R.TEE_ERROR_SIGNATURE_INVALID,
                               R.TEE_ERROR_SIGNATURE_INVALID),
    "elf-magic": (unsigned_elf_edit(0, "<B", 0), R.TEE_ERROR_BAD_FORMAT,
                  R.TEE_ERROR_BAD_FORMAT),
    "elf-class64": (unsigned_elf_edit(4, "<B", 2), R.TEE_ERROR_BAD_FORMAT,
                    R.TEE_ERROR_BAD_FORMAT),
    "e_phnum-0": (unsigned_elf_edit(44, "<H", 0), R.TEE_ERROR_BAD_FORMAT,
                  R.TEE_ERROR_BAD_FORMAT),
    "e_phentsize": (unsigned_elf_edit(42, "<H", 56), R.TEE_ERROR_BAD_FORMAT,
                    R.TEE_ERROR_BAD_FORMAT),
    "hashtable-missing": (tlvs_with(lambda t: t.pop()), R.TEE_ERROR_NO_DATA,
                          R.TEE_ERROR_NO_DATA),
    "hashtable-len": (tlvs_with(lambda t: t.__setitem__(5, (0x10, t[5][1][:-1]))),
                      R.TEE_ERROR_BAD_PARAMETERS, R.TEE_ERROR_BAD_PARAMETERS),
    "num_img-0": (tlvs_with(lambda t: t.__setitem__(1, (3, b"\0"))),
                  R.TEE_ERROR_NO_DATA, R.TEE_ERROR_NO_DATA),
    "num_img-len": (tlvs_with(lambda t: t.__setitem__(1, (3, b"\1\0"))),
                    R.TEE_ERROR_BAD_FORMAT, R.TEE_ERROR_BAD_FORMAT),
    "imgtype-value": (tlvs_with(lambda t: t.__setitem__(2, (4, b"\2"))),
                      R.TEE_ERROR_BAD_FORMAT, R.TEE_ERROR_BAD_FORMAT),
    "imgtype-len": (tlvs_with(lambda t: t.__setitem__(2, (4, b"\1\1"))),
                    R.TEE_ERROR_BAD_PARAMETERS, R.TEE_ERROR_BAD_PARAMETERS),
    "imgsize-len": (tlvs_with(lambda t: t.__setitem__(3, (5, b"\0\1"))),
                    R.TEE_ERROR_BAD_PARAMETERS, R.TEE_ERROR_BAD_PARAMETERS),
    "paddr-edited": (unsigned_elf_edit(PH1 + 12, "<I", 0x10000100),
                     R.TEE_ERROR_NO_DATA, R.TEE_ERROR_NO_DATA),
    "memsz-edited": (unsigned_elf_edit(PH1 + 20, "<I", 0x300),
                     R.TEE_ERROR_BAD_PARAMETERS, R.TEE_ERROR_BAD_PARAMETERS),
    "segment-bytes": (unsigned_elf_edit(0x100, "<B", 0xEE), R.TEE_ERROR_SECURITY,
                      R.TEE_ERROR_SECURITY),
    "segment-outside-regions": (signed_elf(bytes(make_elf(
        [Seg(0x0, b"a" * 16), Seg(0x20000000, b"b" * 16)]).raw)),
        R.TEE_ERROR_ACCESS_DENIED, R.TEE_ERROR_ACCESS_DENIED),
    "zero-fill-beyond-region": (signed_elf(bytes(make_elf(
        [Seg(0x0, b"a" * 16), Seg(0x1003FF00, b"b" * 16, 0x200)]).raw)),
        R.TEE_ERROR_ACCESS_DENIED, R.TEE_ERROR_ACCESS_DENIED),
    "rsc-ver": (signed_elf(bytes(put(RAW, 0x100 + 0x80, "<I", 2))),
                R.TEE_ERROR_BAD_FORMAT, R.TEE_ERROR_BAD_FORMAT),
    "rsc-reserved": (signed_elf(bytes(put(RAW, 0x100 + 0x88, "<I", 1))),
                     R.TEE_ERROR_BAD_FORMAT, R.TEE_ERROR_BAD_FORMAT),
    "rsc-num": (signed_elf(bytes(put(RAW, 0x100 + 0x84, "<I", 99))),
                R.TEE_ERROR_BAD_FORMAT, R.TEE_ERROR_BAD_FORMAT),
    "rsc-size-lt-16": (unsigned_elf_edit(RSC + 20, "<I", 8), R.TEE_ERROR_BAD_FORMAT,
                       R.TEE_ERROR_BAD_FORMAT),
    "rsc-misaligned": (unsigned_elf_edit(RSC + 16, "<I", 0x182),
                       R.TEE_ERROR_CORRUPT_OBJECT, R.TEE_ERROR_CORRUPT_OBJECT),
    "rsc-sh_addr-outside": (unsigned_elf_edit(RSC + 12, "<I", 0x20000000),
                            R.TEE_ERROR_ACCESS_DENIED, R.TEE_ERROR_BAD_FORMAT),
    "shstrndx-out-of-range": (unsigned_elf_edit(50, "<H", 9), R.TEE_ERROR_BAD_FORMAT,
                              R.TEE_ERROR_BAD_FORMAT),
    # strict-only rejections (upstream weaknesses W2-W8)
    "W2-dropped-segment": (unsigned_elf_edit(PH1, "<I", 0), R.TEE_SUCCESS,
                           R.TEE_ERROR_BAD_PARAMETERS),
    "W2-e_phnum-reduced": (unsigned_elf_edit(44, "<H", 1), R.TEE_SUCCESS,
                           R.TEE_ERROR_BAD_PARAMETERS),
    "W3-rsc-sh_addr-moved": (unsigned_elf_edit(RSC + 12, "<I", 0x10000000),
                             R.TEE_SUCCESS, R.TEE_ERROR_BAD_FORMAT),
    "W3-rsc-sh_size-0": (unsigned_elf_edit(RSC + 20, "<I", 0), R.TEE_SUCCESS,
                         R.TEE_ERROR_BAD_FORMAT),
    "W4-ei_data-big-endian": (unsigned_elf_edit(5, "<B", 2), R.TEE_SUCCESS,
                              R.TEE_ERROR_BAD_FORMAT),
    "W4-e_machine": (unsigned_elf_edit(18, "<H", 62), R.TEE_SUCCESS,
                     R.TEE_ERROR_BAD_FORMAT),
    "W4-e_type": (unsigned_elf_edit(16, "<H", 1), R.TEE_SUCCESS,
                  R.TEE_ERROR_BAD_FORMAT),
    "W5-filesz-gt-memsz": (signed_elf(bytes(make_elf(
        [Seg(0x0, b"a" * 0x40, 0x10), Seg(0x10000000, b"b" * 16)], rsc_in=1).raw)),
        R.TEE_SUCCESS, R.TEE_ERROR_BAD_FORMAT),
    "W5-overlap": (signed_elf(bytes(make_elf(
        [Seg(0x10000000, b"a" * 0x40), Seg(0x10000020, b"b" * 16, 0x40)],
        rsc_in=None).raw)), R.TEE_SUCCESS, R.TEE_ERROR_BAD_FORMAT),
    "W6-imgsize-vs-img_len": (tlvs_with(lambda t: t.__setitem__(
        3, (5, struct.pack("<I", len(RAW) + 8)))), R.TEE_SUCCESS,
        R.TEE_ERROR_BAD_PARAMETERS),
    "W6-hashtype": (tlvs_with(lambda t: t.__setitem__(4, (2, b"\2"))),
                    R.TEE_SUCCESS, R.TEE_ERROR_NOT_SUPPORTED),
    "W6-duplicate-tlv": (tlvs_with(lambda t: t.append((3, b"\1"))), R.TEE_SUCCESS,
                         R.TEE_ERROR_BAD_PARAMETERS),
    "W6-unknown-generic-tlv": (tlvs_with(lambda t: t.append((7, b"x"))),
                               R.TEE_SUCCESS, R.TEE_ERROR_BAD_PARAMETERS),
    "W8-short-buffer": (GOOD[:12], R.TEE_ERROR_BAD_PARAMETERS,
                        R.TEE_ERROR_BAD_PARAMETERS),
}  # fmt: skip


@pytest.mark.parametrize("policy", ["optee", "strict"])
@pytest.mark.parametrize("name", list(CASES))
def test_rejection(name: str, policy: str) -> None:
    image, optee_code, strict_code = CASES[name]
    want = optee_code if policy == "optee" else strict_code
    w = world(policy)
    s = session(w)
    ans = load(s, image)
    assert ans.result == want, ans.reason
    if want != R.TEE_SUCCESS:
        assert ans.reason
        assert rsc(s)[0].result == R.TEE_ERROR_BAD_STATE  # type: ignore[attr-defined]
        start = s.invoke_command(TaCommand.START_FW, [value_in(0)])
        assert start.result == R.TEE_ERROR_BAD_STATE
        ops = [op for op, *_ in writes(w)]
        if policy == "strict":
            # validated before the first write, or wiped after it
            if set(ops) - {"scrub"}:
                assert ops[-len(w.memory.regions) :] == ["scrub"] * 7
            for region in range(len(w.memory.regions)):
                assert not w.memory.array(region).any()
        # a following valid load succeeds
        assert load(s, GOOD).ok
    for _op, da, _pa, size in writes(w):
        w.memory.locate_da(da, size)  # never outside a region


def test_optee_hash_mismatch_zeroes_segment_keeps_earlier() -> None:
    w = world("optee")
    img = unsigned_elf_edit(ELF.seg_offsets[1], "<B", 0xEE)  # second segment
    ans = load(session(w), img)
    assert ans.result == R.TEE_ERROR_SECURITY
    assert [op for op, *_ in writes(w)] == ["copy", "copy", "scrub"]
    assert w.memory.read_da(0, 16) != bytes(16)  # W7: first segment left behind


def test_strict_hash_mismatch_scrubs_everything() -> None:
    w = world("strict")
    ans = load(session(w), unsigned_elf_edit(ELF.seg_offsets[1], "<B", 0xEE))
    assert ans.result == R.TEE_ERROR_SECURITY
    assert w.ta().last_load.scrubbed  # type: ignore[union-attr]
    assert w.memory.read_da(0, 0x80) == bytes(0x80)


def test_loaded_ignores_new_image() -> None:
    w = world("optee")
    s = session(w)
    assert load(s, GOOD).ok
    n = len(w.memory.writes)
    assert load(s, b"not even an image").ok
    assert len(w.memory.writes) == n
