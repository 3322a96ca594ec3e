"""``rproctee load`` and ``rproctee invoke``: drive the remoteproc TA."""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rproctee.cli import exitcodes
from rproctee.cli.files import map_file
from rproctee.cli.output import emit_json, fail
from rproctee.errors import RprocError
from rproctee.platform.board import PlatformSpec, load_platform
from rproctee.tee import (
    TA_UUID,
    Answer,
    TaCommand,
    TeeClientError,
    TeeContext,
    TeeSession,
    build_secure_world,
)
from rproctee.tee.params import (
    Memref,
    Param,
    memref_in,
    memref_out,
    value_in,
    value_out,
)
from rproctee.tee.world import SecureWorld

if TYPE_CHECKING:
    from rproctee.api import LoadResult

_PLATFORM_HELP = "Preset name, device tree (.dtb/.dts) or TOML profile (.toml)."
COREDUMP_BUFFER = 4 << 20


def register(group: click.Group) -> None:
    """Add ``load`` and ``invoke`` to ``group``."""
    group.add_command(load_cmd)
    group.add_command(invoke_cmd)


def _platform(ref: str, node: str | None) -> PlatformSpec:
    try:
        return load_platform(ref, node)
    except RprocError as exc:
        fail(f"--platform {ref}: {exc}", exitcodes.USAGE)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror}", exitcodes.IO_ERROR)


def _map(path: Path, what: str) -> memoryview:
    """The file mapped read-only: large images are never copied into bytes."""
    try:
        return memoryview(map_file(path))
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror}", exitcodes.IO_ERROR)


def _signed_image(path: Path) -> memoryview:
    """The image mapped; a plain ELF is named as such (sign it first)."""
    data = _map(path, "image")
    if bytes(data[:4]) == b"\x7fELF":
        fail(
            f"{path}: this is an ELF file, not a signed image: sign it first "
            "(rproctee sign --in FILE --key KEY --out IMAGE)",
            exitcodes.MALFORMED_IMAGE,
        )
    return data


def _public_pem(key: Path) -> bytes:
    """The platform's public key from ``--key`` (a private key is refused)."""
    pem = _read(key, "key")
    if b"PRIVATE KEY-----" in pem:
        fail(
            f"--key {key}: holds a private key where the platform's public key "
            f"is wanted (rproctee pubkey {key} --out PUB.pem)",
            exitcodes.USAGE,
        )
    return pem


def _world(
    platform: str, node: str | None, key: Path | None, policy: str, ecdsa: bool,
    heap: int,
) -> SecureWorld:  # fmt: skip
    spec = _platform(platform, node)
    pem = _public_pem(key) if key else None
    try:
        return build_secure_world(
            spec, policy=policy, key_pem=pem, accept_ecdsa=ecdsa or None,
            heap_size=heap,
        )  # fmt: skip
    except ValueError as exc:
        fail(f"--key {key}: {exc}", exitcodes.USAGE)


def _open(world: SecureWorld, rproc_id: int) -> TeeSession | Answer:
    try:
        return TeeContext(world.core).open_session(TA_UUID, [value_in(rproc_id)])
    except TeeClientError as exc:
        return exc.answer


def _answer_dict(answer: Answer) -> dict[str, Any]:
    out: dict[str, Any] = {
        "result": answer.result.name,
        "code": int(answer.result),
        "reason": answer.reason,
        "origin": answer.origin.name,
    }
    if answer.traceback:
        out["traceback"] = answer.traceback
    return out


