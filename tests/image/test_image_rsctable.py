"""Resource-table decoder used by ``info``."""

from __future__ import annotations

import struct

import pytest

from rproctee.image import RscTableFormatError, parse_image, parse_rsc_table
from rproctee.image.inspect import describe_image


def table(*entries: bytes, header: tuple[int, int, int] = (1, 0, 0)) -> memoryview:
    ver, res0, res1 = header
    first = 16 + 4 * len(entries)
    offsets, body = [], b""
    for entry in entries:
        offsets.append(first + len(body))
        body += entry
    head = struct.pack("<4I", ver, len(entries), res0, res1)
    return memoryview(head + struct.pack(f"<{len(entries)}I", *offsets) + body)


def name32(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


CARVEOUT = struct.pack("<6I", 0, 0x10000000, 0x10000000, 0x8000, 0, 0) + name32("cm4")
TRACE = struct.pack("<4I", 2, 0x10000000, 256, 0) + name32("cm4_log")
VRING = struct.pack("<5I", 0xFFFFFFFF, 16, 8, 1, 0)
VDEV = struct.pack("<6I2B2x", 3, 7, 0, 1, 0, 4, 0, 2) + VRING + VRING + b"\xaa" * 4


def test_decodes_every_standard_type() -> None:
    decoded = parse_rsc_table(table(CARVEOUT, TRACE, VDEV, struct.pack("<2I", 200, 4)))
    assert [e.type_name for e in decoded.entries] == [
        "carveout",
        "trace",
        "vdev",
        "vendor",
    ]
    carveout, trace, vdev, _ = decoded.entries
    assert carveout.fields["len"] == 0x8000 and carveout.fields["name"] == "cm4"
    assert trace.fields == {
        "da": 0x10000000,
        "len": 256,
        "reserved": 0,
        "name": "cm4_log",
    }
    assert vdev.fields["id"] == 7 and vdev.fields["config"] == "aaaaaaaa"
    assert (
        vdev.fields["vrings"]
        == [{"da": 0xFFFFFFFF, "align": 16, "num": 8, "notifyid": 1, "pa": 0}] * 2
    )


def test_fw1_resource_table_in_info(fw1: bytes) -> None:
    from rproctee.image import KeySigner, build_image, generate_key

    image = build_image([fw1], KeySigner(generate_key("p256")))
    rsc = describe_image(parse_image(image))["images"][0]["elf"]["resource_table"]
    assert (rsc["sh_addr"], rsc["sh_offset"], rsc["sh_size"]) == (0x38, 0x1038, 0x44)
    assert rsc["entries"][0]["fields"]["name"] == "cm4_log"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (memoryview(bytes(12)), "resource table size"),
        (table(TRACE, header=(2, 0, 0)), "resource table ver"),
        (table(TRACE, header=(1, 0, 5)), "resource table reserved"),
        (memoryview(struct.pack("<4I", 1, 0x40000000, 0, 0)), "resource table num"),
        (table(TRACE[:20]), "entry[0] body size"),
        (table(VDEV[:-2]), "entry[0] vrings + config"),
    ],
)
def test_rejects_broken_tables(data: memoryview, field: str) -> None:
    with pytest.raises(RscTableFormatError) as info:
        parse_rsc_table(data)
    assert info.value.field == field


@pytest.mark.parametrize("offset", [0, 12, 15, 65, 68, 0xFFFFFFFF])
def test_rejects_bad_entry_offsets(offset: int) -> None:
    data = bytearray(table(TRACE))
    data[16:20] = offset.to_bytes(4, "little")
    with pytest.raises(RscTableFormatError, match=r"entry\[0\] offset"):
        parse_rsc_table(memoryview(bytes(data)))


def test_entry_offset_inside_the_offset_array_is_judged_by_what_it_decodes() -> None:
    # Linux only requires offset >= 16 (rsc_table_for_each_entry): offset 19
    # reads bytes 13 00 00 00 | 02 00 00 -> type 0x200 = 512, a vendor type.
    data = bytearray(table(TRACE))
    data[16:20] = (19).to_bytes(4, "little")
    decoded = parse_rsc_table(memoryview(bytes(data)))
    assert [(e.offset, e.type, e.type_name) for e in decoded.entries] == [
        (19, 512, "vendor")
    ]
