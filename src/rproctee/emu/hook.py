"""The Linux side's running-firmware hook, backed by the emulated core.

:class:`EmulatedFirmware` implements
:class:`rproctee.linux.firmware_hook.RunningFirmware`: ``on_start`` (PTA
FIRMWARE_START, or ``ops->start`` without the TEE) boots an
:class:`~rproctee.emu.core.EmulatedCore` straight out of the context's device
memory, ``on_tick`` runs one tick and turns a fault into a
:class:`~rproctee.linux.firmware_hook.Crash` of the matching
``rproc_crash_type``, ``on_stop`` puts the core back in reset. IPCC doorbells
on channels 0 and 1 (``vq0``/``vq1`` of the stm32 driver's mailboxes) become
``ctx.kick(vqid)``; channel 2 (``shutdown``) and 3 (``detach``) are only
counted. :meth:`EmulatedFirmware.host_kick` is the other direction (the
host's ``stm32_rproc_kick``): Linux's ``ops->kick`` calls it through the
optional :class:`~rproctee.linux.firmware_hook.HostDoorbell` part of the
hook. :meth:`EmulatedFirmware.crash_note` is what the Linux model's
``rproc_coredump`` puts in its dumps' ``PT_NOTE``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rproctee.emu.core import CPU_MODELS, DEFAULT_BUDGET, EmulatedCore
from rproctee.emu.faults import CrashReport
from rproctee.emu.peripherals import Ipcc, Peripheral
from rproctee.emu.prstatus import core_with_registers, has_note, prstatus_note
from rproctee.linux.firmware_hook import Crash, FirmwareContext

#: IPCC channels the stm32 driver binds to virtqueues (mbox "vq0", "vq1").
VQ_CHANNELS = (0, 1)


#: compatible-string fragments -> the core the emulator runs for them.
_CORES = (
    ("m33", "cortex-m33"),
    ("cm7", "cortex-m7"),
    ("-m7", "cortex-m7"),
    ("-m0", "cortex-m0"),
    ("-m4", "cortex-m4"),
    ("stm32mp1", "cortex-m4"),
)
#: Fragments of processors that are not Cortex-M.
_NOT_M = ("r5f", "dsp", "c66", "c71", "hifi", "a53", "a72", "riscv")


def cpu_for_platform(platform: Any) -> str:
    """The Cortex-M core a platform's remote processor is.

    :attr:`~rproctee.platform.board.PlatformSpec.cpu` decides when the
    platform names its core (presets; device trees, from the node's
    ``compatible``). A platform that does not (a profile, a spec built by
    hand) is read from its notes' ``compatible`` (``st,stm32mp2-m33``,
    ``fsl,imx8mp-cm7``...), else taken for an stm32mp15 board (Cortex-M4).

    Raises
    ------
    ValueError
        The platform's core is not a Cortex-M (R5F, DSP...).
    """
    named = getattr(platform, "cpu", None)
    if named is not None:
        return _cortex_m(str(named), platform)
    compatible = " ".join(
        note.split("compatible", 1)[1]
        for note in getattr(platform, "notes", ())
        if "compatible" in note
    ).lower()
    for fragment in _NOT_M:
        if fragment in compatible:
            raise ValueError(
                f"remote processor {compatible.strip(' ()')} is not a Cortex-M core: "
                "the emulated core runs Cortex-M0/M4/M7/M33 firmware only"
            )
    for fragment, cpu in _CORES:
        if fragment in compatible:
            return cpu
    return "cortex-m4"


def _cortex_m(cpu: str, platform: Any) -> str:
    """``cpu`` if the emulator runs it, else a ValueError naming it."""
    if cpu not in CPU_MODELS:
        where = getattr(platform, "node", None) or getattr(platform, "name", "?")
        raise ValueError(
            f"remote processor {where} is a {cpu}, not a Cortex-M core: the "
            "emulated core runs Cortex-M0/M4/M7/M33 firmware only"
        )
    return cpu


def vector_base_for_platform(platform: Any) -> int:
    """Where the core finds its vector table on ``platform``.

    :attr:`~rproctee.platform.board.PlatformSpec.boot_address` when the
    platform gives one (presets: 0); else 0 when a region holds device
    address 0 (stm32mp15: RETRAM, the M4's boot memory); otherwise the
    lowest region (stm32mp2's M33 boots from the start of its firmware
    memory, which its device tree does not name).
    """
    given = getattr(platform, "boot_address", None)
    if given is not None:
        return int(given)
    regions = getattr(platform, "regions", ())
    if not regions or any(r.da == 0 for r in regions):
        return 0
    return int(min(r.da for r in regions))


class EmulatedFirmware:
    """Run the loaded firmware on an emulated Cortex-M core.

    Parameters
    ----------
    cpu : str
        ``"cortex-m4"``, ``"cortex-m33"``, ``"cortex-m7"`` or ``"cortex-m0"``
        (:meth:`for_platform` picks it from the platform).
    vector_base : int
        Device address of the vector table.
    budget : int
        Instructions per tick.
    watchdog_ticks : int
        Ticks without a feed before the watchdog barks.
    on_uart_line : callable, optional
        Called with each UART line as the firmware prints it.
    on_trace_line : callable, optional
        Called with each new line of trace buffer 0 (``trace0``), seen at
        the end of the tick that wrote it.
    extra_peripherals : sequence of Peripheral
        Added to the core's default ones.

    Attributes
    ----------
    core : EmulatedCore or None
        Built on the first start, reused after (same device memory).
    crashes : list of CrashReport
        Every crash, in order (registers included, for the coredump).
    uart_lines : list of str
        Every UART line of every run.
    trace_lines : list of str
        Every complete trace-buffer line of every run.
    """

    def __init__(
        self,
        *,
        cpu: str = "cortex-m4",
        vector_base: int = 0,
        budget: int = DEFAULT_BUDGET,
        watchdog_ticks: int = 4,
        on_uart_line: Callable[[str], None] | None = None,
        on_trace_line: Callable[[str], None] | None = None,
        extra_peripherals: Sequence[Peripheral] = (),
    ) -> None:
        self.cpu = cpu
        self.vector_base = vector_base
        self.budget = budget
        self.watchdog_ticks = watchdog_ticks
        self.on_uart_line = on_uart_line
        self.on_trace_line = on_trace_line
        self.extra_peripherals = tuple(extra_peripherals)
        self.trace_lines: list[str] = []
        self._trace: tuple[int, int] | None = None
        self._trace_seen = 0
        self.core: EmulatedCore | None = None
        self.crashes: list[CrashReport] = []
        self.uart_lines: list[str] = []
        self.doorbells = 0
        self._ctx: FirmwareContext | None = None
        self._pending: CrashReport | None = None

    @classmethod
    def for_platform(cls, platform: Any, **kw: Any) -> EmulatedFirmware:
        """The emulated firmware for ``platform``'s core and boot address.

        ``cpu`` and ``vector_base`` come from :func:`cpu_for_platform` and
        :func:`vector_base_for_platform` unless given in ``kw``.

        Raises
        ------
        ValueError
            The platform's processor is not a Cortex-M.
        """
        kw.setdefault("cpu", cpu_for_platform(platform))
        kw.setdefault("vector_base", vector_base_for_platform(platform))
        return cls(**kw)

    def _core_for(self, ctx: FirmwareContext) -> EmulatedCore:
        if self.core is None or self.core.memory is not ctx.memory:
            self.core = EmulatedCore(
                ctx.memory,
                cpu=self.cpu,
                vector_base=self.vector_base,
                budget=self.budget,
                watchdog_ticks=self.watchdog_ticks,
                notify=self._doorbell,
                on_uart_line=self._uart_line,
                extra_peripherals=self.extra_peripherals,
            )
        return self.core

    def _doorbell(self, channel: int) -> None:
        self.doorbells += 1
        if channel in VQ_CHANNELS and self._ctx is not None:
            self._ctx.kick(channel)

    def _uart_line(self, text: str) -> None:
        self.uart_lines.append(text)
        if self.on_uart_line is not None:
            self.on_uart_line(text)

    def on_start(self, ctx: FirmwareContext) -> None:
        """Boot the core from the vector table; a lockup is reported next tick."""
        self._ctx = ctx
        core = self._core_for(ctx)
        self._trace = _trace_buffer(ctx)
        self._trace_seen = 0
        self._pending = core.boot()

    def on_stop(self, ctx: FirmwareContext) -> None:
        """Hold the core in reset."""
        if self.core is not None:
            self.core.halt()
        self._pending = None

    def on_tick(self, ctx: FirmwareContext) -> Crash | None:
        """Run one tick; a fault becomes a crash of its rproc type."""
        self._ctx = ctx
        report = self._pending
        self._pending = None
        if report is None and self.core is not None:
            report = self.core.tick()
        self._new_trace_lines(ctx)
        if report is None:
            return None
        self.crashes.append(report)
        return Crash(report.crash_type, report.summary())

    def _new_trace_lines(self, ctx: FirmwareContext) -> None:
        """Report the complete lines added to trace buffer 0 since last time."""
        if self._trace is None:
            return
        da, size = self._trace
        text = ctx.memory.read_da(da, size).split(b"\0", 1)[0]
        if len(text) < self._trace_seen:
            self._trace_seen = 0  # the firmware started its buffer again
        end = text.rfind(b"\n") + 1
        if end <= self._trace_seen:
            return
        fresh = text[self._trace_seen : end].decode("utf-8", "replace")
        self._trace_seen = end
        for line in fresh.splitlines():
            self.trace_lines.append(line)
            if self.on_trace_line is not None:
                self.on_trace_line(line)

    def report(self) -> dict[str, Any]:
        """What ran: ticks, instructions, rate, lines, doorbells, crashes."""
        core = self.core
        return {
            "cpu": self.cpu,
            "budget": self.budget,
            "ticks": core.ticks if core else 0,
            "idle_ticks": core.idle_ticks if core else 0,
            "instructions": core.instructions if core else 0,
            "seconds": core.seconds if core else 0.0,
            "instructions_per_second": core.instructions_per_second if core else 0.0,
            "doorbells": self.doorbells,
            "trace_lines": list(self.trace_lines),
            "uart_lines": list(self.uart_lines),
            "crashes": [c.to_dict() for c in self.crashes],
        }

    def host_kick(self, vqid: int) -> None:
        """The host rings the firmware for virtqueue ``vqid`` (``stm32_rproc_kick``).

        Raises
        ------
        RuntimeError
            The core was never started.
        """
        if self.core is None:
            raise RuntimeError("host_kick: the emulated core was never started")
        ipcc = self.core.peripheral("ipcc")
        assert isinstance(ipcc, Ipcc)
        ipcc.host_ring(vqid)

    @property
    def last_crash(self) -> CrashReport | None:
        """The latest crash report, if any."""
        return self.crashes[-1] if self.crashes else None

    def crash_note(self) -> bytes | None:
        """The ``NT_PRSTATUS`` note record of the last crash (None: no crash).

        For a coredump writer that adds its own ``PT_NOTE`` segment.
        """
        report = self.last_crash
        if report is None:
            return None
        return prstatus_note(report.registers, report.kind.signal)

    def coredump_with_registers(self, core: bytes) -> bytes:
        """``core`` (an rproc coredump) with the last crash's ``NT_PRSTATUS``.

        A core that already has a ``PT_NOTE`` is returned as it is: the Linux
        model's ``rproc_coredump`` puts :meth:`crash_note` in its dumps
        itself, and a second copy would only confuse a debugger.

        Raises
        ------
        ValueError
            No crash happened, or ``core`` is not an ELF32 LSB core.
        """
        report = self.last_crash
        if report is None:
            raise ValueError("no crash recorded: nothing to put in the core's notes")
        if has_note(core):
            return core
        return core_with_registers(core, report.registers, report.kind.signal)


def _trace_buffer(ctx: FirmwareContext) -> tuple[int, int] | None:
    """``(da, len)`` of the loaded table's first trace buffer, if it has one."""
    from rproctee.errors import AddressError
    from rproctee.rsctable import RscTableError, parse_resource_table

    if ctx.rsc_da is None or not ctx.rsc_size:
        return None
    try:
        raw = ctx.memory.read_da(ctx.rsc_da, ctx.rsc_size)
        traces = parse_resource_table(raw, has_iommu=False).traces()
        if not traces or not traces[0].len:
            return None
        ctx.memory.locate_da(traces[0].da, traces[0].len)
    except (AddressError, RscTableError):
        return None  # no usable trace buffer: nothing to stream
    return traces[0].da, traces[0].len