def _common(f: Any) -> Any:
    opts = [
        click.option("--platform", "-p", required=True, help=_PLATFORM_HELP),
        click.option("--node", default=None,
                     help="Device trees: the processor node (path, label, name)."),
        click.option("--key", type=click.Path(dir_okay=False, path_type=Path),
                     help="PEM public key of the platform (default: its own)."),
        click.option("--policy", type=click.Choice(["optee", "strict"]),
                     default="strict", show_default=True),
        click.option("--accept-ecdsa", is_flag=True,
                     help="Let the platform verify ECDSA P-256 (upstream: no)."),
        click.option("--heap-size", type=int, default=4096, show_default=True,
                     help="TA heap (CFG_REMOTEPROC_TA_HEAP_SIZE)."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    ]  # fmt: skip
    for opt in reversed(opts):
        f = opt(f)
    return f


# -- load -----------------------------------------------------------------------
@click.command("load")
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@_common
@click.option("--id", "rproc_id", type=int, default=0, show_default=True,
              help="Processor id.")  # fmt: skip
@click.option("--threads", type=click.IntRange(1, 256), default=None,
              help="Segment worker threads (default: usable cores).")  # fmt: skip
@click.option("--profile", is_flag=True,
              help="Where the time went: each cost, bytes, GB/s.")  # fmt: skip
def load_cmd(
    image: Path, platform: str, node: str | None, key: Path | None, policy: str,
    accept_ecdsa: bool, heap_size: int, as_json: bool, rproc_id: int,
    threads: int | None, profile: bool,
) -> None:  # fmt: skip
    """Open a TEE session, LOAD_FW IMAGE and, on success, GET_RSC_TABLE.

    \b
    Example:
      rproctee load fw.sig -p stm32mp15-dk2 --key pub.pem
      rproctee load fw.sig -p board.dtb --node m4 --json

    \b
    Exit statuses: 0 TEE_SUCCESS, 2 usage, 3 I/O error, 4 not a signed image,
    7 the TEE answered something other than TEE_SUCCESS.
    """
    data = _signed_image(image)
    world = _world(platform, node, key, policy, accept_ecdsa, heap_size)
    if threads is not None:
        world.core.threads = threads
    with _progress(world, len(data)):
        report, result = run_load(world, data, rproc_id)
    report["key"] = _key_source(world, key)
    if profile:
        report["profile"] = result.profile()
    click.echo(f"PTA verification key: {report['key']}", err=True)
    if as_json:
        emit_json(report)
    else:
        _print_load(report)
        if profile:
            _print_profile(report["profile"])
    raise SystemExit(exitcodes.OK if report["code"] == 0 else exitcodes.TEE_ERROR)


#: Loads smaller than this finish before a progress bar is worth drawing.
PROGRESS_MIN_BYTES = 32 << 20


@contextlib.contextmanager
def _progress(world: SecureWorld, total: int) -> Iterator[None]:
    """A rich progress bar on stderr while LOAD_FW copies, when stderr is a
    terminal and the image is large.

    Fed by polling the platform's copy timings from a thread, not by a phase
    hook: a hook is taken to watch the load, which keeps it on the Python
    per-segment calls (no batching, no worker threads, no compiled calls).
    """
    if total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield
        return
    import threading

    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn())
    timings = world.pta.timings
    first = len(timings)
    done = threading.Event()
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("LOAD_FW", total=total)

        def show() -> None:
            copied = sum(t.len for t in timings[first:] if t.op == "copy")
            bar.update(task, completed=copied)

        def poll() -> None:
            while not done.wait(0.1):
                show()

        poller = threading.Thread(target=poll, name="load-progress", daemon=True)
        poller.start()
        try:
            yield
        finally:
            done.set()
            poller.join()
            show()


def _print_profile(rows: list[dict[str, Any]]) -> None:
    click.echo("\nProfile (bytes, ms, GB/s):")
    for r in rows:
        rate = f"{r['gb_per_s']:8.2f}" if r["gb_per_s"] else "       -"
        click.echo(
            f"  {r['what']:<48} {r['bytes']:>12,} {r['seconds'] * 1e3:10.3f} {rate}"
        )


def _key_source(world: SecureWorld, key: Path | None) -> str:
    """Which key the PTA verifies with, said out loud (dev keys especially)."""
    if key is not None:
        return str(key)
    if world.platform.default_key_pem is None:
        return "none (the platform names no key; pass --key)"
    notes = [n for n in world.platform.notes if "key" in n]
    return "the platform's built-in key" + (f": {notes[0]}" if notes else "")


