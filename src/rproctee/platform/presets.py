"""Built-in platforms: the stm32mp15 boards of upstream OP-TEE.

The region table is the one of OP-TEE's stm32mp15 DK device trees (spec
section 3.3): the M4's memories seen through the ``mlahb`` bus ``dma-ranges``
(retram at device address 0 lives at physical 0x38000000). The built-in key is
the public half of optee_os ``keys/default.pem``, OP-TEE's RSA-4096
development key, the default ``RPROC_SIGN_KEY`` of stm32mp builds.
"""

from __future__ import annotations

from importlib import resources

from rproctee.platform.board import PlatformError, PlatformSpec
from rproctee.platform.memory import RegionSpec

DEV_KEY_RESOURCE = "optee_default_rsa4096_pub.pem"
DEV_KEY_NOTE = (
    "default key is OP-TEE's RSA-4096 development key (public half of optee_os "
    "keys/default.pem): its private half is public, never use it for products"
)

#: (name, physical address, size, device address) of the stm32mp15 DK boards.
STM32MP15_DK_REGIONS: tuple[tuple[str, int, int, int], ...] = (
    ("retram", 0x38000000, 0x10000, 0x00000000),
    ("mcuram", 0x30000000, 0x40000, 0x30000000),
    ("mcuram2", 0x10000000, 0x40000, 0x10000000),
    ("vdev0vring0", 0x10040000, 0x1000, 0x10040000),
    ("vdev0vring1", 0x10041000, 0x1000, 0x10041000),
    ("vdev0buffer", 0x10042000, 0x4000, 0x10042000),
    ("ipc_shmem", 0x10048000, 0x8000, 0x10048000),
)

#: Regions of the OP-TEE map that Linux's m4 node does not name as
#: ``memory-region`` (as in the DK2 device tree of tests/data/dts).
LINUX_NOT_CARVEOUTS = ("ipc_shmem",)

_BOARDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "stm32mp15-dk2": ("OP-TEE stm32mp15 DK1/DK2 device trees", ()),
    "stm32mp15-ed1": ("OP-TEE stm32mp157c-ed1 device tree (same list as DK)", ()),
    "stm32mp15-dhcom": (
        "OP-TEE stm32mp15 DHCOM/DHCOR device trees (no ipc_shmem)",
        ("ipc_shmem",),
    ),
}


def preset_names() -> tuple[str, ...]:
    """Names accepted by :func:`get_preset`, the default one first."""
    return tuple(_BOARDS)


def preset_descriptions() -> dict[str, str]:
    """Each preset's name and where its region table comes from, default first."""
    return {name: origin for name, (origin, _omitted) in _BOARDS.items()}


def has_preset(name: str) -> bool:
    """Whether ``name`` (case-insensitive) is a built-in platform."""
    return name.lower() in _BOARDS


def dev_key_pem() -> bytes:
    """OP-TEE's RSA-4096 development public key, as shipped with the package."""
    keys = resources.files("rproctee.platform") / "keys"
    return (keys / DEV_KEY_RESOURCE).read_bytes()


def get_preset(name: str) -> PlatformSpec:
    """Build a built-in platform.

    Parameters
    ----------
    name : str
        One of :func:`preset_names` (case-insensitive).

    Returns
    -------
    PlatformSpec
        Processor id 0, RSA only, OP-TEE's development key as built-in key.

    Raises
    ------
    PlatformError
        Unknown name.
    """
    key = name.lower()
    if key not in _BOARDS:
        raise PlatformError(
            f"unknown preset '{name}' (presets: {', '.join(preset_names())})"
        )
    origin, omitted = _BOARDS[key]
    regions = tuple(
        RegionSpec(name=n, da=da, pa=pa, size=size)
        for n, pa, size, da in STM32MP15_DK_REGIONS
        if n not in omitted
    )
    return PlatformSpec(
        name=key,
        regions=regions,
        # Linux's m4 node lists these memory-region phandles: every region
        # but the IPC shared memory, which is not a carveout of the rproc
        carveouts=tuple(r for r in regions if r.name not in LINUX_NOT_CARVEOUTS),
        accept_ecdsa=False,
        processor_ids=(0,),
        default_key_pem=dev_key_pem(),
        source=f"preset:{key}",
        notes=(f"regions from {origin}", DEV_KEY_NOTE),
        node=None,
        compatible=("st,stm32mp1-m4",),  # Linux binds stm32_rproc to it
        cpu="cortex-m4",  # the stm32mp15's M4, booting from RETRAM at 0
        boot_address=0,
    )
