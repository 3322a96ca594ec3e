"""The platform a firmware is loaded on: :class:`PlatformSpec` and its loaders.

A platform is what OP-TEE's platform PTA knows about one remote processor: its
memory regions (device address, physical address, size), which signature
types it verifies, with which built-in key, and the processor ids it serves.
:func:`load_platform` builds one from a preset name, a device tree (``.dtb`` or
``.dts``) or a hand-written TOML profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rproctee.errors import RprocError
from rproctee.platform import devicetree
from rproctee.platform.memory import RegionSpec

_DT_SUFFIXES = (".dtb", ".dtbo", ".dts")
_PROFILE_SUFFIXES = (".toml",)


class PlatformError(RprocError, ValueError):
    """A platform reference cannot be resolved or a platform is inconsistent."""


#: Values of :attr:`PlatformSpec.linux_driver` (TOML ``linux_driver``): the
#: drivers whose ``parse_fw`` differ (``stm32_rproc``, ``imx_rproc``,
#: ``imx_dsp_rproc``, and ``default``: the ELF defaults of ``rproc_alloc_ops``
#: that TI K3 drivers get).
LINUX_DRIVERS = ("default", "imx", "imx_dsp", "stm32")


@dataclass(frozen=True)
class PlatformSpec:
    """Everything the platform PTA needs to know about the board.

    Attributes
    ----------
    name : str
        Board name (preset name, profile ``[platform] name`` or DT file stem).
    regions : tuple of RegionSpec
        The memory regions, in lookup order (the first containing region wins).
    accept_ecdsa : bool
        Whether VERIFY_DIGEST accepts ECDSA P-256 (upstream stm32mp: False).
    processor_ids : tuple of int
        Processor ids the PTA knows (upstream stm32mp15: ``(0,)``).
    default_key_pem : bytes or None
        The PTA's built-in public key (PEM), or None when the user must give one.
    source : str
        Where it came from: ``"preset:NAME"`` or a file path.
    notes : tuple of str
        Facts a user should see (development key in use, skipped regions...).
    node : str or None
        The device-tree node path of the remote processor, for DT platforms.
    carveouts : tuple of RegionSpec
        The Linux side's carveouts, as ``stm32_rproc_prepare`` registers them
        (one per ``memory-region`` phandle, named after the node, ``da`` through
        ``dma-ranges``); empty means "the same as ``regions``" (see
        :meth:`linux_carveouts`).
    cpu : str or None
        The remote processor's core (``"cortex-m4"`` on stm32mp15,
        ``"cortex-m33"``, ``"cortex-r5f"``, ``"c66x-dsp"``...; see
        :func:`cpu_from_compatible`), None when the source does not say.
        The emulated core (``rproctee.emu``) runs the Cortex-M ones.
    boot_address : int or None
        Device address of the core's vector table at reset (0 on stm32mp15:
        RETRAM), None when the source does not say.
    compatible : tuple of str
        The processor node's ``compatible`` strings (``("st,stm32mp1-m4",)``
        on stm32mp15), empty when the source does not say; they name the
        Linux driver (see :func:`rproctee.linux.elf_loader.parse_fw_policy_for`).
    linux_driver : str or None
        The Linux remoteproc driver whose ELF ops serve the board, one of
        :data:`LINUX_DRIVERS` (TOML ``linux_driver``); None: from
        ``compatible``, else ``stm32``.  It decides what a rejected resource
        table does (stm32 and imx boot without it, ``default`` fails).
    """

    name: str
    regions: tuple[RegionSpec, ...]
    accept_ecdsa: bool = False
    processor_ids: tuple[int, ...] = (0,)
    default_key_pem: bytes | None = None
    source: str = ""
    notes: tuple[str, ...] = ()
    node: str | None = None
    carveouts: tuple[RegionSpec, ...] = ()
    cpu: str | None = None
    boot_address: int | None = None
    compatible: tuple[str, ...] = ()
    linux_driver: str | None = None

    def __post_init__(self) -> None:
        if self.linux_driver is not None and self.linux_driver not in LINUX_DRIVERS:
            raise PlatformError(
                f"platform {self.name!r}: linux_driver {self.linux_driver!r} is "
                f"not a known Linux driver (one of: {', '.join(LINUX_DRIVERS)})"
            )

    def linux_carveouts(self) -> tuple[RegionSpec, ...]:
        """The carveouts the Linux remoteproc driver registers for this board.

        Returns
        -------
        tuple of RegionSpec
            :attr:`carveouts` when the platform names them (device trees,
            TOML ``[[linux_carveouts]]``), else :attr:`regions`.
        """
        return self.carveouts or self.regions

    def region(self, name: str) -> RegionSpec:
        """The region called ``name``.

        Raises
        ------
        KeyError
            No region has that name.
        """
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (addresses as integers, key as PEM text)."""
        return {
            "name": self.name,
            "source": self.source,
            "node": self.node,
            "accept_ecdsa": self.accept_ecdsa,
            "processor_ids": list(self.processor_ids),
            "default_key": (
                self.default_key_pem.decode("ascii") if self.default_key_pem else None
            ),
            "regions": [region_dict(r) for r in self.regions],
            "linux_carveouts": [region_dict(r) for r in self.linux_carveouts()],
            "notes": list(self.notes),
            "cpu": self.cpu,
            "boot_address": self.boot_address,
            "compatible": list(self.compatible),
            "linux_driver": self.linux_driver,
        }


