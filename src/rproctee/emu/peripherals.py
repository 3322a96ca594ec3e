"""Memory-mapped peripheral models the emulated core's firmware talks to.

Each model is plain Python (no emulator import): a base address, a size,
``read(offset, size)`` / ``write(offset, size, value)`` for the core's bus
accesses, ``advance(cycles)`` as time passes and ``tick()`` once per
emulator tick. An access the model does not decode raises
:class:`PeripheralFault`, which the core turns into a bus fault. Register
layouts follow the STM32MP15 reference manual where the firmware needs them
(IPCC, USART, IWDG) and the Armv7-M architecture for the system control
space (SysTick, NVIC, SCB). :class:`RegisterFile` stands in for blocks a
firmware only configures.

Time is counted in instructions, one core clock cycle each: the core calls
``advance(cycles)`` as it runs, stopping its run at the next timer event
(``cycles_to_event``) so interrupts come on time, and ``tick()`` once at
the end of each emulator tick (the watchdog counts ticks). A firmware
polling a timer sees it move between runs, not inside one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class PeripheralFault(Exception):
    """An access a peripheral does not decode (a bus error on real hardware)."""

    def __init__(self, name: str, offset: int, size: int, why: str) -> None:
        self.name = name
        self.offset = offset
        self.size = size
        super().__init__(f"{name} +{offset:#x} ({size} bytes): {why}")


@dataclass(frozen=True)
class Crash:
    """A crash a peripheral raises at a tick (the watchdog's bark)."""

    kind: str
    reason: str


class Peripheral:
    """Base class: a register block at ``base`` of ``size`` bytes.

    Subclasses decode 32-bit registers; narrower accesses read or write the
    addressed bytes of the register (the bus lanes), wider ones are refused.
    """

    name = "peripheral"

    def __init__(self, base: int, size: int) -> None:
        self.base = base
        self.size = size

    def read(self, offset: int, size: int) -> int:
        """The value the core reads at ``base + offset``."""
        reg, shift = self._lane(offset, size)
        return (self.read_reg(reg) >> shift) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        """The core writes ``value`` at ``base + offset``."""
        reg, shift = self._lane(offset, size)
        if size == 4:
            self.write_reg(reg, value & 0xFFFFFFFF)
            return
        mask = ((1 << (8 * size)) - 1) << shift
        old = self.peek_reg(reg)
        self.write_reg(reg, (old & ~mask) | ((value << shift) & mask))

    def _lane(self, offset: int, size: int) -> tuple[int, int]:
        if size not in (1, 2, 4) or offset % size:
            raise PeripheralFault(self.name, offset, size, "unaligned or wide access")
        if offset + size > self.size:
            raise PeripheralFault(
                self.name, offset, size, f"beyond its {self.size:#x} bytes"
            )
        return offset & ~3, 8 * (offset & 3)

    def read_reg(self, reg: int) -> int:
        """One 32-bit register (subclasses); unknown registers fault."""
        raise PeripheralFault(self.name, reg, 4, "no register here")

    def peek_reg(self, reg: int) -> int:
        """A register's value without a read's side effects (for byte writes)."""
        return self.read_reg(reg)

    def write_reg(self, reg: int, value: int) -> None:
        """Write one 32-bit register (subclasses); unknown registers fault."""
        raise PeripheralFault(self.name, reg, 4, "no register here")

    def advance(self, cycles: int) -> None:
        """Let ``cycles`` core clock cycles pass (one per instruction)."""

    def cycles_to_event(self) -> int | None:
        """Cycles until this peripheral next raises an interrupt (None: never)."""
        return None

    def tick(self) -> Crash | None:
        """The end of an emulator tick; a :class:`Crash` ends the run."""
        return None

    def reset(self) -> None:
        """Back to the reset state (the core is held in reset)."""


class RegisterFile(Peripheral):
    """A block of plain registers: each reads back what was last written.

    For peripherals the model does not decode (clock and reset control,
    GPIO, hardware semaphores...) that a firmware only configures: add one
    at their address and its accesses stop being bus faults. A firmware
    that waits for a status bit the hardware would set still waits.

    Parameters
    ----------
    name : str
    base : int
    size : int
        Bytes (a multiple of 4).
    """

    def __init__(self, name: str, base: int, size: int) -> None:
        if size <= 0 or size % 4:
            raise ValueError(
                f"register file {name!r}: size {size} is not a multiple of 4"
            )
        super().__init__(base, size)
        self.name = name
        self.reset()

    def reset(self) -> None:
        """Every register 0."""
        self.values: dict[int, int] = {}

    def read_reg(self, reg: int) -> int:
        """What was last written (0 if never)."""
        return self.values.get(reg, 0)

    def write_reg(self, reg: int, value: int) -> None:
        """Store it."""
        self.values[reg] = value


#: stm32mp15 blocks a CubeIDE-built M4 firmware configures before OpenAMP
#: starts (base, size, name), as the M4 sees them (RM0436 memory map).
STM32MP15_CONFIG_BLOCKS: tuple[tuple[int, int, str], ...] = (
    (0x50000000, 0x1000, "rcc"),
    (0x50001000, 0x1000, "pwr"),
    *((0x50002000 + 0x1000 * i, 0x400, f"gpio{chr(ord('a') + i)}") for i in range(11)),
    (0x5000D000, 0x400, "exti"),
    (0x50020000, 0x400, "syscfg"),
    (0x4C000000, 0x400, "hsem"),
)


def stm32mp15_config_blocks() -> list[RegisterFile]:
    """:class:`RegisterFile` stand-ins for the stm32mp15 blocks an M4 HAL
    firmware writes during start-up (RCC, PWR, GPIO A-K, EXTI, SYSCFG, HSEM).

    With them, such a firmware runs its HAL initialisation instead of taking
    a bus fault at its first RCC access; anything that waits for a status
    bit the hardware would set still waits.
    """
    return [
        RegisterFile(name, base, size) for base, size, name in STM32MP15_CONFIG_BLOCKS
    ]


# -- IPCC ------------------------------------------------------------------------

IPCC_C1CR, IPCC_C1MR, IPCC_C1SCR, IPCC_C1TOC2SR = 0x00, 0x04, 0x08, 0x0C
IPCC_C2CR, IPCC_C2MR, IPCC_C2SCR, IPCC_C2TOC1SR = 0x10, 0x14, 0x18, 0x1C
IPCC_HWCFGR, IPCC_VER, IPCC_ID, IPCC_SID = 0x3F0, 0x3F4, 0x3F8, 0x3FC
IPCC_CHANNELS = 6
IPCC_CR_RXOIE, IPCC_CR_TXFIE = 1 << 0, 1 << 16
#: The M4's "RX channel occupied" and "TX channel free" interrupt lines
#: (IPCC_RX1_IRQn / IPCC_TX1_IRQn in ST's M4 examples: a CubeIDE-built
#: stm32mp15 M4 firmware enables 103 and 104 after HAL_IPCC_Init);
#: constructor arguments, for other boards.
IPCC_RX_IRQ, IPCC_TX_IRQ = 103, 104


class Ipcc(Peripheral):
    """STM32MP15 IPCC seen from processor 2 (the M4); processor 1 is Linux.

    The firmware rings the host on channel ``n`` by writing bit ``16 + n`` of
    ``C2SCR``: the channel's ``C2TOC1SR`` flag goes up and ``notify(n)`` is
    called, as Linux's ``stm32_ipcc`` RX interrupt would (``vq<n>`` for
    ``n`` = 0, 1). The host's interrupt handler clears the flag at once
    (``C1SCR``), so the firmware sees the channel free again on its next
    poll. The host rings the firmware with :meth:`host_ring`: ``C1TOC2SR``
    bit ``n`` goes up until the firmware clears it through ``C2SCR`` bit
    ``n``; with ``C2CR.RXOIE`` set and the channel unmasked in ``C2MR`` that
    raises interrupt ``rx_irq`` (:meth:`rx_interrupt`).

    Parameters
    ----------
    base : int
        Where the M4 sees it (0x4C001000 on stm32mp15).
    notify : callable, optional
        ``notify(channel)`` for each firmware -> host doorbell.
    """

    name = "ipcc"

    def __init__(
        self,
        base: int = 0x4C001000,
        notify: Callable[[int], None] | None = None,
        rx_irq: int = IPCC_RX_IRQ,
        tx_irq: int = IPCC_TX_IRQ,
    ) -> None:
        super().__init__(base, 0x400)
        self.notify = notify
        self.rx_irq = rx_irq
        self.tx_irq = tx_irq
        self.doorbells = [0] * IPCC_CHANNELS
        self.reset()

    def reset(self) -> None:
        """Channels free, masks as at reset (all masked), no enable."""
        self.regs = {IPCC_C1CR: 0, IPCC_C1MR: 0x3F003F, IPCC_C2CR: 0,
                     IPCC_C2MR: 0x3F003F}  # fmt: skip
        self.to_host = 0  # C2TOC1SR
        self.to_remote = 0  # C1TOC2SR

    def host_ring(self, channel: int) -> None:
        """The host rings the firmware on ``channel`` (``C1SCR`` set bit)."""
        _check_channel(channel)
        self.to_remote |= 1 << channel

    def rx_interrupt(self) -> bool:
        """Whether the M4's RX-occupied interrupt line is high.

        ``C2CR.RXOIE`` set and a host message waiting on a channel whose
        ``C2MR.CHnOM`` mask bit is clear.
        """
        if not self.regs[IPCC_C2CR] & IPCC_CR_RXOIE:
            return False
        return bool(self.to_remote & ~self.regs[IPCC_C2MR] & 0x3F)

    def tx_interrupt(self) -> bool:
        """Whether the M4's TX-free interrupt line is high.

        ``C2CR.TXFIE`` set and a channel free towards the host (always, once
        the host's handler took the message) whose ``C2MR.CHnFM`` mask bit
        is clear: a firmware unmasks it to learn the host read its message
        and masks it again in the handler, as ST's HAL does.
        """
        if not self.regs[IPCC_C2CR] & IPCC_CR_TXFIE:
            return False
        free = ~self.to_host & 0x3F
        return bool(free & ~(self.regs[IPCC_C2MR] >> 16) & 0x3F)

    def read_reg(self, reg: int) -> int:
        """Status, masks and identification registers."""
        fixed = {IPCC_C1TOC2SR: self.to_remote, IPCC_C2TOC1SR: self.to_host,
                 IPCC_C1SCR: 0, IPCC_C2SCR: 0, IPCC_HWCFGR: IPCC_CHANNELS,
                 IPCC_VER: 0x10, IPCC_ID: 0x00100071, IPCC_SID: 0xA3C5DD01}  # fmt: skip
        if reg in fixed:
            return fixed[reg]
        if reg in self.regs:
            return self.regs[reg]
        return super().read_reg(reg)

    def write_reg(self, reg: int, value: int) -> None:
        """``C2SCR`` sets/clears channels; control and masks are stored."""
        if reg == IPCC_C2SCR:
            self._firmware_scr(value)
        elif reg in self.regs:
            self.regs[reg] = value
        elif reg in (IPCC_C1TOC2SR, IPCC_C2TOC1SR, IPCC_C1SCR):
            return  # read-only, or processor 1's register: ignored
        else:
            super().write_reg(reg, value)

    def _firmware_scr(self, value: int) -> None:
        self.to_remote &= ~(value & 0x3F)  # CHnC: the firmware took the message
        for channel in range(IPCC_CHANNELS):
            if value >> (16 + channel) & 1:
                self._ring_host(channel)

    def _ring_host(self, channel: int) -> None:
        self.to_host |= 1 << channel
        self.doorbells[channel] += 1
        if self.notify is not None:
            self.notify(channel)
        self.to_host &= ~(1 << channel)  # the host's IRQ handler clears it


def _check_channel(channel: int) -> None:
    if not 0 <= channel < IPCC_CHANNELS:
        raise ValueError(
            f"IPCC channel {channel} does not exist (0..{IPCC_CHANNELS - 1})"
        )


# -- UART ------------------------------------------------------------------------

USART_CR1, USART_CR2, USART_CR3, USART_BRR = 0x00, 0x04, 0x08, 0x0C
USART_ISR, USART_ICR, USART_RDR, USART_TDR = 0x1C, 0x20, 0x24, 0x28
ISR_TXE, ISR_TC = 1 << 7, 1 << 6


class Uart(Peripheral):
    """An STM32 USART that only transmits: each byte written to ``TDR`` goes
    to the current line; a newline makes it a log line (``on_line(text)``).

    ``ISR`` always reads transmitter empty and transmission complete, so a
    firmware polling ``TXE`` never waits.

    Parameters
    ----------
    base : int
        Where the M4 sees it (UART7: 0x40018000 on stm32mp15).
    on_line : callable, optional
        Called with each complete line (without its newline).
    """

    name = "uart"

    def __init__(
        self, base: int = 0x40018000, on_line: Callable[[str], None] | None = None
    ) -> None:
        super().__init__(base, 0x400)
        self.on_line = on_line
        self.lines: list[str] = []
        self.reset()

    def reset(self) -> None:
        """Configuration registers back to 0; a partial line is kept."""
        self.regs = {USART_CR1: 0, USART_CR2: 0, USART_CR3: 0, USART_BRR: 0}
        self._pending = bytearray()

    def read_reg(self, reg: int) -> int:
        """``ISR`` = TXE | TC, ``RDR`` = 0, configuration as written."""
        if reg == USART_ISR:
            return ISR_TXE | ISR_TC
        if reg == USART_RDR:
            return 0
        if reg in self.regs:
            return self.regs[reg]
        if reg in (USART_ICR, USART_TDR):
            return 0
        return super().read_reg(reg)

    def write_reg(self, reg: int, value: int) -> None:
        """``TDR`` transmits its low byte; configuration is stored."""
        if reg == USART_TDR:
            self._put(value & 0xFF)
        elif reg in self.regs:
            self.regs[reg] = value
        elif reg == USART_ICR:
            return
        else:
            super().write_reg(reg, value)

    def _put(self, byte: int) -> None:
        if byte == 0x0A:
            self.flush()
        elif byte != 0x0D:
            self._pending.append(byte)

    def flush(self) -> None:
        """Emit the bytes sent since the last newline as one line (if any)."""
        if not self._pending:
            return
        text = self._pending.decode("utf-8", "replace")
        self._pending.clear()
        self.lines.append(text)
        if self.on_line is not None:
            self.on_line(text)


# -- watchdog --------------------------------------------------------------------

IWDG_KR, IWDG_PR, IWDG_RLR, IWDG_SR = 0x00, 0x04, 0x08, 0x0C
KEY_START, KEY_RELOAD, KEY_UNLOCK = 0xCCCC, 0xAAAA, 0x5555


class Watchdog(Peripheral):
    """An STM32 IWDG whose timeout is counted in emulator ticks.

    Writing ``0xCCCC`` to ``KR`` starts it (it cannot be stopped again, as on
    the real part); ``0xAAAA`` feeds it. Once started, ``timeout_ticks``
    ticks in a row without a feed make it bark: a ``watchdog`` crash.
    ``PR`` and ``RLR`` are stored for the firmware to read back; they do not
    change the timeout (the model has no LSI clock).
    """

    name = "iwdg"

    def __init__(self, base: int = 0x5A002000, timeout_ticks: int = 4) -> None:
        if timeout_ticks < 1:
            raise ValueError(f"watchdog timeout_ticks {timeout_ticks} must be >= 1")
        super().__init__(base, 0x400)
        self.timeout_ticks = timeout_ticks
        self.reset()

    def reset(self) -> None:
        """Stopped, never fed."""
        self.started = False
        self.fed = False
        self.idle_ticks = 0
        self.feeds = 0
        self.regs = {IWDG_PR: 0, IWDG_RLR: 0xFFF}

    def read_reg(self, reg: int) -> int:
        """``KR`` reads 0, ``SR`` reads 0 (no update pending)."""
        if reg in (IWDG_KR, IWDG_SR):
            return 0
        if reg in self.regs:
            return self.regs[reg]
        return super().read_reg(reg)

    def write_reg(self, reg: int, value: int) -> None:
        """``KR`` keys start and feed it; ``PR``/``RLR`` are stored."""
        if reg == IWDG_KR:
            key = value & 0xFFFF
            if key == KEY_START:
                self.started = True
            if key in (KEY_START, KEY_RELOAD):
                self.fed = True
                self.feeds += 1
        elif reg in self.regs:
            self.regs[reg] = value & 0xFFF
        elif reg == IWDG_SR:
            return
        else:
            super().write_reg(reg, value)

    def tick(self) -> Crash | None:
        """Count a tick without a feed; bark after ``timeout_ticks`` of them."""
        if not self.started:
            return None
        self.idle_ticks = 0 if self.fed else self.idle_ticks + 1
        self.fed = False
        if self.idle_ticks >= self.timeout_ticks:
            return Crash(
                "watchdog",
                f"watchdog not fed for {self.idle_ticks} ticks "
                f"(timeout {self.timeout_ticks})",
            )
        return None


# -- system control space ----------------------------------------------------------

SCS_BASE = 0xE000E000
SYST_CSR, SYST_RVR, SYST_CVR, SYST_CALIB = 0x010, 0x014, 0x018, 0x01C
SCB_CPUID, SCB_ICSR, SCB_VTOR, SCB_AIRCR = 0xD00, 0xD04, 0xD08, 0xD0C
CSR_ENABLE, CSR_TICKINT, CSR_COUNTFLAG = 1 << 0, 1 << 1, 1 << 16
SCB_SHPR1, SCB_SHPR3 = 0xD18, 0xD20
NVIC_ISER, NVIC_IABR, NVIC_IPR, NVIC_STIR = 0x100, 0x300, 0x400, 0xF00
#: Interrupt lines the model's NVIC has (stm32mp15's M4 uses up to ~150).
NVIC_IRQS = 160
SVCALL_EXCEPTION, PENDSV_EXCEPTION, SYSTICK_EXCEPTION = 11, 14, 15

#: CPUID of the cores the model runs (Arm's CPUID base register values).
CPUID = {
    "cortex-m0": 0x410CC601,  # Cortex-M0+ r0p1 (stm32mp2's M0+)
    "cortex-m4": 0x410FC241,
    "cortex-m7": 0x411FC272,
    "cortex-m33": 0x411FD210,
}


class SystemControl(Peripheral):
    """The Armv7-M/Armv8-M system control space page (0xE000E000, 4 KiB).

    * SysTick counts down one per instruction (as the core advances time),
      reloads from ``RVR``, raises ``COUNTFLAG`` (cleared by reading
      ``CSR``) and, with ``TICKINT``, pends exception 15 on time.
    * The NVIC: ``ISER``/``ICER`` enable, ``ISPR``/``ICPR`` pend, ``IABR``
      shows active, ``IPR`` priorities, ``STIR`` pends by number; ``ICSR``
      pends PendSV/SysTick and shows the active and pending vectors;
      ``SHPR1-3`` hold the system handlers' priorities. The core takes
      what :meth:`next_exception` picks (priority grouping is ignored: the
      whole priority byte orders exceptions).
    * ``CPUID`` names the core; ``VTOR`` and every other register read back
      what was written, so start-up code that configures them runs on.
    """

    name = "scs"

    def __init__(self, cpu: str = "cortex-m4") -> None:
        super().__init__(SCS_BASE, 0x1000)
        if cpu not in CPUID:
            raise ValueError(f"cpu {cpu!r} unknown (known: {', '.join(CPUID)})")
        self.cpu = cpu
        self.reset()

    def reset(self) -> None:
        """SysTick off, nothing enabled, pending or active, stored registers 0."""
        self.csr = 0
        self.rvr = 0
        self.cvr = 0
        self.wraps = 0
        self.stored: dict[int, int] = {}
        self.enabled: set[int] = set()  # IRQ numbers
        self.pending: set[int] = set()  # exception numbers
        self.active: list[int] = []  # exception numbers, innermost last
        self.priority = bytearray(16 + NVIC_IRQS)  # by exception number

    # -- the exception model the core drives ---------------------------------------
    def pend(self, exception: int) -> None:
        """Make ``exception`` (16 + IRQ for interrupts) pending."""
        if not 2 <= exception < 16 + NVIC_IRQS:
            raise ValueError(f"exception {exception} out of range 2..{15 + NVIC_IRQS}")
        self.pending.add(exception)

    def execution_priority(self) -> int:
        """Priority of the running context (256: thread mode, none active)."""
        return min((self.priority[e] for e in self.active), default=256)

    def next_exception(self, masked: int | None) -> int | None:
        """The pending exception that would preempt now, if any.

        ``masked`` is a priority at or above which nothing is taken (PRIMASK
        set: 0; BASEPRI: its value), None when nothing is masked.
        """
        limit = self.execution_priority()
        if masked is not None:
            limit = min(limit, masked)
        ready = [
            (self.priority[e], e)
            for e in self.pending
            if e < 16 or e - 16 in self.enabled
        ]
        best = min(ready, default=None)
        return best[1] if best is not None and best[0] < limit else None

    def activate(self, exception: int) -> None:
        """The core entered ``exception``'s handler."""
        self.pending.discard(exception)
        self.active.append(exception)

    def deactivate(self) -> int:
        """The core returned from the innermost handler; its number.

        Raises
        ------
        ValueError
            No exception is active.
        """
        if not self.active:
            raise ValueError("exception return with no exception active")
        return self.active.pop()

    # -- registers --------------------------------------------------------------------
    def read_reg(self, reg: int) -> int:
        """SysTick, NVIC, ICSR, SHPR, CPUID; other registers as stored."""
        if reg == SYST_CSR:
            value = self.csr
            self.csr &= ~CSR_COUNTFLAG
            return value
        simple = {SYST_RVR: self.rvr, SYST_CVR: self.cvr, SYST_CALIB: 0,
                  SCB_CPUID: CPUID[self.cpu], SCB_ICSR: self._icsr()}  # fmt: skip
        if reg in simple:
            return simple[reg]
        nvic = self._nvic_read(reg)
        if nvic is not None:
            return nvic
        return self.stored.get(reg, 0)

    def peek_reg(self, reg: int) -> int:
        """As :meth:`read_reg`, except that ``CSR.COUNTFLAG`` stays as it is."""
        return self.csr if reg == SYST_CSR else self.read_reg(reg)

    def _icsr(self) -> int:
        pending = min(self.pending, default=0)
        active = self.active[-1] if self.active else 0
        bits = (1 << 26 if 15 in self.pending else 0) | (
            1 << 28 if 14 in self.pending else 0
        )
        return bits | (pending << 12) | active

    def _nvic_read(self, reg: int) -> int | None:
        if NVIC_ISER <= reg < NVIC_ISER + 0x200:
            bank, offset = divmod(reg - NVIC_ISER, 0x80)
            if offset >= NVIC_IRQS // 8:
                return None
            chosen = self.enabled if bank < 2 else self._pending_irqs()
            return _bits(chosen, offset * 8)
        if NVIC_IABR <= reg < NVIC_IABR + NVIC_IRQS // 8:
            return _bits(self._active_irqs(), (reg - NVIC_IABR) * 8)
        if NVIC_IPR <= reg < NVIC_IPR + NVIC_IRQS:
            first = 16 + reg - NVIC_IPR
            return int.from_bytes(self.priority[first : first + 4], "little")
        if SCB_SHPR1 <= reg <= SCB_SHPR3:
            first = 4 + reg - SCB_SHPR1
            return int.from_bytes(self.priority[first : first + 4], "little")
        return None

    def _pending_irqs(self) -> set[int]:
        return {e - 16 for e in self.pending if e >= 16}

    def _active_irqs(self) -> set[int]:
        return {e - 16 for e in self.active if e >= 16}

    def write_reg(self, reg: int, value: int) -> None:
        """SysTick, NVIC, ICSR, SHPR, STIR; anything else is stored."""
        if reg == SYST_CSR:
            self.csr = (self.csr & CSR_COUNTFLAG) | (value & 0x7)
        elif reg == SYST_RVR:
            self.rvr = value & 0xFFFFFF
        elif reg == SYST_CVR:
            self.cvr = 0  # any write clears the counter and COUNTFLAG
            self.csr &= ~CSR_COUNTFLAG
        elif reg in (SYST_CALIB, SCB_CPUID):
            return  # read-only
        elif reg == SCB_ICSR:
            self._icsr_write(value)
        elif reg == NVIC_STIR:
            self.pend(16 + (value & 0x1FF) % NVIC_IRQS)
        elif not self._nvic_write(reg, value):
            self.stored[reg] = value

    def _icsr_write(self, value: int) -> None:
        for bit, exc, setting in ((28, 14, True), (27, 14, False),
                                  (26, 15, True), (25, 15, False)):  # fmt: skip
            if value >> bit & 1:
                if setting:
                    self.pending.add(exc)
                else:
                    self.pending.discard(exc)

    def _nvic_write(self, reg: int, value: int) -> bool:
        if NVIC_ISER <= reg < NVIC_ISER + 0x200:
            bank, word = divmod(reg - NVIC_ISER, 0x80)
            if word >= NVIC_IRQS // 8:
                return False
            irqs = {word * 8 + i for i in range(32) if value >> i & 1}
            if bank == 0:
                self.enabled |= irqs
            elif bank == 1:
                self.enabled -= irqs
            elif bank == 2:
                self.pending |= {16 + i for i in irqs}
            else:
                self.pending -= {16 + i for i in irqs}
            return True
        for base, first, count in ((NVIC_IPR, 16, NVIC_IRQS), (SCB_SHPR1, 4, 12)):
            if base <= reg < base + count:
                start = first + reg - base
                self.priority[start : start + 4] = value.to_bytes(4, "little")
                return True
        return False

    def advance(self, cycles: int) -> None:
        """Count SysTick down by ``cycles``."""
        if not self.csr & CSR_ENABLE or cycles <= 0:
            return
        if self.rvr == 0:
            self.cvr = 0  # a reload value of 0 keeps the counter stopped
            return
        period = self.rvr + 1
        # from 0 the first cycle only reloads: 0 comes back after a period
        current = self.cvr or period
        if cycles < current:
            self.cvr = current - cycles
            return
        left = cycles - current
        self.wraps += 1 + left // period
        self.cvr = (period - left % period) % period
        self.csr |= CSR_COUNTFLAG
        if self.csr & CSR_TICKINT:
            self.pend(SYSTICK_EXCEPTION)

    def cycles_to_event(self) -> int | None:
        """Cycles until SysTick reaches 0 with its interrupt enabled."""
        ticking = self.csr & CSR_ENABLE and self.csr & CSR_TICKINT and self.rvr
        return (self.cvr or self.rvr + 1) if ticking else None


def _bits(irqs: set[int], base: int) -> int:
    """The 32-bit NVIC word for IRQs ``base`` .. ``base + 31``."""
    return sum(1 << (i - base) for i in irqs if base <= i < base + 32)
