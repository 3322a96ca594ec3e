"""``--emulate`` of ``rproctee boot`` and ``rproctee demo``: run the firmware.

With ``--emulate`` the remote processor's firmware runs on the emulated
Cortex-M core (:mod:`rproctee.emu`, the ``rproctee[emu]`` extra: unicorn)
straight out of the device memory the load filled, instead of the default
well-behaved firmware model:

* :func:`boot_emulated` is ``rproctee boot IMAGE --emulate [--ticks N]``:
  boot through the same Linux (-> TEE -> TA -> PTA) path, ``N`` ticks of
  execution (a fault is a crash, recovered by the core, and the run goes
  on), ``--crash`` reported on top, shutdown; trace lines and UART output
  printed as the firmware writes them; instructions executed, instructions
  per second and the registers of the coredump at the end.
* :func:`demo_emulated` is ``rproctee demo --emulate``: the compiled
  ``fw_virtio`` firmware shipped with the package, booted, echoing a message
  through its vrings, killed by a fault, recovered, registers read back
  from the coredump (:func:`rproctee.emu.demo.run_emulated_demo`).

Nothing here imports unicorn until a core is built; a missing unicorn is a
usage error naming ``pip install 'rproctee[emu]'``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from rproctee.cli import exitcodes
from rproctee.cli.output import fail

if TYPE_CHECKING:
    from rproctee.emu.hook import EmulatedFirmware
    from rproctee.linux.lifecycle import LifeReport
    from rproctee.linux.state import CrashType, DumpConf
    from rproctee.linux.system import System

#: Ticks run after boot and after a requested crash's recovery by default.
DEFAULT_TICKS = 10
#: Register order of the terminal view (a coredump's ``NT_PRSTATUS``).
_REG_ROWS = (
    ("r0", "r1", "r2", "r3"),
    ("r4", "r5", "r6", "r7"),
    ("r8", "r9", "r10", "r11"),
    ("r12", "sp", "lr", "pc"),
    ("xpsr",),
)


def require_emulator() -> None:
    """Stop with a usage error naming the extra when unicorn is missing."""
    from rproctee.emu.core import EmulatorUnavailable, load_unicorn

    try:
        load_unicorn()
    except EmulatorUnavailable as exc:
        fail(f"--emulate: {exc}", exitcodes.USAGE)


def line_printer(to_stderr: bool) -> Callable[[str, str], None]:
    """``show(source, text)``: one firmware line, printed as it comes.

    With ``--json`` the lines go to stderr so stdout stays one document.
    """

    def show(source: str, text: str) -> None:
        label = "trace0" if source == "trace" else source  # debugfs' name
        click.echo(f"[m4 {label}] {text}", err=to_stderr)

    return show


# -- rproctee boot --emulate -----------------------------------------------------
def check_boot_options(pas: bool, emulate: bool, ticks: int | None) -> int:
    """The tick count ``boot --emulate`` runs; usage errors for bad mixes."""
    if ticks is not None and not emulate:
        raise click.UsageError("--ticks is for --emulate only")
    if pas:
        raise click.UsageError(
            "--emulate does not apply to --pas (the emulated core runs the "
            "stm32mp/TEE and plain ELF paths)"
        )
    return DEFAULT_TICKS if ticks is None else ticks


def boot_emulated(
    image: Path, platform: str, key: Path | None, series: str, no_tee: bool,
    policy: str, crash: CrashType | None, mode: DumpConf,
    coredump_path: Path | None, sequence: Path | None, ticks: int, as_json: bool,
) -> NoReturn:  # fmt: skip
    """``rproctee boot ... --emulate``: the life, with the firmware executed."""
    from rproctee.cli.life_report import coredump_unwritable, life_status, show_life
    from rproctee.linux.lifecycle import report_dict

    require_emulator()
    show = line_printer(as_json)
    system, fw = _emulated_system(image, platform, key, series, no_tee, policy, show)
    try:
        report = run_emulated_life(
            system, fw, ticks=ticks, crash=crash, coredump_mode=mode,
            coredump_path=coredump_path,
        )  # fmt: skip
    except OSError as exc:
        coredump_unwritable(coredump_path, exc)
    doc = report_dict(system, report)
    doc["emulator"] = emulator_dict(system, fw, ticks)
    show_life(system, doc, sequence, image.name, as_json)
    if not as_json:
        print_emulator(doc["emulator"])
    raise SystemExit(life_status(report))


def _emulated_system(
    image: Path, platform: str, key: Path | None, series: str, no_tee: bool,
    policy: str, show: Callable[[str, str], None],
) -> tuple[System, EmulatedFirmware]:  # fmt: skip
    """The board of ``rproctee boot`` with an emulated core as its firmware."""
    from rproctee.cli.life_report import read_input
    from rproctee.emu.hook import EmulatedFirmware
    from rproctee.errors import RprocError
    from rproctee.linux.system import build_system
    from rproctee.platform.board import load_platform

    try:
        spec = load_platform(platform)
    except RprocError as exc:
        raise click.UsageError(f"--platform: {exc}") from exc
    if no_tee and key:
        raise click.UsageError("--key is for the TEE's PTA; --no-tee verifies nothing")
    try:
        fw = EmulatedFirmware.for_platform(
            spec, on_uart_line=lambda text: show("uart", text),
            on_trace_line=lambda text: show("trace0", text),
        )  # fmt: skip
    except ValueError as exc:
        raise click.UsageError(f"--emulate: --platform {platform}: {exc}") from exc
    data = read_input(image, "image")
    pem = read_input(key, "key") if key else None
    try:
        system = build_system(spec, data, series=series, tee=not no_tee,
                              key_pem=pem, policy=policy, firmware=fw)  # fmt: skip
    except (ValueError, RprocError) as exc:
        raise click.UsageError(str(exc)) from exc
    return system, fw


def run_emulated_life(
    system: System,
    fw: EmulatedFirmware,
    *,
    ticks: int,
    crash: CrashType | None = None,
    coredump_mode: DumpConf | None = None,
    coredump_path: str | Path | None = None,
) -> LifeReport:
    """Boot, run ``ticks`` ticks, [crash + recover + run], shut down.

    The firmware's own faults are crashes the core recovers from during
    the run (the run goes on with the recovered firmware until ``ticks``
    ticks have run); ``crash`` adds a crash reported by Linux, as
    ``rproctee boot --crash`` does. The coredump written is the first one
    taken, with the faulting registers when a fault caused it.

    Returns
    -------
    LifeReport
        As :func:`rproctee.linux.lifecycle.run_life`'s, with a ``run`` step.
    """
    from rproctee.linux.lifecycle import LifeReport, run_step
    from rproctee.linux.state import DumpConf, RprocState
    from rproctee.linux.sysfs import Debugfs, Sysfs

    report = LifeReport()
    rproc, sysfs = system.rproc, Sysfs(system.rproc)
    if coredump_mode is not None and coredump_mode != DumpConf.DISABLED:
        sysfs.write("coredump", coredump_mode.word)
    if not run_step(report, system, "boot", lambda: sysfs.write("state", "start")):
        return report
    run_step(report, system, "run", lambda: run_ticks(system, ticks))
    _observe(report, system)  # after the run: the firmware's own writes show
    if crash is not None and rproc.state == RprocState.RUNNING:
        report.crash = crash.word

        def crash_it() -> None:
            rproc.report_crash(crash)
            _require_running(system)
            run_ticks(system, ticks)

        run_step(report, system, "crash+recovery", crash_it)
    elif fw.crashes:
        report.crash = fw.crashes[0].crash_type.word
    if rproc.crash_cnt and rproc.state == RprocState.RUNNING and rproc.traces:
        report.trace_after_recovery = Debugfs(rproc).trace(0)
    _keep_coredump(report, system, fw, coredump_path)
    if rproc.state in (RprocState.RUNNING, RprocState.CRASHED):
        run_step(report, system, "shutdown", lambda: sysfs.write("state", "stop"))
    return report


def run_ticks(system: System, ticks: int) -> int:
    """Run ``ticks`` ticks; a crash is recovered and the run goes on.

    Returns the ticks run (fewer when the core stays down after a crash).
    """
    from rproctee.linux.state import RprocState

    rproc, done = system.rproc, 0
    while done < ticks and rproc.state == RprocState.RUNNING:
        ran = rproc.tick(ticks - done)
        if ran == 0:
            break  # no remote core to run
        done += ran
    return done


def _observe(report: LifeReport, system: System) -> None:
    from rproctee.linux.lifecycle import decoded_table
    from rproctee.linux.sysfs import Debugfs

    report.rsc_table, report.rsc_error = decoded_table(system)
    report.carveouts = system.rproc.carveout_rows()
    report.trace = Debugfs(system.rproc).trace(0) if system.rproc.traces else ""


def _require_running(system: System) -> None:
    from rproctee.linux.errors import RprocErrno
    from rproctee.linux.state import RprocState

    rproc = system.rproc
    if rproc.state != RprocState.RUNNING:
        last = next((t for lvl, t in reversed(rproc.messages) if lvl == "err"), "")
        raise RprocErrno(5, f"recovery did not bring {rproc.name} back: {last}")


def _keep_coredump(
    report: LifeReport, system: System, fw: EmulatedFirmware,
    path: str | Path | None,
) -> None:  # fmt: skip
    """Size (and file) of the first coredump, registers in it if a fault made it."""
    if not system.rproc.coredumps:
        return
    core = _with_registers(fw, system.rproc.coredumps[0])
    report.coredump_bytes = len(core)
    if path is not None:
        Path(path).write_bytes(core)
        report.coredump = str(path)


def _with_registers(fw: EmulatedFirmware, core: bytes) -> bytes:
    """``core`` with the fault's registers; unchanged when no fault made it.

    A crash reported by Linux (``--crash``) stops no instruction: there is
    no faulting context to put in the dump.
    """
    return fw.coredump_with_registers(core) if fw.crashes else bytes(core)


def emulator_dict(system: System, fw: EmulatedFirmware, ticks: int) -> dict[str, Any]:
    """``fw.report()`` plus the ticks asked for and the coredump's registers."""
    from rproctee.emu.demo import prstatus_registers

    doc = fw.report()
    doc["ticks_per_run"] = ticks
    doc["coredumps"] = len(system.rproc.coredumps)
    doc["coredump_registers"] = None
    if system.rproc.coredumps and fw.crashes:
        core = _with_registers(fw, system.rproc.coredumps[0])
        doc["coredump_registers"] = prstatus_registers(core)
    return doc