#: ``compatible`` fragments of remote processors that are not Cortex-M, and
#: their core (checked first: ``ti,am64-r5f`` must not match an M fragment).
_OTHER_CORES = (
    ("r5f", "cortex-r5f"), ("c66", "c66x-dsp"), ("c71", "c71x-dsp"),
    ("hifi", "hifi-dsp"), ("dsp", "dsp"), ("a53", "cortex-a53"),
    ("a72", "cortex-a72"), ("riscv", "riscv"),
)  # fmt: skip
#: ``compatible`` fragments of Cortex-M remote processors, and their core.
_M_CORES = (
    ("m33", "cortex-m33"), ("cm7", "cortex-m7"), ("-m7", "cortex-m7"),
    ("-m0", "cortex-m0"), ("-m4", "cortex-m4"), ("stm32mp1", "cortex-m4"),
)  # fmt: skip


def cpu_from_compatible(compatible: tuple[str, ...] | list[str]) -> str | None:
    """The core a remote processor's ``compatible`` strings name.

    ``st,stm32mp1-m4`` -> ``cortex-m4``, ``st,stm32mp2-m33`` -> ``cortex-m33``,
    ``st,stm32mp2-m0`` -> ``cortex-m0`` (an M0+), ``fsl,imx8mp-cm7`` ->
    ``cortex-m7``, ``ti,j721e-r5f`` -> ``cortex-r5f``, ``ti,j721e-c66-dsp``
    -> ``c66x-dsp``; the first string that names a core decides; None when
    none does.
    """
    for entry in compatible:
        text = entry.lower()
        for table in (_OTHER_CORES, _M_CORES):
            for fragment, cpu in table:
                if fragment in text:
                    return cpu
    return None


def region_dict(region: RegionSpec) -> dict[str, Any]:
    """One region as a JSON-ready mapping."""
    return {
        "name": region.name,
        "da": region.da,
        "pa": region.pa,
        "size": region.size,
        "access": region.access,
    }


def load_platform(ref: str, node: str | None = None) -> PlatformSpec:
    """Build a platform from a preset name, a device tree or a TOML profile.

    Parameters
    ----------
    ref : str
        A preset name (``stm32mp15-dk2``, also as ``preset:stm32mp15-dk2``), or
        the path of a ``.dtb``, ``.dts`` or ``.toml`` file. Files with another
        suffix are recognised by content (DTB magic, TOML ``[platform]``).
    node : str or None
        Device trees only: the remote-processor node (path, label, alias or
        node name) when the tree has several.

    Returns
    -------
    PlatformSpec

    Raises
    ------
    PlatformError
        Unknown preset and no such file, or ``node`` given for a non-DT source.
    rproctee.platform.devicetree.DeviceTreeError
        The device tree cannot be read or has no usable remote processor.
    rproctee.platform.profile.ProfileError
        The TOML profile is invalid.
    """
    from rproctee.platform import presets

    name = ref[len("preset:") :] if ref.startswith("preset:") else ref
    if presets.has_preset(name) and (ref != name or not Path(ref).is_file()):
        _refuse_node(ref, node)
        return presets.get_preset(name)
    path = Path(ref)
    if not path.is_file():
        raise PlatformError(
            f"unknown platform {ref!r}: no such file, and not a preset "
            f"(presets: {', '.join(presets.preset_names())})"
        )
    return _load_file(path, node)


def _load_file(path: Path, node: str | None) -> PlatformSpec:
    from rproctee.platform import profile

    kind = _file_kind(path)
    if kind == "toml":
        _refuse_node(str(path), node)
        return profile.load_profile(path)
    return from_devicetree(devicetree.read_tree(path), node)


def _file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _PROFILE_SUFFIXES:
        return "toml"
    if suffix in _DT_SUFFIXES:
        return "dt"
    try:
        head = path.read_bytes()[:4096]
    except OSError as exc:
        raise PlatformError(f"{path}: cannot read: {exc.strerror}") from exc
    if devicetree.is_dtb(head) or b"/dts-v1/" in head:
        return "dt"
    if b"[platform]" in head:
        return "toml"
    raise PlatformError(
        f"{path}: neither a device tree (.dtb/.dts) nor a TOML profile (.toml)"
    )


def _refuse_node(ref: str, node: str | None) -> None:
    if node is not None:
        raise PlatformError(
            f"--node {node!r} applies to device trees only, not to {ref!r}"
        )


def from_devicetree(tree: devicetree.DeviceTree, node: str | None) -> PlatformSpec:
    """Build a platform from a parsed device tree.

    Parameters
    ----------
    tree : DeviceTree
    node : str or None
        As for :func:`load_platform`.

    Returns
    -------
    PlatformSpec
        ECDSA refused and no built-in key, as on an upstream stm32mp build
        whose key the tree cannot tell.
    """
    plat = devicetree.read_platform(tree, node)
    regions = tuple(RegionSpec(r.name, r.da, r.pa, r.size) for r in plat.regions)
    header = f"remote processor {plat.node} (compatible {', '.join(plat.compatible)})"
    notes: tuple[str, ...] = (header,)
    if plat.model:
        notes += (f"board model: {plat.model}",)
    notes += plat.notes
    notes += ("no built-in key: a device tree does not say which key the PTA has",)
    return PlatformSpec(
        name=Path(tree.source).name.split(".", 1)[0],
        regions=regions,
        accept_ecdsa=False,
        processor_ids=plat.processor_ids,
        default_key_pem=None,
        source=tree.source,
        notes=notes,
        node=plat.node,
        carveouts=regions,
        cpu=cpu_from_compatible(plat.compatible),
        compatible=tuple(plat.compatible),
    )
