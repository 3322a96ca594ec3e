"""A Cortex-M core (unicorn, Thumb M-class) running out of the device memories.

:class:`EmulatedCore` maps every region of a :class:`DeviceMemory` at its
device address without copying (see :mod:`rproctee.emu.mapping`), adds the
peripheral models of :mod:`rproctee.emu.peripherals`, boots from the vector
table the way the hardware leaves reset (initial SP from word 0, reset
vector from word 1), and runs in ticks of at most ``budget`` instructions,
stepped by the caller (:meth:`EmulatedCore.tick`) or by a background
thread (:meth:`EmulatedCore.start_background`).

Any access outside the regions and peripherals is a bus fault; faults halt
the core at the faulting instruction and produce a :class:`CrashReport`
(:mod:`rproctee.emu.faults`).

Interrupts (SysTick, the IPCC's RX line, anything pended in the NVIC) are
taken between runs, which end at each SysTick event and each tick, and at
once after an exception return (tail-chaining); SVC is taken where it is
executed. An interrupt the firmware pends itself (``STIR``, ``ISPR``,
``ICSR``) or unmasks (``cpsie i``) therefore waits for the next of these
points instead of preempting at the next instruction. Entry and return
follow the architecture (:mod:`rproctee.emu.exceptions`), so a firmware's
own handlers run and return.
"""

from __future__ import annotations

import importlib
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from rproctee.emu.exceptions import ExceptionModel
from rproctee.emu.faults import (
    CORE_REGISTERS,
    SPECIAL_REGISTERS,
    CrashReport,
    FaultKind,
    Registers,
)
from rproctee.emu.mapping import MapPlan, plan_mapping
from rproctee.emu.peripherals import (
    SCB_VTOR,
    SVCALL_EXCEPTION,
    Ipcc,
    Peripheral,
    PeripheralFault,
    SystemControl,
    Uart,
    Watchdog,
)
from rproctee.errors import AddressError, RprocError
from rproctee.platform.memory import DeviceMemory

#: The cores the model runs and unicorn's model for each.
CPU_MODELS = {
    "cortex-m0": "UC_CPU_ARM_CORTEX_M0",  # also runs M0+ code (same ISA)
    "cortex-m4": "UC_CPU_ARM_CORTEX_M4",
    "cortex-m7": "UC_CPU_ARM_CORTEX_M7",
    "cortex-m33": "UC_CPU_ARM_CORTEX_M33",
}
DEFAULT_BUDGET = 100_000
#: Where the emulated run of a tick "ends": an address never executed
#: (unicorn needs one; the instruction budget is what ends a tick).
_NEVER = 0xFFFFFFFE
_THUMB_WFI = 0xBF30
_EXCP_SWI, _EXCP_EXCEPTION_EXIT = 2, 8  # QEMU's EXCP_* numbers
_XPSR_T = 1 << 24
_EXC_RETURN = 0xFFFFFFFF  # LR at reset


class EmulatorUnavailable(RprocError, ImportError):
    """unicorn (the optional ``rproctee[emu]`` extra) cannot be imported."""


def load_unicorn() -> ModuleType:
    """Import unicorn 2.x, or say what to install.

    Raises
    ------
    EmulatorUnavailable
        unicorn is missing or older than 2.0.
    """
    try:
        # by name: type-checks the same whether or not the extra is installed
        unicorn = importlib.import_module("unicorn")
    except ImportError as exc:
        raise EmulatorUnavailable(
            "the emulated core needs unicorn 2.x: pip install 'rproctee[emu]' "
            f"(or pip install unicorn); import failed: {exc}"
        ) from exc
    version = str(getattr(unicorn, "__version__", "0"))
    if int(version.split(".")[0] or 0) < 2:
        raise EmulatorUnavailable(
            f"the emulated core needs unicorn 2.x, found {version}"
        )
    return unicorn


def unicorn_available() -> bool:
    """Whether :func:`load_unicorn` would succeed."""
    try:
        load_unicorn()
    except EmulatorUnavailable:
        return False
    return True


