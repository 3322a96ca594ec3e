"""``rproctee check``'s Linux verdict comes from the one ELF-ops implementation.

Every ELF of the corpus below gets the same Linux verdict from
``check_firmware`` as from :func:`elf_boot_verdict`, and, where the normal
world's ``--no-tee`` boot is available, as from that boot.
"""

from __future__ import annotations

import importlib.util
import struct

import pytest
from elf_factory import Sec, Seg, build, ehdr_field, patch, rsc_table, shdr_field

from rproctee.firmware import demo_firmware
from rproctee.linux.elf_loader import (
    ParseFwPolicy,
    elf_boot_verdict,
    parse_fw_policy_for,
)
from rproctee.platform.board import PlatformSpec, load_platform
from rproctee.preflight import check_firmware
from rproctee.rsctable import (
    FW_RSC_ADDR_ANY,
    CarveoutRsc,
    TraceRsc,
    VdevRsc,
    VringRsc,
    build_resource_table,
)

DK2 = load_platform("stm32mp15-dk2")
TABLE = build_resource_table([TraceRsc(0, 0x10000000, 256, 0, "cm4_log")])
VDEV = VdevRsc(0, 7, 0, 1, 0, 4, 0, 2, (0, 0), (VringRsc(0, 16, 8, 0, 0),) * 2, b"ab")


def _elf(segs: list[Seg], table: bytes | None = TABLE, **kw: int) -> bytes:
    sections = [Sec(".resource_table", 0x10000000, table)] if table is not None else []
    return build(segs, sections, **kw)[0]


def _carve(da: int, length: int, name: str, times: int = 1) -> bytes:
    return build_resource_table([CarveoutRsc(0, da, 0, length, 0, 0, name)] * times)


def _corpus() -> dict[str, bytes]:
    good = [Seg(0x0, b"\xaa" * 64), Seg(0x10000000, b"\xbb" * 8, memsz=0x100)]
    elf, lay = build(good, [Sec(".resource_table", 0x10000000, TABLE)])
    odd = (
        struct.pack("<5I", 1, 1, 0, 0, 21)
        + build_resource_table(
            [CarveoutRsc(0, 0x100, 0x100, 0x100, 0, 0, "x")], tail=1
        )[20:]
    )
    return {
        "good": elf,
        "good-elf64": _elf(good, elf_class=64),
        "demo": demo_firmware(4),
        "no-table": _elf(good, None),
        "phentsize-0": patch(elf, ehdr_field(32, "e_phentsize"), 0),
        "shentsize-99": patch(elf, ehdr_field(32, "e_shentsize"), 99),
        "memsz-0-unmapped": _elf([Seg(0x20000000, b"", memsz=0), *good]),
        "filesz-gt-memsz": _elf([Seg(0x0, b"x" * 32, memsz=16)]),
        "outside": _elf([Seg(0x20000000)]),
        "fill-in-next-carveout": _elf([Seg(0x10040000, b"x" * 0x1000, memsz=0x1800)]),
        "big-endian": elf[:5] + b"\x02" + elf[6:],
        "phnum-0": patch(elf, ehdr_field(32, "e_phnum"), 0),
        "table-ver-2": _elf(good, rsc_table(ver=2)),
        "table-reserved": _elf(good, rsc_table(reserved=7)),
        "table-headerless": _elf(good, rsc_table()[:12]),
        "table-num-overflow": _elf(good, rsc_table(num=0x40000001)[:20]),
        "table-past-eof": patch(elf, shdr_field(lay, 1, "sh_offset"), len(elf)),
        "two-tables-bad-first": build(
            good,
            [
                Sec(".resource_table", 0x10000000, rsc_table(ver=2)),
                Sec(".resource_table", 0x10000000, TABLE),
            ],
        )[0],
        "entry-offset-in-header": _elf(good, struct.pack("<5I", 1, 1, 0, 0, 8)),
        "entry-offset-past-end": _elf(good, struct.pack("<5I", 1, 1, 0, 0, 20)),
        "vdev-truncated": _elf(good, build_resource_table([VDEV])[:-1]),
        "odd-offset-carveout": _elf(good, odd),
        "sh-name-7fffffff": patch(elf, shdr_field(lay, 1, "sh_name"), 0x7FFFFFFF),
        # rproc_handle_carveout: entries named after registered carveouts
        "carveout-too-long": _elf(good, _carve(0x0, 0x20000, "retram")),
        "carveout-da-below": _elf(good, _carve(0x0FFFF000, 0x1000, "mcuram2")),
        "carveout-fits": _elf(good, _carve(0x10000000, 0x1000, "mcuram2")),
        "carveout-any": _elf(good, _carve(FW_RSC_ADDR_ANY, 0x1000, "mcuram2")),
        "carveout-twice": _elf(good, _carve(0x10000000, 0x1000, "mcuram2", 2)),
        "carveout-dma": _elf(good, _carve(FW_RSC_ADDR_ANY, 0x1000, "dmabuf")),
        "carveout-dma-twice": _elf(good, _carve(FW_RSC_ADDR_ANY, 0x1000, "dmabuf", 2)),
        # rproc_da_to_va's int offset: 0x1_1000_0000 - mcuram2.da keeps 0
        "elf64-paddr-above-4g": _elf([Seg(0x1_1000_0000, b"\xcc" * 8)], elf_class=64),
    }