def run_load(
    world: SecureWorld, image: bytes | memoryview, rproc_id: int = 0
) -> tuple[dict[str, Any], LoadResult]:
    """:func:`rproctee.api.run_load` on ``world``, as a JSON-ready report.

    Returns
    -------
    (dict, LoadResult)
        The report: ``result``, ``code``, ``reason``, ``rsc_table``
        (GET_RSC_TABLE's address and size, the table decoded from device
        memory, or a ``warning``), ``writes`` (with their region), ``timings``
        (per phase), ``segments`` (per device write) and ``heap_peak``; and
        the API's result it was made from.
    """
    from rproctee.api import run_load as api_run_load

    result = api_run_load(world, image, rproc_id)
    segments = [
        {"op": t.op, "da": t.da, "len": t.len, "seconds": t.seconds,
         "gb_per_s": (t.len / t.seconds / 1e9) if t.seconds > 0 else None}
        for t in world.pta.timings
    ]  # fmt: skip
    ta = world.ta()
    report: dict[str, Any] = {
        "result": result.result,
        "code": result.code,
        "reason": result.reason,
        "origin": result.origin,
        "policy": result.policy,
        "platform": world.platform.name,
        "rsc_table": _table_report(world, result),
        "writes": [vars(w).copy() for w in result.writes],
        "timings": [vars(t).copy() for t in result.timings],
        "segments": segments,
        "heap_peak": ta.last_load.heap_peak if ta and ta.last_load else None,
    }
    if result.traceback:
        report["traceback"] = result.traceback
    return report, result


def _table_report(world: SecureWorld, result: LoadResult) -> dict[str, Any] | None:
    """GET_RSC_TABLE's answer, with the table decoded from device memory.

    The bytes are read where the TA says the table is, as Linux reads them,
    and validated with the one resource-table parser. Under ``optee`` the TA
    takes the table's place from unsigned section headers, so what is in
    memory there may not be a table at all: that is a ``warning``.
    """
    if result.rsc_table_address is None:
        return None
    pa, size = result.rsc_table_address
    out: dict[str, Any] = {"pa": pa, "size": size}
    if not size:
        out["warning"] = "the firmware has no resource table"
        return out
    try:
        out["da"] = world.memory.pa_to_da(pa, size)
    except RprocError as exc:
        out["warning"] = f"the table at pa {pa:#x} (+{size:#x}) is unreadable: {exc}"
        return out
    if result.rsc_table is not None:
        out["decoded"] = result.rsc_table.to_dict()
    else:
        out["warning"] = f"not a valid table in device memory: {result.rsc_table_error}"
    return out


def _print_load(report: dict[str, Any]) -> None:
    click.echo(f"LOAD_FW: {report['result']} ({report['code']:#010x})")
    if report["reason"]:
        click.echo(f"  reason: {report['reason']}")
    if report.get("traceback"):
        click.echo("  the TA died; traceback of the model:")
        click.echo("    " + report["traceback"].rstrip().replace("\n", "\n    "))
    _print_rsc_table(report["rsc_table"])
    if report["writes"]:
        click.echo("  device writes:")
    for w in report["writes"]:
        click.echo(
            f"    {w['op']:<5} da {w['da']:#010x} pa {w['pa']:#010x} "
            f"len {w['len']:#x}  ({w['region']})"
        )
    _print_timings(report["timings"])


def _print_rsc_table(table: dict[str, Any] | None) -> None:
    if table is None:
        return
    click.echo(f"  resource table: pa {table['pa']:#x} size {table['size']:#x}")
    if "warning" in table:
        click.echo(f"    warning: {table['warning']}")
        return
    decoded = table["decoded"]
    click.echo(f"    ver {decoded['ver']}, {decoded['num']} entries")
    for entry in decoded["entries"]:
        click.echo(f"    {_entry_text(entry)}")
    for line in decoded["warnings"]:
        click.echo(f"    warning: {line}")


