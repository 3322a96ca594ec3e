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

_SECURE_WRITERS = ("tee", "ta", "pta", "trustzone")


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
        "trustzone": "TrustZone",
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
        "| # | phase | who | what | lock on firmware memory | resource table |",
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


# -- the same firmware down both paths -------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One firmware booted by the PAS path and by the OP-TEE path.

    Attributes
    ----------
    identical : bool
        The carveout held the same bytes on both paths once the remote
        processor ran.
    first_difference : int or None
        Offset in the carveout of the first differing byte.
    markdown : str
        :func:`side_by_side` of the two runs (boot, then shutdown).
    pas_ok, tee_ok : bool
        Each path booted.
    """

    identical: bool
    first_difference: int | None
    markdown: str
    pas_ok: bool
    tee_ok: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (without the Markdown)."""
        return {
            "identical": self.identical,
            "first_difference": self.first_difference,
            "pas_ok": self.pas_ok,
            "tee_ok": self.tee_ok,
        }


def compare_paths(
    files: dict[str, bytes],
    firmware_name: str,
    carveout: Any,
    *,
    trusted_root: bytes | None,
    pas_id: int = 4,
) -> Comparison:
    """Boot ``firmware_name`` through PAS, and its segments through OP-TEE.

    The OP-TEE twin is the image's loadable segments (relocated to the
    carveout as mdt_loader would place them) as an ELF, signed with a fresh
    P-256 key, loaded by the strict TA (TEE series v22) on a platform whose
    only memory is the carveout.  Both runs boot, the carveouts are
    compared while the processor runs, then both shut down.

    Raises
    ------
    MdtError
        The image cannot be read.
    """
    import numpy as np

    from rproctee.qcom.pas_ops import build_pas_system

    pas = build_pas_system(
        files, firmware_name, carveout, trusted_root=trusted_root, pas_id=pas_id
    )
    tee = _tee_twin(files, firmware_name, carveout)
    pas_ok = _boot(pas)
    tee_ok = _boot(tee)
    a = pas.memory.view_pa(carveout.pa, carveout.size)
    b = tee.memory.view_pa(carveout.pa, carveout.size)
    diff = np.flatnonzero(a != b)
    first = int(diff[0]) if diff.size else None
    for system in (pas, tee):
        _shutdown(system)
    return Comparison(
        first is None,
        first,
        side_by_side(pas.log.events, tee.log.events),
        pas_ok,
        tee_ok,
    )


def _tee_twin(files: dict[str, bytes], firmware_name: str, carveout: Any) -> Any:
    from rproctee.firmware import Segment, build_elf
    from rproctee.image import KeySigner, generate_key, public_key_pem
    from rproctee.image import build_image as build_signed
    from rproctee.linux.system import build_system
    from rproctee.platform.board import PlatformSpec
    from rproctee.platform.memory import RegionSpec
    from rproctee.qcom.format import is_loadable, parse_image

    def fetch(name: str, max_size: int) -> bytes:
        from rproctee.qcom.errors import MdtFileError

        if name not in files:
            raise MdtFileError(name, "missing segment file")
        return files[name][: max_size + 1]

    image = parse_image(files[firmware_name], firmware_name, fetch)
    loadable = [(i, p) for i, p in enumerate(image.phdrs) if is_loadable(p)]
    base = min(p.p_paddr for _, p in loadable) if image.relocatable else carveout.pa
    segments = [
        Segment(
            f"seg{i}",
            p.p_paddr - base + carveout.pa,
            image.segments.get(i, b""),
            p.p_memsz,
            p.p_flags & 7,
        )
        for i, p in loadable
    ]
    key = generate_key("p256")
    region = RegionSpec(carveout.name, carveout.pa, carveout.pa, carveout.size)
    spec = PlatformSpec(
        "pas-twin",
        (region,),
        accept_ecdsa=True,
        processor_ids=(0,),
        source="the PAS image's segments, signed for OP-TEE",
    )
    signed = build_signed([build_elf(segments)], KeySigner(key))
    return build_system(spec, signed, key_pem=public_key_pem(key), policy="strict")


def _boot(system: Any) -> bool:
    from rproctee.linux.errors import RprocErrno

    with system.log.in_phase("boot"):
        try:
            system.rproc.boot()
        except RprocErrno:
            return False
    return True


def _shutdown(system: Any) -> None:
    from rproctee.linux.errors import RprocErrno
    from rproctee.linux.state import RprocState

    if system.rproc.state != RprocState.RUNNING:
        return
    with system.log.in_phase("shutdown"):
        try:
            system.rproc.shutdown()
        except RprocErrno:
            pass  # the tables show the failed stop
