"""rproctee.qcom format: hash-segment versions, header rules, rejections."""

from __future__ import annotations

import hashlib
import struct

import pytest
from qcom_helpers import no_files, patch_u16, patch_u32, phdr_offset, segments

from rproctee.qcom import (
    MdtError,
    MdtFormatError,
    SegmentSpec,
    TestSigner,
    build_image,
    mdt_header_valid,
    parse_image,
)
from rproctee.qcom import constants as c
from rproctee.qcom.certs import describe_chain, split_chain
from rproctee.qcom.hashseg import header_size, parse_hash_segment

VERSIONS = (3, 5, 6, 7)


def _image(signer: TestSigner, version: int = 6, **kw: object) -> bytes:
    return build_image(segments(), version=version, signer=signer, **kw)  # type: ignore[arg-type]


def _hash_off(data: bytes) -> int:
    return struct.unpack_from("<I", data, phdr_offset(1, "p_offset"))[0]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("algorithm", ["sha256", "sha384"])
def test_round_trip_every_version(
    signer: TestSigner, version: int, algorithm: str
) -> None:
    data = _image(signer, version, algorithm=algorithm)
    image = parse_image(data, "modem.mbn", no_files)
    seg = image.hash_segment
    assert seg.version == version and seg.algorithm == algorithm
    assert seg.header_size == header_size(version) == (48 if version == 6 else 40)
    assert len(seg.hashes) == image.header.e_phnum == 5
    assert image.hash_index == 1 and not image.split
    # Entry 0 is the digest of the ELF header + program headers.
    assert seg.hashes[0] == hashlib.new(algorithm, data[: 52 + 5 * 32]).digest()
    assert seg.hashes[1] == bytes(len(seg.hashes[1]))  # the hash segment's own
    assert seg.hashes[3] == bytes(len(seg.hashes[3]))  # the empty segment
    assert seg.hashes[4] == hashlib.new(algorithm, b"\xa5" * 0x321).digest()
    assert [a.name for a in seg.authorities()] == ["oem"]
    assert seg.trailing == 0


def test_versions_lay_out_their_parts(signer: TestSigner) -> None:
    v5 = parse_image(_image(signer, 5, qti_signer=signer), "a.mbn").hash_segment
    assert (
        v5.fields["qti_signature_size"] == 96
        and v5.fields["signature_addr"] == 0xFFFFFFFF
    )
    assert [a.name for a in v5.authorities()] == ["oem", "qti"]
    v6 = parse_image(_image(signer, 6), "a.mbn").hash_segment
    assert v6.fields["metadata_size"] == 120 and v6.parts["metadata"] == bytes(120)
    v7 = parse_image(_image(signer, 7, software_id=0x15), "a.mbn").hash_segment
    assert v7.fields["common_metadata_size"] == 24
    assert v7.fields["software_id"] == 0x15 and v7.fields["hash_table_algorithm"] == 3
    v3 = parse_image(_image(signer, 3), "a.mbn").hash_segment
    # v3 records where its parts load: right after the header at dest_addr.
    assert (
        v3.fields["signature_addr"] == v3.fields["dest_addr"] + v3.fields["hash_size"]
    )


def test_certificate_chain_is_described(
    signer: TestSigner, rsa_signer: TestSigner
) -> None:
    chain = describe_chain(signer.chain)
    assert [i.subject for i in chain] == [
        "CN=rproctee test attestation",
        "CN=rproctee test attestation CA",
        "CN=rproctee test root",
    ]
    assert {i.key_type for i in chain} == {"EC-secp384r1"}
    assert chain[-1].self_signed and not chain[0].self_signed
    assert describe_chain(rsa_signer.chain)[0].key_type == "RSA-2048"
    assert len(signer.chain) % 16 == 0 and len(split_chain(signer.chain)) == 3


def test_unknown_version_rejected(signer: TestSigner) -> None:
    data = _image(signer, 6)
    bad = patch_u32(data, _hash_off(data) + 4, 4)
    with pytest.raises(
        MdtFormatError, match=r"hash segment version = 0x4: unknown MBN"
    ):
        parse_image(bad, "a.mbn")
    with pytest.raises(MdtFormatError, match="version = 0x8"):
        parse_image(patch_u32(data, _hash_off(data) + 4, 8), "a.mbn")


