"""The TEE core: TA registry, session rules, parameter marshalling, panics.

Modelled on OP-TEE's core, only as far as the remoteproc TA needs it:

* user TAs register by UUID with their property flags and heap size; pseudo
  TAs (PTAs, part of the core) register an instance;
* a SINGLE_INSTANCE TA has one instance; without MULTI_SESSION a second open
  session while one is open gets ``TEE_ERROR_BUSY``; INSTANCE_KEEP_ALIVE keeps
  the instance (and its state) after the last session closes;
* a TA panic (:class:`TaPanic`) kills the instance: the client sees
  ``TEE_ERROR_TARGET_DEAD``, every session of that instance is dead and the
  TA's state is lost; its own sessions to PTAs are closed.  Any other
  exception escaping a TA (a defect of the model, or of a hostile input the
  model did not foresee) is treated the same way, as a real TEE treats a TA
  that aborts: the answer carries the traceback, and nothing but an
  :class:`Answer` ever crosses the client API;
* a TA instance handles one call at a time: the core marks it busy for the
  duration of an entry point and other callers wait (``tee_ta_try_set_busy``
  / ``tee_ta_clear_busy``), so concurrent sessions, or threads sharing one
  session as a kernel driver does, see the answers of some serial order;
* memrefs crossing a boundary are checked against the memory they describe:
  a memref larger than its buffer is refused (for a TA caller libutee then
  panics the TA, which is how W1's 4 GiB signature memref ends).
"""

from __future__ import annotations

import os
import threading
import traceback as traceback_mod
import uuid as uuid_mod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntFlag
from typing import Any, Protocol

from rproctee.errors import RprocError
from rproctee.tee.params import (
    MEMREF_TYPES,
    NUM_PARAMS,
    OUTPUT_TYPES,
    SHM_BASE,
    VALUE_TYPES,
    Memref,
    Param,
    ParamType,
    Value,
    pad_params,
    param_type_at,
)
from rproctee.tee.results import Origin, TaPanic, TeeError, TeeResult, result_for

UUID = uuid_mod.UUID


class TaFlags(IntFlag):
    """TA property flags (``TA_FLAG_*``), the ones the model uses."""

    #: One instance shared by every session.
    SINGLE_INSTANCE = 1 << 2
    #: Several sessions may be open at once (without it: BUSY).
    MULTI_SESSION = 1 << 3
    #: The instance survives the close of its last session.
    INSTANCE_KEEP_ALIVE = 1 << 4
    #: Listed on the Linux TEE bus.
    DEVICE_ENUM = 1 << 9


@dataclass(frozen=True)
class Answer:
    """Outcome of one TEE call: result code, where it came from, and why."""

    result: TeeResult
    origin: Origin = Origin.TRUSTED_APP
    reason: str = ""
    #: For ``TARGET_DEAD`` caused by an unexpected exception in a TA or PTA:
    #: the Python traceback, so a report can show where the model failed.
    traceback: str = ""
    #: The four parameter slots as the TA returned them, for the output ones
    #: (``VALUE_OUTPUT``/``INOUT``: a new :class:`Value`; ``MEMREF_OUTPUT``/
    #: ``INOUT``: a :class:`Memref` with the size the TA set), None elsewhere.
    #: The caller's own params are updated in place too, as ``TEEC_InvokeCommand``
    #: does; reading ``answer.outputs[1].a`` needs no pre-built ``value_out()``.
    outputs: tuple[Param, ...] = ()

    @property
    def ok(self) -> bool:
        """True for ``TEE_SUCCESS``."""
        return self.result == TeeResult.TEE_SUCCESS


SUCCESS = Answer(TeeResult.TEE_SUCCESS)


class TrustedApplication(Protocol):
    """Entry points of a TA or PTA. Failures raise :class:`TeeError`."""

    def open_session(
        self, ptypes: int, params: list[Param], caller: UUID | None
    ) -> object:
        """TA_OpenSessionEntryPoint; returns the session context."""
        ...

    def close_session(self, session: object) -> None:
        """TA_CloseSessionEntryPoint."""
        ...

    def invoke_command(
        self, session: object, cmd: int, ptypes: int, params: list[Param]
    ) -> None:
        """TA_InvokeCommandEntryPoint."""
        ...


