"""The remoteproc trusted application (``ta/remoteproc``), modelled.

A flat command switch; each handler checks its parameter types, finds the
processor's context, then switches on the context state (spec 2.3-2.4,
2.8). LOAD_FW itself lives in :mod:`rproctee.tee.ta_load`.

The TA reaches the platform only through the TEE internal client API
(:class:`~rproctee.tee.core.TaEnv`): one session to the PTA, opened by the
first client session with the same parameters, closed with the last one.

Phase hook
----------
LOAD_FW reads the caller's shared buffer in place, so a concurrent
normal-world thread can change it at any moment. To let tests (and users
studying TOCTOU) act at the moments that matter, the TA calls
``on_phase(name, info)`` (see :data:`PHASES`) at these points, in this order:

``header_copied``
    the header, TLVs and signature were copied to the TA's heap;
``authenticated``
    the signature over header + TLVs verified;
``ehdr_checked``
    an image's ELF header passed its checks (``image``);
``phdr_checked``
    a PT_LOAD program header passed its checks and has its signed hash
    (``image``, ``index``, ``p_paddr``, ``p_filesz``, ``p_memsz``); under
    ``strict`` this happens in the plan, before any write;
``segment_copy_before`` / ``segment_copy_after``
    around the PTA copy of one segment's file bytes (``copy``: the count of
    copies so far in this load, ``da``, ``size``, ``src``: memref offset);
    ``segment_copy_after`` comes whatever the platform answered (a segment
    whose hash did not match has been read, and wiped, by then);
``rsc_lookup_before``
    before the ``.resource_table`` section of an image is looked for
    (``image``).

Every ``info`` also has ``rproc_id`` and ``policy``. The hook may change the
caller's own buffer (that is what it is for); anything it raises other than a
:class:`~rproctee.tee.results.TeeError` kills the TA instance as any TA fault
does (``TEE_ERROR_TARGET_DEAD``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

# LOAD_FW's modules are imported with the TA, not on the first LOAD_FW: an
# import inside the call would be timed as the TA's work in every load report.
from rproctee.tee import ta_strict as _ta_strict  # noqa: F401
from rproctee.tee.core import UUID, TaEnv, TaFlags
from rproctee.tee.params import Memref, Param, ParamType, Value, param_types
from rproctee.tee.policy import Policy
from rproctee.tee.pta_stm32mp import PTA_RPROC_UUID, TA_REMOTEPROC_UUID, PtaCommand
from rproctee.tee.results import TeeError, TeeResult
from rproctee.tee.ta_load import FirmwareLoad

TA_UUID = TA_REMOTEPROC_UUID
#: SINGLE_INSTANCE | INSTANCE_KEEP_ALIVE | DEVICE_ENUM; not MULTI_SESSION.
TA_FLAGS = TaFlags.SINGLE_INSTANCE | TaFlags.INSTANCE_KEEP_ALIVE | TaFlags.DEVICE_ENUM
#: ``CFG_REMOTEPROC_TA_HEAP_SIZE`` default.
DEFAULT_HEAP_SIZE = 4096
#: sizeof(struct remoteproc_context) on the 32-bit TA.
CONTEXT_SIZE = 64

#: The phases LOAD_FW reports to ``on_phase``, in the order they happen.
PHASES = (
    "header_copied",
    "authenticated",
    "ehdr_checked",
    "phdr_checked",
    "segment_copy_before",
    "segment_copy_after",
    "rsc_lookup_before",
)
PhaseHook = Callable[[str, dict[str, Any]], None]

VI, VO = ParamType.VALUE_INPUT, ParamType.VALUE_OUTPUT
MI, MO = ParamType.MEMREF_INPUT, ParamType.MEMREF_OUTPUT
PT_ID = param_types(VI)


class TaCommand(IntEnum):
    """Commands of the remoteproc TA (``ta_remoteproc.h``)."""

    #: [0] in a = processor id; [1] memref in = signed image. 0x0051.
    LOAD_FW = 1
    #: [0] in a = processor id. 0x0001.
    START_FW = 2
    #: [0] in a = processor id. 0x0001.
    STOP_FW = 3
    #: [0] in a = id; [1] out a/b = table PA low/high; [2] out a/b = size. 0x0221.
    GET_RSC_TABLE = 4
    #: [0] in a = id; [1] memref out = ELF core (strict only; upstream:
    #: NOT_IMPLEMENTED whatever the parameters). 0x0061.
    GET_COREDUMP = 5
    #: [0] in a = processor id. 0x0001.
    RELEASE_FW = 6


class RprocState(IntEnum):
    """Per-processor state kept by the TA."""

    #: Nothing loaded (also after STOP and RELEASE, and after a failed load).
    OFF = 0
    #: Authenticated image in memory; START allowed.
    LOADED = 1
    #: Running.
    STARTED = 2


@dataclass
class RprocContext:
    """``struct remoteproc_context``: what the TA keeps per processor id."""

    rproc_id: int
    state: RprocState = RprocState.OFF
    rsc_pa: int = 0
    rsc_size: int = 0
    #: An authenticated image is in the memories (from a successful LOAD_FW
    #: until RELEASE_FW): still true after STOP_FW, when Linux takes its
    #: coredump during recovery.
    in_memory: bool = False


@dataclass
class LoadReport:
    """What the last LOAD_FW did (model introspection, not a TA output)."""

    rproc_id: int
    result: TeeResult = TeeResult.TEE_SUCCESS
    reason: str = ""
    phases: list[tuple[str, float]] = field(default_factory=list)
    heap_peak: int = 0
    scrubbed: bool = False
    #: (what, bytes, seconds) of costs the phases do not show apart (the
    #: strict plan's region checks and resource table), for load_profile
    profile_marks: list[tuple[str, int, float]] = field(default_factory=list)


def _bad_params(reason: str) -> TeeError:
    return TeeError(TeeResult.TEE_ERROR_BAD_PARAMETERS, reason)


def _bad_state(cmd: TaCommand, ctx: RprocContext) -> TeeError:
    return TeeError(
        TeeResult.TEE_ERROR_BAD_STATE,
        f"{cmd.name} refused: processor {ctx.rproc_id} is {ctx.state.name}",
    )


def _check_types(cmd: TaCommand, ptypes: int, expected: int) -> None:
    if ptypes != expected:
        raise _bad_params(
            f"{cmd.name}: parameter types {ptypes:#06x}, expected {expected:#06x}"
        )


def _id(params: list[Param]) -> int:
    p = params[0]
    return p.a if isinstance(p, Value) else 0


class RemoteprocTa:
    """The remoteproc TA instance.

    Parameters
    ----------
    env : TaEnv
        Heap and internal client API given by the core.
    policy : Policy
        ``optee`` (upstream answers) or ``strict``.
    on_phase : callable, optional
        ``on_phase(name, info)``, called at each phase of LOAD_FW (module
        docstring); None: no hook.
    """

    def __init__(
        self,
        env: TaEnv,
        policy: Policy = Policy.STRICT,
        on_phase: PhaseHook | None = None,
    ) -> None:
        self.env = env
        self.policy = policy
        self.on_phase = on_phase
        self.contexts: dict[int, RprocContext] = {}
        self.session_refcount = 0
        self.pta_session: int | None = None
        self.last_load: LoadReport | None = None

    # -- session entry points ----------------------------------------------
    def open_session(
        self, ptypes: int, params: list[Param], caller: UUID | None
    ) -> object:
        """One value-input parameter (processor id); first one opens the PTA."""
        if ptypes != PT_ID:
            raise _bad_params(
                f"open session: parameter types {ptypes:#06x}, expected 0x0001"
            )
        if self.session_refcount == 0:
            answer, sid = self.env.open_ta_session(PTA_RPROC_UUID, ptypes, params)
            if sid is None:
                raise TeeError(answer.result, answer.reason)
            self.pta_session = sid
        self.session_refcount += 1
        return None

    def close_session(self, session: object) -> None:
        """The last close also closes the PTA session."""
        self.session_refcount -= 1
        if self.session_refcount == 0 and self.pta_session is not None:
            self.env.close_ta_session(self.pta_session)
            self.pta_session = None

    def invoke_command(
        self, session: object, cmd: int, ptypes: int, params: list[Param]
    ) -> None:
        """Flat switch on the command id; unknown ids: BAD_PARAMETERS."""
        handler = self._handlers().get(cmd)
        if handler is None:
            raise _bad_params(f"unknown command {cmd:#x}")
        handler(ptypes, params)

    def _handlers(self) -> dict[int, Callable[[int, list[Param]], None]]:
        return {
            TaCommand.LOAD_FW: self.load_fw,
            TaCommand.START_FW: self.start_fw,
            TaCommand.STOP_FW: self.stop_fw,
            TaCommand.GET_RSC_TABLE: self.get_rsc_table,
            TaCommand.GET_COREDUMP: self.get_coredump,
            TaCommand.RELEASE_FW: self.release_fw,
        }

    # -- helpers -----------------------------------------------------------
    def pta(self, cmd: PtaCommand, ptypes: int, params: list[Param]) -> None:
        """Invoke the platform PTA; a non-success answer raises it as is."""
        if self.pta_session is None:
            raise TeeError(TeeResult.TEE_ERROR_BAD_STATE, "no PTA session open")
        answer = self.env.invoke_ta_command(self.pta_session, cmd, ptypes, params)
        if not answer.ok:
            raise TeeError(answer.result, answer.reason)

    def find_context(self, cmd: TaCommand, params: list[Param]) -> RprocContext:
        """Context of the id in param 0; none: BAD_PARAMETERS."""
        ctx = self.contexts.get(_id(params))
        if ctx is None:
            raise _bad_params(
                f"{cmd.name}: no context for processor id "
                f"{_id(params)} (no LOAD_FW named it)"
            )
        return ctx

    def add_context(self, rproc_id: int) -> RprocContext:
        """Find or create the context (created in OFF; heap: OUT_OF_MEMORY)."""
        ctx = self.contexts.get(rproc_id)
        if ctx is None:
            self.env.heap.alloc(CONTEXT_SIZE, "processor context")
            ctx = self.contexts[rproc_id] = RprocContext(rproc_id)
        return ctx

    # -- command handlers ------------------------------------------------------
    def load_fw(self, ptypes: int, params: list[Param]) -> None:
        """LOAD_FW: authenticate and load; spec 2.5."""
        _check_types(TaCommand.LOAD_FW, ptypes, param_types(VI, MI))
        ctx = self.add_context(_id(params))
        if ctx.state == RprocState.LOADED:
            return  # upstream: already loaded, the new image is not looked at
        if ctx.state != RprocState.OFF:
            raise _bad_state(TaCommand.LOAD_FW, ctx)
        image = params[1]
        if not isinstance(image, Memref) or image.buffer is None or not image.length:
            raise _bad_params("LOAD_FW: image memref is NULL or empty")
        ctx.in_memory = False  # whatever was there is being replaced
        FirmwareLoad(self, ctx, image).run()
        ctx.state = RprocState.LOADED
        ctx.in_memory = True

    def start_fw(self, ptypes: int, params: list[Param]) -> None:
        """START_FW: LOADED -> PTA start -> STARTED."""
        _check_types(TaCommand.START_FW, ptypes, PT_ID)
        ctx = self.find_context(TaCommand.START_FW, params)
        if ctx.state == RprocState.OFF:
            raise _bad_state(TaCommand.START_FW, ctx)
        if ctx.state == RprocState.LOADED:
            self.pta(PtaCommand.FIRMWARE_START, ptypes, params)
            ctx.state = RprocState.STARTED

    def stop_fw(self, ptypes: int, params: list[Param]) -> None:
        """STOP_FW: STARTED -> PTA stop -> OFF; OFF: success, nothing done."""
        _check_types(TaCommand.STOP_FW, ptypes, PT_ID)
        ctx = self.find_context(TaCommand.STOP_FW, params)
        if ctx.state == RprocState.LOADED:
            raise _bad_state(TaCommand.STOP_FW, ctx)
        if ctx.state == RprocState.STARTED:
            self.pta(PtaCommand.FIRMWARE_STOP, ptypes, params)
            ctx.state = RprocState.OFF

    def get_rsc_table(self, ptypes: int, params: list[Param]) -> None:
        """GET_RSC_TABLE: stored PA and size, split in 32-bit halves."""
        _check_types(TaCommand.GET_RSC_TABLE, ptypes, param_types(VI, VO, VO))
        ctx = self.find_context(TaCommand.GET_RSC_TABLE, params)
        if ctx.state == RprocState.OFF:
            raise _bad_state(TaCommand.GET_RSC_TABLE, ctx)
        addr, size = params[1], params[2]
        assert isinstance(addr, Value) and isinstance(size, Value)
        addr.a, addr.b = ctx.rsc_pa & 0xFFFFFFFF, ctx.rsc_pa >> 32
        size.a, size.b = ctx.rsc_size & 0xFFFFFFFF, ctx.rsc_size >> 32

    def get_coredump(self, ptypes: int, params: list[Param]) -> None:
        """GET_COREDUMP: NOT_IMPLEMENTED upstream; strict: ELF core."""
        if self.policy is Policy.OPTEE:
            raise TeeError(
                TeeResult.TEE_ERROR_NOT_IMPLEMENTED,
                "GET_COREDUMP is not implemented by the upstream TA",
            )
        _check_types(TaCommand.GET_COREDUMP, ptypes, param_types(VI, MO))
        ctx = self.find_context(TaCommand.GET_COREDUMP, params)
        # after STOP_FW (state OFF) the image is still there until RELEASE_FW:
        # that is when rproc_boot_recovery takes the dump
        if ctx.state == RprocState.OFF and not ctx.in_memory:
            raise _bad_state(TaCommand.GET_COREDUMP, ctx)
        # the TA cannot see device memory: the platform builds the core
        self.pta(PtaCommand.DUMP_MEMORY, ptypes, params)

    def release_fw(self, ptypes: int, params: list[Param]) -> None:
        """RELEASE_FW: PTA release (wipes the memories) unless STARTED."""
        _check_types(TaCommand.RELEASE_FW, ptypes, PT_ID)
        ctx = self.find_context(TaCommand.RELEASE_FW, params)
        if ctx.state == RprocState.STARTED:
            raise _bad_state(TaCommand.RELEASE_FW, ctx)
        self.pta(PtaCommand.RELEASE, ptypes, params)
        ctx.state = RprocState.OFF
        ctx.in_memory = False