CORPUS = _corpus()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_check_verdict_is_the_elf_ops_verdict(name: str) -> None:
    elf = CORPUS[name]
    report = check_firmware(elf, DK2, name)
    expected = elf_boot_verdict(
        elf, DK2.linux_carveouts(), policy=parse_fw_policy_for(DK2)
    )
    assert report.linux == (expected,)
    assert report.linux_would_load == expected.loads
    doc = report.to_dict()
    assert doc["linux"]["parse_fw"] == "stm32"
    assert doc["linux"]["images"] == [expected.to_dict()]
    if not expected.loads:
        # the kernel's line is on a finding users can search
        assert any(f.linux == expected.message for f in report.findings)


EXPECTED_LINUX = {
    "good": True,
    "good-elf64": True,
    "demo": True,
    "no-table": True,
    "phentsize-0": True,
    "shentsize-99": True,
    "memsz-0-unmapped": True,
    "filesz-gt-memsz": False,
    "outside": False,
    "fill-in-next-carveout": False,
    "big-endian": False,
    "phnum-0": False,
    "table-ver-2": True,
    "table-reserved": True,
    "table-headerless": True,
    "table-num-overflow": True,
    "table-past-eof": True,
    "two-tables-bad-first": True,
    "entry-offset-in-header": False,
    "entry-offset-past-end": False,
    "vdev-truncated": False,
    "odd-offset-carveout": False,
    "sh-name-7fffffff": False,
    "elf64-paddr-above-4g": True,
    "carveout-too-long": False,
    "carveout-da-below": False,
    "carveout-fits": True,
    "carveout-any": True,
    "carveout-twice": False,
    "carveout-dma": True,
    "carveout-dma-twice": False,
}


def test_corpus_verdicts_on_stm32() -> None:
    assert sorted(EXPECTED_LINUX) == sorted(CORPUS)
    got = {n: check_firmware(e, DK2).linux_would_load for n, e in CORPUS.items()}
    assert got == EXPECTED_LINUX


def test_default_parse_fw_fails_where_stm32_boots_without_a_table() -> None:
    for name in ("no-table", "table-ver-2", "table-past-eof", "two-tables-bad-first"):
        stm32 = check_firmware(CORPUS[name], DK2)
        default = check_firmware(CORPUS[name], DK2, parse_fw=ParseFwPolicy.DEFAULT)
        imx = check_firmware(CORPUS[name], DK2, parse_fw=ParseFwPolicy.IMX)
        assert stm32.linux_would_load and imx.linux_would_load, name
        assert not default.linux_would_load, name
        assert default.to_dict()["linux"]["parse_fw"] == "default"


def test_table_stm32_boots_without_is_a_warning_with_the_kernel_lines() -> None:
    report = check_firmware(CORPUS["table-past-eof"], DK2)
    (finding,) = [f for f in report.findings if f.where.endswith(".resource_table")]
    assert finding.linux == "resource table truncated"
    assert report.linux[0].log == (
        "resource table truncated",
        "no resource table found for this firmware",
        "resource table truncated",  # find_table again, in rproc_start
    )
    imx = check_firmware(CORPUS["table-past-eof"], DK2, parse_fw=ParseFwPolicy.IMX)
    # imx_rproc_elf_find_loaded_rsc_table returns NULL without a table
    assert imx.linux[0].log == ("resource table truncated", "No resource table in elf")