class TaHeap:
    """Byte accounting of a TA heap (OP-TEE's bget pool of ``heap_size`` bytes).

    Each allocation costs its size rounded up to 8 plus a 16-byte block head;
    ``reserved`` bytes stand for what libutee itself keeps there (session
    bookkeeping, the digest operation), so that a two-segment image peaks at
    about 900 bytes, as measured on the real TA.

    Parameters
    ----------
    size : int
        Heap size in bytes (``CFG_REMOTEPROC_TA_HEAP_SIZE``, default 4 KiB).
    reserved : int
        Bytes already used by the runtime.
    """

    HEAD = 16

    def __init__(self, size: int = 4096, reserved: int = 160) -> None:
        self.size = size
        self.used = reserved
        self.peak = reserved

    def cost(self, nbytes: int) -> int:
        """Bytes an allocation of ``nbytes`` takes from the pool."""
        return ((nbytes + 7) & ~7) + self.HEAD

    def alloc(self, nbytes: int, what: str) -> int:
        """Take ``nbytes``; raise OUT_OF_MEMORY if the pool cannot hold them.

        Returns
        -------
        int
            A token to pass to :meth:`free`.
        """
        cost = self.cost(nbytes)
        if self.used + cost > self.size:
            raise TeeError(
                TeeResult.TEE_ERROR_OUT_OF_MEMORY,
                f"TA heap: {what} needs {nbytes} bytes, {self.size - self.used} "
                f"of {self.size} left (CFG_REMOTEPROC_TA_HEAP_SIZE)",
            )
        self.used += cost
        self.peak = max(self.peak, self.used)
        return cost

    def free(self, token: int) -> None:
        """Give back an allocation made by :meth:`alloc`."""
        self.used -= token


@dataclass
class _Registration:
    uuid: UUID
    factory: Callable[[TaEnv], TrustedApplication]
    flags: TaFlags
    heap_size: int


@dataclass
class _Instance:
    reg: _Registration
    ta: TrustedApplication
    env: TaEnv
    sessions: set[int] = field(default_factory=set)
    #: Held for the whole of one entry point: the instance is busy.
    busy: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Session:
    uuid: UUID
    ctx: object
    instance: _Instance | None  # None for a PTA session
    caller: UUID | None
    dead: bool = False


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


