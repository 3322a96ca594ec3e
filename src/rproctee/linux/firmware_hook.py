"""The running-firmware hook: what the remote processor does once started.

The rproc core and the secure world only start and stop the remote
processor; what runs on it is behind this small interface, so that a later
emulated Cortex-M core can replace the default behaviour without touching
the core. The remote processor object calls:

* :meth:`RunningFirmware.on_start` when the core is released from reset
  (PTA ``FIRMWARE_START`` under the TEE, ``ops->start`` without it);
* :meth:`RunningFirmware.on_tick` once per model tick while it runs; a
  returned :class:`Crash` is reported to Linux as ``rproc_report_crash``
  (the stm32 watchdog interrupt or a fatal-error mailbox message);
* :meth:`RunningFirmware.on_stop` when the core is put back in reset;
* ``host_kick(vqid)``, optional (:class:`HostDoorbell`), when Linux rings the
  remote's mailbox for a virtqueue (``ops->kick``, ``stm32_rproc_kick``);
  :func:`ring_firmware` calls it where the firmware has one.

Everything a firmware touches goes through :class:`FirmwareContext`: the
device memory (writes are recorded like every other device write), the
address and size of its loaded resource table, and a ``kick`` callback (the
mailbox doorbell of ``stm32_rproc_kick``, reversed: remote -> host).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from rproctee.linux.state import CrashType
from rproctee.platform.memory import DeviceMemory

#: virtio status bit the default firmware sets (``VIRTIO_CONFIG_S_DRIVER_OK``).
VIRTIO_CONFIG_S_DRIVER_OK = 4


@dataclass(frozen=True)
class Crash:
    """A crash the firmware reports: its kernel type and a human reason."""

    type: CrashType
    reason: str = ""


@dataclass
class FirmwareContext:
    """What the running firmware can see and do.

    Attributes
    ----------
    memory : DeviceMemory
        The remote processor's memories (device addresses).
    rsc_da : int or None
        Device address of the loaded resource table (None: no table).
    rsc_size : int
        Its size in bytes.
    kick : callable
        ``kick(vqid)``: ring the host's doorbell for a virtqueue.
    boot_count : int
        How many times this core was started (1 on the first boot).
    """

    memory: DeviceMemory
    rsc_da: int | None
    rsc_size: int
    kick: Callable[[int], None] = field(default=lambda vqid: None)
    boot_count: int = 1


@runtime_checkable
class RunningFirmware(Protocol):
    """Behaviour of the firmware running on the remote processor."""

    def on_start(self, ctx: FirmwareContext) -> None:
        """The core left reset and runs the firmware."""
        ...

    def on_stop(self, ctx: FirmwareContext) -> None:
        """The core is put back in reset."""
        ...

    def on_tick(self, ctx: FirmwareContext) -> Crash | None:
        """One model tick of execution; a :class:`Crash` ends the run."""
        ...


@runtime_checkable
class HostDoorbell(Protocol):
    """A firmware that takes the host's doorbell (host -> remote kicks).

    Kept apart from :class:`RunningFirmware` so that a firmware written
    against the three-method hook stays a ``RunningFirmware`` (a
    ``runtime_checkable`` protocol requires every member it declares).
    """

    def host_kick(self, vqid: int) -> None:
        """Linux rang the remote's mailbox for virtqueue ``vqid``."""
        ...


def ring_firmware(firmware: object, vqid: int) -> bool:
    """Deliver a host -> remote kick to ``firmware`` if it takes one.

    Returns
    -------
    bool
        True when ``firmware`` has a ``host_kick`` and was rung; a firmware
        without one ignores the doorbell, as a core whose code never reads
        its mailbox would.
    """
    if not isinstance(firmware, HostDoorbell):
        return False
    firmware.host_kick(vqid)
    return True


class DefaultFirmware:
    """The default behaviour: a well-behaved rpmsg firmware that can crash.

    On start it marks every vdev ``DRIVER_OK`` in its loaded resource table
    and writes a boot line into the first trace buffer. It crashes with
    ``crash_type`` when :meth:`request_crash` was called, or on its
    ``crash_after``-th tick (a watchdog that nobody fed).

    Parameters
    ----------
    crash_after : int or None
        Crash on that tick of the first run (None: never by itself).
    crash_type : CrashType
        Type reported by the automatic crash.
    trace_line : str
        Format of the boot line; ``{boot}`` is the boot count.
    """

    def __init__(
        self,
        *,
        crash_after: int | None = None,
        crash_type: CrashType = CrashType.WATCHDOG,
        trace_line: str = "cm4: firmware up (boot #{boot}), rpmsg ready\n",
    ) -> None:
        self.crash_after = crash_after
        self.crash_type = crash_type
        self.trace_line = trace_line
        self.ticks = 0
        self._pending: Crash | None = None
        self.started = 0
        #: virtqueue ids of the host's kicks (``stm32_rproc_kick``), in order.
        self.host_kicks: list[int] = []

    def request_crash(self, kind: CrashType, reason: str = "on demand") -> None:
        """Crash with ``kind`` on the next tick."""
        self._pending = Crash(kind, reason)

    def on_start(self, ctx: FirmwareContext) -> None:
        """Mark the vdevs DRIVER_OK and log a line into trace buffer 0."""
        self.started += 1
        self.ticks = 0
        if ctx.rsc_da is None or not ctx.rsc_size:
            return
        from rproctee.linux.remote import mark_vdevs_ready, write_trace_line

        raw = ctx.memory.read_da(ctx.rsc_da, ctx.rsc_size)
        mark_vdevs_ready(ctx, raw, VIRTIO_CONFIG_S_DRIVER_OK)
        write_trace_line(ctx, raw, self.trace_line.format(boot=ctx.boot_count))

    def on_stop(self, ctx: FirmwareContext) -> None:
        """Nothing to flush: the trace buffer already holds everything."""

    def host_kick(self, vqid: int) -> None:
        """Count the host's doorbell; the default firmware has nothing to read."""
        self.host_kicks.append(vqid)

    def on_tick(self, ctx: FirmwareContext) -> Crash | None:
        """Count the tick; return the pending or the scheduled crash."""
        self.ticks += 1
        if self._pending is not None:
            crash, self._pending = self._pending, None
            return crash
        if self.crash_after is not None and self.started == 1:
            if self.ticks >= self.crash_after:
                reason = f"no watchdog refresh in {self.ticks} ticks"
                return Crash(self.crash_type, reason)
        return None
