"""Recording what the secure world and the device memory do, in order.

The secure world is used only through its public surface; to see its steps
the model puts two observers where the real system has boundaries:

* :class:`PtaRecorder` sits in the TEE core's PTA registry in front of the
  platform PTA (``TeeCore.register_pta``): each PTA command the TA sends is
  recorded (layer ``ta`` for the call, ``pta`` for the answer), and device
  writes made meanwhile are attributed to the PTA. When FIRMWARE_START or
  FIRMWARE_STOP succeeds, the remote core leaves or enters reset: that is
  where the running-firmware hook is called under the TEE.
* :class:`RecordingWrites` replaces the device memory's write list, so every
  recorded write also becomes an event of the layer acting at that moment.
"""

from __future__ import annotations

import time
from typing import Any

from rproctee.linux.events import EventLog
from rproctee.linux.remote import RemoteProcessor
from rproctee.platform.memory import DeviceMemory, WriteRecord
from rproctee.tee.core import UUID
from rproctee.tee.params import Param
from rproctee.tee.pta_stm32mp import PTA_RPROC_UUID, PtaCommand
from rproctee.tee.results import TeeError, TeeResult, result_for


class RecordingWrites(list[WriteRecord]):
    """A write list that reports each append to an :class:`EventLog`."""

    def __init__(self, log: EventLog, existing: list[WriteRecord]) -> None:
        super().__init__(existing)
        self.log = log

    def append(self, record: WriteRecord) -> None:
        """Record the write, then log it under the acting layer."""
        super().append(record)
        self.log.add(
            self.log.current_layer(), "write", record.op,
            da=record.da, pa=record.pa, len=record.len,
        )  # fmt: skip


def record_writes(memory: DeviceMemory, log: EventLog) -> None:
    """Make every device write of ``memory`` an event of ``log``."""
    if not isinstance(memory.writes, RecordingWrites):
        memory.writes = RecordingWrites(log, memory.writes)


def _cmd_name(cmd: int) -> str:
    try:
        return PtaCommand(cmd).name
    except ValueError:
        return f"PTA_CMD_{cmd:#x}"


class PtaRecorder:
    """A transparent stand-in for the platform PTA that records its calls.

    Parameters
    ----------
    pta : TrustedApplication
        The real PTA.
    log : EventLog
    remote : RemoteProcessor or None
        The core whose reset FIRMWARE_START/STOP release and assert.
    """

    def __init__(
        self, pta: Any, log: EventLog, remote: RemoteProcessor | None
    ) -> None:
        self.pta = pta
        self.log = log
        self.remote = remote

    def open_session(
        self, ptypes: int, params: list[Param], caller: UUID | None
    ) -> object:
        """Delegate."""
        return self.pta.open_session(ptypes, params, caller)

    def close_session(self, session: object) -> None:
        """Delegate."""
        self.pta.close_session(session)

    def invoke_command(
        self, session: object, cmd: int, ptypes: int, params: list[Param]
    ) -> None:
        """Record, delegate with writes attributed to the PTA, record the answer."""
        name = _cmd_name(cmd)
        self.log.add("ta", "pta", name, cmd=cmd)
        t0 = time.perf_counter()
        try:
            with self.log.acting("pta"):
                self.pta.invoke_command(session, cmd, ptypes, params)
        except Exception as exc:
            result = result_for(exc) if isinstance(exc, TeeError | ValueError) else None
            self.log.add("pta", "pta_ret", name, cmd=cmd,
                         result=(result or TeeResult.TEE_ERROR_GENERIC).name,
                         ms=(time.perf_counter() - t0) * 1e3)  # fmt: skip
            raise
        self.log.add("pta", "pta_ret", name, cmd=cmd, result="TEE_SUCCESS",
                     ms=(time.perf_counter() - t0) * 1e3)  # fmt: skip
        self._reset_line(cmd)

    def _reset_line(self, cmd: int) -> None:
        if self.remote is None:
            return
        with self.log.acting("remote"):
            if cmd == PtaCommand.FIRMWARE_START:
                self.remote.power_on()
            elif cmd == PtaCommand.FIRMWARE_STOP:
                self.remote.power_off()


def install_pta_recorder(core: Any, pta: Any, log: EventLog,
                         remote: RemoteProcessor | None) -> PtaRecorder:
    """Put a :class:`PtaRecorder` in front of ``pta`` in ``core``'s registry."""
    recorder = PtaRecorder(pta, log, remote)
    core.register_pta(PTA_RPROC_UUID, recorder)
    return recorder