class TeeCore:
    """The secure-world core: registry, sessions, marshalling, panics.

    Two knobs of the model's speed, never of its answers:

    ``batch_segments``
        a strict LOAD_FW hands its planned segments to the platform in one
        LOAD_SEGMENTS_SHA256 call (same writes, log and answers as one
        LOAD_SEGMENT_SHA256 call per segment; the fused kernel then hashes
        two segments at a time per core). False: one call per segment.
    ``threads``
        worker threads for such a call; default: the usable cores.
    ``compiled_segment_calls``
        a LOAD_FW's per-segment calls to a PTA that offers a compiled path
        for them (:meth:`TaEnv.segment_lane`) run at C speed, one call per
        segment still; False: every call goes through :meth:`invoke`.
    """

    def __init__(self) -> None:
        self.threads = usable_cores()
        self.batch_segments = True
        self.compiled_segment_calls = True
        self._regs: dict[UUID, _Registration] = {}
        self._ptas: dict[UUID, TrustedApplication] = {}
        self._instances: dict[UUID, _Instance] = {}
        self._sessions: dict[int, _Session] = {}
        self._next_id = 1
        # guards the registry, session table and instance table; never held
        # while a TA runs (a TA calls back into the core for its PTA session)
        self._lock = threading.RLock()

    # -- registry ---------------------------------------------------------
    def register_ta(
        self,
        uuid: UUID | str,
        factory: Callable[[TaEnv], TrustedApplication],
        flags: TaFlags,
        heap_size: int = 4096,
    ) -> None:
        """Register a user TA by UUID (an instance is made on first open)."""
        u = UUID(str(uuid))
        self._regs[u] = _Registration(u, factory, flags, heap_size)

    def register_pta(self, uuid: UUID | str, pta: TrustedApplication) -> None:
        """Register a pseudo TA (always present, any number of sessions)."""
        self._ptas[UUID(str(uuid))] = pta

    def enumerate_devices(self) -> list[UUID]:
        """UUIDs of the TAs listed on the TEE bus (``TA_FLAG_DEVICE_ENUM``).

        What OP-TEE's device-enumeration PTA answers, and what Linux's TEE
        bus probes client drivers (``remoteproc_tee``) against.
        """
        with self._lock:
            regs = list(self._regs.values())
        return [r.uuid for r in regs if r.flags & TaFlags.DEVICE_ENUM]

    def instance(self, uuid: UUID | str) -> TrustedApplication | None:
        """The live instance of a user TA, for inspection (None if none)."""
        inst = self._instances.get(UUID(str(uuid)))
        return inst.ta if inst is not None else None

    # -- sessions ---------------------------------------------------------
    def open_session(
        self,
        uuid: UUID | str,
        ptypes: int,
        params: Sequence[Param],
        caller: UUID | None = None,
    ) -> tuple[Answer, int | None]:
        """Open a session; returns the answer and the session id (or None)."""
        u = UUID(str(uuid))
        if u in self._ptas:
            return self._open_pta(u, ptypes, params, caller)
        reg = self._regs.get(u)
        if reg is None:
            reason = f"no trusted application with UUID {u}"
            return Answer(TeeResult.TEE_ERROR_ITEM_NOT_FOUND, Origin.TEE, reason), None
        while True:
            with self._lock:
                inst = self._instances.get(u)
                if inst is None:
                    inst = self._create_instance(reg)
            with inst.busy:
                if self._instances.get(u) is not inst:
                    continue  # it died while this caller waited: a new one
                if inst.sessions and not (reg.flags & TaFlags.MULTI_SESSION):
                    reason = (
                        "TA is single-instance without MULTI_SESSION and has a session"
                    )
                    return Answer(TeeResult.TEE_ERROR_BUSY, Origin.TEE, reason), None
                return self._open_user(inst, ptypes, params, caller)

    def _create_instance(self, reg: _Registration) -> _Instance:
        env = TaEnv(self, reg.uuid, TaHeap(reg.heap_size))
        inst = _Instance(reg, reg.factory(env), env)
        self._instances[reg.uuid] = inst
        return inst

    def _open_user(
        self, inst: _Instance, ptypes: int, params: Sequence[Param], caller: UUID | None
    ) -> tuple[Answer, int | None]:
        def entry(p: list[Param]) -> object:
            return inst.ta.open_session(ptypes, p, caller)

        answer, ctx = self._call(inst, ptypes, params, entry)
        if not answer.ok:
            self._maybe_destroy(inst)
            return answer, None
        sid = self._new_session(_Session(inst.reg.uuid, ctx, inst, caller))
        inst.sessions.add(sid)
        return answer, sid

    def _open_pta(
        self, u: UUID, ptypes: int, params: Sequence[Param], caller: UUID | None
    ) -> tuple[Answer, int | None]:
        pta = self._ptas[u]

        def entry(p: list[Param]) -> object:
            return pta.open_session(ptypes, p, caller)

        answer, ctx = self._call(None, ptypes, params, entry)
        if not answer.ok:
            return answer, None
        return answer, self._new_session(_Session(u, ctx, None, caller))

    def _new_session(self, sess: _Session) -> int:
        with self._lock:
            sid = self._next_id
            self._next_id += 1
            self._sessions[sid] = sess
        return sid

    def invoke(
        self, sid: int, cmd: int, ptypes: int, params: Sequence[Param]
    ) -> Answer:
        """Invoke command ``cmd`` on session ``sid``."""
        sess = self._sessions.get(sid)
        if sess is None:
            reason = f"no open session {sid}"
            return Answer(TeeResult.TEE_ERROR_BAD_PARAMETERS, Origin.TEE, reason)
        inst = sess.instance
        if inst is None:
            return self._invoke(sess, self._ptas[sess.uuid], cmd, ptypes, params)
        with inst.busy:
            return self._invoke(sess, inst.ta, cmd, ptypes, params)

    def _invoke(
        self,
        sess: _Session,
        ta: TrustedApplication,
        cmd: int,
        ptypes: int,
        params: Sequence[Param],
    ) -> Answer:
        # checked with the instance busy: it may have died while we waited
        if sess.dead:
            reason = "the TA instance behind this session panicked"
            return Answer(TeeResult.TEE_ERROR_TARGET_DEAD, Origin.TEE, reason)

        def entry(p: list[Param]) -> object:
            ta.invoke_command(sess.ctx, cmd, ptypes, p)
            return None

        return self._call(sess.instance, ptypes, params, entry)[0]

    def segment_lane(self, sid: int, rproc_id: int) -> Any | None:
        """The PTA's compiled segment calls on PTA session ``sid`` (see
        :meth:`TaEnv.segment_lane`), or None."""
        sess = self._sessions.get(sid)
        if not self.compiled_segment_calls or sess is None or sess.instance is not None:
            return None
        factory = getattr(self._ptas[sess.uuid], "segment_lane", None)
        return factory(rproc_id) if factory is not None else None

    def close_session(self, sid: int) -> None:
        """Close a session (a dead one is just forgotten)."""
        with self._lock:
            sess = self._sessions.pop(sid, None)
        if sess is None:
            return
        if sess.instance is None:
            self._ptas[sess.uuid].close_session(sess.ctx)
            return
        inst = sess.instance
        with inst.busy:
            inst.sessions.discard(sid)
            if not sess.dead:
                self._close_entry(inst, sess)
                self._maybe_destroy(inst)

    def _close_entry(self, inst: _Instance, sess: _Session) -> None:
        """TA_CloseSessionEntryPoint; an exception there kills the instance."""
        try:
            inst.ta.close_session(sess.ctx)
        except Exception:  # noqa: BLE001 - a TA fault must not reach the client
            self._drop_instance(inst)

    def _maybe_destroy(self, inst: _Instance) -> None:
        keep = inst.reg.flags & TaFlags.INSTANCE_KEEP_ALIVE
        if not inst.sessions and not keep:
            self._drop_instance(inst)

    def _drop_instance(self, inst: _Instance) -> None:
        with self._lock:
            if self._instances.get(inst.reg.uuid) is inst:
                del self._instances[inst.reg.uuid]
            for sid in inst.sessions:
                if sid in self._sessions:
                    self._sessions[sid].dead = True
        for sid in list(inst.env.own_sessions):
            self.close_session(sid)
        inst.env.own_sessions.clear()

    # -- one call across the boundary -------------------------------------
    def _call(
        self,
        inst: _Instance | None,
        ptypes: int,
        params: Sequence[Param],
        entry: Callable[[list[Param]], object],
    ) -> tuple[Answer, object]:
        try:
            callee = marshal(ptypes, params)
        except TeeError as exc:
            return Answer(exc.result, Origin.TEE, exc.reason), None
        try:
            ctx = entry(callee)
        except TaPanic as exc:
            if inst is not None:
                self._drop_instance(inst)
            reason = f"TA panicked: {exc}"
            return Answer(TeeResult.TEE_ERROR_TARGET_DEAD, Origin.TEE, reason), None
        except RprocError as exc:
            # output sizes travel back on errors too (SHORT_BUFFER needs them)
            outputs = unmarshal(ptypes, params, callee)
            reason = exc.reason if isinstance(exc, TeeError) else str(exc)
            answer = Answer(result_for(exc), Origin.TRUSTED_APP, reason, "", outputs)
            return answer, None
        except Exception as exc:  # noqa: BLE001 - nothing else crosses the API
            return self._died(inst, exc), None
        outputs = unmarshal(ptypes, params, callee)
        return (Answer(TeeResult.TEE_SUCCESS, outputs=outputs) if outputs
                else SUCCESS), ctx  # fmt: skip

    def _died(self, inst: _Instance | None, exc: Exception) -> Answer:
        """An unexpected exception in a TA (or PTA): the TA aborted.

        OP-TEE answers ``TEE_ERROR_TARGET_DEAD`` when a TA dies and discards
        the instance; the model does the same and keeps the traceback in the
        answer so that a report can show what failed.
        """
        if inst is not None:
            self._drop_instance(inst)
        where = "TA" if inst is not None else "pseudo TA"
        reason = f"{where} aborted: {type(exc).__name__}: {exc}"
        trace = "".join(traceback_mod.format_exception(exc))
        return Answer(TeeResult.TEE_ERROR_TARGET_DEAD, Origin.TEE, reason, trace)


