"""Device-tree reading: DTB and DTS agree, regions and translations, errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from platform_helpers import DATA, DK2_DTB, DK2_DTS, HAVE_DTS, write_dts

from rproctee.platform.devicetree import (
    DeviceTree,
    DeviceTreeError,
    DtPlatform,
    parse_dtb,
    read_platform,
    read_tree,
    to_dtb,
)
from rproctee.platform.presets import STM32MP15_DK_REGIONS

FIXTURES = sorted(DATA.glob("*.dts"))
pytestmark = pytest.mark.skipif(not HAVE_DTS, reason="no DTS parser (devicetree/dtc)")


def _regions(plat: DtPlatform) -> list[tuple[str, int, int, int]]:
    return [(r.name, r.pa, r.size, r.da) for r in plat.regions]


def _flat(path: Path) -> list[tuple[str, dict[str, bytes]]]:
    return [(n.path, n.props) for n in read_tree(path).nodes()]


def test_dk2_dts_and_dtb_give_identical_trees_and_regions() -> None:
    assert _flat(DK2_DTS) == _flat(DK2_DTB)
    dts = read_platform(read_tree(DK2_DTS))
    dtb = read_platform(read_tree(DK2_DTB))
    assert dts == DtPlatform(**{**dtb.__dict__, "source": str(DK2_DTS)})


def test_dk2_linux_tree_is_the_preset_without_ipc_shmem() -> None:
    plat = read_platform(read_tree(DK2_DTB))
    assert plat.node == "/ahb/m4@10000000"
    assert plat.compatible == ("st,stm32mp1-m4",)
    expected = [r for r in STM32MP15_DK_REGIONS if r[0] != "ipc_shmem"]
    assert _regions(plat) == expected
    retram = plat.regions[0]
    assert (retram.pa, retram.da) == (0x38000000, 0x0)
    assert "<0x0 0x38000000 0x10000>" in retram.translation


def test_optee_view_of_stm32mp15_equals_the_preset() -> None:
    plat = read_platform(read_tree(DATA / "optee-stm32mp15.dts"))
    assert _regions(plat) == list(STM32MP15_DK_REGIONS)
    assert plat.compatible == ("st,stm32mp1-m4-tee",)
    assert plat.processor_ids == (0,)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_dts_and_its_dtb_agree(path: Path) -> None:
    tree = read_tree(path)
    again = parse_dtb(to_dtb(tree))
    assert [(n.path, n.props) for n in again.nodes()] == [
        (n.path, n.props) for n in tree.nodes()
    ]
    assert _outcome(again) == _outcome(tree)


def _outcome(tree: DeviceTree) -> object:
    """The automatic choice's regions, or its error without the file name."""
    try:
        return read_platform(tree).regions
    except DeviceTreeError as exc:
        return str(exc).replace(tree.source, "TREE").splitlines()[0]


