"""Carveouts as stm32_rproc registers them, from the DK2 device tree,
the preset and a TOML profile's optional [[linux_carveouts]]."""

from __future__ import annotations

from pathlib import Path

import pytest
from linux_helpers import DK2_DTB, demo_table, dk2

from rproctee.firmware import demo_firmware
from rproctee.linux.system import build_system
from rproctee.platform.board import load_platform
from rproctee.platform.profile import ProfileError

DK2_CARVEOUTS = [  # (name, da, pa, len) of the m4 node's memory-region
    ("retram", 0x0, 0x38000000, 0x10000),
    ("mcuram", 0x30000000, 0x30000000, 0x40000),
    ("mcuram2", 0x10000000, 0x10000000, 0x40000),
    ("vdev0vring0", 0x10040000, 0x10040000, 0x1000),
    ("vdev0vring1", 0x10041000, 0x10041000, 0x1000),
    ("vdev0buffer", 0x10042000, 0x10042000, 0x4000),
]


def test_dk2_device_tree_yields_the_carveouts() -> None:
    platform = load_platform(str(DK2_DTB))
    got = [(r.name, r.da, r.pa, r.size) for r in platform.linux_carveouts()]
    assert got == DK2_CARVEOUTS
    # the secure world's regions are unchanged
    assert platform.regions == platform.linux_carveouts()


def test_booted_rproc_registers_them_with_dma_ranges_translation() -> None:
    system = build_system(load_platform(str(DK2_DTB)), demo_firmware(4), tee=False)
    system.rproc.boot()
    rows = system.rproc.carveout_rows()
    assert [(c["name"], c["da"], c["pa"], c["len"]) for c in rows] == DK2_CARVEOUTS
    retram = system.rproc.find_carveout_by_name("retram")
    buffer = system.rproc.find_carveout_by_name("vdev0buffer")
    assert retram is not None and retram.va is not None  # ioremap'd
    assert buffer is not None and buffer.of_resm and buffer.va is None
    dumped = [s.da for s in system.rproc.dump_segments]
    assert dumped == [0, 0x30000000, 0x10000000, 0x10040000, 0x10041000]


def test_toml_linux_carveouts(tmp_path: Path) -> None:
    profile = tmp_path / "board.toml"
    profile.write_text(
        '[platform]\nname = "b"\n'
        "[[regions]]\nname = \"sram\"\nda = 0x10000000\nsize = 0x50000\n"
        "[[linux_carveouts]]\nname = \"vdev0vring0\"\nda = 0x10040000\nsize = 0x1000\n"
        "[[linux_carveouts]]\nname = \"vdev0vring1\"\nda = 0x10041000\n"
        "pa = 0x10041000\nsize = 0x1000\n"
    )
    platform = load_platform(str(profile))
    assert [r.name for r in platform.regions] == ["sram"]
    assert [(r.name, r.pa) for r in platform.linux_carveouts()] == [
        ("vdev0vring0", 0x10040000), ("vdev0vring1", 0x10041000)]  # fmt: skip
    # a profile without a list: its regions; the preset: the m4 node's list
    no_list = tmp_path / "plain.toml"
    no_list.write_text(
        '[platform]\nname = "p"\n[[regions]]\nname = "r"\nda = 0\nsize = 16\n'
    )
    plain = load_platform(str(no_list))
    assert plain.linux_carveouts() == plain.regions
    assert [r.name for r in dk2().linux_carveouts()] == [
        r.name for r in dk2().regions if r.name != "ipc_shmem"
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("linux_carveouts = []\n", "'linux_carveouts' must be a non-empty array"),
        ("[[linux_carveouts]]\nname = \"a\"\nda = 0\nsize = 1\naccess = \"r\"\n",
         "unknown key(s) access"),
        ("[[linux_carveouts]]\nname = \"a\"\nda = 0\nsize = 0\n",
         "'size' must not be 0"),
        ("[[linux_carveouts]]\nname = \"a\"\nda = 0\nsize = 1\n"
         "[[linux_carveouts]]\nname = \"a\"\nda = 8\nsize = 1\n", "duplicate carveout"),
    ],
)  # fmt: skip
def test_toml_linux_carveouts_errors(tmp_path: Path, body: str, message: str) -> None:
    profile = tmp_path / "bad.toml"
    head = '[platform]\nname = "b"\n[[regions]]\nname = "r"\nda = 0\nsize = 16\n'
    profile.write_text(body + head if body.startswith("linux_carveouts =") else
                       head + body)  # fmt: skip
    with pytest.raises(ProfileError) as exc:
        load_platform(str(profile))
    assert message in str(exc.value)


def test_demo_table_helper_parses() -> None:
    from rproctee.rsctable import parse_resource_table

    assert len(parse_resource_table(demo_table()).entries) == 2