def test_kernel_oob_is_reported_as_such() -> None:
    report = check_firmware(CORPUS["sh-name-7fffffff"], DK2)
    assert not report.linux_would_load
    (verdict,) = report.linux
    assert verdict.kernel_oob and verdict.function == "find_table"
    finding = next(f for f in report.findings if f.linux == verdict.message)
    assert finding.where == "image 0 .resource_table"
    assert "reads out of bounds in find_table" in (finding.linux or "")


def test_entry_walk_refusal_lands_on_the_table_finding() -> None:
    report = check_firmware(CORPUS["odd-offset-carveout"], DK2)
    finding = next(f for f in report.findings if f.linux)
    assert finding.where == "image 0 .resource_table"
    assert finding.linux == "carveout rsc has non zero reserved bytes"


def test_platform_may_name_its_driver() -> None:
    spec = PlatformSpec("imx-board", DK2.regions, linux_driver="imx")
    assert parse_fw_policy_for(spec) is ParseFwPolicy.IMX
    assert parse_fw_policy_for(DK2) is ParseFwPolicy.STM32


@pytest.mark.parametrize(
    ("compatible", "policy"),
    [
        ("st,stm32mp1-m4", ParseFwPolicy.STM32),
        ("st,stm32mp2-m33", ParseFwPolicy.STM32),
        ("fsl,imx8mp-cm7", ParseFwPolicy.IMX),
        ("fsl,imx93-cm33", ParseFwPolicy.IMX),
        ("fsl,imx8mp-hifi4", ParseFwPolicy.IMX_DSP),
        # TI K3 drivers set no load op: rproc_alloc_ops' ELF defaults
        ("ti,am64-r5f", ParseFwPolicy.DEFAULT),
        ("ti,j721e-c66-dsp", ParseFwPolicy.DEFAULT),
    ],
)
def test_driver_from_the_device_tree_compatible(
    compatible: str, policy: ParseFwPolicy
) -> None:
    # the device-tree loader's note names the processor's compatible strings
    note = f"remote processor /rproc (compatible {compatible}, other,thing)"
    spec = PlatformSpec("dt", DK2.regions, source="board.dtb", notes=(note,))
    assert parse_fw_policy_for(spec) is policy
    report = check_firmware(CORPUS["table-ver-2"], spec)
    assert report.parse_fw is policy
    assert report.linux_would_load is not policy.fails
    if policy.no_table_log:
        assert policy.no_table_log in report.linux[0].log


def _no_tee_boot_verdict(elf: bytes) -> bool:
    from rproctee.linux.errors import RprocErrno
    from rproctee.linux.system import build_system

    system = build_system(DK2, elf, tee=False)
    try:
        system.rproc.boot()
    except RprocErrno:
        return False
    system.rproc.shutdown()
    return True


_HAS_NORMAL_WORLD = importlib.util.find_spec("rproctee.linux.system") is not None


@pytest.mark.skipif(not _HAS_NORMAL_WORLD, reason="normal world not built yet")
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_check_agrees_with_the_no_tee_boot(name: str) -> None:
    elf = CORPUS[name]
    assert _no_tee_boot_verdict(elf) == check_firmware(elf, DK2).linux_would_load


def test_check_warns_when_a_32bit_kernel_would_overrun() -> None:
    elf = _elf([Seg(0x10000010, b"", memsz=0xFFFFFFF8)])
    report = check_firmware(elf, DK2)
    assert not report.linux_would_load  # the 64-bit verdict: bad phdr da
    warning = next(f for f in report.findings if "32-bit" in f.message)
    assert warning.severity == "warning"
    assert warning.where == "image 0 segment 0"
    assert "32-bit kernel" in warning.message and "out of bounds" in warning.message
    assert warning.linux is not None and "rproc_da_to_va" in warning.linux
    # a well-formed image gets no such warning
    good = check_firmware(CORPUS["good"], DK2)
    assert not any("32-bit" in f.message for f in good.findings)
