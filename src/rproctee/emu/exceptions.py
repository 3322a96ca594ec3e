"""Armv7-M exception entry and return for the emulated core.

unicorn runs the instructions but not the M-profile exception model, so the
core does it here, as the architecture describes it (ARMv7-M ARM B1.5.6 and
B1.5.8):

* entry: push the basic frame (r0-r3, r12, lr, return address, xPSR) on the
  current stack, 8-byte aligned (``CCR.STKALIGN``: bit 9 of the stacked xPSR
  says a padding word was added), set ``LR`` to ``EXC_RETURN``
  (``0xFFFFFFF9`` from thread mode on the main stack, ``0xFFFFFFFD`` on the
  process stack, ``0xFFFFFFF1`` from a handler), ``IPSR`` to the exception
  number and jump to its vector (``VTOR + 4 * number``);
* return: a branch to ``EXC_RETURN`` (unicorn reports it as exception 8)
  pops that frame and goes back where the exception was taken.

Thread mode may run on the process stack (``CONTROL.SPSEL`` = 1, as RTOS
threads do): the frame then goes on the PSP, the handler runs on the MSP
and ``EXC_RETURN`` = ``0xFFFFFFFD`` brings the thread back to the PSP, so a
PendSV context switch that rewrites the PSP works. Not modelled:
floating-point context stacking (a handler that uses the FPU clobbers the
interrupted code's FPU registers; ``EXC_RETURN`` never asks for an extended
frame, so an RTOS port that tests bit 4 saves no FPU state).
"""

from __future__ import annotations

import struct
from typing import Any

from rproctee.emu.peripherals import SCB_VTOR, SystemControl
from rproctee.errors import AddressError
from rproctee.platform.memory import DeviceMemory

EXC_RETURN_HANDLER = 0xFFFFFFF1
EXC_RETURN_THREAD_MSP = 0xFFFFFFF9
EXC_RETURN_THREAD_PSP = 0xFFFFFFFD
_FRAME = ("r0", "r1", "r2", "r3", "r12", "lr", "pc", "xpsr")
_XPSR_T = 1 << 24
_XPSR_ALIGNED = 1 << 9
_CONTROL_SPSEL = 1 << 1


class ExceptionModel:
    """Exception entry and return over one unicorn engine.

    Parameters
    ----------
    uc : unicorn.Uc
    reg_ids : dict
        Register name -> unicorn register id (as :class:`EmulatedCore` has).
    memory : DeviceMemory
        Where vectors are read from.
    scs : SystemControl
        The NVIC and VTOR.
    stack_error : callable
        The unicorn error type raised by a stack access outside memory.
    """

    def __init__(
        self,
        uc: Any,
        reg_ids: dict[str, int],
        memory: DeviceMemory,
        scs: SystemControl,
        stack_error: type[Exception],
    ) -> None:
        self.uc = uc
        self.reg = reg_ids
        self.memory = memory
        self.scs = scs
        self.stack_error = stack_error

    def _read(self, name: str) -> int:
        return int(self.uc.reg_read(self.reg[name])) & 0xFFFFFFFF

    def vector(self, exception: int) -> int | str:
        """The handler address of ``exception``, or why it cannot be used."""
        vtor = self.scs.stored.get(SCB_VTOR, 0) & ~0x7F
        where = vtor + 4 * exception
        try:
            handler = int.from_bytes(self.memory.read_da(where, 4), "little")
        except AddressError:
            return f"vector {exception} at {where:#010x} is outside device memory"
        if not handler & 1:
            return f"vector {exception} = {handler:#010x} is not a Thumb address"
        try:
            self.memory.locate_da(handler & ~1, 2)
        except AddressError:
            return f"vector {exception} = {handler:#010x} points outside device memory"
        return handler

    def mask(self) -> int | None:
        """The priority at and above which exceptions wait (PRIMASK, BASEPRI)."""
        if self._read("primask") & 1:
            return 0
        basepri = self._read("basepri") & 0xFF
        return basepri or None

    def enter(self, exception: int, return_pc: int) -> str | None:
        """Take ``exception``, to come back to ``return_pc``; why not, if refused."""
        handler = self.vector(exception)
        if isinstance(handler, str):
            return handler
        thread = not self.scs.active
        on_psp = thread and bool(self._read("control") & _CONTROL_SPSEL)
        stack = "psp" if on_psp else "sp"
        sp = self._read(stack)
        pad = sp & 4
        frame_sp = sp - pad - 32
        values = {name: self._read(name) for name in _FRAME}
        values["pc"] = return_pc & ~1
        values["xpsr"] = values["xpsr"] | _XPSR_T | (_XPSR_ALIGNED if pad else 0)
        try:
            self.uc.mem_write(
                frame_sp, struct.pack("<8I", *(values[n] for n in _FRAME))
            )
        except self.stack_error:
            return f"stacking exception {exception} at sp {frame_sp:#010x} faulted"
        self.uc.reg_write(self.reg[stack], frame_sp)
        if on_psp:
            # still in thread mode: clearing SPSEL makes the MSP current
            control = self._read("control") & ~_CONTROL_SPSEL
            self.uc.reg_write(self.reg["control"], control)
            exc_return = EXC_RETURN_THREAD_PSP
        else:
            exc_return = EXC_RETURN_THREAD_MSP if thread else EXC_RETURN_HANDLER
        self.uc.reg_write(self.reg["lr"], exc_return)
        self.uc.reg_write(self.reg["xpsr"], _XPSR_T | exception)
        self.uc.reg_write(self.reg["pc"], handler | 1)
        self.scs.activate(exception)
        return None

    def leave(self, exc_return: int) -> str | None:
        """Return from the innermost handler through ``exc_return``; why not."""
        exc_return |= 1
        modelled = (EXC_RETURN_HANDLER, EXC_RETURN_THREAD_MSP, EXC_RETURN_THREAD_PSP)
        if exc_return not in modelled:
            return (
                f"EXC_RETURN {exc_return:#010x} not modelled "
                "(floating-point frame or reserved value)"
            )
        if not self.scs.active:
            return f"exception return to {exc_return:#010x} with no exception active"
        to_psp = exc_return == EXC_RETURN_THREAD_PSP
        stack = "psp" if to_psp else "sp"
        sp = self._read(stack)
        try:
            raw = bytes(self.uc.mem_read(sp, 32))
        except self.stack_error:
            return f"unstacking at sp {sp:#010x} faulted"
        frame = dict(zip(_FRAME, struct.unpack("<8I", raw), strict=True))
        self.scs.deactivate()
        to_thread = exc_return != EXC_RETURN_HANDLER
        if to_thread != (not self.scs.active):
            return (
                f"EXC_RETURN {exc_return:#010x} does not match the active "
                "exceptions (INVPC)"
            )
        for name in ("r0", "r1", "r2", "r3", "r12", "lr"):
            self.uc.reg_write(self.reg[name], frame[name])
        pad = 4 if frame["xpsr"] & _XPSR_ALIGNED else 0
        self.uc.reg_write(self.reg[stack], sp + 32 + pad)
        self.uc.reg_write(self.reg["xpsr"], frame["xpsr"] & ~_XPSR_ALIGNED)
        if to_thread:
            # back in thread mode: SPSEL picks the stack the thread runs on
            control = self._read("control") & ~_CONTROL_SPSEL
            self.uc.reg_write(
                self.reg["control"], control | (_CONTROL_SPSEL if to_psp else 0)
            )
        self.uc.reg_write(self.reg["pc"], frame["pc"] | 1)
        return None
