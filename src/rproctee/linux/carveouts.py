"""Carveouts: ``struct rproc_mem_entry`` and the ways they get memory.

* :func:`register_platform_carveouts` is ``stm32_rproc_prepare``: one entry
  per ``memory-region`` phandle of the processor's node, named after the
  node, ``da`` through ``dma-ranges``; ``vdev0buffer`` is registered with
  ``rproc_of_resm_mem_entry_init`` (no alloc, not dumped), every other one
  with ``stm32_rproc_mem_alloc`` (an ``ioremap_wc`` of its physical range,
  here a view of the device memory) and as a coredump segment.
* :func:`dma_alloc_carveout` is ``rproc_alloc_carveout`` for carveouts the
  resource table asks for that no platform entry matches: host memory from
  ``dma_alloc_coherent`` (a model DMA pool), ``da = (u32)dma`` when the table
  says ``FW_RSC_ADDR_ANY``.
* :func:`pa_to_va` is ``rproc_pa_to_va`` of the TEE series (v22 arithmetic).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rproctee.errors import AddressError
from rproctee.linux.errors import enomem
from rproctee.platform.memory import RegionSpec

if TYPE_CHECKING:
    from rproctee.linux.core import Rproc

FW_RSC_ADDR_ANY = 0xFFFFFFFF
#: Model bus address of the host's coherent DMA pool (``dma_alloc_coherent``).
DMA_POOL_BASE = 0xC000_0000
#: The one carveout stm32_rproc registers without alloc (virtio buffers).
VDEV_BUFFER = "vdev0buffer"

MemFn = Callable[["Rproc", "MemEntry"], None]


@dataclass(eq=False)
class MemEntry:
    """``struct rproc_mem_entry``.

    ``va`` is the host mapping (a writable numpy view) once allocated;
    ``rsc_offset`` is the resource-table entry it is tied to
    (``FW_RSC_ADDR_ANY`` when none); ``of_resm`` marks a reserved-memory
    entry without alloc (``rproc_of_resm_mem_entry_init``).
    """

    name: str
    da: int
    dma: int
    len: int
    alloc: MemFn | None = None
    release: MemFn | None = None
    va: Any = None
    rsc_offset: int = FW_RSC_ADDR_ANY
    flags: int = 0
    of_resm: bool = False
    is_iomem: bool = False
    history: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "da", "pa", "len"}`` (the CLI's carveout rows)."""
        return {"name": self.name, "da": self.da, "pa": self.dma, "len": self.len}


def stm32_mem_alloc(rproc: Rproc, mem: MemEntry) -> None:
    """``stm32_rproc_mem_alloc``: map the carveout's physical range.

    Raises
    ------
    RprocErrno
        ``-ENOMEM`` when no device memory holds ``[dma, dma+len)``
        ("Unable to map memory region").
    """
    memory = rproc.require_memory()
    try:
        mem.va = memory.view_pa(mem.dma, mem.len)
    except AddressError as exc:
        raise enomem(
            f"Unable to map memory region: {mem.name} pa {mem.dma:#x}+{mem.len:#x}"
            f" ({exc})"
        ) from exc
    mem.is_iomem = True
    mem.history.append("alloc")


def stm32_mem_release(rproc: Rproc, mem: MemEntry) -> None:
    """``stm32_rproc_mem_release``: ``iounmap``."""
    mem.va = None
    mem.history.append("release")


def register_platform_carveouts(rproc: Rproc, specs: tuple[RegionSpec, ...]) -> None:
    """``stm32_rproc_prepare``: register one carveout per memory region."""
    for spec in specs:
        if spec.name == VDEV_BUFFER:
            mem = MemEntry(spec.name, spec.da, spec.pa, spec.size, of_resm=True)
        else:
            mem = MemEntry(
                spec.name, spec.da, spec.pa, spec.size,
                alloc=stm32_mem_alloc, release=stm32_mem_release,
            )  # fmt: skip
            rproc.coredump_add_segment(spec.da, spec.size)
        rproc.add_carveout(mem)


class DmaPool:
    """``dma_alloc_coherent`` for carveouts no platform region backs."""

    def __init__(self, base: int = DMA_POOL_BASE) -> None:
        self.next = base

    def alloc(self, size: int) -> tuple[int, Any]:
        """A zeroed buffer and its bus address (page aligned)."""
        dma = self.next
        self.next += (size + 0xFFF) & ~0xFFF
        return dma, np.zeros(size, dtype=np.uint8)