@dataclass(frozen=True)
class Mapping:
    """One range of the core's address space and what backs it.

    ``kind`` is ``"direct"`` (host pointer ``host`` into a region's array),
    ``"mmio-memory"`` (device memory served through MMIO callbacks) or
    ``"peripheral"`` (``name`` is the peripheral's).
    """

    da: int
    size: int
    kind: str
    name: str
    host: int | None = None


@dataclass
class _Fault:
    kind: FaultKind
    reason: str
    address: int | None
    pc: int | None = None  # a better pc than the engine's, when known


class EmulatedCore:
    """One Cortex-M core over ``memory``.

    Parameters
    ----------
    memory : DeviceMemory
        The device memories the loader filled; mapped, never copied.
    cpu : str
        ``"cortex-m4"`` (stm32mp15), ``"cortex-m33"`` (stm32mp2, i.MX93),
        ``"cortex-m7"`` (i.MX8MP) or ``"cortex-m0"`` (stm32mp2's M0+).
    vector_base : int
        Device address of the vector table the core boots from.
    budget : int
        Instructions per tick.
    peripherals : sequence of Peripheral, optional
        Default: an IPCC, a UART, a watchdog (``watchdog_ticks``) and the
        system control space, at their stm32mp15 M4 addresses.
    extra_peripherals : sequence of Peripheral
        Added to those (e.g. :class:`~rproctee.emu.peripherals.RegisterFile`
        blocks for peripherals the model does not decode).
    notify : callable, optional
        ``notify(channel)`` for each IPCC doorbell the firmware rings.
    on_uart_line : callable, optional
        Called with each line the firmware prints on the UART.
    watchdog_ticks : int
        Ticks without a feed before the default watchdog barks.

    Raises
    ------
    EmulatorUnavailable
        unicorn is not installed.
    ValueError
        Unknown ``cpu``, bad ``budget``, or peripherals overlapping memory.
    """

    def __init__(
        self,
        memory: DeviceMemory,
        *,
        cpu: str = "cortex-m4",
        vector_base: int = 0,
        budget: int = DEFAULT_BUDGET,
        peripherals: Sequence[Peripheral] | None = None,
        extra_peripherals: Sequence[Peripheral] = (),
        notify: Callable[[int], None] | None = None,
        on_uart_line: Callable[[str], None] | None = None,
        watchdog_ticks: int = 4,
    ) -> None:
        if cpu not in CPU_MODELS:
            raise ValueError(f"cpu {cpu!r} unknown (known: {', '.join(CPU_MODELS)})")
        if budget < 1:
            raise ValueError(f"budget {budget} must be >= 1 instruction per tick")
        self._uc_mod = load_unicorn()
        self.memory = memory
        self.cpu = cpu
        self.vector_base = vector_base
        self.budget = budget
        self.notify = notify
        self.on_uart_line = on_uart_line
        base = (
            peripherals
            if peripherals is not None
            else self._default_peripherals(cpu, watchdog_ticks)
        )
        self.peripherals = [*base, *extra_peripherals]
        self.mappings: list[Mapping] = []
        self.ticks = 0
        self.instructions = 0
        self.seconds = 0.0
        self.busy_seconds = 0.0
        self.idle_ticks = 0
        self.running = False
        self.sleeping = False
        self.crash: CrashReport | None = None
        self._fault: _Fault | None = None
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._build_engine()

    # -- construction --------------------------------------------------------------
    def _default_peripherals(self, cpu: str, watchdog_ticks: int) -> list[Peripheral]:
        return [
            Ipcc(notify=self._ring),
            Uart(on_line=self._uart_line),
            Watchdog(timeout_ticks=watchdog_ticks),
            SystemControl(cpu),
        ]

    def _ring(self, channel: int) -> None:
        if self.notify is not None:
            self.notify(channel)

    def _uart_line(self, text: str) -> None:
        if self.on_uart_line is not None:
            self.on_uart_line(text)

    def peripheral(self, name: str) -> Peripheral:
        """The peripheral called ``name`` (``ipcc``, ``uart``, ``iwdg``, ``scs``).

        Raises
        ------
        KeyError
            No such peripheral.
        """
        for p in self.peripherals:
            if p.name == name:
                return p
        raise KeyError(name)

    def _build_engine(self) -> None:
        uc = self._uc_mod
        const = uc.arm_const
        self.uc = uc.Uc(uc.UC_ARCH_ARM, uc.UC_MODE_THUMB | uc.UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(getattr(const, CPU_MODELS[self.cpu]))
        self.page = int(self.uc.ctl_get_page_size())
        self.plan: MapPlan = plan_mapping(self.memory, self.page)
        self._map_memory()
        self._map_peripherals()
        self.uc.hook_add(uc.UC_HOOK_MEM_UNMAPPED, self._on_unmapped)
        self.uc.hook_add(uc.UC_HOOK_MEM_PROT, self._on_protected)
        self.uc.hook_add(uc.UC_HOOK_INTR, self._on_interrupt)
        self._reg_ids = {
            name: getattr(const, f"UC_ARM_REG_{name.upper()}")
            for name in (*CORE_REGISTERS, *SPECIAL_REGISTERS)
        }
        scs = next((p for p in self.peripherals if isinstance(p, SystemControl)), None)
        self.exceptions = (
            ExceptionModel(self.uc, self._reg_ids, self.memory, scs, uc.UcError)
            if scs is not None
            else None
        )

    def _perms(self, access: str) -> int:
        uc = self._uc_mod
        bits = {"r": uc.UC_PROT_READ, "w": uc.UC_PROT_WRITE, "x": uc.UC_PROT_EXEC}
        return sum(bit for ch, bit in bits.items() if ch in access)

    def _map_memory(self) -> None:
        for d in self.plan.direct:
            region = self.memory.regions[d.index]
            array = self.memory.array(d.index)
            host = array.ctypes.data + d.offset
            self.uc.mem_map_ptr(d.da, d.size, self._perms(d.perms), host)
            self.mappings.append(Mapping(d.da, d.size, "direct", region.name, host))
        for span in self.plan.mmio:
            self.uc.mmio_map(span.da, span.size, self._mmio_mem_read, span.da,
                             self._mmio_mem_write, span.da)  # fmt: skip
            self.mappings.append(Mapping(span.da, span.size, "mmio-memory", "partial"))

    def _map_peripherals(self) -> None:
        for p in self.peripherals:
            if p.base % self.page:
                raise ValueError(
                    f"peripheral {p.name} at {p.base:#x} is not aligned to the "
                    f"emulator's {self.page:#x}-byte pages"
                )
            size = -(-p.size // self.page) * self.page
            for m in self.mappings:
                if m.da < p.base + size and p.base < m.da + m.size:
                    what = "device memory" if m.kind != "peripheral" else "peripheral"
                    raise ValueError(
                        f"peripheral {p.name} at {p.base:#x} (+{size:#x}) overlaps "
                        f"{what} {m.name} at {m.da:#x} (+{m.size:#x})"
                    )
            self.uc.mmio_map(p.base, size, self._mmio_periph_read, p,
                             self._mmio_periph_write, p)  # fmt: skip
            self.mappings.append(Mapping(p.base, size, "peripheral", p.name))

    # -- bus callbacks ---------------------------------------------------------------
    def _raise_bus_fault(self, reason: str, address: int) -> None:
        if self._fault is None:
            self._fault = _Fault(FaultKind.BUS_FAULT, reason, address)
        self.uc.emu_stop()

    def _mmio_mem_read(self, uc: Any, offset: int, size: int, base: int) -> int:
        da = base + offset
        try:
            view = self.memory.view_da(da, size)
        except AddressError as exc:
            self._raise_bus_fault(f"read of {size} bytes at {da:#010x}: {exc}", da)
            return 0
        return int.from_bytes(view.tobytes(), "little")

    def _mmio_mem_write(
        self, uc: Any, offset: int, size: int, value: int, base: int
    ) -> None:
        da = base + offset
        try:
            index = self.memory.locate_da(da, size)
        except AddressError as exc:
            self._raise_bus_fault(f"write of {size} bytes at {da:#010x}: {exc}", da)
            return
        if "w" not in self.memory.regions[index].access:
            name = self.memory.regions[index].name
            self._raise_bus_fault(f"write at {da:#010x} into read-only {name}", da)
            return
        # the firmware's own store: a core write, not a loader write to record
        view = self.memory.view_da(da, size)
        view[:] = memoryview((value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))

    def _mmio_periph_read(self, uc: Any, offset: int, size: int, p: Peripheral) -> int:
        try:
            return p.read(offset, size)
        except PeripheralFault as exc:
            self._raise_bus_fault(f"read {exc}", p.base + offset)
            return 0

    def _mmio_periph_write(
        self, uc: Any, offset: int, size: int, value: int, p: Peripheral
    ) -> None:
        try:
            p.write(offset, size, value)
        except PeripheralFault as exc:
            self._raise_bus_fault(f"write {exc}", p.base + offset)

    # -- fault hooks -------------------------------------------------------------------
    def _on_unmapped(
        self, uc: Any, access: int, address: int, size: int, value: int, data: Any
    ) -> bool:
        u = self._uc_mod
        names = {
            u.UC_MEM_READ_UNMAPPED: "read",
            u.UC_MEM_WRITE_UNMAPPED: "write",
            u.UC_MEM_FETCH_UNMAPPED: "instruction fetch",
        }
        what = names.get(access, "access")
        if self._fault is None:
            reason = (
                f"{what} of {size} bytes at {address:#010x}: no device memory "
                "or peripheral there"
            )
            self._fault = _Fault(FaultKind.BUS_FAULT, reason, address)
        return False

    def _on_protected(
        self, uc: Any, access: int, address: int, size: int, value: int, data: Any
    ) -> bool:
        u = self._uc_mod
        names = {
            u.UC_MEM_WRITE_PROT: "write",
            u.UC_MEM_FETCH_PROT: "instruction fetch",
            u.UC_MEM_READ_PROT: "read",
        }
        what = names.get(access, "access")
        if self._fault is None:
            reason = f"{what} at {address:#010x}: {self._protection_why(address)}"
            self._fault = _Fault(FaultKind.BUS_FAULT, reason, address)
        return False

    def _protection_why(self, address: int) -> str:
        """Why an access to a mapped address was refused."""
        for m in self.mappings:
            if m.da <= address < m.da + m.size and m.kind != "direct":
                if m.kind == "peripheral":
                    return f"peripheral {m.name} is not executable"
                name = self._region_name(address)
                return (
                    f"{name} shares this page with other bytes (not aligned to "
                    f"the emulator's {self.page:#x}-byte pages): code cannot run "
                    "from such a page"
                )
        return f"{self._region_name(address)} does not allow it"

    def _region_name(self, address: int) -> str:
        try:
            return self.memory.regions[self.memory.locate_da(address, 1)].name
        except AddressError:
            return "no region"

    def _on_interrupt(self, uc: Any, intno: int, data: Any) -> None:
        pc = int(uc.reg_read(self._reg_ids["pc"]))
        if self._handled_in_place(intno, pc):
            return  # the firmware runs on, in or out of its handler
        kind, reason, fix_pc = _exception_meaning(intno, pc)
        if self._fault is None:
            address = pc if intno == 3 else None
            self._fault = _Fault(kind, reason, address, fix_pc)
        uc.emu_stop()

    def _handled_in_place(self, intno: int, pc: int) -> bool:
        """Exception return, or an SVC the firmware has a handler for."""
        model = self.exceptions
        if model is None or self._fault is not None:
            return False
        if intno == _EXCP_EXCEPTION_EXIT and model.scs.active:
            problem = model.leave(pc) or self._tail_chain(model)
        elif intno == _EXCP_SWI and self._svc_can_enter(model):
            problem = model.enter(SVCALL_EXCEPTION, pc)
        else:
            return False
        if problem is not None:
            self._fault = _Fault(FaultKind.HARD_FAULT, problem, None)
            self.uc.emu_stop()
        return True

    def _tail_chain(self, model: ExceptionModel) -> str | None:
        """After a return, take what became eligible (tail-chaining)."""
        exception = model.scs.next_exception(model.mask())
        if exception is None:
            return None
        return model.enter(exception, int(self.uc.reg_read(self._reg_ids["pc"])))

    @staticmethod
    def _svc_can_enter(model: ExceptionModel) -> bool:
        """SVC is taken if it has a handler and outranks what runs (else HardFault)."""
        if isinstance(model.vector(SVCALL_EXCEPTION), str):
            return False
        mask = model.mask()
        limit = model.scs.execution_priority()
        if mask is not None:
            limit = min(limit, mask)
        return model.scs.priority[SVCALL_EXCEPTION] < limit

    def _take_interrupt(self) -> None:
        """At a tick boundary: raise level interrupts, take the best pending one."""
        model = self.exceptions
        if model is None:
            return
        for p in self.peripherals:
            if isinstance(p, Ipcc):
                if p.rx_interrupt():
                    model.scs.pend(16 + p.rx_irq)
                if p.tx_interrupt():
                    model.scs.pend(16 + p.tx_irq)
        exception = model.scs.next_exception(model.mask())
        if exception is None:
            return
        pc = int(self.uc.reg_read(self._reg_ids["pc"]))
        problem = model.enter(exception, pc)
        if problem is not None:
            self._fault = _Fault(FaultKind.HARD_FAULT, problem, None)
        self.sleeping = False

    # -- reset and boot ----------------------------------------------------------------
    def reset(self) -> None:
        """Hold the core in reset: peripherals reset, counters kept."""
        with self._lock:
            self.running = False
            self.sleeping = False
            self.crash = None
            self._fault = None
            for p in self.peripherals:
                p.reset()

    def boot(self) -> CrashReport | None:
        """Leave reset: SP and PC from the vector table, then ready to tick.

        Returns
        -------
        CrashReport or None
            A ``lockup`` report when the vector table cannot be used (the
            core then stays stopped).
        """
        with self._lock:
            self.reset()
            # the loader may have rewritten code since the last run
            self.uc.ctl_flush_tb()
            try:
                head = self.memory.read_da(self.vector_base, 8)
            except AddressError as exc:
                return self._lockup(f"vector table at {self.vector_base:#x}: {exc}")
            sp, reset = struct.unpack("<2I", head)
            problem = self._reset_vector_problem(reset)
            self._set_reset_registers(sp, reset)
            if problem:
                return self._lockup(problem)
            self._scs_vtor()
            self.running = True
            return None

    def _reset_vector_problem(self, reset: int) -> str | None:
        if not reset & 1:
            return (
                f"reset vector {reset:#010x} has bit 0 clear (ARM state): the core "
                "faults before its first instruction"
            )
        try:
            self.memory.locate_da(reset & ~1, 2)
        except AddressError:
            return f"reset vector {reset:#010x} points outside every device memory"
        return None

    def _set_reset_registers(self, sp: int, reset: int) -> None:
        ids = self._reg_ids
        for name in CORE_REGISTERS[:13]:
            self.uc.reg_write(ids[name], 0)
        self.uc.reg_write(ids["msp"], sp & ~3)
        self.uc.reg_write(ids["sp"], sp & ~3)
        self.uc.reg_write(ids["lr"], _EXC_RETURN)
        self.uc.reg_write(ids["pc"], reset & ~1)
        self.uc.reg_write(ids["xpsr"], _XPSR_T)

    def _scs_vtor(self) -> None:
        for p in self.peripherals:
            if isinstance(p, SystemControl):
                p.stored[SCB_VTOR] = self.vector_base

    def _lockup(self, reason: str) -> CrashReport:
        self.running = False
        self.crash = CrashReport(
            FaultKind.LOCKUP, reason, self.registers(), self.vector_base, self.ticks
        )
        return self.crash

    # -- running ---------------------------------------------------------------
    def registers(self) -> Registers:
        """A snapshot of the core registers and MSP/PSP/PRIMASK/CONTROL."""
        with self._lock:
            read = self.uc.reg_read
            values = {n: int(read(i)) & 0xFFFFFFFF for n, i in self._reg_ids.items()}
            return Registers(values)

    def tick(self) -> CrashReport | None:
        """Run one tick: :attr:`budget` cycles of the core's time, then the watchdog.

        The tick runs in stretches that end at the next timer event
        (SysTick reaching 0 with its interrupt on), so interrupts are taken
        when they fall due: before each stretch the most urgent pending
        interrupt is taken, if the priorities and PRIMASK/BASEPRI allow. A
        core asleep in ``WFI`` sleeps to the end of its stretch (time still
        passes) and wakes to the next interrupt. Returns the crash that
        stopped the core, if one did; a stopped or crashed core does nothing.

        :attr:`instructions` counts the stretches that ran in full (unicorn
        does not say how many instructions ran before a stop): a stretch
        that ended in ``WFI``, a fault or :meth:`stop_background` adds none,
        so it is a lower bound; :attr:`idle_ticks` counts the ticks in which
        the core slept. :attr:`seconds` is all the time spent in the engine,
        :attr:`busy_seconds` that of the counted stretches.
        """
        with self._lock:
            if not self.running:
                return None
            self.ticks += 1
            left = self.budget
            slept = False
            while left > 0 and not self._stop_event.is_set():
                self._take_interrupt()
                if self._fault is None:
                    stretch = min(left, self._cycles_to_event())
                    self._run(stretch)
                if self._fault is not None:
                    return self._crashed(self._fault)
                slept = slept or self.sleeping
                for p in self.peripherals:
                    p.advance(stretch)  # asleep or not, the clock runs
                left -= stretch
            self.idle_ticks += slept
            return self._end_of_tick()

    def _cycles_to_event(self) -> int:
        """Cycles until the next peripheral interrupt (the budget if none)."""
        due = [c for p in self.peripherals if (c := p.cycles_to_event()) is not None]
        return max(1, min(due, default=self.budget))

    def _end_of_tick(self) -> CrashReport | None:
        for p in self.peripherals:
            barked = p.tick()
            if barked is not None:
                return self._crashed(_Fault(FaultKind.WATCHDOG, barked.reason, None))
        return None

    def _run(self, count: int) -> None:
        """Run up to ``count`` instructions; count them if they all ran."""
        pc = int(self.uc.reg_read(self._reg_ids["pc"]))
        t0 = time.perf_counter()
        try:
            self.uc.emu_start(pc | 1, _NEVER, count=count)
        except self._uc_mod.UcError as exc:
            self._engine_error(exc)
        elapsed = time.perf_counter() - t0
        self.seconds += elapsed
        if self._fault is not None or self._stop_event.is_set():
            return
        self.sleeping = self._after_wfi()
        if not self.sleeping:
            self.instructions += count
            self.busy_seconds += elapsed

    def _after_wfi(self) -> bool:
        pc = int(self.uc.reg_read(self._reg_ids["pc"]))
        try:
            before = self.memory.read_da(pc - 2, 2)
        except AddressError:
            return False
        return int.from_bytes(before, "little") == _THUMB_WFI

    def _engine_error(self, exc: Exception) -> None:
        if self._fault is not None:
            return  # a hook already said what happened
        u = self._uc_mod
        errno = getattr(exc, "errno", None)
        xpsr = int(self.uc.reg_read(self._reg_ids["xpsr"]))
        pc = int(self.uc.reg_read(self._reg_ids["pc"]))
        if errno == u.UC_ERR_INSN_INVALID and not xpsr & _XPSR_T:
            reason = f"branch to {pc:#010x} in ARM state (INVSTATE)"
            self._fault = _Fault(FaultKind.HARD_FAULT, reason, pc)
        elif errno == u.UC_ERR_INSN_INVALID:
            insn = self._insn_text(pc)
            self._fault = _Fault(
                FaultKind.UNDEFINED_INSTRUCTION, f"undefined instruction {insn}", None
            )
        else:
            self._fault = _Fault(FaultKind.HARD_FAULT, f"emulator stopped: {exc}", None)

    def _insn_text(self, pc: int) -> str:
        try:
            raw = self.memory.read_da(pc, 4)
        except AddressError:
            return f"at {pc:#010x}"
        first, second = struct.unpack("<2H", raw)
        if first >> 11 in (0x1D, 0x1E, 0x1F):
            return f"{first:04x} {second:04x} at {pc:#010x}"
        return f"{first:04x} at {pc:#010x}"

    def _crashed(self, fault: _Fault) -> CrashReport:
        self.running = False
        self._fault = None
        if fault.pc is not None:
            self.uc.reg_write(self._reg_ids["pc"], fault.pc)
        self.crash = CrashReport(
            fault.kind, fault.reason, self.registers(), fault.address, self.ticks
        )
        return self.crash

    def run(self, ticks: int) -> CrashReport | None:
        """Run up to ``ticks`` ticks; stop at the first crash and return it."""
        for _ in range(ticks):
            crash = self.tick()
            if crash is not None or not self.running:
                return crash
        return None

    def halt(self) -> None:
        """Put the core back in reset (STOP): stops a background run first."""
        self.stop_background()
        with self._lock:
            self.running = False

    # -- background thread -------------------------------------------------------
    def start_background(
        self,
        on_crash: Callable[[CrashReport], None] | None = None,
        period: float = 0.0,
    ) -> None:
        """Tick in a daemon thread until :meth:`stop_background` or a crash.

        Parameters
        ----------
        on_crash : callable, optional
            Called from the thread with the crash report.
        period : float
            Seconds to sleep between ticks (0: back to back).
        """
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the core already runs in the background")
        self._stop_event.clear()

        def loop() -> None:
            while not self._stop_event.is_set():
                crash = self.tick()
                if crash is not None and on_crash is not None:
                    on_crash(crash)
                if crash is not None or not self.running:
                    return
                if period:
                    self._stop_event.wait(period)

        self._thread = threading.Thread(target=loop, name="rproctee-emu", daemon=True)
        self._thread.start()

    def stop_background(self, timeout: float = 5.0) -> None:
        """Stop the background thread (cutting its current tick short)."""
        thread = self._thread
        if thread is None:
            return
        self._stop_event.set()
        self.uc.emu_stop()
        thread.join(timeout)
        self._thread = None
        self._stop_event.clear()

    @property
    def instructions_per_second(self) -> float:
        """Counted instructions over the time their ticks took."""
        return self.instructions / self.busy_seconds if self.busy_seconds else 0.0


#: QEMU's exception numbers (``EXCP_*``) -> fault kind, reason, pc fix-up.
_EXCEPTIONS: dict[int, tuple[FaultKind, str, int]] = {
    1: (FaultKind.UNDEFINED_INSTRUCTION, "undefined instruction at {pc:#010x}", 0),
    # unicorn reports SVC with the pc after the 2-byte instruction
    2: (FaultKind.HARD_FAULT, "SVC at {pc:#010x}: no usable handler or priority", -2),
    3: (FaultKind.BUS_FAULT, "instruction fetch at {pc:#010x}: nothing there", 0),
    4: (FaultKind.BUS_FAULT, "data abort at pc {pc:#010x}", 0),
    7: (FaultKind.HARD_FAULT, "BKPT at {pc:#010x} with no debugger (DEBUGEVT)", 0),
    8: (FaultKind.HARD_FAULT, "exception return to {pc:#010x}, none active", 0),
    17: (
        FaultKind.UNDEFINED_INSTRUCTION,
        "coprocessor instruction at {pc:#010x}, coprocessor disabled (NOCP)",
        0,
    ),
    18: (FaultKind.HARD_FAULT, "invalid state at {pc:#010x} (INVSTATE)", 0),
    22: (FaultKind.HARD_FAULT, "unaligned access at pc {pc:#010x}", 0),
}


def _exception_meaning(intno: int, pc: int) -> tuple[FaultKind, str, int | None]:
    """What a QEMU exception number means for the report (and a pc fix-up)."""
    kind, text, adjust = _EXCEPTIONS.get(
        intno, (FaultKind.HARD_FAULT, f"exception {intno} at {{pc:#010x}}", 0)
    )
    fixed = pc + adjust
    return kind, text.format(pc=fixed), fixed if adjust else None
