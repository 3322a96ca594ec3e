"""``rproctee boot`` and ``rproctee lifecycle-doc``: the Linux side, run.

``boot`` registers a firmware with the Linux remoteproc core of a platform
model (TEE-backed ops of series v15 or v22, or plain ELF ops with
``--no-tee``), boots it, shows the state transitions, the resource table and
carveouts, the trace buffer, optionally crashes and recovers it (coredump
included), then shuts it down. ``lifecycle-doc`` regenerates
``docs/lifecycle.md`` from real runs of both series.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from rproctee.cli import exitcodes
from rproctee.cli.output import emit_json

_PLATFORM_HELP = "Preset name, device tree (.dtb/.dts) or TOML profile (.toml)."
_MODES = {"default": "ENABLED", "inline": "INLINE"}


def register(group: click.Group) -> None:
    """Add ``boot`` and ``lifecycle-doc`` to ``group``."""
    group.add_command(boot_cmd)
    group.add_command(lifecycle_doc_cmd)


@click.command("boot")
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--platform", "-p", required=True, help=_PLATFORM_HELP)
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM public key of the platform's PTA (default: its own).")
@click.option("--series", type=click.Choice(["v15", "v22"]), default="v22",
              show_default=True, help="Version of the TEE series to model.")
@click.option("--no-tee", is_flag=True,
              help="Plain ELF ops: IMAGE is an unsigned ELF, Linux loads it.")
@click.option("--policy", type=click.Choice(["optee", "strict"]), default="strict",
              show_default=True, help="TA policy.")
@click.option("--crash", type=click.Choice(["watchdog", "fatal"]),
              help="Crash the firmware once it runs; the core recovers it.")
@click.option("--coredump", "coredump_path",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Enable coredumps and write the crash's ELF core here.")
@click.option("--coredump-mode", type=click.Choice(["default", "inline"]),
              default="default", show_default=True,
              help="sysfs coredump: 'enabled' (default) or 'inline'.")
@click.option("--sequence", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a Mermaid sequence diagram of the run (Markdown).")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
def boot_cmd(
    image: Path, platform: str, key: Path | None, series: str, no_tee: bool,
    policy: str, crash: str | None, coredump_path: Path | None, coredump_mode: str,
    sequence: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Boot IMAGE through the Linux remoteproc core; crash, recover, shut down.

    Exit 0 only when every step asked for succeeded; 7 when a TEE call
    failed, 1 when the core refused otherwise; 2 usage, 3 I/O.
    """
    from rproctee.linux.lifecycle import report_dict, run_life
    from rproctee.linux.state import CrashType, DumpConf

    system = _system(image, platform, key, series, no_tee, policy)
    mode = DumpConf[_MODES[coredump_mode]] if coredump_path else DumpConf.DISABLED
    kind = CrashType.parse(crash) if crash else None
    try:
        report = run_life(system, crash=kind, coredump_mode=mode,
                          coredump_path=coredump_path)  # fmt: skip
    except OSError as exc:
        click.echo(f"error: cannot write coredump {coredump_path}: {exc}", err=True)
        raise SystemExit(exitcodes.IO_ERROR) from exc
    doc = report_dict(system, report)
    if sequence is not None:
        _write_sequence(system, sequence, image.name)
        doc["sequence"] = str(sequence)
    if as_json:
        emit_json(doc)
    else:
        print_life(doc)
    raise SystemExit(_status(report))


def _status(report: Any) -> int:
    if report.ok:
        return exitcodes.OK
    tee = any(s.tee_error for s in report.steps if not s.ok)
    return exitcodes.TEE_ERROR if tee else exitcodes.WOULD_NOT_LOAD


def _system(
    image: Path, platform: str, key: Path | None, series: str, no_tee: bool,
    policy: str,
) -> Any:  # fmt: skip
    from rproctee.errors import RprocError
    from rproctee.linux.system import build_system
    from rproctee.platform.board import load_platform

    try:
        spec = load_platform(platform)
    except RprocError as exc:
        raise click.UsageError(f"--platform: {exc}") from exc
    data = _read(image, "image")
    pem = _read(key, "key") if key else None
    if no_tee and key:
        raise click.UsageError("--key is for the TEE's PTA; --no-tee verifies nothing")
    try:
        return build_system(spec, data, series=series, tee=not no_tee, key_pem=pem,
                            policy=policy)  # fmt: skip
    except (ValueError, RprocError) as exc:
        raise click.UsageError(str(exc)) from exc


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        click.echo(f"error: cannot read {what} {path}: {exc.strerror}", err=True)
        raise SystemExit(exitcodes.IO_ERROR) from exc


