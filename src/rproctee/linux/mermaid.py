"""A Mermaid sequence diagram of what actually happened, from the event log.

Lanes: Linux (the rproc core and its driver), the TEE client driver
(``remoteproc_tee``), the remoteproc TA, the stm32mp PTA, TrustZone (the
Qualcomm PAS service: SCM calls and returns, XPU changes, its writes) and
the remote processor. Only lanes that took part are drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rproctee.linux.events import Event

LANES = (
    ("L", "Linux rproc core"),
    ("D", "TEE driver (remoteproc_tee)"),
    ("T", "remoteproc TA"),
    ("P", "stm32mp PTA"),
    ("Z", "TrustZone (PAS)"),
    ("R", "remote processor"),
)
_WRITER = {
    "linux": "L", "pta": "P", "remote": "R", "tee": "D", "ta": "T", "trustzone": "Z",
}  # fmt: skip
#: A PAS run has no TEE driver: writes logged under ``tee`` there are
#: TrustZone's (:mod:`rproctee.qcom.pas_ops` still logs its secure side
#: under ``tee``; ``trustzone`` is the layer meant for it).
_PAS_WRITER = {**_WRITER, "tee": "Z"}
_SCM_KINDS = ("scm", "scm_ret", "xpu")


def _text(value: object) -> str:
    """Mermaid-safe message text (no ``;``, ``#`` or line breaks)."""
    return str(value).replace(";", ",").replace("#", "no. ").replace("\n", " ")


def _scm_lines(e: Event) -> list[str]:
    """An SCM call, its return or an XPU change, in the TrustZone lane."""
    d = e.detail
    if e.kind == "scm":
        args = " ".join(hex(a) for a in d.get("args", []))
        return [f"L->>Z: {e.name} (PAS id {d.get('pas_id')}) {args}".rstrip()]
    if e.kind == "scm_ret":
        ret = d.get("ret", 0)
        why = f" ({d.get('reason')})" if ret and d.get("reason") else ""
        return [f"Z-->>L: {e.name} = {ret}{why}"]
    return [f"Note over Z: XPU {e.name} of pa {d['pa']:#x} +{d['len']:#x}"]


def _lines(
    e: Event, timings: bool = True, writers: Mapping[str, str] = _WRITER
) -> list[str]:
    d = e.detail
    if e.kind in _SCM_KINDS:
        return _scm_lines(e)
    if e.kind == "op":
        target = "D" if d.get("lane") == "tee" else "L"
        return [f"L->>{target}: {e.name}() [{d.get('fn', e.name)}]"]
    if e.kind == "op_ret":
        if d.get("lane") == "tee":
            return [f"D-->>L: {e.name} = {d['ret']}"]
        return [] if d["ret"] == "0" else [f"Note over L: {e.name} = {d['ret']}"]
    if e.kind == "invoke":
        return [f"D->>T: {e.name} (id {d['id']})"]
    if e.kind == "invoke_ret":
        took = f" ({d['ms']:.2f} ms)" if timings else ""
        return [f"T-->>D: {d['result']}{took}"]
    if e.kind == "session":
        return [f"D->>T: open session (REE kernel login, id {d['id']})"]
    if e.kind == "session_ret":
        return [f"T-->>D: {d['result']}"]
    if e.kind == "pta":
        return [f"T->>P: {e.name}"]
    if e.kind == "pta_ret":
        return [f"P-->>T: {d['result']}"]
    if e.kind == "ta_state":
        return [f"Note over T: TA state {d['from']} -> {d['to']}"]
    if e.kind == "state":
        return [f"Note over L: {d['from']} -> {d['to']}"]
    if e.kind == "write":
        src = writers.get(e.layer, "L")
        arrow = f"{src}->>R" if src != "R" else "R->>R"
        return [f"{arrow}: {e.name} da {d['da']:#x} +{d['len']:#x}"]
    if e.kind == "remote":
        if e.name == "crash":
            return [f"R-)L: crash ({d['type']}, {d['reason']})"]
        if e.name == "on_start":
            return [f"Note over R: firmware on_start (boot {d['boot']})"]
        if e.name == "on_stop":
            return ["Note over R: held in reset (on_stop)"]
        return [f"Note over R: {e.name}"]
    if e.kind == "log" and d.get("level") == "err":
        return [f"Note over L: {e.name}"]
    if e.kind == "log" and e.name == "tee bus probe":
        return [f"Note over D: TEE bus: TA {d['uuid']} listed, bound {d['bound']}"]
    return []


def sequence_diagram(
    events: Iterable[Event], title: str = "", *, timings: bool = True
) -> str:
    """The ``sequenceDiagram`` source for ``events``.

    Phase changes (boot, crash+recovery, shutdown) become full-width notes;
    ``timings=False`` leaves the milliseconds out (reproducible documents).
    """
    events = list(events)
    pas = any(e.kind in _SCM_KINDS for e in events)
    writers = _PAS_WRITER if pas else _WRITER
    body: list[str] = []
    used: set[str] = set()
    phase = None
    for e in events:
        lines = _lines(e, timings, writers)
        if not lines:
            continue
        now = e.detail.get("phase")
        if now and now != phase:
            body.append(f"Note over L,R: {_text(now)}")
            used.update("LR")
            phase = now
        for line in lines:
            head, _, msg = line.partition(": ")
            used.update(c for c in "LDTPZR" if c in head.replace("Note over", ""))
            body.append(f"{head}: {_text(msg)}")
    out = ["sequenceDiagram"]
    if title:
        out.append(f"    title {_text(title)}")
    out += [f"    participant {k} as {name}" for k, name in LANES if k in used]
    out += [f"    {line}" for line in body]
    return "\n".join(out) + "\n"


def markdown(events: Iterable[Event], title: str) -> str:
    """A Markdown file holding the diagram in a ``mermaid`` code block."""
    return f"# {title}\n\n```mermaid\n{sequence_diagram(events, title)}```\n"
