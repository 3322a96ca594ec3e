"""Split/join byte-exactness, split sets on disk, and integrity verification."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from qcom_helpers import dict_fetch, patch_u32, phdr_offset, segments

from rproctee.qcom import (
    MdtFileError,
    MdtFormatError,
    MdtHashMismatchError,
    MdtSignatureError,
    SegmentSpec,
    TestSigner,
    build_image,
    join_image,
    open_image,
    parse_image,
    require_valid,
    split_image,
    verify_image,
)
from rproctee.qcom.split import MAX_JOIN_SIZE


def _image(signer: TestSigner, version: int = 6, **kw: object) -> bytes:
    return build_image(segments(), version=version, signer=signer, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [3, 5, 6, 7])
def test_split_join_byte_exact(signer: TestSigner, version: int) -> None:
    data = _image(signer, version, qti_signer=signer if version > 3 else None)
    files = split_image(data, "modem.mdt")
    # .mdt = headers + hash segment packed; one .bNN per segment with bytes.
    assert list(files) == [
        "modem.mdt",
        "modem.b00",
        "modem.b01",
        "modem.b02",
        "modem.b04",
    ]
    image = parse_image(data, "modem.mbn")
    assert files["modem.mdt"] == image.metadata
    assert join_image(files["modem.mdt"], "modem.mdt", dict_fetch(files)) == data


def test_split_set_reads_like_the_single_file(signer: TestSigner) -> None:
    data = _image(signer)
    files = split_image(data, "modem.mdt")
    whole = parse_image(data, "modem.mbn")
    split = parse_image(files["modem.mdt"], "modem.mdt", dict_fetch(files))
    assert split.split and not whole.split
    assert split.segments == whole.segments
    assert split.sources[1] == "packed" and split.sources[2] == "modem.b02"


def test_split_set_on_disk(tmp_path: Path, signer: TestSigner) -> None:
    files = split_image(_image(signer), "adsp.mdt")
    for name, blob in files.items():
        (tmp_path / name).write_bytes(blob)
    image = open_image(tmp_path / "adsp.mdt")
    require_valid(verify_image(image, signer.root_sha256))
    (tmp_path / "adsp.b04").write_bytes(files["adsp.b04"][:-1])
    with pytest.raises(
        MdtFormatError,
        match="adsp.b04: 0x320 bytes, shorter than segment 4's p_filesz 0x321",
    ):
        open_image(tmp_path / "adsp.mdt")
    (tmp_path / "adsp.b04").write_bytes(files["adsp.b04"] + b"\0")
    with pytest.raises(MdtFormatError, match="longer than segment 4's p_filesz"):
        open_image(tmp_path / "adsp.mdt")
    (tmp_path / "adsp.b04").unlink()
    with pytest.raises(MdtFileError, match="adsp.b04: missing segment file"):
        open_image(tmp_path / "adsp.mdt")
    with pytest.raises(MdtFileError, match="nothing.mdt"):
        open_image(tmp_path / "nothing.mdt")


def test_join_needs_every_segment_file(signer: TestSigner) -> None:
    files = split_image(_image(signer), "modem.mdt")
    missing = {k: v for k, v in files.items() if k != "modem.b02"}
    with pytest.raises(MdtFileError, match="modem.b02"):
        join_image(files["modem.mdt"], "modem.mdt", dict_fetch(missing))
    # The headers and hash segment are in the .mdt: their .bNN are optional ...
    optional = {k: v for k, v in files.items() if k not in ("modem.b00", "modem.b01")}
    assert join_image(
        files["modem.mdt"], "modem.mdt", dict_fetch(optional)
    ) == _image_again(files)
    # ... but must agree with the .mdt when present.
    wrong = dict(files, **{"modem.b01": bytes(len(files["modem.b01"]))})
    with pytest.raises(MdtFormatError, match="modem.b01 = .*differs from segment 1"):
        join_image(files["modem.mdt"], "modem.mdt", dict_fetch(wrong))


def _image_again(files: dict[str, bytes]) -> bytes:
    return join_image(files["modem.mdt"], "modem.mdt", dict_fetch(files))


def test_split_refuses_to_lose_bytes(signer: TestSigner) -> None:
    data = bytearray(_image(signer))
    data[0x800] = 0x42  # between the headers and the hash segment
    with pytest.raises(
        MdtFormatError, match=r"byte offset = 0x800: holds 0x42 outside every segment"
    ):
        split_image(bytes(data), "modem.mdt")
    files = split_image(bytes(data), "modem.mdt", lossy=True)
    assert join_image(files["modem.mdt"], "modem.mdt", dict_fetch(files)) != bytes(data)
    with pytest.raises(MdtFormatError, match="file size = .*trailing zero bytes"):
        split_image(_image(signer) + bytes(16), "modem.mdt")


def test_split_rules(signer: TestSigner) -> None:
    data = _image(signer)
    with pytest.raises(MdtFormatError, match="name = 'mdt': shorter than 4"):
        split_image(data, "mdt")
    files = split_image(data, "modem.mdt")
    with pytest.raises(MdtFormatError, match="already split"):
        split_image(files["modem.mdt"] + b"", "modem.mdt")


def test_join_size_is_bounded(signer: TestSigner) -> None:
    files = split_image(_image(signer), "modem.mdt")
    far = patch_u32(files["modem.mdt"], phdr_offset(4, "p_offset"), MAX_JOIN_SIZE)
    with pytest.raises(MdtFormatError, match="joined size = .*larger than"):
        join_image(far, "modem.mdt", dict_fetch(files))


def test_join_rejects_disagreeing_overlaps(signer: TestSigner) -> None:
    files = split_image(_image(signer), "modem.mdt")
    off2 = int.from_bytes(
        files["modem.mdt"][phdr_offset(2, "p_offset") :][:4], "little"
    )
    # Segment 4 placed over segment 2 with other bytes.
    overlap = patch_u32(files["modem.mdt"], phdr_offset(4, "p_offset"), off2)
    del files["modem.b00"]  # the .mdt's patched headers are the only copy
    with pytest.raises(MdtFormatError, match="overlaps another segment"):
        join_image(overlap, "modem.mdt", dict_fetch(files))


# -- verification -------------------------------------------------------------


@pytest.mark.parametrize("version", [3, 5, 6, 7])
def test_valid_image_verifies(
    signer: TestSigner, rsa_signer: TestSigner, version: int
) -> None:
    for who in (signer, rsa_signer):
        image = parse_image(_image(who, version), "a.mbn")
        report = verify_image(image, who.root_sha256)
        require_valid(report)
        assert [s.status for s in report.segments] == [
            "ok",
            "skipped",
            "ok",
            "empty",
            "ok",
        ]
        assert report.authorities[0].status == "verified"


def test_double_signed_image(signer: TestSigner, rsa_signer: TestSigner) -> None:
    image = parse_image(_image(signer, 6, qti_signer=rsa_signer), "a.mbn")
    report = verify_image(image)
    assert [(a.authority, a.status) for a in report.authorities] == [
        ("oem", "verified"),
        ("qti", "verified"),
    ]
    assert report.authorities[1].chain[0].key_type == "RSA-2048"


@pytest.mark.parametrize("index", [2, 4])
def test_each_corrupted_segment_is_found(signer: TestSigner, index: int) -> None:
    data = _image(signer)
    image = parse_image(data, "a.mbn")
    off = image.phdrs[index].p_offset + 5
    bad = bytearray(data)
    bad[off] ^= 0xFF
    report = verify_image(parse_image(bytes(bad), "a.mbn"), signer.root_sha256)
    assert [s.index for s in report.segments if s.status == "mismatch"] == [index]
    assert report.signature_ok  # the table itself is intact
    with pytest.raises(MdtHashMismatchError, match=f"segment {index}: hash"):
        require_valid(report)


def test_corrupted_header_is_found(signer: TestSigner) -> None:
    bad = patch_u32(_image(signer), 24, 0x1234)  # e_entry
    report = verify_image(parse_image(bad, "a.mbn"))
    assert [s.index for s in report.segments if s.status == "mismatch"] == [0]


def test_empty_segment_entry_must_be_empty(signer: TestSigner) -> None:
    data = _image(signer, 5)
    image = parse_image(data, "a.mbn")
    entry = 40 + 32 * 3  # v5: digests right after the 40-byte header
    bad = bytearray(data)
    bad[image.phdrs[1].p_offset + entry] = 1
    report = verify_image(parse_image(bytes(bad), "a.mbn"), hashes_only=True)
    assert report.segments[3].status == "mismatch"
    ok = bytearray(data)
    ok[image.phdrs[1].p_offset + entry : image.phdrs[1].p_offset + entry + 32] = (
        hashlib.sha256(b"").digest()
    )
    assert (
        verify_image(parse_image(bytes(ok), "a.mbn"), hashes_only=True)
        .segments[3]
        .status
        == "empty"
    )


def test_untrusted_root_fails(signer: TestSigner, other_signer: TestSigner) -> None:
    image = parse_image(_image(other_signer), "a.mbn")
    report = verify_image(image, signer.root_sha256)
    assert report.hashes_ok and not report.signature_ok
    with pytest.raises(MdtSignatureError, match="is not the trusted root"):
        require_valid(report)
    require_valid(
        verify_image(image, signer.root_sha256, hashes_only=True), hashes_only=True
    )


def test_tampered_table_fails_the_signature(signer: TestSigner) -> None:
    # Change a segment and fix its digest: only the signature catches it.
    data = _image(signer, 6)
    image = parse_image(data, "a.mbn")
    seg_off = image.phdrs[4].p_offset
    bad = bytearray(data)
    bad[seg_off] ^= 1
    new = hashlib.sha384(bytes(bad[seg_off : seg_off + 0x321])).digest()
    table_off = image.phdrs[1].p_offset + 48 + 120 + 4 * 48
    bad[table_off : table_off + 48] = new
    report = verify_image(parse_image(bytes(bad), "a.mbn"), signer.root_sha256)
    assert report.hashes_ok and not report.signature_ok
    assert "does not verify" in (report.authorities[0].reason or "")


def test_chain_with_foreign_link_fails(
    signer: TestSigner, other_signer: TestSigner
) -> None:
    from rproctee.qcom.certs import pad_chain, split_chain, verify_chain

    mixed = pad_chain(
        b"".join(split_chain(signer.chain)[:2] + split_chain(other_signer.chain)[2:])
    )
    with pytest.raises(MdtSignatureError, match="is not issued by CN=intruder root"):
        verify_chain(mixed, None)


def test_unsigned_image_has_no_valid_signature() -> None:
    image = parse_image(build_image([SegmentSpec(0x1000, b"x")], version=5), "a.mbn")
    report = verify_image(image)
    assert report.hashes_ok and not report.signature_ok
    with pytest.raises(MdtSignatureError, match="no signature or chain"):
        require_valid(report)


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        (b"\x31\x00", r"cert_chain\[0x0\] = 0x31: not a DER SEQUENCE"),
        (b"\x30", r"cert_chain\[0x0\] = 0x30: not a DER SEQUENCE"),
        (b"\x30\x85\x00\x00\x00\x00\x01", r"length = 0x85: not a 1- to 4-byte"),
        (b"\x30\x82\xff\xff" + bytes(4), r"length = 0xffff: runs past"),
        (b"\x30\x03abc", "not a usable X.509 certificate"),
        (b"\x30\x00" * 9, "more than 8 certificates"),
    ],
)
def test_malformed_chains(chain: bytes, message: str) -> None:
    from rproctee.qcom.certs import load_chain

    with pytest.raises(MdtFormatError, match=message):
        load_chain(chain)


def test_malformed_chain_in_image_is_reported(signer: TestSigner) -> None:
    data = bytearray(_image(signer, 3))
    image = parse_image(bytes(data), "a.mbn")
    chain_off = image.phdrs[1].p_offset + image.phdrs[1].p_filesz - len(signer.chain)
    data[chain_off] = 0x31
    report = verify_image(parse_image(bytes(data), "a.mbn"))
    assert report.authorities[0].status == "failed"
    assert "not a DER SEQUENCE" in (report.authorities[0].reason or "")