def _write_sequence(system: Any, path: Path, what: str) -> None:
    from rproctee.linux.mermaid import markdown

    ops = f"TEE series {system.series}" if system.tee else "plain ELF ops"
    title = f"{what} on {system.platform.name}, {ops}"
    try:
        path.write_text(markdown(system.log.events, title), encoding="utf-8")
    except OSError as exc:
        click.echo(f"error: cannot write {path}: {exc.strerror}", err=True)
        raise SystemExit(exitcodes.IO_ERROR) from exc


# -- terminal output -----------------------------------------------------------
def print_life(doc: dict[str, Any]) -> None:
    """The human view of a :func:`report_dict` document."""
    ops = f"TEE series {doc['series']}" if doc["tee"] else "plain ELF ops (no TEE)"
    click.echo(f"remoteproc m4 on {doc['platform']}: {ops}")
    click.echo("states: " + " -> ".join(["OFFLINE", *doc["states"]]))
    if doc["tee_calls"]:
        calls = ", ".join(f"{c['cmd']}={_short(c['result'])}" for c in doc["tee_calls"])
        click.echo(f"TEE calls: {calls}")
    _print_table(doc)
    if doc["trace"]:
        click.echo(f"trace0: {doc['trace'].rstrip()}")
    if doc["crash"]:
        after = doc["trace_after_recovery"].rstrip() or "(no trace)"
        click.echo(f"crash: {doc['crash']}; recovered -> {after}")
        where = doc["coredump"] or ("kept in memory" if doc["coredump_bytes"] else None)
        click.echo(f"coredump: {doc['coredump_bytes']} bytes, {where}"
                   if where else "coredump: disabled")  # fmt: skip
    for step in doc["steps"]:
        mark = "ok" if step["ok"] else f"FAILED: {step['error']}"
        click.echo(f"  {step['step']:<15} {step['ms']:8.2f} ms  {mark}")


def _short(result: str) -> str:
    return result.removeprefix("TEE_ERROR_").removeprefix("TEE_")


def _print_table(doc: dict[str, Any]) -> None:
    if doc["rsc_table_error"]:
        click.echo(f"resource table: refused: {doc['rsc_table_error']}")
    for e in doc["rsc_table"] or []:
        click.echo(f"  rsc {e['type_name']:<8} {_entry_text(e)}")
    if doc["carveouts"]:
        click.echo("carveouts:")
        for c in doc["carveouts"]:
            click.echo(f"  {c['name']:<12} da {c['da']:#010x}  pa {c['pa']:#010x}"
                       f"  len {c['len']:#x}")  # fmt: skip


def _entry_text(e: dict[str, Any]) -> str:
    if e["type_name"] == "vdev":
        rings = ", ".join(f"vring{i} da {v['da']:#x} notifyid {v['notifyid']}"
                          for i, v in enumerate(e["vrings"]))  # fmt: skip
        return f"id {e['id']} status {e['status']:#x}: {rings}"
    if e["type_name"] == "trace":
        return f"{e['name']} da {e['da']:#x} len {e['len']:#x}"
    if "da" in e:
        return f"{e.get('name', '')} da {e['da']:#x} pa {e['pa']:#x} len {e['len']:#x}"
    return f"type {e['type']}"


# -- docs/lifecycle.md -----------------------------------------------------------
@click.command("lifecycle-doc")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("docs/lifecycle.md"), show_default=True)
def lifecycle_doc_cmd(out: Path) -> None:
    """Regenerate docs/lifecycle.md from real runs of series v15 and v22."""
    from rproctee.linux.lifecycle_doc import lifecycle_markdown

    try:
        out.write_text(lifecycle_markdown(), encoding="utf-8")
    except OSError as exc:
        click.echo(f"error: cannot write {out}: {exc.strerror}", err=True)
        raise SystemExit(exitcodes.IO_ERROR) from exc
    click.echo(f"wrote {out}")
