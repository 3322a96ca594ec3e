"""TEE-backed ops: ``remoteproc_tee.c`` of "remoteproc: Add TEE support".

The TEE client driver is probed on the TEE bus: the TEE enumerates the TAs
that carry ``TA_FLAG_DEVICE_ENUM`` and the driver binds to the remoteproc
TA's UUID (:meth:`RprocTeeContext.probe`). A platform driver then registers
each processor with :func:`rproc_tee_register` (one session, login "REE
kernel", ``value.a = rproc_id``), and every firmware operation becomes an
invoke of that TA: param 0 = VALUE_INPUT ``a = rproc_id``, plus LOAD_FW's
MEMREF_INPUT over the whole image, or GET_RSC_TABLE's two VALUE_OUTPUTs.
Linux never writes the firmware into device memory itself.

Two versions of the series (``series=``):

* ``"v15"`` (the thread's): ``load_fw`` = LOAD_FW (called by the core before
  ``rproc_fw_boot`` and in recovery), ``parse_fw`` = GET_RSC_TABLE only (v15
  "removed the load of the firmware in rproc_tee_parse_fw"); ``load`` =
  LOAD_FW again (inferred: v15's core still calls ``rproc_load_segments``,
  which is ``-EINVAL`` without a ``load`` op; the TA answers a second LOAD_FW
  of a loaded image with success);
* ``"v22"`` (the latest): no ``load_fw``; ``parse_fw`` = LOAD_FW +
  GET_RSC_TABLE (+ ``release_fw`` on any error), ``load`` = LOAD_FW again
  (the TA reloads only after a STOP, i.e. in recovery).

Both: ``find_loaded_rsc_table`` = GET_RSC_TABLE then ``rproc_pa_to_va`` in the
registered carveouts (size 0: no table, ``table_sz = 0``); ``start``/``stop``
= START/STOP; ``release_fw`` = RELEASE_FW, skipped when DETACHED and refused
(an error is logged, nothing sent) unless OFFLINE. Error mapping: a TEE
failure is ``-EIO``; no TEE context ``-ENODEV``; an unregistered rproc or a
failed session open ``-EINVAL``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rproctee.linux.carveouts import pa_to_va, register_platform_carveouts
from rproctee.linux.errors import einval, eio, enodev, enomem
from rproctee.linux.events import EventLog
from rproctee.linux.ops import DeviceTable, Firmware, RprocOps
from rproctee.linux.state import RprocState
from rproctee.platform.memory import RegionSpec
from rproctee.tee import TA_UUID, TeeClientError, TeeContext, TeeCore
from rproctee.tee.params import Memref, ParamType, value_in, value_out
from rproctee.tee.results import TeeResult

if TYPE_CHECKING:
    from rproctee.linux.core import Rproc
    from rproctee.tee.client import TeeSession

TA_RPROC_CMD_LOAD_FW = 1
TA_RPROC_CMD_START = 2
TA_RPROC_CMD_STOP = 3
TA_RPROC_CMD_GET_RSC_TABLE = 4
TA_RPROC_CMD_GET_COREDUMP = 5
TA_RPROC_CMD_RELEASE_FW = 6
CMD_NAMES = {
    TA_RPROC_CMD_LOAD_FW: "LOAD_FW",
    TA_RPROC_CMD_START: "START",
    TA_RPROC_CMD_STOP: "STOP",
    TA_RPROC_CMD_GET_RSC_TABLE: "GET_RSC_TABLE",
    TA_RPROC_CMD_GET_COREDUMP: "GET_COREDUMP",
    TA_RPROC_CMD_RELEASE_FW: "RELEASE_FW",
}
SERIES = ("v15", "v22")


def enumerate_devices(core: TeeCore) -> list[str]:
    """UUIDs of the TAs the TEE lists on its bus (``TA_FLAG_DEVICE_ENUM``)."""
    return [str(u) for u in core.enumerate_devices()]


@dataclass(eq=False)
class TeeRproc:
    """``struct rproc_tee``: one registered processor and its session."""

    rproc: Rproc
    rproc_id: int
    session: TeeSession


class RprocTeeContext:
    """``rproc_tee_ctx``: the TEE client driver bound to the remoteproc TA.

    Parameters
    ----------
    core : TeeCore
        The TEE to talk to.
    log : EventLog
        Where invokes are recorded.
    ta_state : callable(rproc_id) -> str or None, optional
        Inspection of the TA's per-processor state, for the ``ta`` lane of
        the event log (never used to decide anything).
    """

    def __init__(
        self, core: TeeCore, log: EventLog, ta_state: Any = None
    ) -> None:
        self.tee_ctx = TeeContext(core)
        self.log = log
        self.ta_state = ta_state
        self.procs: dict[int, TeeRproc] = {}

    @classmethod
    def probe(
        cls, core: TeeCore, log: EventLog, ta_state: Any = None
    ) -> RprocTeeContext | None:
        """``rproc_tee_probe``: bind if the TEE lists the remoteproc TA."""
        found = str(TA_UUID) in enumerate_devices(core)
        log.add("tee", "log", "tee bus probe", level="info", uuid=str(TA_UUID),
                bound=found)  # fmt: skip
        return cls(core, log, ta_state) if found else None

    # -- one invoke --------------------------------------------------------------
    def invoke(self, trproc: TeeRproc, cmd: int, extra: list[Any]) -> None:
        """``tee_client_invoke_func`` with param 0 = the processor id.

        Raises
        ------
        RprocErrno
            ``-EIO`` for any TEE result other than success.
        """
        name = CMD_NAMES.get(cmd, f"CMD_{cmd}")
        before = self._ta_state(trproc.rproc_id)
        self.log.add("tee", "invoke", name, cmd=cmd, id=trproc.rproc_id)
        t0 = time.perf_counter()
        answer = trproc.session.invoke_command(cmd, [value_in(trproc.rproc_id), *extra])
        ms = (time.perf_counter() - t0) * 1e3
        self.log.add("tee", "invoke_ret", name, cmd=cmd, id=trproc.rproc_id,
                     result=answer.result.name, code=int(answer.result), ms=ms,
                     reason=answer.reason)  # fmt: skip
        after = self._ta_state(trproc.rproc_id)
        if after != before:
            self.log.add("ta", "ta_state", after or "none", id=trproc.rproc_id,
                         **{"from": before, "to": after})  # fmt: skip
        if not answer.ok:
            raise eio(
                f"TA_RPROC_CMD_{name} invoke failed TEE err: {int(answer.result):#x} "
                f"({answer.result.name}: {answer.reason})"
            )

    def _ta_state(self, rproc_id: int) -> str | None:
        return self.ta_state(rproc_id) if self.ta_state is not None else None

    def lookup(self, rproc: Rproc) -> TeeRproc:
        """``rproc_to_trproc``: ``-EINVAL`` for an unregistered rproc."""
        trproc = rproc.priv.get("tee")
        if not isinstance(trproc, TeeRproc):
            raise einval(f"{rproc.name} is not registered with the TEE")
        return trproc


def _ctx(rproc: Rproc) -> RprocTeeContext:
    ctx = rproc.priv.get("tee_ctx")
    if not isinstance(ctx, RprocTeeContext):
        raise enodev("no TEE remoteproc context (the TEE driver did not probe)")
    return ctx


def rproc_tee_register(
    ctx: RprocTeeContext | None, rproc: Rproc, rproc_id: int
) -> TeeRproc:
    """``rproc_tee_register``: open the session of one processor.

    Raises
    ------
    RprocErrno
        ``-ENODEV`` without a TEE context; ``-EINVAL`` when the session does
        not open (e.g. BUSY: the TA is single-session).
    """
    if ctx is None:
        raise enodev("rproc_tee_register: the TEE remoteproc driver is not probed")
    ctx.log.add("tee", "session", "OPEN_SESSION", id=rproc_id, login="REE_KERNEL")
    try:
        session = ctx.tee_ctx.open_session(TA_UUID, [value_in(rproc_id)])
    except TeeClientError as exc:
        answer = exc.answer
        ctx.log.add("tee", "session_ret", "OPEN_SESSION", id=rproc_id,
                    result=answer.result.name, reason=answer.reason)  # fmt: skip
        raise einval(f"tee_client_open_session failed, err: {exc}") from exc
    ok = TeeResult.TEE_SUCCESS.name
    ctx.log.add("tee", "session_ret", "OPEN_SESSION", id=rproc_id, result=ok)
    trproc = TeeRproc(rproc, rproc_id, session)
    ctx.procs[rproc_id] = trproc
    rproc.priv["tee"] = trproc
    rproc.priv["tee_ctx"] = ctx
    return trproc


def rproc_tee_unregister(rproc: Rproc) -> None:
    """``rproc_tee_unregister``: close the session."""
    trproc = rproc.priv.pop("tee", None)
    if isinstance(trproc, TeeRproc):
        trproc.session.close()


# -- the ops --------------------------------------------------------------------
def _call(rproc: Rproc, cmd: int, extra: list[Any] | None = None) -> None:
    ctx = _ctx(rproc)
    ctx.invoke(ctx.lookup(rproc), cmd, extra or [])


def rproc_tee_load_fw(rproc: Rproc, fw: Firmware) -> None:
    """LOAD_FW with the whole image as MEMREF_INPUT (shared, offset 0)."""
    image = Memref(fw.data, size=fw.size, kind=ParamType.MEMREF_INPUT)
    _call(rproc, TA_RPROC_CMD_LOAD_FW, [image])


def _get_rsc_table(rproc: Rproc) -> tuple[int, int]:
    """GET_RSC_TABLE: ``(pa, size)`` assembled from the two 32-bit halves."""
    addr, size = value_out(), value_out()
    _call(rproc, TA_RPROC_CMD_GET_RSC_TABLE, [addr, size])
    return addr.b << 32 | addr.a, size.b << 32 | size.a


def _memremap_copy(rproc: Rproc, pa: int, size: int) -> bytes:
    """``memremap(pa, size, MEMREMAP_WC)`` + ``kmemdup``: a host read."""
    memory = rproc.require_memory()
    try:
        return memory.view_pa(pa, size).tobytes()
    except Exception as exc:  # noqa: BLE001 - any unmappable range is -ENOMEM
        raise enomem(f"Unable to map memory region: {pa:#x}+{size:#x}") from exc


def _cache_table(rproc: Rproc) -> None:
    """``rproc_tee_get_loaded_rsc_table`` + ``kmemdup`` into ``cached_table``."""
    pa, size = _get_rsc_table(rproc)
    if not size:
        rproc.log_msg("info", "no resource table found for this firmware")
        return
    rproc.set_cached_table(_memremap_copy(rproc, pa, size))


def rproc_tee_parse_fw_v22(rproc: Rproc, fw: Firmware) -> None:
    """v22 ``rproc_tee_parse_fw``: LOAD_FW, GET_RSC_TABLE, cache; release on error."""
    try:
        rproc_tee_load_fw(rproc, fw)
        _cache_table(rproc)
    except Exception:
        rproc_tee_release_fw(rproc)
        raise


def rproc_tee_parse_fw_v15(rproc: Rproc, fw: Firmware) -> None:
    """v15 ``rproc_tee_parse_fw``: GET_RSC_TABLE and cache (LOAD_FW was load_fw)."""
    _cache_table(rproc)


def rproc_tee_find_loaded_rsc_table(rproc: Rproc, fw: Firmware) -> DeviceTable | None:
    """GET_RSC_TABLE, then ``rproc_pa_to_va`` inside the registered carveouts."""
    pa, size = _get_rsc_table(rproc)
    if not size:
        rproc.table_sz = 0
        return None
    try:
        mem, off = pa_to_va(rproc.carveouts, pa, size)
    except LookupError:
        rproc.log_msg("err", f"Unable to find resource table pa {pa:#x}+{size:#x}")
        return None
    return DeviceTable(mem.da + off, pa, size)


def rproc_tee_start(rproc: Rproc) -> None:
    """START."""
    _call(rproc, TA_RPROC_CMD_START)


def rproc_tee_stop(rproc: Rproc) -> None:
    """STOP."""
    _call(rproc, TA_RPROC_CMD_STOP)


def rproc_tee_release_fw(rproc: Rproc) -> None:
    """RELEASE_FW: skipped when DETACHED, refused unless OFFLINE (void op)."""
    if rproc.state == RprocState.DETACHED:
        return
    if rproc.state != RprocState.OFFLINE:
        rproc.log_msg("err", f"unexpected state {rproc.state.word} to release fw")
        return
    try:
        _call(rproc, TA_RPROC_CMD_RELEASE_FW)
    except Exception as exc:  # noqa: BLE001 - release_fw returns void
        rproc.log_msg("err", f"release_fw failed: {exc}")


def rproc_tee_coredump(rproc: Rproc) -> None:
    """Coredump through GET_COREDUMP (model extension; strict TA only).

    Falls back to the default ``rproc_coredump`` when the TA refuses (the
    upstream TA answers NOT_IMPLEMENTED; after STOP the TA is OFF).
    """
    from rproctee.linux.coredump import rproc_coredump

    if rproc.dump_conf.name == "DISABLED":
        return
    buf = bytearray(8 << 20)
    out = Memref(buf, kind=ParamType.MEMREF_OUTPUT)
    try:
        _call(rproc, TA_RPROC_CMD_GET_COREDUMP, [out])
    except Exception as exc:  # noqa: BLE001 - fall back, as a driver would
        rproc.log_msg("warn", f"GET_COREDUMP refused ({exc}); dumping from Linux")
        rproc_coredump(rproc)
        return
    size = out.size if out.size is not None else 0
    rproc.coredumps.append(bytes(buf[:size]))
    rproc.log_msg("info", "coredump", mode="tee", bytes=size, segments=0)


def stm32_rproc_tee_stop(rproc: Rproc) -> None:
    """``stm32_rproc_tee_stop``: shutdown request, ``rproc_tee_stop``, release."""
    rproc.log.add("linux", "log", "stm32_rproc_request_shutdown", level="debug")
    rproc_tee_stop(rproc)


def stm32_tee_ops(
    series: str, specs: tuple[RegionSpec, ...], *, tee_coredump: bool = False
) -> RprocOps:
    """``st_rproc_tee_ops`` of the given series."""
    from rproctee.linux.elf_ops import stm32_kick

    if series not in SERIES:
        raise ValueError(f"TEE series {series!r} is not one of {', '.join(SERIES)}")

    def prepare(rproc: Rproc) -> None:
        register_platform_carveouts(rproc, specs)

    prepare.__name__ = "stm32_rproc_prepare"
    ops = RprocOps(
        prepare=prepare,
        start=rproc_tee_start,
        stop=stm32_rproc_tee_stop,
        kick=stm32_kick,
        load=rproc_tee_load_fw,
        find_loaded_rsc_table=rproc_tee_find_loaded_rsc_table,
        release_fw=rproc_tee_release_fw,
        coredump=rproc_tee_coredump if tee_coredump else None,
    )
    if series == "v15":
        ops.load_fw = rproc_tee_load_fw
        ops.parse_fw = rproc_tee_parse_fw_v15
    else:
        ops.parse_fw = rproc_tee_parse_fw_v22
    return ops

