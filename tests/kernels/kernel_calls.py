"""Run one kernel call and capture its outcome, for parity comparisons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """("ok", result) or (exception type name, message)."""
    try:
        return "ok", fn(*args)
    except Exception as exc:  # noqa: BLE001 - parity compares any exception
        return type(exc).__name__, str(exc)
