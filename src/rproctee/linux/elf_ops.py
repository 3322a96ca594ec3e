"""The plain Linux ELF ops (unsigned firmware, no TEE) over the rproc core.

Thin adapters from ``struct rproc_ops`` slots to the pure functions of
:mod:`rproctee.linux.elf_loader` (``remoteproc_elf_loader.c``), with
``rproc_da_to_va`` over the rproc's carveouts as the translation callback:

* :func:`install_elf_defaults` is the ELF half of ``rproc_alloc_ops`` (the
  five defaults when a driver has no ``load``; ``parse_fw`` fails without a
  table, as ``rproc_elf_load_rsc_table`` does);
* :func:`stm32_elf_ops` is ``st_rproc_ops`` of ``stm32_rproc.c``:
  ``prepare`` registers the memory-region carveouts, ``parse_fw`` is
  ``stm32_rproc_parse_fw`` (no table: a warning, the boot goes on),
  ``start``/``stop`` release or hold the core's reset;
* :func:`elf_ops_for` picks the ELF half of the platform's driver (stm32,
  imx, imx_dsp, or the generic defaults of a TI K3 driver), the same choice
  ``rproctee check`` makes with ``parse_fw_policy_for``.

Segment copies land in device memory through the same kernels as the secure
world's and are recorded as device writes made by Linux.
"""

from __future__ import annotations

import errno as errno_mod
from typing import TYPE_CHECKING, Any

from rproctee.linux.carveouts import register_platform_carveouts
from rproctee.linux.errors import RprocErrno
from rproctee.linux.ops import DeviceTable, Firmware, RprocOps
from rproctee.platform.memory import RegionSpec, WriteRecord

if TYPE_CHECKING:
    from rproctee.linux.core import Rproc
    from rproctee.linux.elf_loader import LinuxElfError, ParseFwPolicy


def _errno(exc: LinuxElfError) -> RprocErrno:
    code = getattr(errno_mod, exc.errno, errno_mod.EINVAL)
    return RprocErrno(code, str(exc))


def _refuse(rproc: Rproc, exc: LinuxElfError) -> RprocErrno:
    """The kernel's ``dev_err`` line of a refusal, logged, and its errno."""
    if exc.message:
        rproc.log_msg("err", exc.message)
    return _errno(exc)


def _va(rproc: Rproc, da: int, length: int) -> Any:
    """``rproc_da_to_va``: driver op first, else the carveout walk."""
    if rproc.ops.da_to_va is not None:
        return rproc.ops.da_to_va(rproc, da, length)
    hit = rproc.da_to_va(da, length)
    if hit is None:
        return None
    mem, off = hit
    return mem.va[off : off + length]


def elf_sanity_check(rproc: Rproc, fw: Firmware) -> None:
    """``rproc_elf_sanity_check``."""
    from rproctee.linux.elf_loader import LinuxElfError, rproc_elf_sanity_check

    try:
        rproc_elf_sanity_check(fw.data)
    except LinuxElfError as exc:
        raise _refuse(rproc, exc) from exc


def elf_get_boot_addr(rproc: Rproc, fw: Firmware) -> int:
    """``rproc_elf_get_boot_addr``."""
    from rproctee.linux.elf_loader import rproc_elf_get_boot_addr

    return rproc_elf_get_boot_addr(fw.data)


def _parse_fw(rproc: Rproc, fw: Firmware, policy: ParseFwPolicy) -> None:
    """``parse_fw`` under ``policy``, logging what the driver logs.

    A table ``find_table`` refused is the kernel's ``dev_err``; the driver's
    own line after it is ``dev_warn`` (stm32, imx_dsp) or ``dev_info`` (imx).
    """
    from rproctee.linux.elf_loader import LinuxElfError, ParseFwPolicy, parse_fw

    try:
        result = parse_fw(fw.data, policy)
    except LinuxElfError as exc:
        raise _refuse(rproc, exc) from exc
    refused = result.rejected.message if result.rejected is not None else None
    own = "info" if policy is ParseFwPolicy.IMX else "warn"
    for line in result.log:
        rproc.log_msg("err" if line == refused else own, line)
    if result.table is not None:
        rproc.set_cached_table(result.table)


