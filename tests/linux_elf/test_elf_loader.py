"""The Linux 6.12 ELF ops, one test per behaviour (issue 13 and spec section 4)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from elf_factory import (
    Sec,
    Seg,
    build,
    ehdr_field,
    patch,
    phdr_field,
    rsc_table,
    shdr_field,
)

from rproctee.linux.elf_loader import (
    LinuxElfError,
    ParseFwPolicy,
    carveout_da_to_va,
    device_memory_da_to_va,
    elf_boot_verdict,
    find_table,
    parse_fw,
    rproc_elf_find_loaded_rsc_table,
    rproc_elf_get_boot_addr,
    rproc_elf_load_rsc_table,
    rproc_elf_load_segments,
    rproc_elf_sanity_check,
)
from rproctee.platform.board import load_platform
from rproctee.platform.memory import DeviceMemory, RegionSpec
from rproctee.rsctable import (
    CarveoutRsc,
    TraceRsc,
    VdevRsc,
    VringRsc,
    build_resource_table,
)

DK2 = load_platform("stm32mp15-dk2")
CARVEOUTS = DK2.linux_carveouts()
POLICIES = list(ParseFwPolicy)
TABLE = build_resource_table([TraceRsc(0, 0x10000000, 256, 0, "cm4_log")])


def refusal(call: object, *args: object, **kwargs: object) -> LinuxElfError:
    with pytest.raises(LinuxElfError) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value


def da_to_va(da: int, length: int) -> str | None:
    hit = carveout_da_to_va(CARVEOUTS, da, length)
    return None if hit is None else CARVEOUTS[hit[0]].name


def good_elf(elf_class: int = 32) -> tuple[bytes, object]:
    return build(
        [Seg(0x0, b"\xaa" * 64), Seg(0x10000000, b"\xbb" * 8, memsz=0x100)],
        [Sec(".resource_table", 0x10000000, TABLE)],
        elf_class=elf_class,
    )


# -- rproc_elf_sanity_check ----------------------------------------------------


@pytest.mark.parametrize("elf_class", [32, 64])
def test_good_elf_passes_sanity_and_gives_its_entry(elf_class: int) -> None:
    elf, _ = build([Seg(0x0)], elf_class=elf_class, entry=0x1234_5679)
    hdr = rproc_elf_sanity_check(elf)
    assert hdr.elf_class == (1 if elf_class == 32 else 2)
    assert rproc_elf_get_boot_addr(elf) == 0x1234_5679


def test_boot_addr_is_a_u64_on_elf64() -> None:
    elf, _ = build([Seg(0x0)], elf_class=64, entry=0xFFFF_0000_0000_0401)
    assert rproc_elf_get_boot_addr(elf) == 0xFFFF_0000_0000_0401


def _sanity_cases() -> list[tuple[bytes, str]]:
    elf, lay = build([Seg(0x0)])
    elf64, _ = build([Seg(0x0)], elf_class=64)
    size = len(elf)
    return [
        (elf[:51], "Image is too small"),
        (b"\x7fELG" + elf[4:], "Image is corrupted (bad magic)"),
        (elf[:4] + b"\x03" + elf[5:], "Unsupported class: 3"),
        # char is unsigned since 6.2 (-funsigned-char)
        (elf[:4] + b"\x80" + elf[5:], "Unsupported class: 128"),
        (elf64[:60], "elf64 header is too small"),
        (elf[:5] + b"\x02" + elf[6:], "Unsupported firmware endianness"),
        (patch(elf, ehdr_field(32, "e_shoff"), size + 1),
         "Section header table is out of bounds"),
        (patch(elf, ehdr_field(32, "e_shnum"), 200),
         "Section headers are out of bounds"),
        (patch(elf, ehdr_field(32, "e_shstrndx"), 2), "Image is too small"),
        (patch(elf, ehdr_field(32, "e_phnum"), 0), "No loadable segments"),
        (patch(elf, ehdr_field(32, "e_phoff"), size + 1), "Firmware size is too small"),
    ]  # fmt: skip


@pytest.mark.parametrize(("elf", "message"), _sanity_cases())
def test_sanity_check_messages(elf: bytes, message: str) -> None:
    err = refusal(rproc_elf_sanity_check, elf)
    assert (err.message, err.errno, err.function) == (
        message,
        "EINVAL",
        "rproc_elf_sanity_check",
    )
    verdict = elf_boot_verdict(elf, CARVEOUTS, policy=ParseFwPolicy.STM32)
    assert not verdict.loads and verdict.message == message


def test_shnum_zero_still_needs_the_shstrndx_header_inside() -> None:
    elf, _ = build([Seg(0x0)])
    elf = patch(elf, ehdr_field(32, "e_shnum"), 0)
    rproc_elf_sanity_check(elf)  # shstrndx 1 still inside
    assert find_table(elf) is None


def test_phoff_equal_to_size_passes_sanity_but_the_headers_are_outside() -> None:
    # e_phoff <= size is all the sanity check asks; the loop then reads past
    # the end: the model refuses and says the kernel would read out of bounds.
    elf, _ = build([Seg(0x0)])
    elf = patch(elf, ehdr_field(32, "e_phoff"), len(elf))
    rproc_elf_sanity_check(elf)
    err = refusal(rproc_elf_load_segments, elf, da_to_va)
    assert err.kernel_oob and err.function == "rproc_elf_load_segments"
    assert "reads out of bounds" in err.message and "program header 0" in err.message


# -- issue 13 item 1: e_phentsize / e_shentsize are not checked ---------------


@pytest.mark.parametrize("elf_class", [32, 64])
@pytest.mark.parametrize(
    ("field", "value"),
    [("e_phentsize", 0), ("e_phentsize", 100), ("e_shentsize", 0), ("e_shentsize", 7)],
)
def test_entry_sizes_are_ignored(elf_class: int, field: str, value: int) -> None:
    elf, _ = good_elf(elf_class)
    elf = patch(elf, ehdr_field(elf_class, field), value)
    rproc_elf_sanity_check(elf)
    verdict = elf_boot_verdict(elf, CARVEOUTS, policy=ParseFwPolicy.DEFAULT)
    assert verdict.loads, verdict
    assert verdict.segments == ((0, "retram"), (1, "mcuram2"))
    assert verdict.rsc_table is not None and verdict.loaded_table == "mcuram2"


# -- rproc_elf_load_segments ---------------------------------------------------


def dk2_memory() -> DeviceMemory:
    return DeviceMemory(CARVEOUTS)


def test_segments_land_and_zero_fill_through_device_memory() -> None:
    elf, _ = good_elf()
    memory = dk2_memory()
    memory.array(2)[:0x100] = 0xEE  # mcuram2 dirty before the load
    segs = rproc_elf_load_segments(elf, device_memory_da_to_va(memory))
    assert [(s.index, s.da, s.filesz, s.memsz) for s in segs] == [
        (0, 0x0, 64, 64),
        (1, 0x10000000, 8, 0x100),
    ]
    assert memory.read_da(0x0, 64) == b"\xaa" * 64
    assert memory.read_da(0x10000000, 0x100) == b"\xbb" * 8 + bytes(0xF8)
    assert [(w.op, w.da, w.len) for w in memory.writes] == [
        ("copy", 0x0, 64),
        ("copy", 0x10000000, 8),
        ("zero", 0x10000008, 0xF8),
    ]


def test_segments_land_in_plain_buffers_through_the_kernels() -> None:
    elf, _ = good_elf()
    banks = {
        0x0: np.full(0x1000, 0xEE, np.uint8),
        0x10000000: np.full(0x1000, 0xEE, np.uint8),
    }
    writes: list[tuple[str, int, int]] = []

    def flat(da: int, length: int) -> np.ndarray | None:
        bank = banks.get(da)
        return None if bank is None else bank[:length]

    rproc_elf_load_segments(
        elf, flat, on_write=lambda op, da, n: writes.append((op, da, n))
    )
    assert banks[0x0][:65].tobytes() == b"\xaa" * 64 + b"\xee"
    assert banks[0x10000000][:0x101].tobytes() == b"\xbb" * 8 + bytes(0xF8) + b"\xee"
    assert writes == [
        ("copy", 0x0, 64),
        ("copy", 0x10000000, 8),
        ("zero", 0x10000008, 0xF8),
    ]


def test_a_short_buffer_from_da_to_va_is_refused_before_writing() -> None:
    elf, _ = build([Seg(0x0, b"\xaa" * 64)])
    mem = np.zeros(16, dtype=np.uint8)
    with pytest.raises(ValueError, match="16-byte|0x10-byte"):
        rproc_elf_load_segments(elf, lambda da, n: mem)
    assert not mem.any()


def test_dry_run_writes_nothing() -> None:
    elf, _ = good_elf()
    memory = dk2_memory()
    segs = rproc_elf_load_segments(elf, device_memory_da_to_va(memory), dry_run=True)
    assert len(segs) == 2 and memory.writes == []


# issue 13 item 2: p_memsz 0 is skipped wherever it points


@pytest.mark.parametrize("paddr", [0x20000000, 0xFFFFFFFF, 0x0])
def test_pt_load_with_memsz_zero_is_skipped(paddr: int) -> None:
    elf, lay = build([Seg(paddr, b"", memsz=0), Seg(0x0, b"\xaa" * 16)])
    # even with a file offset far past the end
    elf = patch(elf, phdr_field(lay, 0, "p_offset"), 0xFFFFFF00)
    memory = dk2_memory()
    segs = rproc_elf_load_segments(elf, device_memory_da_to_va(memory))
    assert [s.index for s in segs] == [1]
    assert [w.da for w in memory.writes] == [0x0]


def test_memsz_zero_with_filesz_is_skipped_too() -> None:
    # filesz > memsz is never looked at when memsz is 0
    elf, lay = build([Seg(0x20000000, b"\x11" * 16, memsz=0)])
    assert rproc_elf_load_segments(elf, da_to_va, dry_run=True) == []


def test_non_load_headers_are_skipped() -> None:
    elf, _ = build([Seg(0x20000000, p_type=4), Seg(0x0)])
    assert [s.index for s in rproc_elf_load_segments(elf, da_to_va, dry_run=True)] == [
        1
    ]


@pytest.mark.parametrize(
    ("seg", "message"),
    [
        (Seg(0x0, b"x" * 32, memsz=16), "bad phdr filesz 0x20 memsz 0x10"),
        (Seg(0x20000000, b"x" * 16), "bad phdr da 0x20000000 mem 0x10"),
        (Seg(0xFFF8, b"x" * 16), "bad phdr da 0xfff8 mem 0x10"),
        # file part in vdev0vring0, zero-fill in vdev0vring1: Linux needs one
        (Seg(0x10040000, b"x" * 0x1000, memsz=0x1800),
         "bad phdr da 0x10040000 mem 0x1800"),
    ],
)  # fmt: skip
def test_segment_refusals(seg: Seg, message: str) -> None:
    elf, _ = build([seg])
    err = refusal(rproc_elf_load_segments, elf, da_to_va)
    assert (err.message, err.errno) == (message, "EINVAL")


def test_truncated_segment() -> None:
    elf, lay = build([Seg(0x0, b"a" * 16)])
    elf = patch(elf, phdr_field(lay, 0, "p_filesz"), 0x10000)
    elf = patch(elf, phdr_field(lay, 0, "p_memsz"), 0x10000)
    err = refusal(rproc_elf_load_segments, elf, da_to_va)
    need = lay.seg_offsets[0] + 0x10000
    assert err.message == f"truncated fw: need 0x{need:x} avail 0x{len(elf):x}"


def test_filesz_is_checked_before_the_file_end() -> None:
    elf, lay = build([Seg(0x0, b"a" * 16)])
    elf = patch(elf, phdr_field(lay, 0, "p_filesz"), 0x10000)
    err = refusal(rproc_elf_load_segments, elf, da_to_va)
    assert err.message == "bad phdr filesz 0x10000 memsz 0x10"


def test_the_loop_stops_at_the_first_error_and_keeps_earlier_writes() -> None:
    elf, _ = build([Seg(0x0, b"\xaa" * 16), Seg(0x20000000), Seg(0x30000000)])
    memory = dk2_memory()
    err = refusal(rproc_elf_load_segments, elf, device_memory_da_to_va(memory))
    assert err.message == "bad phdr da 0x20000000 mem 0x10"
    assert [w.da for w in memory.writes] == [0x0]
    verdict = elf_boot_verdict(elf, CARVEOUTS, policy=ParseFwPolicy.STM32)
    assert verdict.log[-2:] == (
        "bad phdr da 0x20000000 mem 0x10",
        "Failed to load program segments: -22",
    )


def test_elf64_offset_wrap_passes_the_kernel_check_and_reads_out_of_bounds() -> None:
    elf, lay = build([Seg(0x0, b"a" * 16)], elf_class=64)
    elf = patch(elf, phdr_field(lay, 0, "p_offset"), (1 << 64) - 8)
    err = refusal(rproc_elf_load_segments, elf, da_to_va)
    assert err.kernel_oob and "wraps 64 bits" in err.message
    # unmapped: the kernel refuses before the copy
    elf = patch(elf, phdr_field(lay, 0, "p_paddr"), 0x20000000)
    assert refusal(rproc_elf_load_segments, elf, da_to_va).message == (
        "bad phdr da 0x20000000 mem 0x10"
    )


def test_da_to_va_offset_is_a_signed_int() -> None:
    far = (RegionSpec("low", 0x0, 0x0, 0x1000), RegionSpec("hi", 0x80000000, 0, 0x1000))
    assert carveout_da_to_va(far, 0x80000010, 16) == (1, 0x10)
    # 0x80000010 - 0 >= 2**31: negative int, skipped for "low"
    assert carveout_da_to_va(far[:1], 0x80000010, 16) is None
    # the difference keeps 32 bits: da 0x1_0000_0010 matches "low" at 0x10
    assert carveout_da_to_va(far[:1], 0x1_0000_0010, 16) == (0, 0x10)


def test_da_to_va_size_t_wrap_is_a_kernel_oob() -> None:
    regions = (RegionSpec("r", 0x0, 0x0, 0x1000),)
    err = refusal(carveout_da_to_va, regions, 0x10, (1 << 64) - 8)
    assert err.kernel_oob and err.function == "rproc_da_to_va"
    assert "writes out of bounds in rproc_da_to_va" in err.message


# -- find_table, rproc_elf_load_rsc_table, parse_fw ---------------------------


def test_find_table_returns_the_section() -> None:
    elf, lay = good_elf()
    section = find_table(elf)
    assert section is not None
    assert (section.index, section.sh_addr, section.sh_size) == (
        1,
        0x10000000,
        len(TABLE),
    )
    table, size = rproc_elf_load_rsc_table(elf)
    assert (table, size) == (TABLE, len(TABLE))


def _bad_tables() -> list[tuple[bytes, str]]:
    return [
        (rsc_table(ver=2), "unsupported fw ver: 2"),
        (rsc_table(ver=0xFFFFFFFF), "unsupported fw ver: -1"),
        (rsc_table(reserved=1), "non zero reserved bytes"),
        (rsc_table()[:12], "header-less resource table"),
        (rsc_table(num=5)[:20], "resource table incomplete"),
        (rsc_table(num=0x40000001)[:20], "resource table incomplete"),
    ]


def _with_table(blob: bytes) -> bytes:
    elf, _ = build([Seg(0x0, b"\0" * 64)], [Sec(".resource_table", 0x0, blob)])
    return elf


@pytest.mark.parametrize(("blob", "message"), _bad_tables())
def test_table_refusals_per_policy(blob: bytes, message: str) -> None:
    elf = _with_table(blob)
    err = refusal(find_table, elf)
    assert err.message == message
    # default parse_fw: -EINVAL, no boot
    err = refusal(parse_fw, elf, ParseFwPolicy.DEFAULT)
    assert (err.errno, err.message) == ("EINVAL", message)
    verdict = elf_boot_verdict(elf, CARVEOUTS, policy=ParseFwPolicy.DEFAULT)
    assert not verdict.loads and verdict.message == message
    # stm32 and imx: logged, then the firmware boots without a table
    stm32 = parse_fw(elf, ParseFwPolicy.STM32)
    assert stm32.table is None and stm32.table_sz == 0
    assert stm32.log == (message, "no resource table found for this firmware")
    imx = parse_fw(elf, ParseFwPolicy.IMX)
    assert imx.log == (message, "No resource table in elf")
    for policy in (ParseFwPolicy.STM32, ParseFwPolicy.IMX):
        verdict = elf_boot_verdict(elf, CARVEOUTS, policy=policy)
        assert verdict.loads and verdict.rsc_table is None
        assert verdict.loaded_table is None


def test_section_past_the_end_of_the_file() -> None:
    elf, lay = good_elf()
    elf = patch(elf, shdr_field(lay, 1, "sh_offset"), len(elf) - 8)
    assert refusal(find_table, elf).message == "resource table truncated"
    elf = patch(elf, shdr_field(lay, 1, "sh_offset"), 0xFFFFFFFF)
    assert refusal(find_table, elf).message == "resource table truncated"
    assert elf_boot_verdict(elf, CARVEOUTS, policy=ParseFwPolicy.STM32).loads


def test_elf64_section_offset_plus_size_wrap_is_truncated() -> None:
    elf, lay = good_elf(64)
    elf = patch(elf, shdr_field(lay, 1, "sh_offset"), (1 << 64) - 8)
    assert refusal(find_table, elf).message == "resource table truncated"


def test_no_table_section() -> None:
    elf, _ = build([Seg(0x0)])
    assert find_table(elf) is None
    err = refusal(parse_fw, elf, ParseFwPolicy.DEFAULT)
    assert (
        err.errno == "EINVAL"
        and err.message == ""
        and "no .resource_table" in (err.note)
    )
    assert parse_fw(elf, ParseFwPolicy.STM32).log == (
        "no resource table found for this firmware",
    )
    assert elf_boot_verdict(elf, CARVEOUTS, policy=ParseFwPolicy.STM32).loads
    assert not elf_boot_verdict(elf, CARVEOUTS).loads


def test_two_tables_the_first_is_taken() -> None:
    good = build_resource_table([TraceRsc(0, 0x10000000, 256, 0, "second")])
    elf, _ = build(
        [Seg(0x0, b"\0" * 64)],
        [
            Sec(".resource_table", 0x0, rsc_table(ver=2)),
            Sec(".resource_table", 0x0, good),
        ],
    )
    assert refusal(find_table, elf).message == "unsupported fw ver: 2"
    assert not elf_boot_verdict(elf, CARVEOUTS).loads
    verdict = elf_boot_verdict(elf, CARVEOUTS, policy=ParseFwPolicy.STM32)
    assert verdict.loads and verdict.rsc_table is None
    # and a good first table wins over a bad second one
    elf, _ = build(
        [Seg(0x0, b"\0" * 64)],
        [Sec(".resource_table", 0x10, good), Sec(".resource_table", 0, b"bad")],
    )
    section = find_table(elf)
    assert section is not None and section.index == 1 and section.sh_addr == 0x10


def test_section_name_matching_is_exact() -> None:
    elf, _ = build(
        [Seg(0x0, b"\0" * 64)],
        [Sec(".resource_tablex", 0, TABLE), Sec(".resource_tabl", 0, TABLE)],
    )
    assert find_table(elf) is None


# issue 13 item 5: sh_name is not bounded in find_table


@pytest.mark.parametrize("policy", POLICIES)
def test_section_name_offset_past_the_file_is_a_kernel_oob(
    policy: ParseFwPolicy,
) -> None:
    elf, lay = good_elf()
    elf = patch(elf, shdr_field(lay, 1, "sh_name"), 0x7FFFFFFF)
    rproc_elf_sanity_check(elf)  # 6.12 bounds the headers, not the names
    err = refusal(find_table, elf)
    assert err.kernel_oob and err.function == "find_table"
    assert "reads out of bounds in find_table" in err.message
    assert "section 1" in err.message
    verdict = elf_boot_verdict(elf, CARVEOUTS, policy=policy)
    assert not verdict.loads and verdict.kernel_oob
    assert verdict.function == "find_table"


def test_string_table_offset_past_the_file_is_a_kernel_oob() -> None:
    elf, lay = good_elf()
    elf = patch(elf, shdr_field(lay, 2, "sh_offset"), 0x7FFFFFF0)
    err = refusal(find_table, elf)
    assert err.kernel_oob and "section 0 name" in err.message


def test_name_running_off_the_end_while_matching_is_a_kernel_oob() -> None:
    # The name ".resource_t" is the last bytes of the file: strcmp still
    # matches and needs the next byte, past the end.
    elf, lay = good_elf()
    elf = elf + b".resource_t"
    name_at = len(elf) - len(".resource_t") - lay.strtab_offset
    elf = patch(elf, shdr_field(lay, 1, "sh_name"), name_at)
    assert refusal(find_table, elf).kernel_oob
    # a name that differs before the end is simply not a match
    other = elf[:-1] + b"x"
    assert find_table(other) is None


# -- the entry walk on every policy (issue 13 item 4) -------------------------


def _offset_table(offset: int) -> bytes:
    return struct.pack("<5I", 1, 1, 0, 0, offset) + TABLE[20:]


_ODD = (
    struct.pack("<5I", 1, 1, 0, 0, 21)
    + build_resource_table([CarveoutRsc(0, 0x100, 0x100, 0x100, 0, 0, "x")], tail=1)[
        20:
    ]
)
_VDEV = VdevRsc(0, 7, 0, 1, 0, 4, 0, 2, (0, 0), (VringRsc(0, 16, 8, 0, 0),) * 2, b"ab")


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (_offset_table(12), "rsc table is truncated"),
        (_offset_table(len(TABLE)), "rsc table is truncated"),
        (_offset_table(len(TABLE) - 3), "rsc table is truncated"),
        (_offset_table(0xFFFFFFFF), "rsc table is truncated"),
        (build_resource_table([_VDEV])[:-1], "vdev rsc is truncated"),
        # offset 21, one byte into a carveout: bytes 21..24 decode as type 0
        # (carveout) whose reserved word ends with the name's "x"
        (_ODD, "carveout rsc has non zero reserved bytes"),
    ],
    ids=["in-header", "at-end", "no-room-for-type", "u32-max", "vdev", "odd"],
)
def test_entry_walk_refuses_on_every_policy(
    policy: ParseFwPolicy, blob: bytes, message: str
) -> None:
    elf = _with_table(blob)
    parse_fw(elf, policy)  # the header is fine
    verdict = elf_boot_verdict(elf, CARVEOUTS, policy=policy)
    assert not verdict.loads
    assert (verdict.function, verdict.errno, verdict.message) == (
        "rproc_handle_resources",
        "EINVAL",
        message,
    )
    assert verdict.log[-1] == "Failed to process resources: -22"


def test_devmem_needs_an_iommu() -> None:
    from rproctee.rsctable import DevmemRsc

    blob = build_resource_table(
        [DevmemRsc(0, 0x40000000, 0x40000000, 0x1000, 0, 0, "d")]
    )
    elf = _with_table(blob)
    assert not elf_boot_verdict(elf, CARVEOUTS, policy=ParseFwPolicy.STM32).loads
    assert elf_boot_verdict(elf, CARVEOUTS, has_iommu=True).loads


def test_unknown_and_vendor_entries_are_warnings() -> None:
    blob = struct.pack("<6I", 1, 2, 0, 0, 24, 28) + struct.pack("<2I", 9, 300)
    verdict = elf_boot_verdict(_with_table(blob), CARVEOUTS)
    assert verdict.loads
    assert verdict.log == ("unsupported resource 9", "unsupported vendor resource 300")


# -- rproc_elf_find_loaded_rsc_table -------------------------------------------


def test_loaded_table_is_found_by_sh_addr() -> None:
    elf, lay = good_elf()
    memory = dk2_memory()
    rproc_elf_load_segments(elf, device_memory_da_to_va(memory))
    span = rproc_elf_find_loaded_rsc_table(elf, device_memory_da_to_va(memory))
    assert span is not None and (span.da, span.size, span.region) == (
        0x10000000,
        len(TABLE),
        "mcuram2",
    )
    # unmapped sh_addr: NULL, the core keeps cached_table
    elf = patch(elf, shdr_field(lay, 1, "sh_addr"), 0x20000000)
    assert rproc_elf_find_loaded_rsc_table(elf, da_to_va) is None
    # a table find_table refuses: NULL too
    assert (
        rproc_elf_find_loaded_rsc_table(_with_table(rsc_table(ver=3)), da_to_va) is None
    )


def test_verdict_json() -> None:
    elf, _ = good_elf()
    doc = elf_boot_verdict(elf, CARVEOUTS, policy=ParseFwPolicy.STM32).to_dict()
    assert doc["loads"] is True and doc["parse_fw"] == "stm32"
    assert doc["parse_fw_function"] == "stm32_rproc_parse_fw"
    assert doc["segments"] == [
        {"index": 0, "carveout": "retram"},
        {"index": 1, "carveout": "mcuram2"},
    ]
    assert doc["rsc_table"]["entries"][0]["name"] == "cm4_log"
    assert doc["boot_addr"] == 0x401


def test_pyelftools_reads_the_factory_elfs() -> None:
    import io

    from elftools.elf.elffile import ELFFile

    for cls in (32, 64):
        elf, _ = good_elf(cls)
        parsed = ELFFile(io.BytesIO(elf))
        assert [s.name for s in parsed.iter_sections()] == [
            "",
            ".resource_table",
            ".shstrtab",
        ]
        assert [s["p_paddr"] for s in parsed.iter_segments()] == [0x0, 0x10000000]


def test_elf64_paddr_above_4g_lands_where_the_int_offset_points() -> None:
    # 0x1_1000_0000 - mcuram2.da (0x1000_0000) = 0x1_0000_0000: the int offset
    # keeps 0, so Linux writes at the start of mcuram2.
    elf, _ = build([Seg(0x1_1000_0000, b"\xcc" * 8)], elf_class=64)
    memory = dk2_memory()
    (seg,) = rproc_elf_load_segments(elf, device_memory_da_to_va(memory))
    assert (seg.target.region, seg.target.offset) == ("mcuram2", 0)
    assert memory.read_da(0x10000000, 8) == b"\xcc" * 8
    assert [(w.op, w.da) for w in memory.writes] == [("copy", 0x10000000)]


# -- rproc_handle_carveout against the registered carveouts ---------------------


@pytest.mark.parametrize(
    ("entries", "message", "note"),
    [
        ([CarveoutRsc(0, 0x0, 0, 0x10001, 0, 0, "retram")],
         "Registered carveout doesn't fit len request", ""),
        ([CarveoutRsc(0, 0xFFF0, 0, 0x20, 0, 0, "retram")],
         "Registered carveout doesn't fit len request", ""),
        ([CarveoutRsc(0, 0x0FFFFFF0, 0, 0x10, 0, 0, "mcuram2")],
         "Registered carveout doesn't fit da request", ""),
        ([CarveoutRsc(0, 0x0, 0, 0x10, 0, 0, "retram")] * 2,
         "Carveout already associated to resource table", ""),
        ([CarveoutRsc(0, 0x0, 0, 0x10, 0, 0, "new")] * 2,
         "Carveout already associated to resource table", ""),
    ],
)  # fmt: skip
def test_registered_carveout_refusals(
    entries: list[CarveoutRsc], message: str, note: str
) -> None:
    from rproctee.linux.elf_loader import rproc_handle_resources
    from rproctee.rsctable import RscTableError

    with pytest.raises(RscTableError) as info:
        rproc_handle_resources(build_resource_table(entries), carveouts=CARVEOUTS)
    assert (info.value.message, info.value.errno) == (message, "ENOMEM")
    verdict = elf_boot_verdict(_with_table(build_resource_table(entries)), CARVEOUTS)
    assert verdict.log[-1] == "Failed to process resources: -12"


def test_registered_carveout_without_a_device_address_refuses_silently() -> None:
    from rproctee.linux.elf_loader import rproc_handle_resources
    from rproctee.rsctable import RscTableError

    anywhere = (RegionSpec("dyn", 0xFFFFFFFF, 0x0, 0x1000),)
    table = build_resource_table([CarveoutRsc(0, 0x10, 0, 0x10, 0, 0, "dyn")])
    with pytest.raises(RscTableError) as info:
        rproc_handle_resources(table, carveouts=anywhere)
    assert info.value.message == "" and "logs nothing" in info.value.note
    # FW_RSC_ADDR_ANY asks only for the length
    table = build_resource_table([CarveoutRsc(0, 0xFFFFFFFF, 0, 0x10, 0, 0, "dyn")])
    assert rproc_handle_resources(table, carveouts=anywhere) is not None


def test_carveouts_that_fit_are_accepted() -> None:
    from rproctee.linux.elf_loader import rproc_handle_resources

    table = build_resource_table(
        [
            CarveoutRsc(0, 0x0, 0, 0x10000, 0, 0, "retram"),
            CarveoutRsc(0, 0x10001000, 0, 0x1000, 0, 0, "mcuram2"),
            CarveoutRsc(0, 0xFFFFFFFF, 0, 0x1000, 0, 0, "dmabuf"),
        ]
    )
    parsed = rproc_handle_resources(table, carveouts=CARVEOUTS)
    assert parsed is not None and len(parsed.carveouts()) == 3


# -- a 32-bit kernel (size_t of 32 bits, as on stm32mp15) ---------------------


def test_32bit_size_t_wraps_da_to_va_and_the_zero_fill_would_overrun() -> None:
    # offset 0x10 in mcuram2 + len 0xfffffff8 = 0x1_0000_0008: 8 in 32 bits
    elf, _ = build([Seg(0x10000010, b"", memsz=0xFFFFFFF8)])
    wide = elf_boot_verdict(elf, CARVEOUTS, policy=ParseFwPolicy.STM32)
    assert wide.message == "bad phdr da 0x10000010 mem 0xfffffff8"
    narrow = elf_boot_verdict(
        elf, CARVEOUTS, policy=ParseFwPolicy.STM32, size_t_bits=32
    )
    assert narrow.kernel_oob and narrow.function == "rproc_da_to_va"
    assert "32-bit size_t" in (narrow.message or "") and narrow.segment == 0


def test_32bit_size_t_refuses_an_elf64_memsz_above_4g() -> None:
    elf, _ = build([Seg(0x0, b"", memsz=1 << 32)], elf_class=64)
    err = refusal(rproc_elf_load_segments, elf, da_to_va, dry_run=True, size_t_bits=32)
    assert (err.errno, err.message) == (
        "EOVERFLOW",
        "size (100000000) does not fit in size_t type",
    )
    verdict = elf_boot_verdict(
        elf, CARVEOUTS, policy=ParseFwPolicy.STM32, size_t_bits=32
    )
    assert verdict.log[-1] == "Failed to load program segments: -75"
    assert elf_boot_verdict(elf, CARVEOUTS, policy=ParseFwPolicy.STM32).message == (
        "bad phdr da 0x0 mem 0x100000000"
    )


def test_rproc_check_carveout_da_directly() -> None:
    from rproctee.linux.elf_loader import rproc_check_carveout_da

    mem = RegionSpec("mcuram2", 0x10000000, 0x10000000, 0x1000)
    assert rproc_check_carveout_da(mem, 0x10000800, 0x800) is None
    assert rproc_check_carveout_da(mem, 0xFFFFFFFF, 0x1000) is None
    too_long = ("Registered carveout doesn't fit len request", "")
    assert rproc_check_carveout_da(mem, 0x10000800, 0x801) == too_long
    assert rproc_check_carveout_da(mem, 0xFFFFFFFF, 0x1001) == too_long
    below = ("Registered carveout doesn't fit da request", "")
    assert rproc_check_carveout_da(mem, 0x0FFFFFFF, 0x1) == below
