"""Decode a remoteproc resource table (``.resource_table``) for display.

The checks and the decoding are :mod:`rproctee.rsctable`'s (the project's one
parser, with Linux 6.12's rules); this module keeps the display shape that
``rproctee info`` and the demo print: one :class:`RscEntry` per entry with its
fields in a mapping, and a :class:`~rproctee.image.errors.RscTableFormatError`
naming the field for a broken rule (its rule text is the kernel's message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rproctee import rsctable as _rsc
from rproctee.image.errors import RscTableFormatError
from rproctee.rsctable import RSC_HEADER_SIZE, RSC_VENDOR_END, RSC_VENDOR_START

__all__ = [
    "RSC_HEADER_SIZE",
    "RSC_VENDOR_END",
    "RSC_VENDOR_START",
    "RscEntry",
    "RscTable",
    "parse_rsc_table",
    "type_name",
]

FieldValue = int | str | list[dict[str, int]]
type_name = _rsc.type_name

# RscTableError.check -> the display field it names (header rules).
_HEADER_FIELDS = {
    "size": "resource table size",
    "ver": "resource table ver",
    "reserved": "resource table reserved",
    "num": "resource table num",
}


@dataclass(frozen=True)
class RscEntry:
    """One resource entry: offset in the table, type and decoded fields."""

    offset: int
    type: int
    type_name: str
    fields: dict[str, FieldValue] = field(default_factory=dict)


@dataclass(frozen=True)
class RscTable:
    """A decoded resource table."""

    version: int
    num: int
    size: int
    entries: tuple[RscEntry, ...]


def _display_field(exc: _rsc.RscTableError) -> str:
    if exc.check in _HEADER_FIELDS:
        return _HEADER_FIELDS[exc.check]
    name = f"entry[{exc.index}]"
    if exc.check == "truncated":
        vdev = exc.message.startswith("vdev")
        return f"{name} vrings + config" if vdev else f"{name} body size"
    if exc.check == "entry-reserved":
        return f"{name} reserved"
    if exc.check == "vrings":
        return f"{name} num_of_vrings"
    return f"{name} {exc.check}"


def _fields(entry: _rsc.RscEntry) -> dict[str, FieldValue]:
    """The entry's fields without the ones :class:`RscEntry` holds itself.

    A vdev's reserved bytes and status offset are left out, as before.
    """
    doc: dict[str, Any] = _rsc.entry_dict(entry)
    drop: tuple[str, ...] = ("offset", "type", "type_name")
    if isinstance(entry, _rsc.VdevRsc):
        drop += ("reserved", "status_offset")
    return {k: v for k, v in doc.items() if k not in drop}


def parse_rsc_table(table: memoryview) -> RscTable:
    """Decode a resource table held in ``table`` (exactly ``sh_size`` bytes).

    Parameters
    ----------
    table : memoryview
        The section bytes.

    Returns
    -------
    RscTable
        Header values and decoded entries.

    Raises
    ------
    RscTableFormatError
        The first rule of :func:`rproctee.rsctable.parse_resource_table`
        broken, its field named (``resource table ver``, ``entry[2] offset``,
        ...) and the kernel's message as the rule.
    """
    try:
        parsed = _rsc.parse_resource_table(table)
    except _rsc.RscTableError as exc:
        value = exc.value if exc.value is not None else 0
        raise RscTableFormatError(_display_field(exc), value, exc.message) from exc
    entries = tuple(
        RscEntry(e.offset, e.type, type_name(e.type), _fields(e))
        for e in parsed.entries
    )
    return RscTable(parsed.ver, parsed.num, parsed.size, entries)