def elf_load_rsc_table(rproc: Rproc, fw: Firmware) -> None:
    """``rproc_elf_load_rsc_table`` as ``parse_fw``: no table is ``-EINVAL``."""
    from rproctee.linux.elf_loader import ParseFwPolicy

    _parse_fw(rproc, fw, ParseFwPolicy.DEFAULT)


def stm32_parse_fw(rproc: Rproc, fw: Firmware) -> None:
    """``stm32_rproc_parse_fw``: warn and go on without a table."""
    from rproctee.linux.elf_loader import ParseFwPolicy

    _parse_fw(rproc, fw, ParseFwPolicy.STM32)


def imx_parse_fw(rproc: Rproc, fw: Firmware) -> None:
    """``imx_rproc_parse_fw``: "No resource table in elf" (info), go on."""
    from rproctee.linux.elf_loader import ParseFwPolicy

    _parse_fw(rproc, fw, ParseFwPolicy.IMX)


def imx_dsp_parse_fw(rproc: Rproc, fw: Firmware) -> None:
    """``imx_dsp_rproc_parse_fw``: warn as stm32 does and go on."""
    from rproctee.linux.elf_loader import ParseFwPolicy

    _parse_fw(rproc, fw, ParseFwPolicy.IMX_DSP)


def elf_load_segments(rproc: Rproc, fw: Firmware) -> None:
    """``rproc_elf_load_segments`` into the carveouts; writes are recorded."""
    from rproctee.linux.elf_loader import LinuxElfError, rproc_elf_load_segments

    memory = rproc.memory

    def on_write(op: str, da: int, size: int) -> None:
        if memory is not None:
            hit = rproc.da_to_va(da, size)
            pa = hit[0].dma + hit[1] if hit else da
            memory.writes.append(WriteRecord(op, da, pa, size))

    try:
        rproc_elf_load_segments(fw.data, lambda da, n: _va(rproc, da, n),
                                on_write=on_write)  # fmt: skip
    except LinuxElfError as exc:
        raise _refuse(rproc, exc) from exc


def elf_find_loaded_rsc_table(rproc: Rproc, fw: Firmware) -> DeviceTable | None:
    """``rproc_elf_find_loaded_rsc_table``: the section's ``sh_addr`` mapped.

    ``find_table`` runs again, so a table ``parse_fw`` went on without has
    its ``dev_err`` line logged a second time, as the kernel does.
    """
    from rproctee.linux.elf_loader import (
        LinuxElfError,
        find_table,
        rproc_elf_find_loaded_rsc_table,
    )

    lines: list[str] = []
    try:
        va = rproc_elf_find_loaded_rsc_table(
            fw.data, lambda da, n: _va(rproc, da, n), log=lines
        )
        section = find_table(fw.data) if va is not None else None
    except LinuxElfError as exc:
        raise _refuse(rproc, exc) from exc
    finally:
        for line in lines:
            rproc.log_msg("err", line)
    if section is None:
        return None
    hit = rproc.da_to_va(section.sh_addr, section.sh_size)
    pa = hit[0].dma + hit[1] if hit else section.sh_addr
    return DeviceTable(section.sh_addr, pa, section.sh_size)


def imx_find_loaded_rsc_table(rproc: Rproc, fw: Firmware) -> DeviceTable | None:
    """``imx_rproc_elf_find_loaded_rsc_table``: NULL at once without a table.

    Only with a table ``parse_fw`` kept does it go on to
    :func:`elf_find_loaded_rsc_table` (so a refused table is logged once).
    """
    if rproc.cached_table is None:
        return None
    return elf_find_loaded_rsc_table(rproc, fw)


def install_elf_defaults(ops: RprocOps) -> None:
    """The ELF defaults of ``rproc_alloc_ops`` (overwriting those slots)."""
    ops.load = elf_load_segments
    ops.parse_fw = elf_load_rsc_table
    ops.find_loaded_rsc_table = elf_find_loaded_rsc_table
    ops.sanity_check = elf_sanity_check
    ops.get_boot_addr = elf_get_boot_addr


