"""Emulated instructions per second, for ``rproctee bench``.

:func:`measure_ips` runs a small Thumb-2 program on an
:class:`~rproctee.emu.core.EmulatedCore` over a 64 KiB RAM and reports
instructions per second for two kinds of code: a loop that stays in RAM
(loads, stores, arithmetic, a branch: the engine's translated-code speed)
and a loop that polls a peripheral register (every poll goes through a
Python MMIO callback: the cost of firmware that spins on a status bit).
"""

from __future__ import annotations

import struct
import time
from typing import Any

from rproctee.platform.memory import DeviceMemory, RegionSpec

#: ``1: ldr r2,[r1]; adds r2,#1; str r2,[r1]; adds r0,#1; b 1b`` at 0x100.
RAM_LOOP = bytes.fromhex("0a68 0132 0a60 0130 fae7".replace(" ", ""))
#: ``1: ldr r2,[r3]; adds r0,#1; b 1b`` with r3 = a peripheral register.
MMIO_LOOP = bytes.fromhex("1a68 0130 fce7".replace(" ", ""))
_UART_ISR = 0x4001801C


def _core(code: bytes, budget: int) -> Any:
    from rproctee.emu.core import EmulatedCore

    memory = DeviceMemory([RegionSpec("ram", 0, 0, 0x10000)])
    memory.copy_in(0, struct.pack("<2I", 0x10000, 0x101))
    memory.copy_in(0x100, code)
    core = EmulatedCore(memory, budget=budget, watchdog_ticks=1 << 30)
    core.boot()
    ids = core._reg_ids
    core.uc.reg_write(ids["r1"], 0x8000)
    core.uc.reg_write(ids["r3"], _UART_ISR)
    return core


def _rate(code: bytes, instructions: int, budget: int) -> dict[str, Any]:
    core = _core(code, budget)
    ticks = max(1, instructions // budget)
    t0 = time.perf_counter()
    crash = core.run(ticks)
    seconds = time.perf_counter() - t0
    if crash is not None:
        raise RuntimeError(f"benchmark program crashed: {crash.summary()}")
    return {
        "instructions": core.instructions,
        "ticks": core.ticks,
        "seconds": seconds,
        "instructions_per_second": core.instructions / seconds if seconds else 0.0,
    }


def measure_ips(instructions: int = 2_000_000, budget: int = 100_000) -> dict[str, Any]:
    """Emulated instructions per second: a RAM loop and an MMIO-polling loop.

    Parameters
    ----------
    instructions : int
        How many to run per loop (rounded down to whole ticks, at least one).
    budget : int
        Instructions per tick.

    Returns
    -------
    dict
        ``{"ram_loop": {...}, "mmio_poll": {...}}``, each with instructions,
        ticks, seconds and instructions per second.

    Raises
    ------
    rproctee.emu.core.EmulatorUnavailable
        unicorn is not installed.
    ValueError
        ``instructions`` or ``budget`` below 1.
    """
    if instructions < 1 or budget < 1:
        raise ValueError(
            f"instructions {instructions} and budget {budget} must both be >= 1"
        )
    return {
        "ram_loop": _rate(RAM_LOOP, instructions, budget),
        "mmio_poll": _rate(MMIO_LOOP, instructions // 10 or 1, budget),
    }
