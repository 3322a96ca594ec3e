"""Issue 9 item 3: device trees written the way TI, NXP and ST write them.

Processor nodes found by the compatibles of the real remoteproc bindings; a
node's own ``reg`` memories (TI K3 R5F ATCM/BTCM, C66x L2/L1) placed at the
device addresses Linux's drivers give them; firewalls (STM32MP2 RISAF) never
offered as processors; a tree without a processor node leads to
``rproctee platform profile``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from platform_helpers import DATA, HAVE_DTS, Seg, make_elf

from rproctee import load
from rproctee.cli import main
from rproctee.elf import describe_machine
from rproctee.image import KeySigner, build_image, generate_key, public_key_pem
from rproctee.platform.board import load_platform
from rproctee.platform.devicetree import (
    RPROC_BINDINGS,
    DeviceTreeError,
    DtNode,
    find_remoteprocs,
    is_remoteproc,
    parse_dtb,
    profile_toml,
    read_platform,
    read_tree,
    to_dtb,
)
from rproctee.platform.profile import load_profile

pytestmark = pytest.mark.skipif(not HAVE_DTS, reason="no DTS parser (devicetree/dtc)")

J721E = DATA / "ti-j721e-mcu-r5f-c66.dts"
IMX8MP = DATA / "nxp-imx8mp-cm7.dts"
IMX93 = DATA / "nxp-imx93-cm33.dts"
MP257_EV1 = DATA / "st-stm32mp257f-ev1-m33-m0.dts"
MP257_DK = DATA / "st-stm32mp257f-dk-no-rproc.dts"
R5F0 = "/bus@100000/bus@28380000/r5fss@41000000/r5f@41000000"


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _layout(ref: Path, node: str | None = None) -> list[tuple[str, int, int, int]]:
    plat = read_platform(read_tree(ref), node)
    return [(r.name, r.da, r.pa, r.size) for r in plat.regions]


@pytest.mark.parametrize("compatible", RPROC_BINDINGS)
def test_every_real_binding_is_a_processor(compatible: str) -> None:
    node = DtNode(name="rproc", path="/rproc")
    node.props["compatible"] = compatible.encode() + b"\0"
    assert is_remoteproc(node)


def test_j721e_mcu_r5f_tcms_have_the_r5f_view() -> None:
    assert _layout(J721E, "mcu_r5fss0_core0") == [
        ("atcm", 0x0, 0x41000000, 0x8000),
        ("btcm", 0x41010000, 0x41010000, 0x8000),
        ("r5f-dma-memory", 0xA0000000, 0xA0000000, 0x100000),
        ("r5f-memory", 0xA0100000, 0xA0100000, 0xF00000),
    ]
    # ti,loczrama = <0>: BTCM at 0 and ATCM at 0x41010000 instead
    core1 = _layout(J721E, "r5f@41400000")
    assert core1[:2] == [
        ("atcm", 0x41010000, 0x41400000, 0x8000),
        ("btcm", 0x0, 0x41410000, 0x8000),
    ]


def test_j721e_c66_dsp_sram_at_its_local_addresses() -> None:
    plat = read_platform(read_tree(J721E), "c66_0")
    assert [(r.name, r.da, r.pa, r.kind) for r in plat.regions[:3]] == [
        ("l2sram", 0x800000, 0x4D80800000, "internal"),
        ("l1pram", 0xE00000, 0x4D80E00000, "internal"),
        ("l1dram", 0xF00000, 0x4D80F00000, "internal"),
    ]
    assert [describe_machine(m) for m in plat.machines] == ["EM_TI_C6000 (140)"]
    r5f = read_platform(read_tree(J721E), "mcu_r5fss0_core0")
    assert [describe_machine(m) for m in r5f.machines] == ["EM_ARM (40)"]


def test_j721e_firmware_at_0x41010000_loads_into_btcm() -> None:
    elf = make_elf([Seg(0x41010000, b"\x01" * 0x100), Seg(0xA0100000, b"\x02" * 64)])
    key = generate_key("p256")
    image = build_image([elf], KeySigner(key))
    spec = load_platform(str(J721E), "mcu_r5fss0_core0")
    result = load(image, platform=spec, key=public_key_pem(key), accept_ecdsa=True)
    assert result.result == "TEE_SUCCESS", result.reason
    btcm = [w for w in result.writes if w.da == 0x41010000]
    assert btcm and btcm[0].region == "btcm" and btcm[0].pa == 0x41010000
    assert result.world.memory.read_da(0x41010000, 4) == b"\x01" * 4


def test_several_processors_are_listed_and_named_by_label_or_path() -> None:
    tree = read_tree(J721E)
    with pytest.raises(DeviceTreeError, match="several remote-processor nodes"):
        read_platform(tree)
    assert read_platform(tree, "&mcu_r5fss0_core0").node == R5F0
    assert read_platform(tree, R5F0).node == R5F0


def test_dtb_without_symbols_works_by_path_or_node_name() -> None:
    blob = to_dtb(read_tree(J721E))  # labels do not survive without -@
    tree = parse_dtb(blob, source="j721e.dtb")
    assert read_platform(tree, R5F0).node == R5F0
    assert read_platform(tree, "r5f@41000000").node == R5F0
    assert read_platform(tree, "dsp").node == "/bus@100000/dsp@4d80800000"
    with pytest.raises(DeviceTreeError, match="no /__symbols__.*dtc -@"):
        read_platform(tree, "&mcu_r5fss0_core0")


def test_imx8mp_cm7_and_imx93_cm33() -> None:
    cm7 = read_platform(read_tree(IMX8MP))
    assert cm7.node == "/imx8mp-cm7" and cm7.compatible == ("fsl,imx8mp-cm7",)
    assert [r.name for r in cm7.regions] == [
        "itcm", "dtcm", "vdevbuffer", "vdev0vring0", "vdev0vring1", "rsc-table", "m7",
    ]  # fmt: skip
    # the TCMs come from imx_rproc's address translation table, not the tree
    itcm, dtcm = cm7.regions[:2]
    assert (itcm.da, itcm.pa, dtcm.da, dtcm.pa) == (0x0, 0x7E0000, 0x20000000, 0x800000)
    assert "translation table" in itcm.translation
    tree = read_tree(IMX93)
    cm33 = read_platform(tree)
    assert cm33.node == "/remoteproc-cm33"
    assert read_platform(tree, "&cm33") == cm33
    assert ("rsc-table", 0x2021E000) in [(r.name, r.da) for r in cm33.regions]


def test_stm32mp2_firewalls_are_never_processors() -> None:
    tree = read_tree(MP257_EV1)
    assert [n.path for n in find_remoteprocs(tree)] == ["/m33@0", "/m0@0"]
    m33 = read_platform(tree)  # the M0+ is disabled: the M33 is the one
    assert m33.node == "/m33@0" and m33.regions[0].name == "cm33-cube-fw"
    m0 = read_platform(tree, "m0")
    assert any("disabled" in note for note in m0.notes)
    with pytest.raises(DeviceTreeError) as info:
        read_platform(tree, "risaf4")
    message = str(info.value)
    assert "is a firewall or bus, not a processor" in message
    first, *candidates = message.splitlines()
    assert "/m33@0" in message and not any("risaf" in c for c in candidates)


def test_tree_without_processor_offers_a_profile(tmp_path: Path) -> None:
    with pytest.raises(DeviceTreeError) as info:
        read_platform(read_tree(MP257_DK))
    message = str(info.value)
    assert f"rproctee platform profile {MP257_DK} > board.toml" in message
    assert "risaf" not in message  # the firewall is not offered as a choice
    result = _run("check", str(MP257_DK), "-p", MP257_DK)
    assert result.exit_code == 2 and "platform profile" in result.stderr


def test_profile_of_a_tree_without_processor_loads(tmp_path: Path) -> None:
    result = _run("platform", "profile", MP257_DK)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "#   guarded by the firewall /soc@0/risaf@420d0000" in text
    assert "#   dynamic size 0x400000: its address is chosen at boot" in text
    board = tmp_path / "board.toml"
    board.write_text(text)
    spec = load_profile(board)
    assert [(r.name, r.da, r.pa, r.size) for r in spec.regions] == [
        ("fw", 0x80000000, 0x80000000, 0x4000000),
        ("ipc-shmem", 0x84000000, 0x84000000, 0x100000),
    ]
    assert _run("platform", "show", board).exit_code == 0


def test_profile_of_one_processor_keeps_its_device_addresses() -> None:
    text = profile_toml(read_tree(J721E), "mcu_r5fss0_core0")
    doc = tomllib.loads(text)
    assert [(r["name"], r["da"]) for r in doc["regions"]] == [
        ("atcm", 0x0),
        ("btcm", 0x41010000),
        ("r5f-dma-memory", 0xA0000000),
        ("r5f-memory", 0xA0100000),
    ]
    assert '# name = "r5f-dma-memory@a1000000"' in text  # core1's, commented


def test_node_option_on_check_and_show(tmp_path: Path) -> None:
    fw = tmp_path / "fw.elf"
    fw.write_bytes(make_elf([Seg(0x41010000)]))
    result = _run("check", fw, "-p", J721E, "--node", "mcu_r5fss0_core0")
    assert result.exit_code == 0, result.output
    assert "btcm (pa 0x41010000)" in result.stdout
    shown = _run("platform", "show", J721E, "--node", "c66_0", "--json")
    assert [r["name"] for r in json.loads(shown.stdout)["regions"]][0] == "l2sram"
    missing = _run("platform", "show", J721E)
    assert missing.exit_code == 2 and "--node" in missing.stderr


def test_platform_list() -> None:
    text = _run("platform", "list")
    assert text.exit_code == 0 and text.stdout.startswith("stm32mp15-dk2 ")
    doc = json.loads(_run("platform", "list", "--json").stdout)
    assert [p["name"] for p in doc["presets"]] == [
        "stm32mp15-dk2", "stm32mp15-ed1", "stm32mp15-dhcom",
    ]  # fmt: skip
    assert doc["presets"][2]["regions"] == 6


def test_profile_errors_use_the_exit_statuses(tmp_path: Path) -> None:
    assert _run("platform", "profile", tmp_path / "none.dtb").exit_code == 3
    assert _run("platform", "profile", tmp_path).exit_code == 3
    empty = tmp_path / "empty.dts"
    empty.write_text("/dts-v1/;\n/ { };\n")
    result = _run("platform", "profile", empty)
    assert result.exit_code == 2 and "no /reserved-memory node" in result.stderr


def test_internal_memory_of_size_0_is_left_out(tmp_path: Path) -> None:
    """An R5F ATCM whose 'reg' has size 0 is left out with a note, as an
    untranslatable one is: the platform is the other memories (a fuzz
    finding: it used to escape as a bare ValueError from RegionSpec)."""
    text = J721E.read_text()
    old = "reg = <0x41000000 0x00008000>,"
    assert old in text
    tree = tmp_path / "atcm-size-0.dts"
    tree.write_text(text.replace(old, "reg = <0x41000000 0x0>,", 1))
    plat = load_platform(str(tree), "mcu_r5fss0_core0")
    assert [r.name for r in plat.regions][:1] == ["btcm"]
    assert any("reg 'atcm': size 0" in note for note in plat.notes), plat.notes
