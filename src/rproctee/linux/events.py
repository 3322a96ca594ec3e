"""One event log per run: every step of the life cycle, in order, by layer.

Layers: ``linux`` (the rproc core and its ops), ``tee`` (the TEE client
driver, ``remoteproc_tee.c``: one event per invoke with command, processor
id, result and milliseconds), ``ta`` (what the TA asks of the platform),
``pta`` (the platform PTA's calls and the device writes it makes),
``trustzone`` (Qualcomm's secure world: the PAS service's SCM calls and
returns, ``scm``/``scm_ret``, its XPU changes, ``xpu``, and the writes it
makes) and ``remote`` (the remote processor: firmware start/stop, crashes,
its own writes). The log is appended to from several threads (sysfs
writers, the crash worker), so appends are serialised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

LAYERS = ("linux", "tee", "ta", "pta", "trustzone", "remote")


@dataclass
class Event:
    """One recorded step.

    Attributes
    ----------
    seq : int
        Position in the log (0-based).
    layer : str
        One of :data:`LAYERS`.
    kind : str
        ``op``/``op_ret`` (an rproc op and its return), ``state`` (a state
        change), ``invoke``/``invoke_ret`` (a TEE invoke), ``pta``/``pta_ret``,
        ``scm``/``scm_ret`` (an SCM call to TrustZone), ``xpu`` (TrustZone
        locks or unlocks a carveout), ``write`` (a device write),
        ``remote`` (the core's own events), ``log`` (a kernel message),
        ``recovery_failed`` (a recovery whose result the kernel ignores),
        ``coredump`` (a dump handed to devcoredump).
    name : str
        Op, command, state or message name.
    detail : dict
        Kind-specific fields (``cmd``, ``id``, ``result``, ``ms``, ``da``...).
    t : float
        Seconds since the log was created.
    """

    seq: int
    layer: str
    kind: str
    name: str
    detail: dict[str, Any] = field(default_factory=dict)
    t: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "seq": self.seq,
            "layer": self.layer,
            "kind": self.kind,
            "name": self.name,
            **self.detail,
        }


class EventLog:
    """An ordered, thread-safe list of :class:`Event`."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()
        self.phase = ""
        self._local = threading.local()

    def current_layer(self) -> str:
        """The layer acting now in this thread (``linux`` unless told)."""
        stack: list[str] = getattr(self._local, "stack", [])
        return stack[-1] if stack else "linux"

    @contextmanager
    def acting(self, layer: str) -> Iterator[None]:
        """Attribute device writes of this block (this thread) to ``layer``."""
        stack: list[str] = getattr(self._local, "stack", None) or []
        self._local.stack = stack
        stack.append(layer)
        try:
            yield
        finally:
            stack.pop()

    def add(self, layer: str, kind: str, name: str, **detail: Any) -> Event:
        """Append one event and return it."""
        if layer not in LAYERS:
            raise ValueError(f"layer {layer!r} is not one of {', '.join(LAYERS)}")
        if self.phase:
            detail.setdefault("phase", self.phase)
        with self._lock:
            event = Event(
                len(self.events), layer, kind, name, detail,
                time.perf_counter() - self._t0,
            )  # fmt: skip
            self.events.append(event)
        return event

    @contextmanager
    def in_phase(self, name: str) -> Iterator[None]:
        """Tag the events of a block with ``phase = name`` (boot, crash...)."""
        previous, self.phase = self.phase, name
        try:
            yield
        finally:
            self.phase = previous

    def op_calls(self) -> list[str]:
        """Names of the rproc op calls, in order (the call lists of the tests)."""
        return [e.name for e in self.events if e.kind == "op"]

    def tee_calls(self) -> list[dict[str, Any]]:
        """``{"cmd", "id", "result"}`` of every TEE invoke, in order."""
        return [
            {"cmd": e.name, "id": e.detail["id"], "result": e.detail["result"]}
            for e in self.events
            if e.kind == "invoke_ret"
        ]

    def states(self) -> list[str]:
        """State names in order of entry."""
        return [e.detail["to"] for e in self.events if e.kind == "state"]

    def to_list(self) -> list[dict[str, Any]]:
        """Every event as a JSON-ready mapping."""
        return [e.to_dict() for e in self.events]
