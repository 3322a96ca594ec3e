"""load_platform: presets, device trees, profiles; PlatformSpec contents."""

from __future__ import annotations

from pathlib import Path

import pytest
from platform_helpers import DATA, DK2_DTB, DK2_DTS, HAVE_DTS, TEST_DATA

from rproctee.platform.board import PlatformError, load_platform
from rproctee.platform.devicetree import DeviceTreeError
from rproctee.platform.memory import RegionSpec
from rproctee.platform.presets import get_preset, preset_names

needs_dts = pytest.mark.skipif(not HAVE_DTS, reason="no DTS parser (devicetree/dtc)")


def test_dk2_preset_region_table() -> None:
    spec = load_platform("stm32mp15-dk2")
    assert spec.source == "preset:stm32mp15-dk2"
    assert spec.regions[0] == RegionSpec("retram", 0x0, 0x38000000, 0x10000)
    assert spec.region("ipc_shmem") == RegionSpec(
        "ipc_shmem", 0x10048000, 0x10048000, 0x8000
    )
    assert [r.name for r in spec.regions] == [
        "retram", "mcuram", "mcuram2", "vdev0vring0", "vdev0vring1",
        "vdev0buffer", "ipc_shmem",
    ]  # fmt: skip
    assert spec.processor_ids == (0,) and spec.accept_ecdsa is False


def test_preset_key_is_optee_dev_key_and_says_so() -> None:
    spec = load_platform("preset:stm32mp15-dk2")
    shipped = TEST_DATA / "keys" / "optee_default_rsa4096_pub.pem"
    assert spec.default_key_pem == shipped.read_bytes()
    assert any("development key" in n and "default.pem" in n for n in spec.notes)


def test_dhcom_preset_omits_ipc_shmem() -> None:
    names = [r.name for r in get_preset("stm32mp15-dhcom").regions]
    assert "ipc_shmem" not in names and len(names) == 6
    assert preset_names()[0] == "stm32mp15-dk2"


@pytest.mark.parametrize("path", [DK2_DTB, DK2_DTS], ids=["dtb", "dts"])
@needs_dts
def test_dk2_tree_differs_from_preset_only_by_ipc_shmem(path: Path) -> None:
    spec = load_platform(str(path))
    preset = load_platform("stm32mp15-dk2")
    assert spec.regions == tuple(r for r in preset.regions if r.name != "ipc_shmem")
    assert spec.node == "/ahb/m4@10000000" and spec.default_key_pem is None
    assert spec.name == "stm32mp157c-dk2"


@needs_dts
def test_dts_with_node_choice() -> None:
    spec = load_platform(str(DATA / "k3-multi.dts"), node="main_r5fss0_core1")
    assert spec.node.endswith("r5f@78200000")
    assert spec.regions[0].da == 0x40000000


def test_profile_by_suffix(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text(
        '[platform]\nname = "b"\n[[regions]]\nname = "r"\nda = 0\nsize = 16\n',
        encoding="utf-8",
    )
    assert load_platform(str(path)).regions == (RegionSpec("r", 0, 0, 16),)


@needs_dts
def test_dtb_recognised_by_content(tmp_path: Path) -> None:
    from rproctee.platform.devicetree import read_tree, to_dtb

    path = tmp_path / "board.blob"
    path.write_bytes(to_dtb(read_tree(DATA / "imx-2cell.dts")))
    assert load_platform(str(path)).node == "/imx8mm-cm4"


def test_unknown_platform_lists_presets() -> None:
    with pytest.raises(PlatformError, match="stm32mp15-dk2"):
        load_platform("no-such-board")


def test_node_refused_for_presets() -> None:
    with pytest.raises(PlatformError, match="--node"):
        load_platform("stm32mp15-dk2", node="m4")


@needs_dts
def test_dt_errors_propagate(tmp_path: Path) -> None:
    path = tmp_path / "x.dts"
    path.write_text("/dts-v1/;\n/ { };\n", encoding="utf-8")
    with pytest.raises(DeviceTreeError, match="no remote-processor node"):
        load_platform(str(path))


def test_unrecognised_file(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"hello")
    with pytest.raises(PlatformError, match="neither a device tree"):
        load_platform(str(path))


def test_to_dict_is_json_ready() -> None:
    doc = load_platform("stm32mp15-dk2").to_dict()
    assert doc["regions"][0] == {
        "name": "retram", "da": 0, "pa": 0x38000000, "size": 0x10000, "access": "rwx"
    }  # fmt: skip
    assert doc["default_key"].startswith("-----BEGIN PUBLIC KEY-----")


def test_preset_carveouts_are_the_linux_nodes() -> None:
    """The preset's Linux carveouts are the DK2 m4 node's memory-region list
    (every OP-TEE region but ipc_shmem), as the device tree gives them."""
    preset = load_platform("stm32mp15-dk2")
    tree = load_platform(str(DK2_DTB))
    shape = [(c.name, c.da, c.pa, c.size) for c in preset.linux_carveouts()]
    assert shape == [(c.name, c.da, c.pa, c.size) for c in tree.linux_carveouts()]
    assert "ipc_shmem" not in [c.name for c in preset.linux_carveouts()]
