"""The PAS path as a sequence, and beside the TEE path: who holds the memory when.

The thread (spec 5.6) argues about two designs:

* **Qualcomm PAS** (two steps): TrustZone checks the signed metadata, Linux
  writes every segment into the carveout, then one call locks Linux out,
  checks what was written and releases the core.  The image has no
  resource table: nothing in it is consumed by Linux before or after
  authentication.
* **OP-TEE remoteproc TA** (one step): Linux hands the whole signed image
  over; the TA verifies and copies it into memory Linux cannot write; the
  resource table is authenticated with the segments, at LOAD_FW, before
  Linux asks for it.

:func:`ownership` reads a run's event log (:mod:`rproctee.linux.events`)
and says, step by step, who wrote device memory, whether a lock keeps Linux
out of the firmware memory, and where the resource table stands; it
understands both paths' events.  :func:`side_by_side` puts the two in one Markdown
document; :func:`pas_sequence_diagram` draws the PAS run in Mermaid with a
TrustZone lane (the shared diagram has no lane for it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rproctee.linux.events import Event

_SECURE_WRITERS = ("tee", "ta", "pta")


@dataclass(frozen=True)
class Step:
    """One row of an ownership view."""

    phase: str
    actor: str
    action: str
    holder: str  # the lock on the firmware memory after this step
    rsc_table: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)


class _Walk:
    """State carried along one event log."""

    def __init__(self, tee_path: bool) -> None:
        self.tee_path = tee_path
        # The model enforces a lock on the PAS path only (the XPU); the stm32
        # firewall that keeps Linux out of OP-TEE's memories is not modelled.
        self.holder = "no lock modelled (stm32 firewall)" if tee_path else "none"
        self.rsc = "not yet" if tee_path else "none in the image"
        self.rows: list[Step] = []
        self.pending: tuple[str, str, int, int] | None = None  # phase, layer, n, bytes

    def flush(self) -> None:
        if self.pending is None:
            return
        phase, layer, count, size = self.pending
        who = _writer(layer)
        self.rows.append(
            Step(phase, who, f"{count} writes, {size:#x} bytes", self.holder, self.rsc)
        )
        self.pending = None

    def add(self, phase: str, actor: str, action: str) -> None:
        self.flush()
        self.rows.append(Step(phase, actor, action, self.holder, self.rsc))


def _writer(layer: str) -> str:
    return {
        "linux": "Linux",
        "tee": "TrustZone / TEE",
        "ta": "remoteproc TA",
        "pta": "platform PTA",
        "remote": "remote core",
    }.get(layer, layer)


def ownership(events: Iterable[Event]) -> list[Step]:
    """Each step of a run: who acted, the memory lock, the resource table.

    Consecutive device writes by one layer are one row.  PAS events
    (``scm``/``scm_ret``/``xpu``, from :mod:`rproctee.qcom.pas_ops`) and TEE
    events (``invoke``/``invoke_ret``) are both understood; a log with TEE
    invokes is read as the TEE path.
    """
    events = list(events)
    walk = _Walk(tee_path=any(e.kind == "invoke" for e in events))
    for e in events:
        phase = str(e.detail.get("phase", ""))
        if e.kind == "write":
            _write(walk, phase, e)
            continue
        _step(walk, phase, e)
    walk.flush()
    return walk.rows


def _write(walk: _Walk, phase: str, e: Event) -> None:
    size = int(e.detail.get("len", 0))
    if walk.pending is not None and walk.pending[:2] == (phase, e.layer):
        _, _, count, total = walk.pending
        walk.pending = (phase, e.layer, count + 1, total + size)
        return
    walk.flush()
    walk.pending = (phase, e.layer, 1, size)


def _step(walk: _Walk, phase: str, e: Event) -> None:
    d = e.detail
    if e.kind == "scm":
        walk.add(phase, "Linux -> TrustZone", f"SCM {e.name}")
    elif e.kind == "scm_ret" and d.get("ret"):
        walk.add(
            phase, "TrustZone", f"{e.name} failed: {d.get('ret')} ({d.get('reason')})"
        )
    elif e.kind == "xpu":
        walk.holder = "XPU: Linux locked out" if e.name == "lock" else "none"
        walk.add(phase, "TrustZone", f"XPU {e.name} of the carveout")
    elif e.kind == "invoke":
        walk.add(phase, "Linux -> OP-TEE", f"TA command {e.name}")
    elif e.kind == "invoke_ret":
        if e.name == "LOAD_FW" and d.get("result") == "TEE_SUCCESS":
            walk.rsc = "authenticated with the segments (LOAD_FW)"
        if d.get("result") != "TEE_SUCCESS":
            walk.add(phase, "OP-TEE", f"{e.name} answered {d.get('result')}")
    elif e.kind == "remote" and e.name in ("on_start", "on_stop", "crash"):
        walk.add(phase, "remote core", e.name)
    elif e.kind == "state":
        walk.add(phase, "Linux rproc core", f"state {d.get('to')}")


def markdown_table(rows: list[Step]) -> str:
    """The rows as a Markdown table."""
    out = [
        "| # | phase | who | what | firmware memory writable by | resource table |",
        "|---|---|---|---|---|---|",
    ]
    for i, row in enumerate(rows, 1):
        cells = (row.phase, row.actor, row.action, row.holder, row.rsc_table)
        out.append(f"| {i} | " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(out) + "\n"


def side_by_side(pas_events: Iterable[Event], tee_events: Iterable[Event]) -> str:
    """A Markdown document: the PAS run's ownership table, then the TEE run's."""
    return (
        "# Who holds the firmware memory: Qualcomm PAS beside the OP-TEE TA\n\n"
        "## PAS (two steps: metadata, Linux loads, auth-and-reset)\n\n"
        + markdown_table(ownership(pas_events))
        + "\n## OP-TEE remoteproc TA (one step: LOAD_FW)\n\n"
        + markdown_table(ownership(tee_events))
    )


# -- Mermaid ------------------------------------------------------------------

_LANES = (
    ("L", "Linux (rproc core, qcom_q6v5_pas)"),
    ("Z", "TrustZone PAS"),
    ("R", "remote processor"),
)


def _text(value: object) -> str:
    return str(value).replace(";", ",").replace("#", "no. ").replace("\n", " ")


def _lines(e: Event) -> list[str]:
    d = e.detail
    if e.kind == "op" and e.name in ("load", "start", "stop", "parse_fw", "unprepare"):
        return [f"Note over L: ops->{e.name}()"]
    if e.kind == "scm":
        return [
            f"L->>Z: {e.name} {' '.join(hex(a) for a in d.get('args', []))}".rstrip()
        ]
    if e.kind == "scm_ret":
        ret = d.get("ret", 0)
        return [f"Z-->>L: {ret}" + (f" ({d.get('reason')})" if ret else "")]
    if e.kind == "xpu":
        return [f"Note over Z: XPU {e.name} carveout {d['pa']:#x} +{d['len']:#x}"]
    if e.kind == "write":
        src = "L" if e.layer == "linux" else "Z"
        return [f"{src}->>R: {e.name} da {d['da']:#x} +{d['len']:#x}"]
    if e.kind == "remote" and e.name in ("on_start", "on_stop", "crash"):
        return [f"Note over R: {e.name}"]
    if e.kind == "state":
        return [f"Note over L: {d.get('from')} -> {d.get('to')}"]
    if e.kind == "log" and d.get("level") == "err":
        return [f"Note over L: {e.name}"]
    return []


def pas_sequence_diagram(events: Iterable[Event], title: str = "") -> str:
    """The Mermaid ``sequenceDiagram`` of a PAS run (three lanes)."""
    out = ["sequenceDiagram"]
    if title:
        out.append(f"    title {_text(title)}")
    out += [f"    participant {key} as {name}" for key, name in _LANES]
    phase = None
    for e in events:
        lines = _lines(e)
        now = e.detail.get("phase")
        if lines and now and now != phase:
            out.append(f"    Note over L,R: {_text(now)}")
            phase = now
        for line in lines:
            head, _, msg = line.partition(": ")
            out.append(f"    {head}: {_text(msg)}")
    return "\n".join(out) + "\n"


def pas_markdown(events: Iterable[Event], title: str) -> str:
    """A Markdown file: the diagram, then the ownership table."""
    events = list(events)
    return (
        f"# {title}\n\n```mermaid\n{pas_sequence_diagram(events, title)}```\n\n"
        + markdown_table(ownership(events))
    )
