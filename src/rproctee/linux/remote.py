"""The remote processor itself: reset state, the running firmware, ticks.

The rproc core never runs firmware; it releases a core from reset. This
object is that core: :meth:`RemoteProcessor.power_on` calls the firmware
hook's ``on_start``, :meth:`tick` its ``on_tick`` and reports a crash to the
registered handler (``rproc_report_crash``, as the stm32 watchdog IRQ does).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from rproctee.errors import AddressError
from rproctee.linux.firmware_hook import (
    Crash,
    DefaultFirmware,
    FirmwareContext,
    RunningFirmware,
)
from rproctee.platform.memory import DeviceMemory
from rproctee.rsctable import ResourceTable, RscTableError, parse_resource_table


def _table(raw: bytes) -> ResourceTable | None:
    """The firmware's own table as it now reads (None if it does not parse)."""
    try:
        return parse_resource_table(raw, has_iommu=False)
    except RscTableError:
        return None  # a firmware whose table was broken just idles


def mark_vdevs_ready(ctx: FirmwareContext, raw: bytes, bit: int) -> None:
    """Set ``bit`` in the status byte of every vdev of the loaded table."""
    table = _table(raw)
    if table is None or ctx.rsc_da is None:
        return
    for vdev in table.vdevs():
        where = ctx.rsc_da + vdev.status_offset
        ctx.memory.copy_in(where, bytes([(vdev.status | bit) & 0xFF]))


def write_trace_line(ctx: FirmwareContext, raw: bytes, line: str) -> None:
    """Append ``line`` after what trace buffer 0 holds (NUL-terminated)."""
    table = _table(raw)
    traces = table.traces() if table is not None else ()
    if not traces or not traces[0].len:
        return
    da, size = traces[0].da, traces[0].len
    try:
        held = ctx.memory.read_da(da, size)
    except AddressError:
        return  # trace buffer outside the device memories: nothing to log
    used = held.find(b"\0")
    used = size if used < 0 else used
    data = line.encode()[: max(size - used - 1, 0)] + b"\0"
    if used < size:
        ctx.memory.copy_in(da + used, data)


class RemoteProcessor:
    """One remote core: in reset or running a :class:`RunningFirmware`.

    Parameters
    ----------
    memory : DeviceMemory
        The memories the core executes from.
    firmware : RunningFirmware, optional
        Its behaviour (default: :class:`DefaultFirmware`).
    """

    def __init__(
        self, memory: DeviceMemory, firmware: RunningFirmware | None = None
    ) -> None:
        self.memory = memory
        self.firmware: RunningFirmware = firmware or DefaultFirmware()
        self.running = False
        self.boot_count = 0
        self.rsc: tuple[int, int] | None = None
        self.on_crash: Callable[[Crash], None] | None = None
        self.on_kick: Callable[[int], None] | None = None
        self.on_event: Callable[[str, dict[str, Any]], object] | None = None
        #: Context in which the firmware's own code runs (the event log uses
        #: it to attribute the firmware's device writes to the remote lane).
        self.acting: Callable[[], AbstractContextManager[object]] = nullcontext

    def context(self) -> FirmwareContext:
        """The firmware's view: memory, resource table, doorbell, boot count."""
        da, size = self.rsc if self.rsc else (None, 0)
        return FirmwareContext(
            self.memory, da, size, kick=self._kick, boot_count=self.boot_count
        )

    def _kick(self, vqid: int) -> None:
        self._event("kick", {"vqid": vqid})
        if self.on_kick is not None:
            self.on_kick(vqid)

    def _event(self, name: str, detail: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(name, detail)

    def power_on(self) -> None:
        """Release the core from reset: the firmware's ``on_start``."""
        self.running = True
        self.boot_count += 1
        self._event("on_start", {"boot": self.boot_count})
        with self.acting():
            self.firmware.on_start(self.context())

    def power_off(self) -> None:
        """Hold the core in reset: the firmware's ``on_stop``."""
        if not self.running:
            return
        self.running = False
        self._event("on_stop", {})
        with self.acting():
            self.firmware.on_stop(self.context())

    def tick(self) -> Crash | None:
        """Run one tick; a crash stops the core and goes to ``on_crash``."""
        if not self.running:
            return None
        with self.acting():
            crash = self.firmware.on_tick(self.context())
        if crash is not None:
            self._event("crash", {"type": crash.type.word, "reason": crash.reason})
            if self.on_crash is not None:
                self.on_crash(crash)
        return crash

