"""``PlatformSpec.cpu`` and ``boot_address``: what core, booting where.

Presets name the stm32mp15's Cortex-M4 booting from RETRAM at 0; device
trees name the core from the processor node's ``compatible``; the emulated
core (``EmulatedFirmware.for_platform``) takes both from the platform
instead of guessing from its notes.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from platform_helpers import DATA, HAVE_DTS

from rproctee.cli import main
from rproctee.emu import EmulatedFirmware
from rproctee.platform.board import PlatformSpec, cpu_from_compatible, load_platform
from rproctee.platform.memory import RegionSpec

needs_dts = pytest.mark.skipif(not HAVE_DTS, reason="no DTS parser (devicetree/dtc)")
DK2_DTB = DATA.parents[1] / "data" / "dts" / "stm32mp157c-dk2.dtb"


@pytest.mark.parametrize(
    "preset", ["stm32mp15-dk2", "stm32mp15-ed1", "stm32mp15-dhcom"]
)
def test_presets_are_a_cortex_m4_booting_at_0(preset: str) -> None:
    spec = load_platform(preset)
    assert (spec.cpu, spec.boot_address) == ("cortex-m4", 0)
    doc = spec.to_dict()
    assert (doc["cpu"], doc["boot_address"]) == ("cortex-m4", 0)
    json.dumps(doc)


def test_a_spec_that_says_nothing_has_neither() -> None:
    spec = PlatformSpec("b", (RegionSpec("ram", 0x1000, 0x1000, 0x1000),))
    assert (spec.cpu, spec.boot_address) == (None, None)
    assert (spec.to_dict()["cpu"], spec.to_dict()["boot_address"]) == (None, None)


@pytest.mark.parametrize(
    ("compatible", "cpu"),
    [
        (("st,stm32mp1-m4",), "cortex-m4"),
        (("st,stm32mp2-m33",), "cortex-m33"),
        (("st,stm32mp2-m0",), "cortex-m0"),
        (("fsl,imx8mp-cm7",), "cortex-m7"),
        (("fsl,imx93-cm33",), "cortex-m33"),
        (("ti,j721e-r5f",), "cortex-r5f"),
        (("ti,am64-r5f",), "cortex-r5f"),
        (("ti,j721e-c66-dsp",), "c66x-dsp"),
        (("ti,j721e-c71-dsp",), "c71x-dsp"),
        (("vendor,unknown", "st,stm32mp1-m4"), "cortex-m4"),  # first that names one
        (("vendor,unknown",), None),
        ((), None),
    ],
)
def test_cpu_from_compatible(compatible: tuple[str, ...], cpu: str | None) -> None:
    assert cpu_from_compatible(compatible) == cpu


def test_dk2_device_tree_names_its_m4() -> None:
    spec = load_platform(str(DK2_DTB))
    assert spec.cpu == "cortex-m4" and spec.boot_address is None
    assert EmulatedFirmware.for_platform(spec).cpu == "cortex-m4"


@needs_dts
def test_stm32mp2_tree_names_m33_and_m0() -> None:
    ref = str(DATA / "st-stm32mp257f-ev1-m33-m0.dts")
    assert load_platform(ref, node="&m33_rproc").cpu == "cortex-m33"
    assert load_platform(ref, node="&m0_rproc").cpu == "cortex-m0"


@needs_dts
def test_emulating_an_r5f_is_refused_by_name() -> None:
    spec = load_platform(str(DATA / "ti-j721e-mcu-r5f-c66.dts"),
                         node="&mcu_r5fss0_core0")  # fmt: skip
    assert spec.cpu == "cortex-r5f"
    with pytest.raises(ValueError, match=r"r5f@41000000 is a cortex-r5f, not a "
                       "Cortex-M core"):  # fmt: skip
        EmulatedFirmware.for_platform(spec)


def test_emulated_firmware_takes_cpu_and_boot_address_from_the_spec() -> None:
    # notes that would say M33 and a region at 0 that would say 0: the
    # named fields win
    spec = PlatformSpec(
        "m", (RegionSpec("ram", 0, 0, 0x10000),),
        notes=("remote processor /m33 (compatible st,stm32mp2-m33)",),
        cpu="cortex-m7", boot_address=0x8000,
    )  # fmt: skip
    fw = EmulatedFirmware.for_platform(spec)
    assert (fw.cpu, fw.vector_base) == ("cortex-m7", 0x8000)
    assert EmulatedFirmware.for_platform(spec, vector_base=4).vector_base == 4


def test_platform_show_json_has_cpu_and_boot_address() -> None:
    result = CliRunner().invoke(main, ["platform", "show", "stm32mp15-dk2", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    platform = doc.get("platform", doc)
    assert (platform["cpu"], platform["boot_address"]) == ("cortex-m4", 0)
