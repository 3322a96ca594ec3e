"""``rproc_da_to_va``: the driver's ``da_to_va`` op first, then the carveouts.

Linux 6.12 ``remoteproc_core.c``: when ``ops->da_to_va`` returns a pointer
the carveout walk is skipped; when it returns NULL (or there is no op) the
carveouts are searched. ``rproc_copy_segment`` (coredumps) and the trace
reader go through it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rproctee.linux.carveouts import MemEntry
from rproctee.linux.core import Rproc
from rproctee.linux.coredump import DumpSegment
from rproctee.linux.ops import Firmware, RprocOps
from rproctee.platform.memory import DeviceMemory, RegionSpec

#: The remote sees the region at da 0x1000; the host at pa 0x9000_0000.
REGION = RegionSpec("sram", 0x1000, 0x9000_0000, 0x1000)


def _noop_load(rproc: Rproc, fw: Firmware) -> None:
    """A driver ``load`` (so no ELF defaults are installed)."""


def _rproc(op: Any = None) -> tuple[Rproc, DeviceMemory, list[tuple[int, int]]]:
    """An rproc over REGION whose op (if any) records its calls."""
    memory = DeviceMemory([REGION])
    memory.view_da(REGION.da, REGION.size)[:] = np.arange(REGION.size) % 251
    calls: list[tuple[int, int]] = []

    def recorded(rproc: Rproc, da: int, length: int) -> Any:
        calls.append((da, length))
        return op(rproc, da, length)

    ops = RprocOps(load=_noop_load, da_to_va=recorded if op else None)
    return Rproc("m4", ops, memory=memory), memory, calls


def _device_op(rproc: Rproc, da: int, length: int) -> Any:
    """Maps REGION only, as a driver with its own translation would."""
    if not (REGION.da <= da and da + length <= REGION.da + REGION.size):
        return None
    assert rproc.memory is not None
    return rproc.memory.view_da(da, length)


def _host_carveout(da: int, size: int, fill: int) -> MemEntry:
    return MemEntry("host", da, 0xC000_0000, size, va=np.full(size, fill, np.uint8))


def test_the_op_answers_first_and_carries_the_device_pa() -> None:
    rproc, memory, calls = _rproc(_device_op)
    rproc.add_carveout(_host_carveout(0x1000, 0x1000, 0xEE))  # same da, never asked
    hit = rproc.da_to_va(0x1010, 8)
    assert hit is not None and calls == [(0x1010, 8)]
    mem, offset = hit
    assert offset == 0 and (mem.da, mem.dma, mem.len) == (0x1010, 0x9000_0010, 8)
    assert bytes(mem.va) == memory.read_da(0x1010, 8) != b"\xee" * 8
    assert not mem.is_iomem  # its da is the remote's, not the device memory's


def test_the_carveouts_when_the_op_returns_null() -> None:
    rproc, _, calls = _rproc(_device_op)
    rproc.add_carveout(_host_carveout(0x4000, 0x100, 0xEE))
    hit = rproc.da_to_va(0x4010, 4)
    assert calls == [(0x4010, 4)] and hit is not None
    mem, offset = hit
    assert (mem.name, offset) == ("host", 0x10)
    assert rproc.da_to_va(0x8000, 4) is None  # neither the op nor a carveout


def test_without_an_op_only_the_carveouts() -> None:
    rproc, _, _ = _rproc()
    rproc.add_carveout(_host_carveout(0x1000, 0x100, 0xEE))
    hit = rproc.da_to_va(0x1000, 4)
    assert hit is not None and hit[0].name == "host" and hit[1] == 0


def test_copy_segment_reads_through_the_op() -> None:
    rproc, memory, calls = _rproc(_device_op)
    seg = DumpSegment(0x1000, 0x100)
    assert rproc.copy_segment(seg, 0x20, 0x10) == memory.read_da(0x1020, 0x10)
    assert calls == [(0x1020, 0x10)]
    # Unmapped by both: 0xFF and the kernel's message, as before.
    assert rproc.copy_segment(DumpSegment(0x8000, 8), 0, 8) == b"\xff" * 8
    assert any("invalid copy request" in text for _, text in rproc.messages)


def test_a_buffer_outside_the_device_memory_keeps_da_as_dma() -> None:
    host = np.arange(16, dtype=np.uint8)
    rproc, _, _ = _rproc(lambda _r, da, n: host[:n] if da == 0x7000 else None)
    hit = rproc.da_to_va(0x7000, 4)
    assert hit is not None
    assert (hit[0].dma, bytes(hit[0].va)) == (0x7000, bytes(range(4)))