def print_emulator(doc: dict[str, Any]) -> None:
    """The emulator's part of the terminal view."""
    if not doc["ticks"]:
        click.echo(f"emulated {doc['cpu']}: never ran")
        return
    rate = doc["instructions_per_second"]
    click.echo(
        f"emulated {doc['cpu']}: {doc['instructions']:,} instructions executed "
        f"(at least: a stretch cut by WFI or a fault is not counted), "
        f"{rate:,.0f} instructions/s; {doc['ticks']} ticks of {doc['budget']:,} "
        f"({doc['idle_ticks']} asleep in WFI); {doc['doorbells']} doorbells, "
        f"{len(doc['uart_lines'])} UART lines"
    )
    for text, times in _runs(_fault_text(c) for c in doc["crashes"]):
        click.echo(f"fault: {text}" + (f" (x{times})" if times > 1 else ""))
    if doc["coredump_registers"]:
        click.echo("registers from the coredump's NT_PRSTATUS:")
        print_registers(doc["coredump_registers"])


def _fault_text(crash: dict[str, Any]) -> str:
    pc, kind = crash["registers"]["pc"], crash["kind"]
    return f"{kind} at pc {pc:#010x} ({crash['crash_type']}): {crash['reason']}"


def _runs(texts: Any) -> list[tuple[str, int]]:
    """Consecutive equal lines as ``(line, times)``: a firmware that faults at
    every boot shows its fault once."""
    runs: list[tuple[str, int]] = []
    for text in texts:
        if runs and runs[-1][0] == text:
            runs[-1] = (text, runs[-1][1] + 1)
        else:
            runs.append((text, 1))
    return runs


