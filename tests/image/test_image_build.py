"""Round trips of the builder: every key type, key format and option."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from image_helpers import Seg, make_elf

from rproctee.errors import ElfFormatError
from rproctee.image import (
    CallableSigner,
    KeyFormatError,
    KeySigner,
    PrivateKey,
    SignatureError,
    SignType,
    TlvType,
    build_image,
    hash_entries,
    parse_image,
    parse_plat_tlv_args,
    plat_tlv_value,
    prepare_image,
    public_key_pem,
    signer_from_pem,
    stitch_signature,
    verify_image,
)

EMPTY_SHA256 = hashlib.sha256(b"").digest()


@pytest.mark.parametrize(
    ("kind", "sign_type", "sign_len"),
    [
        ("rsa2048", SignType.RSA, 256),
        ("rsa3072", SignType.RSA, 384),
        ("rsa4096", SignType.RSA, 512),
        ("rsa2052", SignType.RSA, 257),
        ("p256", SignType.ECC, 64),
    ],
)
def test_round_trip_every_key_type(
    key_of: Callable[[str], PrivateKey],
    simple_elf: bytes,
    kind: str,
    sign_type: SignType,
    sign_len: int,
) -> None:
    key = key_of(kind)
    image = build_image([simple_elf], KeySigner(key))
    parsed = parse_image(image)
    assert parsed.sign_type is sign_type
    assert parsed.header.sign_len == sign_len == len(parsed.signature)
    pad = -sign_len % 8  # RSA-2052: 257 bytes then 7 zero bytes
    start = parsed.signature_offset + sign_len
    assert image[start : start + pad] == bytes(pad)
    assert verify_image(image, key.public_key()).ok


def _pem(key: PrivateKey, fmt: serialization.PrivateFormat, pwd: bytes | None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(pwd)
        if pwd
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc)


@pytest.mark.parametrize(
    ("fmt", "password", "marker"),
    [
        (serialization.PrivateFormat.TraditionalOpenSSL, None, b"RSA PRIVATE KEY"),
        (serialization.PrivateFormat.PKCS8, None, b"BEGIN PRIVATE KEY"),
        (serialization.PrivateFormat.PKCS8, b"pw", b"ENCRYPTED PRIVATE KEY"),
        (serialization.PrivateFormat.TraditionalOpenSSL, b"pw", b"DEK-Info"),
    ],
)
def test_rsa_key_formats_give_identical_images(
    key_of: Callable[[str], PrivateKey],
    simple_elf: bytes,
    fmt: serialization.PrivateFormat,
    password: bytes | None,
    marker: bytes,
) -> None:
    key = key_of("rsa2048")
    pem = _pem(key, fmt, password)
    assert marker in pem
    signer = signer_from_pem(pem, password)
    assert build_image([simple_elf], signer) == build_image(
        [simple_elf], KeySigner(key)
    )


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [
        (serialization.PrivateFormat.TraditionalOpenSSL, b"EC PRIVATE KEY"),
        (serialization.PrivateFormat.PKCS8, b"BEGIN PRIVATE KEY"),
    ],
)
def test_ec_key_formats(
    key_of: Callable[[str], PrivateKey],
    simple_elf: bytes,
    fmt: serialization.PrivateFormat,
    marker: bytes,
) -> None:
    key = key_of("p256")
    pem = _pem(key, fmt, None)
    assert marker in pem
    image = build_image([simple_elf], signer_from_pem(pem, key_type=SignType.ECC))
    assert verify_image(image, key.public_key()).ok


def test_key_errors(key_of: Callable[[str], PrivateKey]) -> None:
    rsa_key = key_of("rsa2048")
    with pytest.raises(KeyFormatError, match="Provided key cannot be used for signing"):
        signer_from_pem(public_key_pem(rsa_key))
    encrypted = _pem(rsa_key, serialization.PrivateFormat.PKCS8, b"right")
    for password in (None, "wrong"):
        with pytest.raises(KeyFormatError):
            signer_from_pem(encrypted, password)
    with pytest.raises(KeyFormatError, match="key type ECC requested"):
        signer_from_pem(_pem(rsa_key, serialization.PrivateFormat.PKCS8, None),
                        key_type=SignType.ECC)  # fmt: skip
    p384 = _pem(key_of("p384"), serialization.PrivateFormat.PKCS8, None)
    with pytest.raises(KeyFormatError, match="only P-256"):
        signer_from_pem(p384)
    with pytest.raises(KeyFormatError):
        signer_from_pem(b"not a key")


def test_key_info_tlv_follows_hash_table(
    key_of: Callable[[str], PrivateKey], simple_elf: bytes
) -> None:
    image = build_image([simple_elf], KeySigner(key_of("rsa2048")), key_info=b"\x01key")
    parsed = parse_image(image)
    assert [t.type for t in parsed.tlvs][-2:] == [TlvType.HASHTABLE, TlvType.PKEYINFO]
    assert parsed.key_info is not None and bytes(parsed.key_info) == b"\x01key"
    assert verify_image(image, key_of("rsa2048").public_key()).ok


def test_platform_tlvs_integer_and_string_values(
    key_of: Callable[[str], PrivateKey], simple_elf: bytes
) -> None:
    plat = parse_plat_tlv_args(
        [("0x10001", "0x30000000"), ("65538", "boot"), ("0x10001", "0xdeadbeef")]
    )
    assert list(plat) == [0x10001, 0x10002]  # repeat keeps its first position
    image = build_image([simple_elf], KeySigner(key_of("p256")), b"ki", plat)
    parsed = parse_image(image)
    assert [t.type for t in parsed.tlvs][-3:] == [TlvType.PKEYINFO, 0x10001, 0x10002]
    values = [bytes(t.value) for t in parsed.platform_tlvs]
    assert values == [(0xDEADBEEF).to_bytes(4, "little"), b"boot"]
    assert verify_image(image, key_of("p256").public_key()).ok


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (("0xffff", "1"), "not in range"),
        (("0x20000", "1"), "not in range"),
        (("0x10000", "0x100000000"), "does not fit in 32 bits"),
        (("bogus", "1"), "invalid literal"),
    ],
)
def test_platform_tlv_errors(pair: tuple[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_plat_tlv_args([pair])


def test_plat_tlv_value_forms() -> None:
    assert plat_tlv_value(5) == b"\x05\0\0\0"
    assert plat_tlv_value("0x10") == b"\x10\0\0\0"
    assert plat_tlv_value("0X10") == b"0X10"  # only a lowercase 0x prefix is numeric
    assert plat_tlv_value(b"\0raw") == b"\0raw"


def test_several_images_and_odd_sizes(
    key_of: Callable[[str], PrivateKey], fw2: bytes
) -> None:
    odd = make_elf([Seg(0x30000000, b"\xaa" * 5)], tail=b"xyz")
    assert len(odd) % 8 != 0
    elfs = [odd, fw2, make_elf([Seg(0x10000000, b"\x55" * 8, memsz=64)])]
    image = build_image(elfs, KeySigner(key_of("rsa2048")))
    parsed = parse_image(image)
    assert [i.size for i in parsed.images] == [-(-len(e) // 8) * 8 for e in elfs]
    assert parsed.header.img_len == sum(i.size for i in parsed.images)
    for img, elf in zip(parsed.images, elfs, strict=True):
        assert bytes(img.data[: len(elf)]) == elf
        assert bytes(img.data[len(elf) :]) == bytes(img.size - len(elf))
    assert len(parsed.hash_table) == 1 + 2 + 1
    assert verify_image(image, key_of("rsa2048").public_key()).ok


def test_every_program_header_is_hashed() -> None:
    elf = make_elf(
        [
            Seg(0x1000, b"code", p_type=0x70000001),
            Seg(0x2000, b"", memsz=0x40),  # filesz 0: hash of nothing
            Seg(0x3000, b"", p_type=0),  # PT_NULL too
        ]
    )
    entries = hash_entries(elf)
    assert [e.p_type for e in entries] == [0x70000001, 1, 0]
    assert entries[0].digest == hashlib.sha256(b"code").digest()
    assert entries[1].digest == entries[2].digest == EMPTY_SHA256
    assert entries[1].p_memsz == 0x40


@pytest.mark.parametrize(
    ("elf", "message"),
    [
        (
            make_elf([Seg(0, b"x")], machine=243),
            r"^e_machine = EM_RISCV \(243\): must be EM_ARM \(40\)",
        ),
        (
            b"\x7fELF\x02\x01\x01" + bytes(100),
            r"^EI_CLASS = 2 \(ELFCLASS64\), EI_DATA = 1 \(ELFDATA2LSB\): must be",
        ),
        (b"\x7fELF\x01\x02\x01" + bytes(100), r"EI_DATA = 2 \(ELFDATA2MSB\)"),
        (b"MZ" + bytes(100), r"^e_ident\[EI_MAG\]"),
        (b"\x7fELF", r"e_ident"),
        (make_elf([Seg(0, b"x")])[:60], r"program header table"),
    ],
)
def test_builder_rejects_bad_elf(elf: bytes, message: str) -> None:
    with pytest.raises(ElfFormatError, match=message):
        prepare_image([elf], SignType.RSA, 256)


def test_builder_rejects_segment_past_end() -> None:
    elf = bytearray(make_elf([Seg(0, b"abcd")]))
    elf[52 + 16 : 52 + 20] = (0x10000).to_bytes(4, "little")  # p_filesz
    with pytest.raises(ElfFormatError, match=r"phdr\[0\].p_offset"):
        hash_entries(bytes(elf))


def test_builder_image_count_limits(simple_elf: bytes) -> None:
    with pytest.raises(ValueError, match="0 images"):
        prepare_image([], SignType.RSA, 256)
    with pytest.raises(ValueError, match="256 images"):
        prepare_image([simple_elf] * 256, SignType.RSA, 256)


def test_external_signer_flow_equals_local_signing(
    key_of: Callable[[str], PrivateKey], fw1: bytes
) -> None:
    key = key_of("rsa2048")
    unsigned = prepare_image([fw1], SignType.RSA, 256)
    # "another machine": signs the exported digest with its own tooling
    assert isinstance(key, rsa.RSAPrivateKey)
    sig = key.sign(unsigned.digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    assert unsigned.assemble(sig) == build_image([fw1], KeySigner(key))
    placeholder = unsigned.assemble(bytes(256))
    assert stitch_signature(placeholder, sig) == build_image([fw1], KeySigner(key))


def test_callable_signer_accepts_der_ecdsa(
    key_of: Callable[[str], PrivateKey], fw1: bytes
) -> None:
    key = key_of("p256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)

    def hsm(digest: bytes) -> bytes:  # returns DER, as most HSM APIs do
        return key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))

    image = build_image([fw1], CallableSigner(SignType.ECC, 64, hsm))
    assert verify_image(image, key.public_key()).ok


def test_signature_length_is_enforced(fw1: bytes) -> None:
    unsigned = prepare_image([fw1], SignType.RSA, 256)
    with pytest.raises(SignatureError, match="length 255"):
        unsigned.assemble(bytes(255))
    short = CallableSigner(SignType.RSA, 256, lambda d: d)
    with pytest.raises(SignatureError):
        build_image([fw1], short)
    with pytest.raises(SignatureError, match="length 10"):
        stitch_signature(unsigned.assemble(bytes(256)), bytes(10))