def _entry_text(entry: dict[str, Any]) -> str:
    """One decoded entry on one line, addresses in hex."""
    head = f"[{entry['offset']:#x}] {entry['type_name']}"
    if entry["type_name"] == "vdev":
        rings = ", ".join(
            f"vring da {v['da']:#x} num {v['num']} align {v['align']:#x}"
            for v in entry["vrings"]
        )
        return (
            f"{head} id {entry['id']} notifyid {entry['notifyid']} status "
            f"{entry['status']:#x} config_len {entry['config_len']}: {rings}"
        )
    fields = [
        f"{k} {v:#x}" if k in ("da", "pa", "len") else f"{k} {v}"
        for k, v in entry.items()
        if k in ("da", "pa", "len", "flags", "name")
    ]
    return f"{head} " + " ".join(fields) if fields else head


def _print_timings(phases: list[dict[str, Any]]) -> None:
    """Top-level phases, their sub-phases indented, and totals that add up."""
    click.echo("  timings:")
    top = [p for p in phases if "." not in p["phase"]]
    for p in top:
        click.echo(f"    {p['phase']:<28} {p['seconds'] * 1e3:9.3f} ms")
        subs = [q for q in phases if q["phase"].startswith(p["phase"] + ".")]
        for q in subs:
            name = q["phase"].split(".", 1)[1]
            click.echo(f"      {name:<26} {q['seconds'] * 1e3:9.3f} ms")
        if subs:
            rest = p["seconds"] - sum(q["seconds"] for q in subs)
            click.echo(f"      {'(TA entry and exit)':<26} {rest * 1e3:9.3f} ms")
    total = sum(p["seconds"] for p in top)
    click.echo(f"    {'total':<28} {total * 1e3:9.3f} ms")


# -- invoke ---------------------------------------------------------------------
@dataclass
class Step:
    """One ``CMD:ID[:FILE][@PTYPES]`` step."""

    text: str
    cmd: int
    rproc_id: int
    file: Path | None
    ptypes: int | None


def parse_step(text: str) -> Step:
    """Parse ``CMD:ID[:FILE][@PTYPES]``.

    Raises
    ------
    click.BadParameter
        Unknown command name, bad number or missing id.
    """
    body, _, ptypes = text.partition("@") if "@" in text else (text, "", "")
    parts = body.split(":", 2)
    if len(parts) < 2:
        raise click.BadParameter(f"{text}: expected CMD:ID[:FILE][@PTYPES]")
    names = ", ".join(c.name.lower() for c in TaCommand)
    if parts[0].upper() not in TaCommand.__members__ and not _is_number(parts[0]):
        raise click.BadParameter(f"{text}: unknown command {parts[0]} ({names})")
    try:
        cmd = (
            TaCommand[parts[0].upper()].value
            if parts[0].upper() in TaCommand.__members__
            else int(parts[0], 0)
        )
        rproc_id = int(parts[1], 0)
        word = int(ptypes, 16) if ptypes else None
    except ValueError as exc:
        raise click.BadParameter(f"{text}: {exc}") from exc
    file = Path(parts[2]) if len(parts) == 3 and parts[2] else None
    return Step(text, cmd, rproc_id, file, word)


def _is_number(text: str) -> bool:
    try:
        int(text, 0)
    except ValueError:
        return False
    return True


def _step_params(step: Step) -> list[Param]:
    rid = value_in(step.rproc_id)
    if step.cmd == TaCommand.LOAD_FW:
        data = _read(step.file, "image") if step.file else b""
        return [rid, memref_in(data)]
    if step.cmd == TaCommand.GET_RSC_TABLE:
        return [rid, value_out(), value_out()]
    if step.cmd == TaCommand.GET_COREDUMP:
        return [rid, memref_out(bytearray(COREDUMP_BUFFER))]
    return [rid]