#: Type nibble -> ParamType member, looked up once (not built per slot).
_PTYPE: dict[int, ParamType] = {int(t): t for t in ParamType}
_VALUE_NIBBLES = frozenset(int(t) for t in VALUE_TYPES)
_MEMREF_NIBBLES = frozenset(int(t) for t in MEMREF_TYPES)


def marshal(ptypes: int, params: Sequence[Param]) -> list[Param]:
    """Build the callee's four slots from the caller's, as the word says.

    Raises
    ------
    TeeError
        BAD_PARAMETERS for an unknown type nibble or a memref larger than the
        memory behind it.
    """
    slots = pad_params(params)
    return [
        _marshal_slot(i, (ptypes >> (4 * i)) & 0xF, slots[i]) for i in range(NUM_PARAMS)
    ]


def check_params(ptypes: int, params: Sequence[Param]) -> None:
    """The checks of :func:`marshal` without building the callee's slots.

    Raises
    ------
    TeeError
        What :func:`marshal` raises for the same call.
    """
    slots = pad_params(params)
    for i in range(NUM_PARAMS):
        t = (ptypes >> (4 * i)) & 0xF
        if t in _MEMREF_NIBBLES:
            p = slots[i]
            _memref_bytes(i, p if isinstance(p, Memref) else Memref())
        elif t and t not in _VALUE_NIBBLES:
            raise _bad_nibble(i, t)


