"""OP-TEE's own vectors: byte-identical rebuilds and verification."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from image_helpers import ENC_PASSWORD, RSA_VECTORS, VERIFY_KEYS, vector_bytes

from rproctee.image import (
    PrivateKey,
    SignType,
    TlvType,
    build_image,
    load_public_key,
    parse_image,
    prepare_image,
    signer_from_pem,
    verify_image,
)


@pytest.mark.parametrize("name", sorted(RSA_VECTORS))
def test_rsa_vector_rebuilds_byte_identically(vectors: Path, name: str) -> None:
    inputs, key_file, password = RSA_VECTORS[name]
    signer = signer_from_pem(vector_bytes(f"keys/{key_file}"), password)
    elfs = [vector_bytes(f"inputs/{i}") for i in inputs]
    assert build_image(elfs, signer) == vector_bytes(f"signed/{name}.sig")


@pytest.mark.parametrize("name", sorted(VERIFY_KEYS))
def test_every_vector_verifies(vectors: Path, name: str) -> None:
    key = load_public_key(vector_bytes(f"keys/{VERIFY_KEYS[name]}"))
    report = verify_image(vector_bytes(f"signed/{name}.sig"), key)
    assert report.ok, report.checks
    assert [c.name for c in report.checks][:2] == ["signature", "tlv types"]


def _expected_rows(vectors: Path) -> list[dict[str, str]]:
    with (vectors / "expected.tsv").open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_parse_matches_expected_tsv(vectors: Path) -> None:
    rows = _expected_rows(vectors)
    assert len(rows) == 5
    for row in rows:
        data = (vectors / row["file"]).read_bytes()
        assert len(data) == int(row["size"])
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        hdr = parse_image(data).header
        magic, version, tlv_len, sign_len, img_len = row[
            "magic/version/tlv_len/sign_len/img_len"
        ].split("/")
        fields = (hdr.magic, hdr.version, hdr.tlv_len, hdr.sign_len, hdr.img_len)
        expected = (int(magic, 16), int(version), int(tlv_len), int(sign_len))
        assert fields == (*expected, int(img_len))


def test_worked_example_layout(vectors: Path) -> None:
    image = parse_image(vector_bytes("signed/v01_rsa2048_fw1.sig"))
    assert [(t.offset, t.type) for t in image.tlvs] == [
        (0x14, TlvType.SIGNTYPE),
        (0x24, TlvType.NUM_IMG),
        (0x34, TlvType.IMGTYPE),
        (0x44, TlvType.IMGSIZE),
        (0x54, TlvType.HASHTYPE),
        (0x64, TlvType.HASHTABLE),
    ]
    assert image.signature_offset == 0xEC
    assert image.images[0].offset == 0x1EC and image.images[0].size == 9256
    assert bytes(image.images[0].data) == vector_bytes("inputs/fw1.elf")
    assert len(image.hash_table) == 2 and image.key_info is None


def test_fw2_hash_table_includes_exidx_and_padding(vectors: Path) -> None:
    image = parse_image(vector_bytes("signed/v11_rsa2048_fw2.sig"))
    assert [e.p_type for e in image.hash_table] == [0x70000001, 1]
    assert image.images[0].size == 4688  # 4684 rounded up to 8
    assert bytes(image.images[0].data[4684:]) == bytes(4)


def test_ecdsa_vector_rebuild_differs_only_in_signature(
    vectors: Path, key_of: Callable[[str], PrivateKey]
) -> None:
    reference = vector_bytes("signed/v06_ecp256_fw1.sig")
    signer = signer_from_pem(vector_bytes("keys/ecp256.pem"))
    built = build_image([vector_bytes("inputs/fw1.elf")], signer)
    start = parse_image(reference).signature_offset
    assert len(built) == len(reference)
    assert built[:start] == reference[:start]
    assert built[start + 64 :] == reference[start + 64 :]
    assert verify_image(built, load_public_key(vector_bytes("keys/ecp256_pub.pem"))).ok


def test_digest_matches_for_ecdsa_vector(vectors: Path) -> None:
    reference = parse_image(vector_bytes("signed/v06_ecp256_fw1.sig"))
    unsigned = prepare_image([vector_bytes("inputs/fw1.elf")], SignType.ECC, 64)
    assert unsigned.digest == reference.digest()


@pytest.mark.parametrize(
    ("image", "key"),
    [
        ("v01_rsa2048_fw1", "rsa2048_enc_pub.pem"),  # another RSA key
        ("v01_rsa2048_fw1", "ecp256_pub.pem"),  # algorithm confusion
        ("v06_ecp256_fw1", "rsa2048_pub.pem"),
    ],
)
def test_wrong_key_fails_signature_only(vectors: Path, image: str, key: str) -> None:
    report = verify_image(
        vector_bytes(f"signed/{image}.sig"),
        load_public_key(vector_bytes(f"keys/{key}")),
    )
    assert not report.checks[0].ok
    assert all(c.ok for c in report.checks[1:])


def test_optee_dev_keys_do_not_verify_vectors(vectors: Path) -> None:
    keys = vectors.parent.parent / "data" / "keys"
    for pem in sorted(keys.glob("*.pem")):
        key = load_public_key(pem.read_bytes())
        assert not verify_image(vector_bytes("signed/v01_rsa2048_fw1.sig"), key).ok


def test_encrypted_vector_key_needs_its_password(vectors: Path) -> None:
    assert signer_from_pem(vector_bytes("keys/rsa2048_enc.pem"), ENC_PASSWORD)
