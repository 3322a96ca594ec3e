"""check_firmware: placement per segment, resource table, TA and Linux wording."""

from __future__ import annotations

import pytest
from platform_helpers import TEST_DATA, Seg, make_elf, rsc_table

from rproctee.errors import FormatError
from rproctee.platform.board import PlatformSpec, load_platform
from rproctee.platform.memory import RegionSpec
from rproctee.preflight import CheckReport, check_firmware

DK2 = load_platform("stm32mp15-dk2")
VECTORS = TEST_DATA / "vectors" / "optee"
VECTOR_KEY = (VECTORS / "keys" / "rsa2048_pub.pem").read_bytes()


def _check(segs: list[Seg], policy: str = "strict", **kw: object) -> CheckReport:
    elf = make_elf(segs, **kw)  # type: ignore[arg-type]
    return check_firmware(elf, DK2, "t.elf", policy=policy)


def _errors(report: CheckReport) -> list[tuple[str, str | None]]:
    return [(f.where, f.ta) for f in report.findings if f.severity == "error"]


def test_good_elf_lands_in_regions() -> None:
    report = _check([Seg(0x0, b"a" * 64), Seg(0x10000000, b"b" * 8, memsz=0x100)])
    assert report.would_load and report.ta_result == "TEE_SUCCESS"
    assert report.linux_would_load and report.findings == ()
    first, second = report.segments
    assert (first.copy.region, first.copy.pa) == ("retram", 0x38000000)
    assert second.fill is not None and second.fill.da == 0x10000008
    assert second.fill.region == "mcuram2" and second.linux_region == "mcuram2"


def test_segment_outside_every_region() -> None:
    report = _check([Seg(0x20000000)])
    assert not report.would_load
    assert report.ta_result == "TEE_ERROR_ACCESS_DENIED"
    (finding,) = report.findings
    assert "outside every memory region" in finding.message
    assert finding.linux == "bad phdr da 0x20000000 mem 0x10"
    assert report.segments[0].status == "outside"


def test_segment_straddling_a_region_end() -> None:
    report = _check([Seg(0xFFF8, b"x" * 16)])
    assert report.segments[0].status == "straddle"
    assert _errors(report) == [("image 0 segment 0", "TEE_ERROR_ACCESS_DENIED")]


def test_spanning_two_adjacent_regions_is_refused() -> None:
    report = _check([Seg(0x10040800, b"x" * 0x1000)])  # vring0 -> vring1
    assert not report.would_load and report.segments[0].copy.reason == "straddle"


def test_zero_fill_in_the_next_region_ta_accepts_linux_refuses() -> None:
    # file part in vdev0vring0, zero-fill in vdev0vring1 (adjacent regions):
    # upstream's TA writes each part alone; strict keeps a segment in one
    # region, as Linux does
    segs = [Seg(0x10040000, b"x" * 0x1000, memsz=0x1800)]
    strict = _check(segs)
    assert strict.ta_result == "TEE_ERROR_ACCESS_DENIED"
    assert "whole segment" in strict.tee.reason  # type: ignore[union-attr]
    report = _check(segs, policy="optee")
    seg = report.segments[0]
    assert seg.copy.region == "vdev0vring0" and seg.fill.region == "vdev0vring1"
    assert report.would_load and not report.linux_would_load
    (finding,) = report.findings
    assert finding.severity == "linux"
    assert finding.linux == "bad phdr da 0x10040000 mem 0x1800"


def test_zero_fill_beyond_the_region() -> None:
    report = _check([Seg(0xFF00, b"x" * 0x10, memsz=0x200)])
    assert report.segments[0].copy.region == "retram"
    assert report.segments[0].fill.reason == "straddle"
    assert "SET_MEMORY" in report.findings[0].message


def test_zero_fill_address_wraps_32_bits() -> None:
    report = _check([Seg(0xFFFFFFF0, b"x" * 0x10, memsz=0x20)])
    assert report.segments[0].copy.reason == "outside"
    assert not report.would_load


