"""The whole life of a remote processor, run and reported.

:func:`run_life` drives a :class:`~rproctee.linux.system.System` through the
steps a user would take with sysfs: ``echo start > state``, let the firmware
run, optionally make it crash (the stm32 watchdog, or a fatal-error
message) so the core recovers it, then ``echo stop > state``. Each step's
outcome, the states, the TEE calls, the decoded resource table, the trace
buffer, the carveouts, the coredump and every event end up in one report
(the JSON of ``rproctee boot`` and ``rproctee demo``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rproctee.linux.errors import RprocErrno
from rproctee.linux.firmware_hook import DefaultFirmware
from rproctee.linux.state import CrashType, DumpConf, RprocState
from rproctee.linux.sysfs import Debugfs, Sysfs
from rproctee.linux.system import System
from rproctee.rsctable import RscTableError, entry_dict, parse_resource_table

#: Ticks the firmware runs after boot and after recovery.
RUN_TICKS = 3


@dataclass
class Step:
    """One user-visible step and how it ended."""

    name: str
    ok: bool
    error: str | None = None
    seconds: float = 0.0
    tee_error: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"step": self.name, "ok": self.ok, "error": self.error,
                "ms": self.seconds * 1e3}  # fmt: skip


@dataclass
class LifeReport:
    """What :func:`run_life` saw."""

    steps: list[Step] = field(default_factory=list)
    rsc_table: list[dict[str, Any]] | None = None
    rsc_error: str | None = None
    trace: str = ""
    trace_after_recovery: str = ""
    carveouts: list[dict[str, Any]] = field(default_factory=list)
    coredump: str | None = None
    coredump_bytes: int = 0
    crash: str | None = None

    @property
    def ok(self) -> bool:
        """Every step succeeded."""
        return all(s.ok for s in self.steps)


def run_step(report: LifeReport, system: System, name: str, fn: Any) -> bool:
    """One step of the life, timed; an rproc error ends it as failed (and
    says whether a TEE call failed). Shared with ``boot --emulate``."""
    t0 = time.perf_counter()
    with system.log.in_phase(name):
        try:
            fn()
        except RprocErrno as exc:
            seconds = time.perf_counter() - t0
            tee_error = any(
                e.kind == "invoke_ret" and e.detail["result"] != "TEE_SUCCESS"
                for e in system.log.events
            )
            report.steps.append(Step(name, False, str(exc), seconds, tee_error))
            return False
    report.steps.append(Step(name, True, None, time.perf_counter() - t0))
    return True


def decoded_table(system: System) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The table in effect, re-read and re-validated (it is device memory)."""
    raw = system.rproc.table_bytes()
    if raw is None:
        return None, None
    try:
        table = parse_resource_table(raw, has_iommu=system.rproc.has_iommu)
    except RscTableError as exc:
        return None, str(exc)
    return [entry_dict(e) for e in table.entries], None


def run_life(
    system: System,
    *,
    crash: CrashType | None = None,
    coredump_mode: DumpConf = DumpConf.DISABLED,
    coredump_path: str | Path | None = None,
) -> LifeReport:
    """Boot, run, [crash + recover], shut down; record everything.

    Parameters
    ----------
    system : System
    crash : CrashType, optional
        Make the firmware crash with this type after it ran.
    coredump_mode : DumpConf
        ``rproc->dump_conf`` (sysfs ``coredump``) for the crash.
    coredump_path : path, optional
        Where to write the coredump, if one is taken.

    Returns
    -------
    LifeReport
    """
    report = LifeReport()
    rproc, sysfs = system.rproc, Sysfs(system.rproc)
    if coredump_mode != DumpConf.DISABLED:
        sysfs.write("coredump", coredump_mode.word)
    if not run_step(report, system, "boot", lambda: sysfs.write("state", "start")):
        return report
    _observe(report, system)
    rproc.tick(RUN_TICKS)
    if crash is not None and rproc.state == RprocState.RUNNING:
        _crash_and_recover(report, system, crash, coredump_path)
    live = (RprocState.RUNNING, RprocState.ATTACHED, RprocState.CRASHED)
    if rproc.state in live:
        run_step(report, system, "shutdown", lambda: sysfs.write("state", "stop"))
    return report


def _observe(report: LifeReport, system: System) -> None:
    report.rsc_table, report.rsc_error = decoded_table(system)
    report.carveouts = system.rproc.carveout_rows()
    debugfs = Debugfs(system.rproc)
    report.trace = debugfs.trace(0) if system.rproc.traces else ""


def _crash_and_recover(
    report: LifeReport, system: System, crash: CrashType, path: str | Path | None
) -> None:
    rproc = system.rproc
    report.crash = crash.word
    dumps = len(rproc.coredumps)

    def crash_it() -> None:
        firmware = system.remote.firmware
        if isinstance(firmware, DefaultFirmware):
            firmware.request_crash(crash, "requested by the user")
            rproc.tick()
        else:
            rproc.report_crash(crash)
        if rproc.state != RprocState.RUNNING:
            last = next((t for lvl, t in reversed(rproc.messages) if lvl == "err"), "")
            raise RprocErrno(5, f"recovery did not bring {rproc.name} back: {last}")

    run_step(report, system, "crash+recovery", crash_it)
    if len(rproc.coredumps) > dumps:
        core = rproc.coredumps[-1]
        report.coredump_bytes = len(core)
        if path is not None:
            Path(path).write_bytes(core)
            report.coredump = str(path)
    if rproc.state == RprocState.RUNNING:
        rproc.tick(RUN_TICKS)
        report.trace_after_recovery = Debugfs(rproc).trace(0) if rproc.traces else ""


def report_dict(system: System, report: LifeReport) -> dict[str, Any]:
    """The JSON document of ``rproctee boot``."""
    log = system.log
    return {
        "ok": report.ok,
        "platform": system.platform.name,
        "series": system.series if system.tee else None,
        "tee": system.tee,
        "steps": [s.to_dict() for s in report.steps],
        "states": log.states(),
        "tee_calls": log.tee_calls(),
        "rsc_table": report.rsc_table,
        "rsc_table_error": report.rsc_error,
        "trace": report.trace,
        "trace_after_recovery": report.trace_after_recovery,
        "carveouts": report.carveouts,
        "crash": report.crash,
        "coredump": report.coredump,
        "coredump_bytes": report.coredump_bytes,
        "messages": [{"level": lvl, "text": t} for lvl, t in system.rproc.messages],
        "events": log.to_list(),
    }