def _bad_nibble(i: int, t: int) -> TeeError:
    return TeeError(
        TeeResult.TEE_ERROR_BAD_PARAMETERS,
        f"param {i}: type nibble {t:#x} is not a TEE parameter type",
    )


def _marshal_slot(i: int, t: int, p: Param) -> Param:
    if t == ParamType.NONE:
        return None
    if t in _VALUE_NIBBLES:
        src = p if isinstance(p, Value) else Value()
        return Value(src.a & 0xFFFFFFFF, src.b & 0xFFFFFFFF, _PTYPE[t])
    if t in _MEMREF_NIBBLES:
        return _marshal_memref(i, t, p if isinstance(p, Memref) else Memref())
    raise _bad_nibble(i, t)


def _memref_bytes(i: int, m: Memref) -> memoryview | None:
    """The memref's whole buffer as bytes; refuse a size it cannot hold."""
    if m.buffer is None:
        return None
    whole = memoryview(m.buffer).cast("B")
    avail = len(whole) - m.offset
    length = m.length
    if m.offset < 0 or length < 0 or length > avail:
        raise TeeError(
            TeeResult.TEE_ERROR_BAD_PARAMETERS,
            f"param {i}: memref size {length:#x} at offset {m.offset:#x} "
            f"exceeds the {max(avail, 0):#x} bytes of memory behind it",
        )
    return whole


def _marshal_memref(i: int, t: int, m: Memref) -> Memref:
    whole = _memref_bytes(i, m)
    if whole is None:
        return Memref(None, 0, kind=_PTYPE[t], addr=0)
    addr = m.addr if m.addr else SHM_BASE + m.offset
    length = m.length
    view = whole[m.offset : m.offset + length]
    return Memref(view, length, kind=_PTYPE[t], addr=addr)