def print_registers(regs: dict[str, int]) -> None:
    """r0-pc and xPSR, four to a line."""
    for row in _REG_ROWS:
        click.echo("  " + "  ".join(f"{n:>4} {regs[n]:#010x}" for n in row))


# -- rproctee demo --emulate ---------------------------------------------------------
def demo_emulated(policy: str, series: str, as_json: bool) -> dict[str, Any]:
    """``rproctee demo --emulate``: the packaged firmware's boot, echo, crash.

    Returns
    -------
    dict
        :func:`rproctee.emu.demo.run_emulated_demo`'s result plus ``ok``.
    """
    from rproctee.emu.demo import packaged_firmware, run_emulated_demo

    require_emulator()
    show = line_printer(as_json)
    if not as_json:
        click.echo(
            "Booting fw_virtio (a compiled Cortex-M4 firmware, shipped with "
            "rproctee), signed with a fresh key, through Linux -> TEE -> TA -> "
            f"PTA on stm32mp15-dk2 (series {series}, TA policy {policy}), "
            "on the emulated core:"
        )
    out = run_emulated_demo(packaged_firmware(), policy=policy, series=series,
                            on_line=show)  # fmt: skip
    out["ok"] = demo_ok(out)
    return out


def demo_ok(out: dict[str, Any]) -> bool:
    """Booted, echoed, faulted, recovered, and the dump shows the fault's pc."""
    crash, dump = out["crash"], out["coredump"]
    return (
        out["boot"]["state"] == "running"
        and out["echo"]["echo"] == out["echo"]["sent"]
        and crash is not None
        and out["recovery"]["state"] == "running"
        and dump is not None
        and dump["registers"]["pc"] == crash["registers"]["pc"]
    )


def print_emulated_demo(out: dict[str, Any]) -> None:
    """The terminal view of :func:`demo_emulated`."""
    crash, dump = out["crash"], out["coredump"]
    click.echo(f"\n{out['cpu']} on {out['platform']}, emulated: firmware "
               f"{out['boot']['state']}")  # fmt: skip
    click.echo(f"trace0: {out['boot']['trace0'].rstrip()}")
    click.echo(f"vring echo: sent {out['echo']['sent']!r}, "
               f"got {out['echo']['echo']!r}")  # fmt: skip
    if crash is not None:
        pc = crash["registers"]["pc"]
        click.echo(f"fault: {crash['kind']} at pc {pc:#010x} ({crash['crash_type']})"
                   f": {crash['reason']}")  # fmt: skip
    rec = out["recovery"]
    click.echo(f"recovery: {rec['state']} (crash_cnt {rec['crash_cnt']}), "
               f"trace0: {rec['trace0'].rstrip()}")  # fmt: skip
    if dump is not None:
        click.echo(f"coredump: {dump['bytes']} bytes; registers from its "
                   "NT_PRSTATUS:")  # fmt: skip
        print_registers(dump["registers"])
    print_emulator({**out["report"], "crashes": [], "coredump_registers": None})