def test_v7_unknown_algorithm_rejected(signer: TestSigner) -> None:
    data = _image(signer, 7)
    bad = patch_u32(data, _hash_off(data) + 40 + 16, 5)  # SHA-512: not supported
    with pytest.raises(MdtFormatError, match=r"hash_table_algorithm = 0x5: unknown"):
        parse_image(bad, "a.mbn")


def test_v7_algorithm_must_match_table_size(signer: TestSigner) -> None:
    data = _image(signer, 7, algorithm="sha384")
    bad = patch_u32(data, _hash_off(data) + 40 + 16, 2)  # says SHA-256
    with pytest.raises(MdtFormatError, match="hash_size = 0xf0: is not 5"):
        parse_image(bad, "a.mbn")


def test_hash_size_not_whole_digests(signer: TestSigner) -> None:
    data = parse_image(_image(signer, 5), "a.mbn").hash_segment.raw
    bad = patch_u32(data, 20, 5 * 40)  # 40-byte digests
    bad = patch_u32(bad, 16, struct.unpack_from("<I", data, 16)[0] + 40)
    with pytest.raises(MdtFormatError, match=r"hash_size = 0xc8: is not 5 \(e_phnum\)"):
        parse_hash_segment(bad + bytes(40), 5)


def test_total_size_must_add_up(signer: TestSigner) -> None:
    raw = parse_image(_image(signer, 3), "a.mbn").hash_segment.raw
    with pytest.raises(MdtFormatError, match="total_size = .*is not the sum"):
        parse_hash_segment(
            patch_u32(raw, 16, struct.unpack_from("<I", raw, 16)[0] - 1), 5
        )


@pytest.mark.parametrize("version", VERSIONS)
def test_part_past_the_segment(signer: TestSigner, version: int) -> None:
    raw = parse_image(_image(signer, version), "a.mbn").hash_segment.raw
    with pytest.raises(MdtFormatError, match="cert_chain_size = .*runs past the"):
        parse_hash_segment(raw[:-1], 5)


@pytest.mark.parametrize("size", [0, 7, 39])
def test_hash_segment_too_short(signer: TestSigner, size: int) -> None:
    raw = parse_image(_image(signer, 5), "a.mbn").hash_segment.raw
    with pytest.raises(MdtFormatError, match="hash segment size = .*shorter than"):
        parse_hash_segment(raw[:size], 5)


def test_hash_segment_too_short_in_image(signer: TestSigner) -> None:
    data = _image(signer, 6)
    bad = patch_u32(data, phdr_offset(1, "p_filesz"), 20)
    with pytest.raises(MdtFormatError, match="hash segment size = 0x14"):
        parse_image(bad, "a.mbn")


# -- header rules (mdt_header_valid and this package's stricter ones) ------------


def test_header_rules(signer: TestSigner) -> None:
    data = _image(signer)
    assert mdt_header_valid(data)
    cases = [
        (data[:51], "file size = 0x33: shorter than the 52-byte"),
        (b"\x7fELG" + data[4:], "e_ident = 0x7f454c47: no ELF magic"),
        (patch_u16(data, 42, 56), "e_phentsize = 0x38: is not 32"),
        (patch_u16(data, 44, 0x7FFF), "e_phoff = 0x34: 32767 program headers end past"),
        (patch_u32(data, 28, 0xFFFFFFF0), "e_phoff = 0xfffffff0"),
        (patch_u16(data, 48, 1), r"e_shentsize = 0x0: is not 40"),
        (patch_u16(data, 46, 64), "e_shentsize = 0x40: is not 40"),
        (patch_u16(patch_u16(data, 46, 40), 48, 2), "e_shoff = 0x0: 2 section headers"),
    ]
    for bad, message in cases[:-1]:
        assert not mdt_header_valid(bad)
        with pytest.raises(MdtFormatError, match=message):
            parse_image(bad, "a.mbn")
    # Two section headers at offset 0 fit in the file: valid for the kernel.
    assert mdt_header_valid(cases[-1][0])


def test_section_headers_past_the_file(signer: TestSigner) -> None:
    data = patch_u32(
        patch_u16(patch_u16(_image(signer), 46, 40), 48, 2), 32, len(_image(signer))
    )
    assert not mdt_header_valid(data)
    with pytest.raises(MdtFormatError, match="e_shoff = .*2 section headers end past"):
        parse_image(data, "a.mbn")


