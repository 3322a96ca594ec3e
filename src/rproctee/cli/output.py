"""Output helpers: JSON on stdout (with a schema version), logs on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

SCHEMA_VERSION = 1


def emit_json(obj: dict[str, Any]) -> None:
    """Print ``obj`` as JSON on stdout with ``schema_version`` first."""
    doc = {"schema_version": SCHEMA_VERSION, **obj}
    click.echo(json.dumps(doc, indent=2, default=_jsonable))


def _jsonable(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def log(message: str) -> None:
    """A log line on stderr (never mixed into JSON on stdout)."""
    click.echo(message, file=sys.stderr)
