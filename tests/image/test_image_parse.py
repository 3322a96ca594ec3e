"""Parser: zero-copy views and one test per header/TLV rule (spec 1.2-1.5)."""

from __future__ import annotations

import mmap
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from image_helpers import Seg, make_elf

from rproctee.image import (
    MAGIC,
    ImageFormatError,
    SignType,
    TlvType,
    hash_entries,
    parse_image,
    prepare_image,
)
from rproctee.image.format import encode_tlv, pad8, r8

ELF = make_elf([Seg(0x10000000, b"firmware", memsz=0x40)], tail=b"odd")
ENTRIES = b"".join(e.pack() for e in hash_entries(ELF))


def u32s(*values: int) -> bytes:
    return b"".join(v.to_bytes(4, "little") for v in values)


def std_records(**override: bytes | None) -> list[bytes]:
    """The script's records; ``override`` replaces (bytes) or drops (None) one."""
    values: dict[str, bytes] = {
        "SIGNTYPE": b"\x01",
        "NUM_IMG": b"\x01",
        "IMGTYPE": b"\x01",
        "IMGSIZE": u32s(r8(len(ELF))),
        "HASHTYPE": b"\x01",
        "HASHTABLE": ENTRIES,
    }
    records = []
    for name, value in values.items():
        chosen = override.get(name, value) if name in override else value
        if chosen is not None:
            records.append(encode_tlv(TlvType[name], chosen))
    return records


def raw_image(
    records: list[bytes],
    *,
    sign_len: int = 256,
    images: tuple[bytes, ...] = (ELF,),
    tlv_len: int | None = None,
    img_len: int | None = None,
) -> bytes:
    area = b"".join(records)
    imgs = b"".join(pad8(i) for i in images)
    header = struct.pack(
        "<5I",
        MAGIC,
        1,
        len(area) if tlv_len is None else tlv_len,
        sign_len,
        len(imgs) if img_len is None else img_len,
    )
    return header + area + bytes(r8(sign_len)) + imgs