def _outputs(step: Step, params: list[Param]) -> dict[str, Any]:
    if step.cmd == TaCommand.GET_RSC_TABLE:
        a, b = params[1], params[2]
        assert a is not None and not isinstance(a, Memref)
        assert b is not None and not isinstance(b, Memref)
        return {"rsc_pa": a.b << 32 | a.a, "rsc_size": b.b << 32 | b.a}
    if step.cmd == TaCommand.GET_COREDUMP:
        out = params[1]
        assert isinstance(out, Memref)
        size = out.length
        data = bytes(out.view()[: min(size, COREDUMP_BUFFER)])
        return {
            "coredump_size": size,
            "coredump_sha256": hashlib.sha256(data).hexdigest(),
        }
    return {}


def run_step(session: TeeSession, step: Step) -> dict[str, Any]:
    """Send one step on ``session``; a JSON-ready record."""
    params = _step_params(step)
    answer = session.invoke_command(step.cmd, params, ptypes=step.ptypes)
    name = TaCommand(step.cmd).name if step.cmd in set(TaCommand) else hex(step.cmd)
    record = {"step": step.text, "cmd": name, "id": step.rproc_id}
    record |= _answer_dict(answer)
    if answer.ok:
        record |= _outputs(step, params)
    return record


@click.command("invoke")
@click.argument("steps", nargs=-1, required=True)
@_common
@click.option("--id", "--session-id", "session_id", type=int, default=0,
              show_default=True,
              help="Processor id given to open-session.")  # fmt: skip
def invoke_cmd(
    steps: tuple[str, ...], platform: str, node: str | None, key: Path | None,
    policy: str, accept_ecdsa: bool, heap_size: int, as_json: bool,
    session_id: int,
) -> None:  # fmt: skip
    """Run STEPs in order on one TEE session, as xtest does.

    A STEP is CMD:ID[:FILE][@PTYPES]: CMD is a command name, in any case
    (load_fw, start_fw, stop_fw, get_rsc_table, get_coredump, release_fw),
    or a number; ID the processor id; FILE the image of LOAD_FW; PTYPES a
    parameter-type word in hex, to send a wrong one on purpose.

    \b
    Example:
      rproctee invoke -p stm32mp15-dk2 --key pub.pem \\
          load_fw:0:fw.sig get_rsc_table:0 start_fw:0 stop_fw:0 release_fw:0

    \b
    Exit statuses: 0 every step was sent (whatever the TEE answered),
    2 usage, 3 I/O error, 7 the session could not be opened.
    """
    parsed = [parse_step(s) for s in steps]
    world = _world(platform, node, key, policy, accept_ecdsa, heap_size)
    session = _open(world, session_id)
    if isinstance(session, Answer):
        doc: dict[str, Any] = {"open_session": _answer_dict(session), "steps": []}
        _emit_invoke(doc, as_json)
        raise SystemExit(exitcodes.TEE_ERROR)
    records = [run_step(session, step) for step in parsed]
    session.close()
    doc = {"open_session": _answer_dict(Answer(session_ok())), "steps": records}
    _emit_invoke(doc, as_json)
    raise SystemExit(exitcodes.OK)


def session_ok() -> Any:
    """TEE_SUCCESS (for the open-session record)."""
    from rproctee.tee import TeeResult

    return TeeResult.TEE_SUCCESS


def _emit_invoke(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(doc)
        return
    click.echo(f"open session: {doc['open_session']['result']}")
    for r in doc["steps"]:
        extra = {k: v for k, v in r.items() if k.startswith(("rsc_", "coredump_"))}
        shown = " ".join(f"{k}={v:#x}" if isinstance(v, int) else f"{k}={v}"
                         for k, v in extra.items())  # fmt: skip
        click.echo(f"{r['step']:<30} {r['result']:<28} {shown}")
        if r["reason"]:
            click.echo(f"    {r['reason']}")
