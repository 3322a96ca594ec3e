"""Every check of spec 3.3 with a crafted table, in Linux 6.12's wording."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from rproctee.errors import RprocError
from rproctee.rsctable import (
    FW_RSC_ADDR_ANY,
    RSC_HANDLED,
    RSC_HEADER_SIZE,
    CarveoutRsc,
    DevmemRsc,
    RscTableError,
    TraceRsc,
    UnknownRsc,
    VdevRsc,
    VendorRsc,
    VringRsc,
    build_resource_table,
    check_table_header,
    parse_resource_table,
)

CARVEOUT = CarveoutRsc(0, 0x10000000, 0x10000000, 0x8000, 0, 0, "mcuram2")
DEVMEM = DevmemRsc(0, 0x40000000, 0x40000000, 0x1000, 0, 0, "uart")
TRACE = TraceRsc(0, 0x10040000, 256, 0, "cm4_log")
VRING0 = VringRsc(FW_RSC_ADDR_ANY, 16, 8, 0, 0)
VRING1 = VringRsc(FW_RSC_ADDR_ANY, 16, 8, 1, 0)
VDEV = VdevRsc(0, 7, 0, 1, 0, 4, 0, 2, (0, 0), (VRING0, VRING1), b"\xaa" * 4)


def with_header(
    ver: int = 1, num: int = 0, res: tuple[int, int] = (0, 0), size: int = 16
) -> bytes:
    head = struct.pack("<4I", ver, num, *res)
    return head + bytes(max(0, size - 16))


def set_u32(data: bytes, offset: int, value: int) -> bytes:
    out = bytearray(data)
    out[offset : offset + 4] = value.to_bytes(4, "little")
    return bytes(out)


def expect(data: bytes, message: str, **kwargs: object) -> RscTableError:
    with pytest.raises(RscTableError) as info:
        parse_resource_table(data, **kwargs)  # type: ignore[arg-type]
    assert info.value.message == message
    assert info.value.errno == "EINVAL"
    return info.value


# -- header (find_table) ------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "header-less resource table"),
        (with_header()[:15], "header-less resource table"),
        (with_header(ver=2), "unsupported fw ver: 2"),
        (with_header(ver=0), "unsupported fw ver: 0"),
        # table->ver is a u32 printed with %d
        (with_header(ver=0xFFFFFFFF), "unsupported fw ver: -1"),
        (with_header(res=(1, 0)), "non zero reserved bytes"),
        (with_header(res=(0, 0x80000000)), "non zero reserved bytes"),
        (with_header(num=1), "resource table incomplete"),
        (with_header(num=1, size=19), "resource table incomplete"),
        # 16 + 4 * num wraps a u32 for this num: struct_size saturates instead
        (with_header(num=0x40000000, size=64), "resource table incomplete"),
        (with_header(num=0xFFFFFFFF, size=64), "resource table incomplete"),
    ],
)
def test_header_checks(data: bytes, message: str) -> None:
    with pytest.raises(RscTableError) as info:
        check_table_header(data)
    assert info.value.message == message and info.value.offset is None
    expect(data, message)


def test_header_checks_run_in_the_kernel_order() -> None:
    # version before reserved before num
    expect(with_header(ver=3, res=(1, 1), num=99), "unsupported fw ver: 3")
    expect(with_header(res=(1, 1), num=99), "non zero reserved bytes")


def test_empty_table_is_valid() -> None:
    table = parse_resource_table(with_header())
    assert (table.ver, table.num, table.entries, table.size) == (1, 0, (), 16)
    assert check_table_header(with_header(num=1, size=20)) == (1, 1)


def test_error_is_an_rproc_error_and_a_value_error() -> None:
    err = expect(with_header(ver=5), "unsupported fw ver: 5")
    assert isinstance(err, RprocError) and isinstance(err, ValueError)
    assert "unsupported fw ver: 5" in str(err) and "EINVAL" in str(err)


# -- entry walk (rsc_table_for_each_entry) -----------------------------------


@pytest.mark.parametrize("offset", [0, 4, 12, 15])
def test_entry_offset_inside_the_header_is_truncated(offset: int) -> None:
    data = set_u32(build_resource_table([TRACE]), 16, offset)
    err = expect(data, "rsc table is truncated")
    assert (err.offset, err.index, err.check) == (offset, 0, "offset")


def test_entry_offsets_at_or_past_the_end_or_without_a_header() -> None:
    data = build_resource_table([TRACE])
    size = len(data)
    for offset in (size, size + 1, size - 1, size - 3, 0x7FFFFFFF, 0x80000000):
        expect(set_u32(data, 16, offset), "rsc table is truncated")
    # offset[i] >= 2**31 is a negative int in older kernels; 6.12 reads it as
    # u32 and refuses it.
    expect(set_u32(data, 16, 0xFFFFFFFF), "rsc table is truncated")


def test_entry_header_exactly_at_the_end_is_read_with_nothing_after() -> None:
    # offset == size - 4: avail 0.  An unknown type there is skipped...
    data = with_header(num=1, size=24)
    data = set_u32(set_u32(data, 16, 20), 20, 77)
    table = parse_resource_table(data)
    assert table.entries == (UnknownRsc(20, 77),)
    assert table.warnings == ("unsupported resource 77",)
    # ...a trace there is truncated by its handler.
    expect(set_u32(data, 20, 2), "trace rsc is truncated")


def test_the_walk_stops_at_the_first_bad_entry() -> None:
    data = build_resource_table([TRACE, TRACE])
    data = set_u32(data, 20, 3)  # second offset into the header
    err = expect(data, "rsc table is truncated")
    assert err.index == 1


def test_entry_offset_into_the_offset_array_decodes_what_is_there() -> None:
    # Offset 16 points at offset[0] itself: the type is the offset value 16,
    # an unsupported type, skipped with a warning.
    data = set_u32(build_resource_table([TRACE]), 16, 16)
    table = parse_resource_table(data)
    assert table.entries == (UnknownRsc(16, 16),)


def test_odd_offset_entry_is_judged_by_what_it_decodes() -> None:
    # A carveout at 20 (da 0x100, name "x"); offset[0] moved to 21.  The type
    # there is bytes 21..24 = 00 00 00 | da's low byte 00 -> carveout again,
    # and its reserved word is reserved's top 3 bytes + "x" -> 0x78000000.
    good = CarveoutRsc(0, 0x100, 0x100, 0x100, 0, 0, "x")
    odd = set_u32(build_resource_table([good], tail=1), 16, 21)
    err = expect(odd, "carveout rsc has non zero reserved bytes")
    assert (err.offset, err.value) == (21, 0x78000000)


# -- handlers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message", "size"),
    [
        (CARVEOUT, "carveout rsc is truncated", 56),
        (DEVMEM, "devmem rsc is truncated", 56),
        (TRACE, "trace rsc is truncated", 48),
    ],
)
def test_fixed_size_bodies_truncated(entry: object, message: str, size: int) -> None:
    data = build_resource_table([entry])  # type: ignore[list-item]
    assert len(data) == 20 + size
    parse_resource_table(data)
    err = expect(data[:-1], message)
    assert (err.offset, err.check) == (20, "truncated")


@pytest.mark.parametrize(
    ("entry", "reserved_at", "message"),
    [
        (CARVEOUT, 16, "carveout rsc has non zero reserved bytes"),
        (DEVMEM, 16, "devmem rsc has non zero reserved bytes"),
        (TRACE, 8, "trace rsc has non zero reserved bytes"),
    ],
)
def test_reserved_words_of_bodies(
    entry: object, reserved_at: int, message: str
) -> None:
    data = build_resource_table([entry])  # type: ignore[list-item]
    expect(set_u32(data, 24 + reserved_at, 1), message)


def test_devmem_without_an_iommu_domain_is_refused_before_any_other_check() -> None:
    truncated = build_resource_table([DEVMEM])[:-10]
    expect(truncated, "devmem rsc is truncated")
    err = expect(
        truncated,
        "devmem rsc without an IOMMU domain (the kernel returns -EINVAL "
        "without a message)",
        has_iommu=False,
    )
    assert err.check == "iommu"
    # Carveouts, traces and vdevs do not need one.
    parse_resource_table(build_resource_table([CARVEOUT, TRACE, VDEV]), has_iommu=False)


def test_vdev_layout_and_offsets() -> None:
    data = build_resource_table([VDEV])
    (vdev,) = parse_resource_table(data).vdevs()
    assert vdev.offset == 20
    assert data[vdev.status_offset] == 0
    assert vdev.vring_offset(0) == 20 + 4 + 24
    assert vdev.vring_offset(1) == 20 + 4 + 24 + 20
    assert vdev.config_offset == 20 + 4 + 24 + 40
    assert data[vdev.config_offset :] == b"\xaa" * 4
    with pytest.raises(IndexError):
        vdev.vring_offset(3)


def test_vdev_status_offset_points_at_the_status_byte() -> None:
    data = bytearray(build_resource_table([TRACE, VDEV]))
    (vdev,) = parse_resource_table(bytes(data)).vdevs()
    data[vdev.status_offset] = 0x0F
    assert parse_resource_table(bytes(data)).vdevs()[0].status == 0x0F


@pytest.mark.parametrize("cut", [1, 4, 5, 24, 44, 48, 68])
def test_vdev_vrings_or_config_past_the_table(cut: int) -> None:
    data = build_resource_table([VDEV])
    expect(data[:-cut], "vdev rsc is truncated")


def test_vdev_config_len_past_the_table_even_huge() -> None:
    data = build_resource_table([VDEV])
    config_len_at = 24 + 16
    expect(set_u32(data, config_len_at, 5), "vdev rsc is truncated")
    expect(set_u32(data, config_len_at, 0xFFFFFFFF), "vdev rsc is truncated")


def test_vdev_num_of_vrings_past_the_table() -> None:
    data = bytearray(build_resource_table([VDEV]))
    data[24 + 21] = 3  # 3 vrings do not fit with the 4 config bytes
    expect(bytes(data), "vdev rsc is truncated")


def test_vdev_reserved_bytes() -> None:
    for at in (22, 23):
        data = bytearray(build_resource_table([VDEV]))
        data[24 + at] = 1
        expect(bytes(data), "vdev rsc has non zero reserved bytes")


def test_vdev_too_many_vrings_after_the_size_check() -> None:
    three = VdevRsc(0, 7, 0, 0, 0, 0, 0, 3, (0, 0), (VRING0, VRING1, VRING0), b"")
    err = expect(build_resource_table([three]), "too many vrings: 3")
    assert err.check == "vrings"


def test_vdev_with_zero_vrings_and_no_config() -> None:
    bare = VdevRsc(0, 7, 0, 0, 0, 0, 0, 0, (0, 0), (), b"")
    assert parse_resource_table(build_resource_table([bare])).vdevs() == (
        VdevRsc(20, 7, 0, 0, 0, 0, 0, 0, (0, 0), (), b""),
    )


def test_vring_num_and_align_zero_are_not_format_errors() -> None:
    # rproc_parse_vring checks them in the virtio probe, not the walk.
    vdev = VdevRsc(0, 7, 0, 0, 0, 0, 0, 1, (0, 0), (VringRsc(0, 0, 0, 0, 0),), b"")
    assert parse_resource_table(build_resource_table([vdev])).vdevs()


# -- types ---------------------------------------------------------------------


@pytest.mark.parametrize("rsc_type", [128, 200, 512])
def test_vendor_range_without_handler_is_skipped(rsc_type: int) -> None:
    table = parse_resource_table(build_resource_table([VendorRsc(0, rsc_type)]))
    assert table.entries == (VendorRsc(20, rsc_type),)
    assert table.warnings == (f"unsupported vendor resource {rsc_type}",)


@pytest.mark.parametrize("rsc_type", [4, 5, 127, 513, 0xFFFFFFFF])
def test_unknown_types_are_skipped(rsc_type: int) -> None:
    table = parse_resource_table(build_resource_table([UnknownRsc(0, rsc_type)]))
    assert table.entries == (UnknownRsc(20, rsc_type),)
    assert table.warnings == (f"unsupported resource {rsc_type}",)


def test_vendor_handler_sees_body_offset_and_avail() -> None:
    seen: list[tuple[int, bytes, int, int]] = []

    def handle(rsc_type: int, body: bytes, offset: int, avail: int) -> int:
        seen.append((rsc_type, body, offset, avail))
        return RSC_HANDLED

    data = build_resource_table([VendorRsc(0, 300)], tail=8)
    table = parse_resource_table(data, handle_rsc=handle)
    assert seen == [(300, bytes(8), 24, 8)] and table.warnings == ()


def test_vendor_handler_refusal_stops_the_walk() -> None:
    def refuse(rsc_type: int, body: bytes, offset: int, avail: int) -> int:
        raise RscTableError("vendor says no", check="vendor", offset=offset - 4)

    data = build_resource_table([VendorRsc(0, 300), TraceRsc(0, 0, 0, 9, "")])
    with pytest.raises(RscTableError, match="vendor says no"):
        parse_resource_table(data, handle_rsc=refuse)


# -- input kinds and snapshot ---------------------------------------------------


def test_every_buffer_kind_parses_alike() -> None:
    data = build_resource_table([CARVEOUT, TRACE, VDEV])
    expected = parse_resource_table(data)
    array = np.frombuffer(data, dtype=np.uint8).copy()
    for buf in (bytearray(data), memoryview(data), array, array[:]):
        assert parse_resource_table(buf) == expected


def test_parse_reads_one_snapshot() -> None:
    # The snapshot is taken before the checks: changing the source after the
    # call returns does not change the result (nothing kept a reference).
    array = np.frombuffer(build_resource_table([TRACE]), dtype=np.uint8).copy()
    table = parse_resource_table(array)
    array[24 + 8] = 1  # trace reserved
    assert table.traces()[0].reserved == 0
    expect(array.tobytes(), "trace rsc has non zero reserved bytes")


def test_helpers_and_json() -> None:
    table = parse_resource_table(
        build_resource_table([CARVEOUT, DEVMEM, TRACE, VDEV, VendorRsc(0, 130)])
    )
    assert [c.name for c in table.carveouts()] == ["mcuram2"]
    assert [t.name for t in table.traces()] == ["cm4_log"]
    assert [d.name for d in table.devmems()] == ["uart"]
    assert len(table.vdevs()) == 1
    doc = table.to_dict()
    assert [e["type_name"] for e in doc["entries"]] == [
        "carveout",
        "devmem",
        "trace",
        "vdev",
        "vendor",
    ]
    assert doc["entries"][3]["vrings"][0] == {
        "da": FW_RSC_ADDR_ANY,
        "align": 16,
        "num": 8,
        "notifyid": 0,
        "pa": 0,
    }
    assert doc["entries"][3]["config"] == "aaaaaaaa"
    assert doc["offsets"] == list(table.offsets)
    assert table.offsets[0] == RSC_HEADER_SIZE + 4 * 5


def test_name_without_nul_uses_all_32_bytes() -> None:
    entry = CarveoutRsc(0, 0, 0, 0, 0, 0, "n" * 32)
    assert parse_resource_table(build_resource_table([entry])).carveouts()[0].name == (
        "n" * 32
    )
    with pytest.raises(ValueError, match="longer than 32"):
        build_resource_table([CarveoutRsc(0, 0, 0, 0, 0, 0, "n" * 33)])


def test_on_entry_runs_after_each_entry_in_order_and_can_stop_the_walk() -> None:
    seen: list[int] = []

    def on_entry(entry: object) -> None:
        seen.append(entry.offset)  # type: ignore[attr-defined]
        if isinstance(entry, TraceRsc):
            raise RscTableError("", check="x", errno="ENOMEM", note="stop here")

    # the vdev after the trace is truncated: on_entry stops the walk first
    data = build_resource_table([CARVEOUT, TRACE, VDEV])[:-1]
    with pytest.raises(RscTableError) as info:
        parse_resource_table(data, on_entry=on_entry)
    assert seen == [28, 84] and info.value.errno == "ENOMEM"
    assert "stop here" in str(info.value)
