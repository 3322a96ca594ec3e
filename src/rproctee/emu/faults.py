"""What stops the emulated core: fault kinds, register snapshots, crash reports.

The model halts the core at the faulting instruction, as a debug probe with
every vector catch set (``DEMCR.VC_*``) would, instead of entering the
firmware's fault handler: the report then carries the registers of the
faulting context, which is what a coredump should show. Each kind maps to
the ``enum rproc_crash_type`` the rproc core is told:

===================== ====================== ==========================================
kind                  rproc crash type       when
===================== ====================== ==========================================
bus fault             ``RPROC_MMUFAULT``     a load/store/fetch outside every device
                                             memory and peripheral, or a store into a
                                             read-only region (an IOMMU fault on the
                                             boards that have one)
undefined instruction ``RPROC_FATAL_ERROR``  UDF or an encoding the core does not
                                             have (UsageFault UNDEFINSTR, NOCP)
HardFault             ``RPROC_FATAL_ERROR``  a fault with no configurable handler:
                                             BKPT with no debugger (DEBUGEVT), SVC
                                             with no handler or priority, an unusable
                                             vector or a stacking fault at exception
                                             entry, a bad EXC_RETURN, a branch to ARM
                                             state (INVSTATE)
lockup                ``RPROC_FATAL_ERROR``  the reset sequence fails: vector table
                                             unreadable, reset vector not a Thumb
                                             address in device memory
watchdog              ``RPROC_WATCHDOG``     the IWDG was not fed in time
===================== ====================== ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from rproctee.linux.state import CrashType


class FaultKind(Enum):
    """Why the core stopped (see the module table)."""

    BUS_FAULT = "bus fault"
    UNDEFINED_INSTRUCTION = "undefined instruction"
    HARD_FAULT = "HardFault"
    LOCKUP = "lockup"
    WATCHDOG = "watchdog"

    @property
    def crash_type(self) -> CrashType:
        """The ``rproc_crash_type`` reported to the rproc core."""
        if self is FaultKind.BUS_FAULT:
            return CrashType.MMUFAULT
        if self is FaultKind.WATCHDOG:
            return CrashType.WATCHDOG
        return CrashType.FATAL_ERROR

    @property
    def signal(self) -> int:
        """The POSIX signal a core file names for it (``pr_cursig``)."""
        return {
            FaultKind.BUS_FAULT: 7,  # SIGBUS
            FaultKind.UNDEFINED_INSTRUCTION: 4,  # SIGILL
            FaultKind.HARD_FAULT: 5,  # SIGTRAP: BKPT, SVC
            FaultKind.LOCKUP: 4,  # SIGILL: nothing sane to run
            FaultKind.WATCHDOG: 6,  # SIGABRT
        }[self]


#: Names of the core registers in snapshot order (``pr_reg`` order for r0-pc).
CORE_REGISTERS = (
    "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11",
    "r12", "sp", "lr", "pc", "xpsr",
)  # fmt: skip
#: Special registers captured beside them.
SPECIAL_REGISTERS = ("msp", "psp", "primask", "basepri", "control")


@dataclass(frozen=True)
class Registers:
    """A snapshot of the core's registers, each a 32-bit unsigned value."""

    values: dict[str, int]

    def __getitem__(self, name: str) -> int:
        return self.values[name]

    @property
    def pc(self) -> int:
        """The program counter (the faulting instruction for a fault)."""
        return self.values["pc"]

    def pr_reg(self) -> tuple[int, ...]:
        """The 18 words of ARM ``elf_gregset_t``: r0-r15, cpsr (xPSR), orig_r0."""
        return (*(self.values[n] for n in CORE_REGISTERS), self.values["r0"])

    def to_dict(self) -> dict[str, int]:
        """Name -> value (JSON-ready)."""
        return dict(self.values)


@dataclass(frozen=True)
class CrashReport:
    """Why and where the core stopped.

    Attributes
    ----------
    kind : FaultKind
    reason : str
        One line: what was accessed or executed, where.
    registers : Registers
        The core's registers at the fault (``pc`` = faulting instruction).
    address : int or None
        The faulting data or fetch address, when there is one.
    tick : int
        The emulator tick it happened in.
    """

    kind: FaultKind
    reason: str
    registers: Registers
    address: int | None = None
    tick: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def crash_type(self) -> CrashType:
        """The rproc crash type (``rproc_report_crash`` argument)."""
        return self.kind.crash_type

    def summary(self) -> str:
        """``<kind> at pc 0x...: <reason>``."""
        return f"{self.kind.value} at pc {self.registers.pc:#010x}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "kind": self.kind.value,
            "crash_type": self.crash_type.word,
            "reason": self.reason,
            "address": self.address,
            "tick": self.tick,
            "registers": self.registers.to_dict(),
        }