def test_filesz_above_memsz_is_a_linux_only_refusal() -> None:
    # upstream's TA loads it (W5); strict refuses it, as load does
    report = _check([Seg(0x0, b"x" * 32, memsz=16)], policy="optee")
    assert report.would_load and not report.linux_would_load
    assert report.findings[0].linux == "bad phdr filesz 0x20 memsz 0x10"
    strict = _check([Seg(0x0, b"x" * 32, memsz=16)])
    assert strict.ta_result == "TEE_ERROR_BAD_FORMAT"
    assert "p_filesz 0x20 > p_memsz 0x10" in strict.tee.reason  # type: ignore[union-attr]


def test_empty_pt_load_is_skipped_by_the_ta_and_by_linux() -> None:
    # rproc_elf_load_segments skips p_memsz == 0 before translating (6.12).
    report = _check([Seg(0x20000000, b"", memsz=0)])
    assert report.would_load and report.segments[0].status == "empty"
    assert report.linux_would_load and report.findings == ()
    assert report.segments[0].linux_region is None


def test_overlapping_segments_warn() -> None:
    segs = [Seg(0x0, b"a" * 64), Seg(0x20, b"b" * 8, memsz=0x40)]
    assert _check(segs).ta_result == "TEE_ERROR_BAD_FORMAT"  # strict: overlap
    report = _check(segs, policy="optee")  # upstream loads it (W5)
    assert report.would_load
    (finding,) = report.findings
    assert finding.severity == "warning" and "overlaps image 0 segment 0" in (
        finding.message
    )
    assert "[0x20, 0x40)" in finding.message


def test_truncated_segment() -> None:
    elf = bytearray(make_elf([Seg(0x0, b"a" * 16)]))
    elf[52 + 16 : 52 + 20] = (0x10000).to_bytes(4, "little")  # p_filesz
    elf[52 + 20 : 52 + 24] = (0x10000).to_bytes(4, "little")  # p_memsz
    report = check_firmware(bytes(elf), DK2)
    assert report.ta_result == "TEE_ERROR_BAD_FORMAT"
    assert report.findings[0].linux.startswith("truncated fw: need 0x10054 avail")


def test_resource_table_translated() -> None:
    # the table's bytes are not loaded by any segment: optee reports its
    # address anyway (W3), strict refuses
    segs, rsc = [Seg(0x10000000, b"\0" * 64)], (0x10000000, rsc_table())
    assert _check(segs, rsc=rsc).ta_result == "TEE_ERROR_BAD_FORMAT"
    report = _check(segs, policy="optee", rsc=rsc)
    rsc = report.rsc_table
    assert rsc is not None and rsc.placement.region == "mcuram2"
    assert rsc.placement.pa == 0x10000000 and rsc.segment == 0
    assert report.would_load


def test_resource_table_in_retram_reports_its_pa() -> None:
    report = _check([Seg(0x0, b"\0" * 64)], rsc=(0x20, rsc_table()))
    assert report.rsc_table.placement.pa == 0x38000020


def test_resource_table_outside_regions() -> None:
    report = _check([Seg(0x0, b"\0" * 64)], rsc=(0x20000000, rsc_table()))
    assert _errors(report) == [("image 0 .resource_table", "TEE_ERROR_ACCESS_DENIED")]


def test_resource_table_in_no_segment_warns() -> None:
    rsc = (0x30000000, rsc_table())
    assert _check([Seg(0x0, b"\0" * 64)], rsc=rsc).ta_result == "TEE_ERROR_BAD_FORMAT"
    report = _check([Seg(0x0, b"\0" * 64)], policy="optee", rsc=rsc)
    assert report.would_load
    assert any("no loaded segment" in f.message for f in report.findings)


@pytest.mark.parametrize(
    ("blob", "linux"),
    [
        (rsc_table(ver=2), "unsupported fw ver: 2"),
        (rsc_table(reserved=1), "non zero reserved bytes"),
        (rsc_table()[:12], "header-less resource table"),
        (rsc_table(num=5)[:20], "resource table incomplete"),
    ],
)
def test_bad_resource_table(blob: bytes, linux: str) -> None:
    report = _check([Seg(0x0, b"\0" * 64)], rsc=(0x0, blob))
    assert report.ta_result == "TEE_ERROR_BAD_FORMAT"
    assert report.findings[0].linux == linux
    # stm32_rproc_parse_fw logs it and boots without a table; rproc_start's
    # find_loaded_rsc_table runs find_table again, which logs it again
    assert report.parse_fw.value == "stm32" and report.linux_would_load
    warn = "no resource table found for this firmware"
    assert report.linux[0].log == (linux, warn, linux)