def patch_u32(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + u32s(value) + data[offset + 4 :]


GOOD = raw_image(std_records())


def test_crafted_image_equals_builder_layout() -> None:
    unsigned = prepare_image([ELF], SignType.RSA, 256)
    assert GOOD == unsigned.assemble(bytes(256))
    parsed = parse_image(GOOD)
    assert parsed.hash_type == 1 and len(parsed.hash_table) == 1


def _expect(data: bytes, field: str, match: str | None = None) -> ImageFormatError:
    with pytest.raises(ImageFormatError, match=match) as info:
        parse_image(data)
    assert info.value.field == field
    return info.value


# ---- header rules (spec 1.1/1.2) -------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 19])
def test_shorter_than_header(size: int) -> None:
    _expect(GOOD[:size], "image size", "shorter than the 0x14-byte header")


def test_bad_magic_and_version() -> None:
    err = _expect(patch_u32(GOOD, 0, 0x48454C46), "magic")
    assert str(err) == "magic = 0x48454c46: must be 0x3543a468"
    _expect(patch_u32(GOOD, 4, 2), "version", "must be 0x1")
    _expect(patch_u32(GOOD, 4, 0), "version")


@pytest.mark.parametrize(("offset", "field"), [(8, "tlv_len"), (12, "sign_len")])
def test_zero_lengths(offset: int, field: str) -> None:
    _expect(patch_u32(GOOD, offset, 0), field, "must be non-zero")


def test_lengths_must_be_multiples_of_8() -> None:
    _expect(patch_u32(GOOD, 8, len(b"".join(std_records())) - 4), "tlv_len", "multiple")
    _expect(patch_u32(GOOD, 16, r8(len(ELF)) - 4), "img_len", "multiple of 8")


def test_size_sum_must_match_file() -> None:
    _expect(GOOD + bytes(8), "image size", "must equal 0x14 \\+ r8")
    _expect(GOOD[:-8], "img_len", "end past")
    _expect(GOOD[:-1], "img_len", "end past")


@pytest.mark.parametrize(
    ("offset", "value", "field"),
    [
        (8, 0xFFFFFFF8, "tlv_len"),  # round-up in 32 bits would wrap to 0
        (12, 0xFFFFFFFF, "sign_len"),
        (16, 0xFFFFFFF8, "img_len"),
        (8, 0x10000, "tlv_len"),  # beyond the file
    ],
)
def test_huge_lengths_are_refused_by_arithmetic(
    offset: int, value: int, field: str
) -> None:
    err = _expect(patch_u32(GOOD, offset, value), field, "end past")
    assert err.value == value


def test_sign_len_must_be_64_for_ecc() -> None:
    data = raw_image(std_records(SIGNTYPE=b"\x02"), sign_len=72)
    _expect(data, "sign_len", "must be 0x40 for SIGNTYPE ECC")
    assert parse_image(raw_image(std_records(SIGNTYPE=b"\x02"), sign_len=64))


# ---- TLV records (spec 1.3) -------------------------------------------------


def test_tlv_value_past_area() -> None:
    records = std_records()
    records.append(struct.pack("<2I", 0x10001, 0x7FFFFFF8))
    _expect(raw_image(records), "tlv[6].length", "ends past tlv_len")


def test_tlv_len_cutting_the_last_record() -> None:
    records = std_records()
    area_len = len(b"".join(records))
    data = raw_image(records, tlv_len=area_len - 8)
    # the header now says the area is 8 bytes shorter: move the rest along
    data = data[: 20 + area_len - 8] + data[20 + area_len :]
    _expect(data, "tlv[5].length", "ends past tlv_len")


@pytest.mark.parametrize(
    "name", ["SIGNTYPE", "NUM_IMG", "IMGTYPE", "IMGSIZE", "HASHTABLE"]
)
def test_required_tlv_missing(name: str) -> None:
    _expect(raw_image(std_records(**{name: None})), f"{name} TLV", "required")


@pytest.mark.parametrize("name", ["SIGNTYPE", "NUM_IMG", "HASHTABLE", "HASHTYPE"])
def test_empty_tlv_counts_as_invalid(name: str) -> None:
    _expect(raw_image(std_records(**{name: b""})), f"{name}.length", "non-zero")


@pytest.mark.parametrize("name", ["SIGNTYPE", "HASHTABLE", "NUM_IMG"])
def test_duplicated_tlv(name: str) -> None:
    records = std_records()
    records.append(records[[r[:4] for r in records].index(u32s(TlvType[name]))])
    _expect(raw_image(records), "tlv[6].type", f"{name} duplicated")


@pytest.mark.parametrize(
    ("override", "field", "match"),
    [
        ({"SIGNTYPE": b"\x01\x00"}, "SIGNTYPE.length", "must be 0x1"),
        ({"SIGNTYPE": b"\x03"}, "SIGNTYPE", "0x1..0x2"),
        ({"SIGNTYPE": b"\x00"}, "SIGNTYPE", "0x1..0x2"),
        ({"HASHTYPE": b"\x02"}, "HASHTYPE", "0x1..0x1"),
        ({"HASHTYPE": b"\x01\x00"}, "HASHTYPE.length", "must be 0x1"),
        ({"NUM_IMG": b"\x00"}, "NUM_IMG", "0x1..0xff"),
        ({"NUM_IMG": b"\x01\x00"}, "NUM_IMG.length", "must be 0x1"),
        ({"IMGTYPE": b"\x01\x01"}, "IMGTYPE.length", "NUM_IMG \\(0x1\\)"),
        ({"IMGTYPE": b"\x02"}, "IMGTYPE[0]", "must be 0x1"),
        ({"IMGSIZE": u32s(8, 8)}, "IMGSIZE.length", "4 x NUM_IMG"),
        ({"IMGSIZE": u32s(r8(len(ELF)) + 8)}, "IMGSIZE sum", "img_len"),
        ({"IMGSIZE": u32s(len(ELF))}, "IMGSIZE[0]", "multiple of 8"),
        ({"IMGSIZE": u32s(0)}, "IMGSIZE[0]", "non-zero"),
        ({"HASHTABLE": ENTRIES + b"\0"}, "HASHTABLE.length", "multiple of 64"),
    ],
)
def test_known_tlv_value_rules(
    override: dict[str, bytes], field: str, match: str
) -> None:
    _expect(raw_image(std_records(**override)), field, match)


def test_hashtype_may_be_absent() -> None:
    assert parse_image(raw_image(std_records(HASHTYPE=None))).hash_type is None


def test_unknown_and_platform_tlvs_are_kept_raw_in_order() -> None:
    extra = [encode_tlv(0x10001, b"\x01\x02\x03"), encode_tlv(0x42, b""),
             encode_tlv(0x20000, b"x" * 9)]  # fmt: skip
    parsed = parse_image(raw_image(std_records() + extra))
    assert [(t.type, bytes(t.value)) for t in parsed.tlvs[6:]] == [
        (0x10001, b"\x01\x02\x03"), (0x42, b""), (0x20000, b"x" * 9)
    ]  # fmt: skip
    assert [t.name for t in parsed.tlvs[6:]] == ["PLATFORM", "UNKNOWN", "UNKNOWN"]
    assert [t.type for t in parsed.unknown_tlvs] == [0x42, 0x20000]


def test_many_tlvs_parse_in_linear_time() -> None:
    records = std_records() + [
        encode_tlv(0x10000 + (i % 0xFFFF), b"v") for i in range(20000)
    ]
    data = raw_image(records)
    start = time.perf_counter()
    assert len(parse_image(data).tlvs) == 20006
    assert time.perf_counter() - start < 2.0


def test_two_images_are_split_by_imgsize() -> None:
    other = make_elf([Seg(0x30000000, b"second image")])
    entries = ENTRIES + b"".join(e.pack() for e in hash_entries(other))
    records = std_records(
        NUM_IMG=b"\x02", IMGTYPE=b"\x01\x01",
        IMGSIZE=u32s(r8(len(ELF)), r8(len(other))), HASHTABLE=entries,
    )  # fmt: skip
    parsed = parse_image(raw_image(records, images=(ELF, other)))
    assert [
        bytes(i.data[: len(e)])
        for i, e in zip(parsed.images, (ELF, other), strict=True)
    ] == [ELF, other]
    assert parsed.images[1].offset == parsed.images[0].offset + r8(len(ELF))


# ---- buffers: no copies ------------------------------------------------------


def test_views_share_the_callers_memory() -> None:
    buf = bytearray(GOOD)
    parsed = parse_image(buf)
    first = parsed.images[0].offset
    buf[first + 60] ^= 0xFF
    assert parsed.images[0].data[60] == buf[first + 60]
    assert parsed.signature.obj is buf and parsed.tlvs[0].value.obj is buf


@pytest.mark.parametrize(
    "wrap",
    [
        bytes,
        memoryview,
        lambda b: np.frombuffer(b, dtype=np.uint8),
        lambda b: np.frombuffer(b, dtype=np.uint32),  # cast to bytes, no copy
    ],
)
def test_any_buffer_type(wrap: Callable[[bytes], object]) -> None:
    parsed = parse_image(wrap(GOOD))  # type: ignore[arg-type]
    assert bytes(parsed.images[0].data[: len(ELF)]) == ELF


def test_mmap_buffer(tmp_path: Path) -> None:
    path = tmp_path / "image.sig"
    path.write_bytes(GOOD)
    with (
        path.open("rb") as handle,
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm,
    ):
        parsed = parse_image(mm)
        assert parsed.header.tlv_len == len(b"".join(std_records()))
        assert bytes(parsed.images[0].data[:4]) == b"\x7fELF"
        del parsed  # release the views before the mmap closes


def test_non_contiguous_buffer_is_refused() -> None:
    arr = np.frombuffer(GOOD + GOOD, dtype=np.uint8)[::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        parse_image(arr)