@pytest.mark.parametrize(
    ("index", "value", "field"), [(4, 2, "EI_CLASS"), (5, 2, "EI_DATA")]
)
def test_elf64_and_big_endian_rejected(
    signer: TestSigner, index: int, value: int, field: str
) -> None:
    data = bytearray(_image(signer))
    data[index] = value
    assert mdt_header_valid(bytes(data))  # the kernel does not look
    with pytest.raises(MdtFormatError, match=f"e_ident\\[{field}\\] = 0x2"):
        parse_image(bytes(data), "a.mbn")


def test_layout_rules(signer: TestSigner) -> None:
    data = _image(signer)
    one_phdr = patch_u16(data, 44, 1)
    with pytest.raises(MdtFormatError, match="e_phnum = 0x1: fewer than 2"):
        parse_image(one_phdr, "a.mbn")
    load0 = patch_u32(data, phdr_offset(0, "p_type"), c.PT_LOAD)
    with pytest.raises(MdtFormatError, match=r"phdr\[0\].p_type = 0x1: is PT_LOAD"):
        parse_image(load0, "a.mbn")
    no_hash = patch_u32(data, phdr_offset(1, "p_flags"), 0)
    with pytest.raises(MdtFormatError, match="no hash segment found"):
        parse_image(no_hash, "a.mbn")
    short_hdr = patch_u32(data, phdr_offset(0, "p_filesz"), 52)
    with pytest.raises(MdtFormatError, match=r"phdr\[0\].p_filesz = 0x34: must cover"):
        parse_image(short_hdr, "a.mbn")
    long_hdr = patch_u32(data, phdr_offset(0, "p_filesz"), len(data) + 1)
    with pytest.raises(MdtFormatError, match=r"phdr\[0\].p_filesz = .*fit in the"):
        parse_image(long_hdr, "a.mbn")
    fat = patch_u32(data, phdr_offset(4, "p_filesz"), 0x400)
    fat = patch_u32(fat, phdr_offset(4, "p_memsz"), 0x3FF)
    with pytest.raises(
        MdtFormatError, match=r"phdr\[4\].p_filesz = 0x400: larger than p_memsz 0x3ff"
    ):
        parse_image(fat, "a.mbn")


def test_hash_segment_found_by_flags_not_type(signer: TestSigner) -> None:
    data = _image(signer)
    # Make program header 1 a PT_LOAD: still the hash segment (type bits).
    loaded = patch_u32(data, phdr_offset(1, "p_type"), c.PT_LOAD)
    image = parse_image(loaded, "a.mbn")
    assert image.hash_index == 1
    from rproctee.qcom.format import is_loadable

    assert not is_loadable(image.phdrs[1])


def test_split_image_without_fetch_is_an_error(signer: TestSigner) -> None:
    data = _image(signer)
    end = _hash_off(data) + parse_image(data, "a").hash_segment.raw.__len__()
    with pytest.raises(MdtError, match=r"modem.b02: split image"):
        parse_image(data[:end], "modem.mdt")


def test_relocatable_flag(signer: TestSigner) -> None:
    plain = parse_image(_image(signer), "a.mbn")
    moved = parse_image(_image(signer, relocatable=True), "a.mbn")
    assert not plain.relocatable and moved.relocatable
    assert all(p.p_flags & c.QCOM_MDT_RELOCATABLE for p in moved.phdrs[2:])


def test_unsigned_image(signer: TestSigner) -> None:
    data = build_image([SegmentSpec(0x1000, b"x")], version=5)
    seg = parse_image(data, "a.mbn").hash_segment
    assert seg.authorities() == () and seg.fields["signature_size"] == 0


def test_builder_rejects_what_a_version_cannot_express(signer: TestSigner) -> None:
    with pytest.raises(MdtFormatError, match="v3 has no QTI"):
        build_image(segments(), version=3, signer=signer, qti_signer=signer)
    with pytest.raises(MdtFormatError, match="version = 0x4: unknown"):
        build_image(segments(), version=4, signer=signer)
    with pytest.raises(MdtFormatError, match="no room below 4 GiB"):
        build_image([SegmentSpec(0xFFFFF000, b"x", memsz=0x1000)], signer=signer)


def test_to_dict_is_json_ready(signer: TestSigner) -> None:
    import json

    doc = parse_image(_image(signer, 7), "a.mbn").to_dict()
    assert json.loads(json.dumps(doc))["hash_segment"]["version"] == 7
    assert [s["loadable"] for s in doc["segments"]] == [False, False, True, True, True]