def stm32_prepare_for(specs: tuple[RegionSpec, ...]) -> Any:
    """``stm32_rproc_prepare`` over the platform's Linux carveouts."""

    def prepare(rproc: Rproc) -> None:
        register_platform_carveouts(rproc, specs)

    prepare.__name__ = "stm32_rproc_prepare"
    return prepare


def stm32_start(rproc: Rproc) -> None:
    """``stm32_rproc_start``: release the core's hold-boot (no TEE)."""
    if rproc.remote is not None:
        with rproc.log.acting("remote"):
            rproc.remote.power_on()


def stm32_stop(rproc: Rproc) -> None:
    """``stm32_rproc_stop``: hold the core in reset."""
    if rproc.remote is not None:
        with rproc.log.acting("remote"):
            rproc.remote.power_off()


def stm32_kick(rproc: Rproc, vqid: int) -> None:
    """``stm32_rproc_kick``: ring the mailbox of virtqueue ``vqid``.

    The doorbell reaches the running firmware's ``host_kick`` (see
    :func:`rproctee.linux.firmware_hook.ring_firmware`); a core held in
    reset has nobody to ring, as the IPCC of a stopped M4 only latches.
    """
    from rproctee.linux.firmware_hook import ring_firmware

    rproc.log.add("linux", "log", "kick", level="debug", vqid=vqid)
    remote = rproc.remote
    if remote is not None and remote.running:
        with rproc.log.acting("remote"):
            ring_firmware(remote.firmware, vqid)


def stm32_elf_ops(specs: tuple[RegionSpec, ...]) -> RprocOps:
    """``st_rproc_ops`` (plain ELF firmware, no TEE)."""
    return RprocOps(
        prepare=stm32_prepare_for(specs),
        start=stm32_start,
        stop=stm32_stop,
        kick=stm32_kick,
        parse_fw=stm32_parse_fw,
        find_loaded_rsc_table=elf_find_loaded_rsc_table,
        sanity_check=elf_sanity_check,
        load=elf_load_segments,
        get_boot_addr=elf_get_boot_addr,
    )


def elf_ops_for(policy: ParseFwPolicy, specs: tuple[RegionSpec, ...]) -> RprocOps:
    """The plain ELF ops of the Linux driver ``policy`` names.

    Every driver here registers its ``memory-region`` carveouts in
    ``prepare`` and holds or releases the core in ``start``/``stop`` (the
    stm32 adapters stand for all of them); what differs, and decides a
    verdict, is the ELF half, as :func:`rproctee.linux.elf_loader.
    elf_boot_verdict` models it:

    * ``STM32``: ``st_rproc_ops`` (:func:`stm32_elf_ops`);
    * ``IMX``: ``imx_rproc_ops``: ``imx_rproc_parse_fw`` and
      ``imx_rproc_elf_find_loaded_rsc_table``;
    * ``IMX_DSP``: ``imx_dsp_rproc_ops``: ``imx_dsp_rproc_parse_fw``;
    * ``DEFAULT``: a driver without ``load`` (TI K3), completed by
      ``rproc_alloc_ops`` with the ELF defaults (:func:`install_elf_defaults`),
      so a missing or refused table fails the boot.

    Parameters
    ----------
    policy : rproctee.linux.elf_loader.ParseFwPolicy
        From :func:`rproctee.linux.elf_loader.parse_fw_policy_for`.
    specs : tuple of RegionSpec
        The platform's Linux carveouts.
    """
    from rproctee.linux.elf_loader import ParseFwPolicy

    ops = stm32_elf_ops(specs)
    if policy is ParseFwPolicy.IMX:
        ops.parse_fw = imx_parse_fw
        ops.find_loaded_rsc_table = imx_find_loaded_rsc_table
    elif policy is ParseFwPolicy.IMX_DSP:
        ops.parse_fw = imx_dsp_parse_fw
    elif policy is ParseFwPolicy.DEFAULT:
        install_elf_defaults(ops)
    return ops
