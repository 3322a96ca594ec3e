"""Verification report: each check, and which one fails for each tampering."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import replace

import pytest
from image_helpers import Seg, make_elf

from rproctee.image import (
    CallableSigner,
    CheckKind,
    HashMismatchError,
    ImageFormatError,
    KeySigner,
    PrivateKey,
    SignatureError,
    SignType,
    build_image,
    parse_image,
    verify_image,
)
from rproctee.image.format import encode_tlv


@pytest.fixture(scope="module")
def signed(key_of: Callable[[str], PrivateKey], fw1: bytes) -> bytes:
    return build_image([fw1], KeySigner(key_of("rsa2048")))


def _failed(report_checks: tuple[object, ...]) -> list[str]:
    return [c.name for c in report_checks if not c.ok]  # type: ignore[attr-defined]


def _verify(data: bytes, key_of: Callable[[str], PrivateKey]) -> list[str]:
    return _failed(verify_image(data, key_of("rsa2048").public_key()).checks)


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 1]) + data[offset + 1 :]


def test_good_image_lists_every_check(
    signed: bytes, key_of: Callable[[str], PrivateKey]
) -> None:
    report = verify_image(signed, key_of("rsa2048").public_key())
    assert report.ok
    assert [(c.name, c.kind) for c in report.checks] == [
        ("signature", CheckKind.SIGNATURE),
        ("tlv types", CheckKind.FORMAT),
        ("image[0] elf", CheckKind.FORMAT),
        ("hash table size", CheckKind.HASH),
        ("image[0] phdr[0]", CheckKind.HASH),
        ("image[0] phdr[1]", CheckKind.HASH),
    ]
    report.raise_for_failure()


@pytest.mark.parametrize(
    ("where", "failed"),
    [
        ("signature", ["signature"]),
        ("tlv-padding", ["signature"]),  # padding of SIGNTYPE is signed too
        ("hashtable", ["signature", "image[0] phdr[0]"]),
    ],
)
def test_signed_bytes_or_signature_changed(
    signed: bytes, key_of: Callable[[str], PrivateKey], where: str, failed: list[str]
) -> None:
    parsed = parse_image(signed)
    offset = {
        "signature": parsed.signature_offset + 100,
        "tlv-padding": parsed.tlvs[0].offset + 9,
        "hashtable": parsed.tlvs[5].offset + 8 + 40,  # entry 0 digest byte
    }[where]
    data = _flip(signed, offset)
    assert _verify(data, key_of) == failed
    with pytest.raises(SignatureError):
        verify_image(data, key_of("rsa2048").public_key()).raise_for_failure()


def test_zeroed_signature(signed: bytes, key_of: Callable[[str], PrivateKey]) -> None:
    parsed = parse_image(signed)
    start = parsed.signature_offset
    data = signed[:start] + bytes(256) + signed[start + 256 :]
    assert _verify(data, key_of) == ["signature"]


def test_segment_byte_changed(
    signed: bytes, key_of: Callable[[str], PrivateKey]
) -> None:
    parsed = parse_image(signed)
    data = _flip(signed, parsed.images[0].offset + 0x2000)  # segment 1 data
    report = verify_image(data, key_of("rsa2048").public_key())
    assert _failed(report.checks) == ["image[0] phdr[1]"]
    assert "mismatch" in report.checks[-1].detail
    with pytest.raises(HashMismatchError, match=r"image\[0\] phdr\[1\]"):
        report.raise_for_failure()


def test_unsigned_bytes_outside_segments_do_not_matter(
    signed: bytes, key_of: Callable[[str], PrivateKey]
) -> None:
    parsed = parse_image(signed)
    data = _flip(signed, parsed.images[0].offset + 0x2010)  # after .data, unhashed
    assert _verify(data, key_of) == []


def test_program_header_edit_is_caught(
    signed: bytes, key_of: Callable[[str], PrivateKey]
) -> None:
    parsed = parse_image(signed)
    phdr1 = parsed.images[0].offset + 52 + 32
    memsz = phdr1 + 20
    data = signed[:memsz] + struct.pack("<I", 0x10000) + signed[memsz + 4 :]
    report = verify_image(data, key_of("rsa2048").public_key())
    assert _failed(report.checks) == ["image[0] phdr[1]"]
    assert "differs" in report.checks[-1].detail


def test_dropped_segment_is_caught(
    signed: bytes, key_of: Callable[[str], PrivateKey]
) -> None:
    parsed = parse_image(signed)
    e_phnum = parsed.images[0].offset + 44
    data = signed[:e_phnum] + b"\x01\x00" + signed[e_phnum + 2 :]
    assert _verify(data, key_of) == ["hash table size"]


def test_malformed_embedded_elf(
    signed: bytes, key_of: Callable[[str], PrivateKey]
) -> None:
    start = parse_image(signed).images[0].offset
    data = signed[:start] + b"MZ" + signed[start + 2 :]
    report = verify_image(data, key_of("rsa2048").public_key())
    assert _failed(report.checks) == ["image[0] elf", "hash table"]
    with pytest.raises(ImageFormatError):
        report.raise_for_failure()


def test_unknown_generic_tlv_fails_format_check(
    key_of: Callable[[str], PrivateKey], fw1: bytes
) -> None:
    key = key_of("rsa2048")
    image = build_image([fw1], KeySigner(key), plat_tlvs={0x10005: 1})
    assert verify_image(image, key.public_key()).ok
    # hand-splice an unknown generic TLV (0x42) and re-sign: still refused
    parsed = parse_image(image)
    extra = encode_tlv(0x42, b"?")
    tlv_end = 20 + parsed.header.tlv_len
    header = replace(parsed.header, tlv_len=parsed.header.tlv_len + len(extra))
    unsigned = header.pack() + image[20:tlv_end] + extra
    sig = KeySigner(key).sign_digest(hashlib.sha256(unsigned).digest())
    data = unsigned + sig + image[tlv_end + 256 :]
    report = verify_image(data, key.public_key())
    assert _failed(report.checks) == ["tlv types"]
    assert "0x42" in report.checks[1].detail


def test_signature_over_another_range_fails(
    key_of: Callable[[str], PrivateKey], fw1: bytes
) -> None:
    key = KeySigner(key_of("rsa2048"))
    header_only = CallableSigner(
        SignType.RSA, 256, lambda d: key.sign_digest(bytes(32))
    )
    image = build_image([fw1], header_only)
    assert _verify(image, key_of) == ["signature"]


def test_key_size_mismatch(key_of: Callable[[str], PrivateKey], fw1: bytes) -> None:
    image = build_image([fw1], KeySigner(key_of("rsa3072")))
    report = verify_image(image, key_of("rsa2048").public_key())
    assert _failed(report.checks) == ["signature"]


def test_algorithm_confusion_key_decides(
    key_of: Callable[[str], PrivateKey], fw1: bytes
) -> None:
    image = build_image([fw1], KeySigner(key_of("p256")))
    report = verify_image(image, key_of("rsa2048").public_key())
    assert "key is RSA but SIGNTYPE is ECC" in report.checks[0].detail


def test_multi_image_entries_are_attributed_in_order(
    key_of: Callable[[str], PrivateKey], fw1: bytes, fw2: bytes
) -> None:
    small = make_elf([Seg(0x20000000, b"abc")])
    image = build_image([fw1, fw2, small], KeySigner(key_of("p256")))
    report = verify_image(image, key_of("p256").public_key())
    assert report.ok
    names = [
        c.name
        for c in report.checks
        if c.name.startswith("image[") and "phdr" in c.name
    ]
    assert names == ["image[0] phdr[0]", "image[0] phdr[1]", "image[1] phdr[0]",
                     "image[1] phdr[1]", "image[2] phdr[0]"]  # fmt: skip