def dma_alloc_carveout(rproc: Rproc, mem: MemEntry) -> None:
    """``rproc_alloc_carveout``: coherent host memory for a table carveout."""
    dma, va = rproc.dma_pool.alloc(mem.len)
    if mem.da != FW_RSC_ADDR_ANY and mem.da != (dma & 0xFFFFFFFF):
        rproc.log_msg(
            "warn", "Allocated carveout doesn't fit device address request",
            carveout=mem.name, da=mem.da, dma=dma,
        )  # fmt: skip
    if mem.da == FW_RSC_ADDR_ANY:
        mem.da = dma & 0xFFFFFFFF
    mem.dma, mem.va = dma, va
    mem.history.append("alloc")


def dma_release_carveout(rproc: Rproc, mem: MemEntry) -> None:
    """``rproc_release_carveout``: ``dma_free_coherent``."""
    mem.va = None
    mem.history.append("release")


def check_carveout_da(
    mem: MemEntry, da: int, length: int, rproc: Rproc | None = None
) -> str | None:
    """``rproc_check_carveout_da``: why ``(da, len)`` does not fit ``mem``.

    The one implementation is :func:`rproctee.linux.elf_loader.
    rproc_check_carveout_da` (``int delta = da - mem->da``, u32
    ``delta + len``), so ``rproctee check`` and the core agree.

    Parameters
    ----------
    mem : MemEntry
        The registered carveout.
    da, length : int
        The request (``FW_RSC_ADDR_ANY`` for any address).
    rproc : Rproc, optional
        Where the kernel's ``dev_err`` line goes; a refusal the kernel does
        not log (a carveout without a device address) logs nothing.

    Returns
    -------
    str or None
        None when it fits; else the kernel's line, or ``""`` when the kernel
        refuses without a word.
    """
    from rproctee.linux.elf_loader import rproc_check_carveout_da

    problem = rproc_check_carveout_da(mem, da, length)
    if problem is None:
        return None
    line, _note = problem
    if line and rproc is not None:
        rproc.log_msg("err", line, carveout=mem.name, da=da, len=length)
    return line


def pa_to_va(carveouts: list[MemEntry], pa: int, size: int) -> tuple[MemEntry, int]:
    """``rproc_pa_to_va`` (TEE series, v22 arithmetic).

    Walks the carveouts that have a mapping; skips ``pa < dma``; with
    ``offset = pa - dma`` skips ``offset > len`` and ``size > len - offset``.

    Returns
    -------
    (MemEntry, int)
        The carveout and the offset inside it.

    Raises
    ------
    LookupError
        No mapped carveout holds the range.
    """
    for mem in carveouts:
        if mem.va is None or pa < mem.dma:
            continue
        offset = pa - mem.dma
        if offset > mem.len or size > mem.len - offset:
            continue
        return mem, offset
    raise LookupError(f"pa {pa:#x}+{size:#x} is in no mapped carveout")


def da_to_va(carveouts: list[MemEntry], da: int, size: int) -> tuple[MemEntry, int]:
    """``rproc_da_to_va``'s carveout walk (no driver ``da_to_va`` op).

    Only mapped carveouts take part (``carveout->va`` set); the arithmetic
    is :func:`rproctee.linux.elf_loader.carveout_da_to_va`'s, the kernel's
    ``int offset = da - carveout->da``: an ELF64 ``p_paddr`` of
    ``0x1_1000_0000`` lands at offset 0 of a carveout at ``0x1000_0000``.

    Raises
    ------
    LookupError
        No mapped carveout holds ``[da, da+size)``.
    LinuxElfError
        ``kernel_oob``: ``offset + len`` wraps ``size_t`` (a kernel would
        hand out a pointer the carveout cannot hold).
    """
    from rproctee.linux.elf_loader import carveout_da_to_va

    mapped = [mem for mem in carveouts if mem.va is not None]
    hit = carveout_da_to_va(mapped, da, size)
    if hit is None:
        raise LookupError(f"da {da:#x}+{size:#x} is in no mapped carveout")
    index, offset = hit
    return mapped[index], offset