def unmarshal(
    ptypes: int, params: Sequence[Param], callee: list[Param]
) -> tuple[Param, ...]:
    """Copy output values and output memref sizes back to the caller's slots.

    Returns
    -------
    tuple
        The four slots for :attr:`Answer.outputs` (empty when no slot is an
        output): a copy of each output parameter, None for the others.
    """
    outputs: list[Param] = [None] * NUM_PARAMS
    for i in range(NUM_PARAMS):
        t = param_type_at(ptypes, i)
        c = callee[i]
        if t not in OUTPUT_TYPES or c is None:
            continue
        p = params[i] if i < len(params) else None
        if isinstance(c, Value):
            out = Value(c.a & 0xFFFFFFFF, c.b & 0xFFFFFFFF, ParamType(t))
            if isinstance(p, Value):
                p.a, p.b = out.a, out.b
            outputs[i] = out
        elif isinstance(c, Memref):
            if isinstance(p, Memref):
                p.size = c.size
            outputs[i] = Memref(
                p.buffer if isinstance(p, Memref) else None, c.size,
                p.offset if isinstance(p, Memref) else 0, ParamType(t),
            )  # fmt: skip
    return tuple(outputs) if any(o is not None for o in outputs) else ()


class TaEnv:
    """What the core gives a user TA: its heap and the TEE internal client API.

    The TA reaches other TAs and PTAs only through :meth:`open_ta_session` and
    :meth:`invoke_ta_command` (``TEE_OpenTASession`` / ``TEE_InvokeTACommand``).
    As in libutee, a memref the core refuses makes the calling TA panic.
    """

    def __init__(self, core: TeeCore, uuid: UUID, heap: TaHeap) -> None:
        self._core = core
        self.uuid = uuid
        self.heap = heap
        self.own_sessions: set[int] = set()

    @property
    def threads(self) -> int:
        """Worker threads the core lets this TA use for one call (>= 1)."""
        return max(1, int(self._core.threads))

    @property
    def batch_segments(self) -> bool:
        """Whether LOAD_FW may hand all its segments over in one call."""
        return bool(self._core.batch_segments)

    def segment_lane(self, sid: int, rproc_id: int) -> Any | None:
        """The compiled ``TEE_InvokeTACommand`` of a PTA's segment commands.

        A :class:`rproctee.kernels.PtaLane` for processor ``rproc_id`` when
        ``sid`` is this TA's session to a PTA that offers one
        (``segment_lane(rproc_id)``) and the core allows it
        (``compiled_segment_calls``); else None: use :meth:`invoke_ta_command`.
        """
        return (
            self._core.segment_lane(sid, rproc_id) if sid in self.own_sessions else None
        )

    def open_ta_session(
        self, uuid: UUID | str, ptypes: int, params: Sequence[Param]
    ) -> tuple[Answer, int | None]:
        """``TEE_OpenTASession``: returns the answer and a session handle."""
        self._check_memrefs(ptypes, params)
        answer, sid = self._core.open_session(uuid, ptypes, params, caller=self.uuid)
        if sid is not None:
            self.own_sessions.add(sid)
        return answer, sid

    def invoke_ta_command(
        self, sid: int, cmd: int, ptypes: int, params: Sequence[Param]
    ) -> Answer:
        """``TEE_InvokeTACommand`` on a session opened by this TA."""
        self._check_memrefs(ptypes, params)
        return self._core.invoke(sid, cmd, ptypes, params)

    def close_ta_session(self, sid: int) -> None:
        """``TEE_CloseTASession``."""
        self.own_sessions.discard(sid)
        self._core.close_session(sid)

    @staticmethod
    def _check_memrefs(ptypes: int, params: Sequence[Param]) -> None:
        try:
            check_params(ptypes, params)  # the core marshals them once, later
        except TeeError as exc:
            # libutee: the core refused the call's memory -> TEE_Panic()
            raise TaPanic(exc.reason) from exc
