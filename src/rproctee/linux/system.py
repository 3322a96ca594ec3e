"""A whole board: secure world (or none), device memory, the rproc, its log.

:func:`build_system` wires what a booted stm32mp15 has: with the TEE, the
secure world of :func:`rproctee.tee.build_secure_world`, the TEE client
driver probed on the TEE bus, the stm32 driver with ``st_rproc_tee_ops`` of
the chosen series, registered with ``rproc_tee_register``; without it
(``tee=False``), the plain ELF ops of the platform's Linux driver
(``st_rproc_ops`` for stm32mp, imx or TI K3 trees get theirs:
:func:`rproctee.linux.elf_ops.elf_ops_for`) over the same device-memory
model.
``stm32_rproc_probe`` also sets the coredump ELF info (ELFCLASS32, EM_NONE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rproctee.linux.core import RequestFirmware, Rproc
from rproctee.linux.coredump import ELFCLASS32, EM_NONE
from rproctee.linux.errors import enoent
from rproctee.linux.events import EventLog
from rproctee.linux.firmware_hook import RunningFirmware
from rproctee.linux.remote import RemoteProcessor
from rproctee.linux.tracing import install_pta_recorder, record_writes
from rproctee.platform.board import PlatformSpec
from rproctee.platform.memory import DeviceMemory
from rproctee.tee.world import SecureWorld

DEFAULT_FIRMWARE = "rproc-m4-fw"


@dataclass
class System:
    """Everything one run needs, and what it recorded."""

    platform: PlatformSpec
    rproc: Rproc
    log: EventLog
    memory: DeviceMemory
    remote: RemoteProcessor
    world: SecureWorld | None
    #: The firmware files of an ``image`` board (empty with a caller's
    #: ``request_firmware``, which owns its files).
    files: dict[str, bytes] = field(default_factory=dict)
    series: str = "v22"

    @property
    def tee(self) -> bool:
        """Whether the ops are TEE-backed."""
        return self.world is not None


def _loader(files: dict[str, bytes]) -> RequestFirmware:
    def request_firmware(name: str) -> bytes:
        if name not in files:
            raise enoent(f"Direct firmware load for {name} failed with error -2")
        return files[name]

    return request_firmware


def build_system(
    platform: PlatformSpec,
    image: bytes | None = None,
    *,
    request_firmware: RequestFirmware | None = None,
    series: str = "v22",
    tee: bool = True,
    key_pem: bytes | None = None,
    policy: str = "strict",
    firmware: RunningFirmware | None = None,
    firmware_name: str = DEFAULT_FIRMWARE,
    tee_coredump: bool = False,
) -> System:
    """Build a board running the Linux remoteproc core.

    Parameters
    ----------
    platform : PlatformSpec
    image : bytes, optional
        What ``request_firmware(firmware_name)`` returns: a signed image
        under the TEE, an ELF without it (kept in :attr:`System.files`).
    request_firmware : callable(name) -> bytes, optional
        The loader itself, instead of ``image``: called with
        ``rproc->firmware`` each time the core requests the firmware (boot,
        recovery), so it reads whatever the name names at that moment; it
        raises :class:`~rproctee.linux.errors.RprocErrno` (``-ENOENT``),
        ``KeyError`` or ``OSError`` for a missing file. Exactly one of
        ``image`` and ``request_firmware`` is given.
    series : str
        ``"v15"`` or ``"v22"`` (the TEE series); ignored by the core's
        TEE-only calls when ``tee`` is False.
    tee : bool
        TEE-backed ops (True) or plain ELF ops.
    key_pem : bytes, optional
        The PTA's verification key (default: the platform's).
    policy : str
        TA policy, ``"strict"`` or ``"optee"``.
    firmware : RunningFirmware, optional
        What runs on the remote core (default behaviour otherwise).
    firmware_name : str
        ``rproc->firmware``.
    tee_coredump : bool
        Coredump through the TA's GET_COREDUMP (strict TAs only).

    Returns
    -------
    System

    Raises
    ------
    ValueError
        Both or neither of ``image`` and ``request_firmware``.
    """
    from rproctee.linux.tee_ops import (
        RprocTeeContext,
        rproc_tee_register,
        stm32_tee_ops,
    )

    if (image is None) == (request_firmware is None):
        raise ValueError(
            "build_system: give exactly one of image and request_firmware "
            f"(image {'set' if image is not None else 'None'}, request_firmware "
            f"{'set' if request_firmware is not None else 'None'})"
        )
    log = EventLog()
    files = {firmware_name: image} if image is not None else {}
    loader = request_firmware if request_firmware is not None else _loader(files)
    specs = platform.linux_carveouts()
    world: SecureWorld | None = None
    if tee:
        from rproctee.tee import build_secure_world

        world = build_secure_world(platform, policy=policy, key_pem=key_pem)
        memory = world.memory
    else:
        memory = DeviceMemory(platform.regions)
    record_writes(memory, log)
    remote = RemoteProcessor(memory, firmware)
    remote.on_event = lambda name, detail: log.add("remote", "remote", name, **detail)
    remote.acting = lambda: log.acting("remote")
    if world is not None:
        install_pta_recorder(world.core, world.pta, log, remote)
        ops = stm32_tee_ops(series, specs, tee_coredump=tee_coredump)
    else:
        from rproctee.linux.elf_loader import parse_fw_policy_for
        from rproctee.linux.elf_ops import elf_ops_for

        # the driver rproctee check assumes (stm32, imx, TI's ELF defaults)
        ops = elf_ops_for(parse_fw_policy_for(platform), specs)
    core_series = series if tee else "mainline"
    rproc = Rproc(
        "m4", ops, firmware=firmware_name, request_firmware=loader,
        memory=memory, series=core_series, log=log, remote=remote,
    )  # fmt: skip
    rproc.coredump_set_elf_info(ELFCLASS32, EM_NONE)
    if world is not None:
        with log.in_phase("register"):
            ctx = RprocTeeContext.probe(world.core, log, _ta_state(world))
            rproc_tee_register(ctx, rproc, platform.processor_ids[0])
    return System(platform, rproc, log, memory, remote, world, files, series)


def _ta_state(world: SecureWorld) -> Any:
    def state(rproc_id: int) -> str | None:
        ta = world.ta()
        ctx = ta.contexts.get(rproc_id) if ta is not None else None
        return ctx.state.name if ctx is not None else None

    return state
