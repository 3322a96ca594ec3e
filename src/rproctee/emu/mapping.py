"""How device memory is laid into the emulator's address space, zero-copy.

The emulator maps host memory in pages (unicorn: 1 KiB for Arm, the
engine's ``ctl_get_page_size``). A region of :class:`DeviceMemory` whose
device range covers whole pages is mapped directly on its numpy array
(``mem_map_ptr``): the core and the loader share the same bytes. The
pages a region covers only in part (a region not aligned to the page size,
or two regions sharing a page) cannot be mapped that way; they are mapped
as MMIO pages whose accesses are served from the same numpy arrays through
:meth:`DeviceMemory.view_da`. Nothing is copied either way; the MMIO pages
are only slower for data, and code cannot run from them (unicorn fetches
instructions from RAM mappings only): a jump there is a bus fault that says
so. Where regions overlap, the first one in the platform's
order owns the bytes, as :meth:`DeviceMemory.locate_da` decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from rproctee.platform.memory import DeviceMemory


@dataclass(frozen=True)
class DirectMap:
    """Pages ``[da, da+size)`` mapped on region ``index`` at byte ``offset``."""

    da: int
    size: int
    index: int
    offset: int
    perms: str


@dataclass(frozen=True)
class MmioSpan:
    """Pages ``[da, da+size)`` served byte-exactly through ``view_da``."""

    da: int
    size: int


@dataclass(frozen=True)
class MapPlan:
    """Direct mappings and MMIO spans covering every byte of every region."""

    direct: tuple[DirectMap, ...]
    mmio: tuple[MmioSpan, ...]


def _subtract(
    spans: list[tuple[int, int]], cut_start: int, cut_end: int
) -> list[tuple[int, int]]:
    out = []
    for start, end in spans:
        if cut_end <= start or end <= cut_start:
            out.append((start, end))
            continue
        if start < cut_start:
            out.append((start, cut_start))
        if cut_end < end:
            out.append((cut_end, end))
    return out


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def plan_mapping(memory: DeviceMemory, page: int, limit: int = 1 << 32) -> MapPlan:
    """Plan the zero-copy mapping of ``memory`` with ``page``-byte pages.

    Parameters
    ----------
    memory : DeviceMemory
    page : int
        The emulator's page size (a power of two).
    limit : int
        Size of the core's address space; bytes above it are not mapped.

    Returns
    -------
    MapPlan
    """
    direct: list[DirectMap] = []
    owned: list[tuple[int, int]] = []  # byte ranges of earlier regions
    all_pages: list[tuple[int, int]] = []
    for index, region in enumerate(memory.regions):
        start, end = region.da, min(region.da + region.size, limit)
        if start >= end:
            continue
        all_pages.append((start // page * page, -(-end // page) * page))
        free = [(start, end)]
        for o_start, o_end in owned:
            free = _subtract(free, o_start, o_end)
        owned.append((start, end))
        for f_start, f_end in free:
            a_start, a_end = -(-f_start // page) * page, f_end // page * page
            if a_start < a_end:
                offset = a_start - region.da
                size = a_end - a_start
                direct.append(DirectMap(a_start, size, index, offset, region.access))
    mmio_spans = _merge(all_pages)
    for d in direct:
        mmio_spans = _subtract(mmio_spans, d.da, d.da + d.size)
    return MapPlan(tuple(direct), tuple(MmioSpan(s, e - s) for s, e in mmio_spans))
