"""Which Linux driver serves a platform: ``compatible`` and ``linux_driver``.

A device tree's processor node gives :attr:`PlatformSpec.compatible`; a TOML
profile may name the driver (``linux_driver``); both decide
``parse_fw_policy_for`` (and so ``rproctee check`` and ``boot --no-tee``)
without reading the loader's note text.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from platform_helpers import DATA, DK2_DTS

from rproctee.linux.elf_loader import ParseFwPolicy, parse_fw_policy_for
from rproctee.platform.board import (
    LINUX_DRIVERS,
    PlatformError,
    PlatformSpec,
    load_platform,
)
from rproctee.platform.profile import ProfileError, load_profile

DK2 = load_platform("stm32mp15-dk2")

PROFILE = """\
[platform]
name = "board"
{extra}
[[regions]]
name = "ram"
da = 0x10000000
size = 0x10000
"""


def _profile(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "board.toml"
    path.write_text(PROFILE.format(extra=extra))
    return path


@pytest.mark.parametrize("driver", LINUX_DRIVERS)
def test_profile_names_the_driver(tmp_path: Path, driver: str) -> None:
    spec = load_profile(_profile(tmp_path, f'linux_driver = "{driver}"'))
    assert spec.linux_driver == driver
    assert parse_fw_policy_for(spec) is ParseFwPolicy(driver)
    assert spec.to_dict()["linux_driver"] == driver


def test_profile_without_driver_is_stm32(tmp_path: Path) -> None:
    spec = load_profile(_profile(tmp_path, ""))
    assert spec.linux_driver is None and spec.compatible == ()
    assert parse_fw_policy_for(spec) is ParseFwPolicy.STM32


@pytest.mark.parametrize("value", ['"omap"', '"IMX"', "3", '["imx"]', '""'])
def test_profile_refuses_an_unknown_driver(tmp_path: Path, value: str) -> None:
    path = _profile(tmp_path, f"linux_driver = {value}")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert "linux_driver" in message and str(path) in message
    assert "default, imx, imx_dsp, stm32" in message


def test_platform_spec_refuses_an_unknown_driver() -> None:
    with pytest.raises(PlatformError, match="linux_driver 'ti'.*one of: default"):
        PlatformSpec("board", DK2.regions, linux_driver="ti")
    with pytest.raises(PlatformError, match="linux_driver"):
        dataclasses.replace(DK2, linux_driver="stm32mp")


@pytest.mark.parametrize(
    ("tree", "node", "compatible", "policy"),
    [
        (DK2_DTS, None, "st,stm32mp1-m4", ParseFwPolicy.STM32),
        (DATA / "optee-stm32mp15.dts", None, "st,stm32mp1-m4-tee", ParseFwPolicy.STM32),
        (DATA / "nxp-imx8mp-cm7.dts", None, "fsl,imx8mp-cm7", ParseFwPolicy.IMX),
        (
            DATA / "ti-j721e-mcu-r5f-c66.dts",
            "mcu_r5fss0_core0",
            "ti,j721e-r5f",
            ParseFwPolicy.DEFAULT,
        ),
    ],
)
def test_device_tree_fills_compatible(
    tree: Path, node: str | None, compatible: str, policy: ParseFwPolicy
) -> None:
    spec = load_platform(str(tree), node)
    assert spec.compatible[0] == compatible
    assert spec.to_dict()["compatible"] == list(spec.compatible)
    # the field decides, not the loader's note text
    bare = dataclasses.replace(spec, notes=())
    assert parse_fw_policy_for(bare) is policy


def test_linux_driver_wins_over_compatible() -> None:
    spec = PlatformSpec(
        "x", DK2.regions, compatible=("fsl,imx8mp-cm7",), linux_driver="default"
    )
    assert parse_fw_policy_for(spec) is ParseFwPolicy.DEFAULT
    assert parse_fw_policy_for(dataclasses.replace(spec, linux_driver=None)) is (
        ParseFwPolicy.IMX
    )