@pytest.mark.skipif(shutil.which("dtc") is None, reason="dtc not installed")
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_dts_matches_dtc(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.dtb"
    subprocess.run(["dtc", "-q", "-o", str(out), str(path)], check=True)
    assert _flat(out) == _flat(path)


def test_two_cell_addresses_multi_reg_high_and_dynamic_regions() -> None:
    plat = read_platform(read_tree(DATA / "imx-2cell.dts"))
    assert plat.node == "/imx8mm-cm4"
    assert _regions(plat) == [
        ("vdevbuffer[0]", 0xB8400000, 0x100000, 0xB8400000),
        ("vdevbuffer[1]", 0xB8600000, 0x80000, 0xB8600000),
        ("vdev0vring0", 0xB8000000, 0x8000, 0xB8000000),
        ("vdev0vring1", 0xB8008000, 0x8000, 0xB8008000),
        ("rsc-table", 0xB8010000, 0x1000, 0xB8010000),
        ("m4", 0x80000000, 0x1000000, 0x80000000),
        ("high", 0x100000000, 0x200000, 0x100000000),
    ]
    assert all("da = pa" in r.translation for r in plat.regions)
    assert any("dyn-pool has no 'reg'" in n and "0x400000" in n for n in plat.notes)
    assert any("2 'reg' entries" in n for n in plat.notes)


def test_multi_entry_two_cell_dma_ranges_and_disabled_sibling() -> None:
    tree = read_tree(DATA / "k3-multi.dts")
    core0 = read_platform(tree)
    assert core0.node == "/bus@f4000/r5fss@78000000/r5f@78000000"
    assert _regions(core0) == [
        ("atcm", 0x78000000, 0x10000, 0x0),  # its own reg: ATCM, R5F view
        ("r5f-dma-memory", 0xA0000000, 0x100000, 0x0),
        ("r5f-memory", 0xA0100000, 0xF00000, 0x100000),
    ]
    # the cluster's 'ranges' does not reach BTCM: left out, and said so
    assert any("'btcm' left out" in n for n in core0.notes)
    core1 = read_platform(tree, "&main_r5fss0_core1")
    assert [r.da for r in core1.regions] == [0x40000000, 0x40100000]
    assert any("disabled" in n for n in core1.notes)


def test_codec_with_memory_region_is_not_a_candidate_but_can_be_named() -> None:
    tree = read_tree(DATA / "k3-multi.dts")
    plat = read_platform(tree, "video-codec")
    assert _regions(plat) == [("codec", 0xC0000000, 0x1000000, 0xC0000000)]


def test_empty_dma_ranges_is_identity_and_proc_id_from_phandle_arg() -> None:
    tree = read_tree(DATA / "empty-dma-ranges.dts")
    assert read_platform(tree).node == "/cm7"
    m33 = read_platform(tree, "m33")
    assert m33.processor_ids == (1,)
    assert _regions(m33) == [("cm33-fw", 0x80000000, 0x100000, 0x80000000)]


@pytest.mark.parametrize("ref", ["/soc/m33@0", "&m33", "m33", "m33@0"])
def test_node_reference_forms(ref: str) -> None:
    tree = read_tree(DATA / "empty-dma-ranges.dts")
    assert read_platform(tree, ref).node == "/soc/m33@0"


_RMEM = """
    #address-cells = <1>; #size-cells = <1>;
    reserved-memory { #address-cells = <1>; #size-cells = <1>; ranges;
        a: a@1000 { reg = <0x1000 0x100>; };
        b: b@2000 { reg = <0x2000 0x100>; };
    };
"""


def _err(tmp_path: Path, body: str, node: str | None = None) -> str:
    with pytest.raises(DeviceTreeError) as info:
        read_platform(read_tree(write_dts(tmp_path, _RMEM + body)), node)
    return str(info.value)


def test_several_enabled_candidates_are_listed(tmp_path: Path) -> None:
    msg = _err(
        tmp_path,
        'm4 { compatible = "st,stm32mp1-m4"; memory-region = <&a>; };'
        'cm7 { compatible = "fsl,imx8mn-cm7"; memory-region = <&b>; };',
    )
    assert "--node" in msg and "/m4 " in msg and "/cm7 " in msg


def test_only_disabled_candidates(tmp_path: Path) -> None:
    msg = _err(
        tmp_path,
        'm4 { compatible = "st,stm32mp1-m4"; memory-region = <&a>;'
        ' status = "disabled"; };',
    )
    assert "disabled" in msg and "/m4" in msg


def test_no_candidate_lists_memory_region_users(tmp_path: Path) -> None:
    msg = _err(tmp_path, 'gpu { compatible = "acme,gpu"; memory-region = <&a>; };')
    assert "no remote-processor node" in msg and "/gpu" in msg


def test_unknown_node_reference(tmp_path: Path) -> None:
    body = 'm4 { compatible = "st,stm32mp1-m4"; memory-region = <&a>; };'
    assert "'nope' matches no node" in _err(tmp_path, body, "nope")


def test_dangling_phandle(tmp_path: Path) -> None:
    msg = _err(
        tmp_path, 'm4 { compatible = "st,stm32mp1-m4"; memory-region = <0x77>; };'
    )
    assert "phandle 0x77" in msg and "/m4" in msg and "memory-region" in msg


def test_region_outside_dma_ranges(tmp_path: Path) -> None:
    msg = _err(
        tmp_path,
        "bus { #address-cells = <1>; #size-cells = <1>; ranges;"
        " dma-ranges = <0x0 0x1000 0x100>;"
        ' m4 { compatible = "st,stm32mp1-m4"; memory-region = <&a>, <&b>; }; };',
    )
    assert "/reserved-memory/b@2000" in msg and "dma-ranges" in msg and "/bus" in msg


def test_disabled_reserved_memory_target(tmp_path: Path) -> None:
    msg = _err(
        tmp_path,
        'm4 { compatible = "st,stm32mp1-m4"; memory-region = <&c>; };'
        'reserved-memory { c: c@3000 { reg = <0x3000 0x10>; status = "disabled"; }; };',
    )
    assert "c@3000" in msg and "disabled" in msg


def test_target_without_reg_or_size(tmp_path: Path) -> None:
    msg = _err(
        tmp_path,
        'm4 { compatible = "st,stm32mp1-m4"; memory-region = <&c>; };'
        "reserved-memory { c: c { no-map; }; };",
    )
    assert "neither 'reg' nor 'size'" in msg


def test_bad_reg_cell_count(tmp_path: Path) -> None:
    msg = _err(
        tmp_path,
        'm4 { compatible = "st,stm32mp1-m4"; memory-region = <&c>; };'
        "reserved-memory { c: c@3000 { reg = <0x3000 0x10 0x5>; }; };",
    )
    assert "'reg' has 3 cells" in msg and "c@3000" in msg


def test_only_dynamic_regions(tmp_path: Path) -> None:
    msg = _err(
        tmp_path,
        'm4 { compatible = "st,stm32mp1-m4"; memory-region = <&c>; };'
        "reserved-memory { c: c { size = <0x1000>; }; };",
    )
    assert "no 'memory-region' target has a fixed 'reg'" in msg


def test_unpreprocessed_source_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.dts"
    path.write_text('/dts-v1/;\n#include "foo.h"\n/ { };\n', encoding="utf-8")
    with pytest.raises(DeviceTreeError, match="line 2 .*cpp"):
        read_tree(path)


def test_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.dts"
    path.write_text("/dts-v1/;\n/ { a = <1 >\n", encoding="utf-8")
    with pytest.raises(DeviceTreeError, match="bad.dts"):
        read_tree(path)


def test_truncated_dtb(tmp_path: Path) -> None:
    blob = to_dtb(read_tree(DATA / "imx-2cell.dts"))
    with pytest.raises(DeviceTreeError, match="invalid DTB"):
        parse_dtb(blob[:100], "cut.dtb")


def test_corrupted_dtbs_fail_cleanly() -> None:
    blob = to_dtb(read_tree(DATA / "k3-multi.dts"))
    for pos in range(0, len(blob), 7):
        bad = bytearray(blob)
        bad[pos] ^= 0xFF
        try:
            parse_dtb(bytes(bad), "bad.dtb")
        except DeviceTreeError:
            pass
    for cut in (40, 64, len(blob) // 2, len(blob) - 1):
        with pytest.raises(DeviceTreeError):
            parse_dtb(blob[:cut], "cut.dtb")