def test_other_platform_regions() -> None:
    spec = PlatformSpec("b", (RegionSpec("ddr", 0x0, 0x80000000, 0x1000),))
    report = check_firmware(make_elf([Seg(0x800)]), spec)
    assert report.segments[0].copy.pa == 0x80000800


def test_not_an_image() -> None:
    with pytest.raises(FormatError, match="neither a signed image"):
        check_firmware(b"hello world", DK2)


def test_unreadable_elf() -> None:
    # A report, not an exception: the TA cannot read the headers, and Linux
    # still gives its own verdict (it reads fewer fields than the TA).
    report = check_firmware(b"\x7fELF" + bytes(10), DK2)
    assert report.ta_result == "TEE_ERROR_BAD_FORMAT" and report.segments == ()
    assert not report.linux_would_load
    assert report.linux[0].message == "Image is too small"
    assert report.findings[0].linux == "Image is too small"


def test_to_dict() -> None:
    doc = _check([Seg(0x20000000)]).to_dict()
    assert doc["would_load"] is False and doc["ta_result_code"] == 0xFFFF0001
    assert doc["segments"][0]["copy"]["reason"] == "outside"
    assert doc["findings"][0]["linux"].startswith("bad phdr da")


def test_signed_multi_image_vector() -> None:
    data = (VECTORS / "signed" / "v10_rsa2048_multi_fw1_fw2.sig").read_bytes()
    report = check_firmware(data, DK2, key_pem=VECTOR_KEY)
    assert report.kind == "signed-image" and report.images == 2
    assert report.would_load
    # the preset's own key (OP-TEE's RSA-4096 dev key) does not verify it
    assert check_firmware(data, DK2).ta_result == "TEE_ERROR_SIGNATURE_INVALID"
    assert [s.copy.region for s in report.segments] == ["retram", "mcuram2", "mcuram"]


def test_ecdsa_image_refused_by_rsa_only_platform() -> None:
    data = (VECTORS / "signed" / "v06_ecp256_fw1.sig").read_bytes()
    key = (VECTORS / "keys" / "ecp256_pub.pem").read_bytes()
    assert check_firmware(data, DK2, key_pem=key).ta_result == (
        "TEE_ERROR_NOT_SUPPORTED"
    )
    spec = PlatformSpec("e", DK2.regions, accept_ecdsa=True)
    assert check_firmware(data, spec, key_pem=key).would_load


def test_signed_vector_on_the_linux_tree() -> None:
    data = (VECTORS / "signed" / "v01_rsa2048_fw1.sig").read_bytes()
    tree = TEST_DATA / "dts" / "stm32mp157c-dk2.dtb"
    assert check_firmware(data, load_platform(str(tree)), key_pem=VECTOR_KEY).would_load


@pytest.mark.parametrize(("machine", "named"), [(140, "EM_TI_C6000 (140)"),
                                                (164, "EM_QDSP6 (164)")])
def test_firmware_for_another_cpu_is_named(machine: int, named: str) -> None:
    """A DSP's or Hexagon's firmware on the stm32mp15's Cortex-M4: a warning
    naming both machines in words."""
    elf = bytearray(make_elf([Seg(0x0, b"a" * 64)]))
    elf[18:20] = machine.to_bytes(2, "little")
    report = check_firmware(bytes(elf), DK2, policy="optee")
    (warning,) = [f for f in report.findings if "another CPU" in f.message]
    assert named in warning.message and "EM_ARM (40)" in warning.message
    assert "cortex-m4" in warning.message
    arm = check_firmware(make_elf([Seg(0x0, b"a" * 64)]), DK2, policy="optee")
    assert not [f for f in arm.findings if "another CPU" in f.message]
