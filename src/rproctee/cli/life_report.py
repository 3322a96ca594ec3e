"""The life of a remote processor as the boot commands print and write it.

Shared by ``rproctee boot`` (TEE, ELF and PAS paths) and its ``--emulate``
runner: exit status of a life, its terminal view, and the files it writes
(Mermaid sequence, text).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import click

from rproctee.cli import exitcodes
from rproctee.cli.output import emit_json, fail


def life_status(report: Any) -> int:
    """Exit status of a life: 0, 7 when a TEE (or SCM) call failed, else 1."""
    if report.ok:
        return exitcodes.OK
    tee = any(s.tee_error for s in report.steps if not s.ok)
    return exitcodes.TEE_ERROR if tee else exitcodes.WOULD_NOT_LOAD


def read_input(path: Path, what: str) -> bytes:
    """The bytes of ``path``; unreadable: ``error:`` line, exit 3."""
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror}", exitcodes.IO_ERROR)


def write_sequence(system: Any, path: Path, what: str) -> None:
    """The Mermaid sequence diagram of ``system``'s event log, to ``path``."""
    from rproctee.linux.mermaid import markdown

    ops = f"TEE series {system.series}" if system.tee else "plain ELF ops"
    title = f"{what} on {system.platform.name}, {ops}"
    write_text(path, markdown(system.log.events, title))


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path``; failure: ``error:`` line, exit 3."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}", exitcodes.IO_ERROR)


def coredump_unwritable(path: Path | None, exc: OSError) -> NoReturn:
    """A life whose coredump file could not be written: ``error:``, exit 3."""
    fail(f"cannot write coredump {path}: {exc}", exitcodes.IO_ERROR)


def show_life(
    system: Any, doc: dict[str, Any], sequence: Path | None, what: str, as_json: bool
) -> None:
    """Write the sequence diagram (when asked), then the life as JSON or text."""
    if sequence is not None:
        write_sequence(system, sequence, what)
        doc["sequence"] = str(sequence)
    if as_json:
        emit_json(doc)
    else:
        print_life(doc)


def print_life(doc: dict[str, Any]) -> None:
    """The human view of a :func:`report_dict` document."""
    pas, name = doc.get("pas"), "m4"
    if pas:
        secure = "on" if pas["secure_boot"] else "off (no --root)"
        ops = f"qcom_q6v5_pas, PAS id {pas['pas_id']}, secure boot {secure}"
        name = pas["rproc"]
    elif doc["tee"]:
        ops = f"TEE series {doc['series']}"
    else:
        ops = "plain ELF ops (no TEE)"
    click.echo(f"remoteproc {name} on {doc['platform']}: {ops}")
    click.echo("states: " + " -> ".join(["OFFLINE", *doc["states"]]))
    if doc["tee_calls"]:
        calls = ", ".join(_call_text(c) for c in doc["tee_calls"])
        click.echo(f"{'SCM' if pas else 'TEE'} calls: {calls}")
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


def _call_text(call: dict[str, Any]) -> str:
    why = f" ({call['reason']})" if call.get("reason") else ""  # SCM calls only
    return f"{call['cmd']}={_short(call['result'])}{why}"


def _short(result: str) -> str:
    for prefix in ("TEE_ERROR_", "TEE_", "QCOM_SCM_"):
        result = result.removeprefix(prefix)
    return result


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
