"""Decode a remoteproc resource table (``.resource_table``) for display.

Layout (Linux ``struct resource_table``): ``ver``, ``num``, two reserved
words, ``num`` u32 entry offsets from the table start; each entry starts with
a u32 type.  Every offset and body is checked against the table size before
it is read (overflow-safe), and a broken rule raises
:class:`~rproctee.image.errors.RscTableFormatError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from rproctee.image.errors import RscTableFormatError

RSC_HEADER_SIZE = 16
RSC_VENDOR_START = 128
RSC_VENDOR_END = 512

_TYPE_NAMES = {0: "carveout", 1: "devmem", 2: "trace", 3: "vdev"}
_CARVEOUT = (struct.Struct("<5I32s"), ("da", "pa", "len", "flags", "reserved", "name"))
_TRACE = (struct.Struct("<3I32s"), ("da", "len", "reserved", "name"))
_VDEV = struct.Struct("<5I2B2s")
_VDEV_FIELDS = ("id", "notifyid", "dfeatures", "gfeatures", "config_len")
_VRING = (struct.Struct("<5I"), ("da", "align", "num", "notifyid", "pa"))

FieldValue = int | str | list[dict[str, int]]


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


def type_name(rsc_type: int) -> str:
    """Name a resource type (``vendor`` for 128..512, else ``unknown``).

    Parameters
    ----------
    rsc_type : int
        Numeric type.

    Returns
    -------
    str
        Name.
    """
    if RSC_VENDOR_START <= rsc_type <= RSC_VENDOR_END:
        return "vendor"
    return _TYPE_NAMES.get(rsc_type, "unknown")


def _need(name: str, need: int, avail: int) -> None:
    if need > avail:
        raise RscTableFormatError(
            name, need, f"body needs more than the {avail} bytes left"
        )


def _record(
    spec: tuple[struct.Struct, tuple[str, ...]], body: memoryview, name: str
) -> dict[str, FieldValue]:
    layout, names = spec
    _need(f"{name} body size", layout.size, len(body))
    out: dict[str, FieldValue] = {}
    for key, value in zip(names, layout.unpack_from(body, 0), strict=True):
        out[key] = value if isinstance(value, int) else _cstr(value)
    return out


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _vdev(body: memoryview, name: str) -> dict[str, FieldValue]:
    _need(f"{name} body size", _VDEV.size, len(body))
    *words, status, nvrings, _reserved = _VDEV.unpack_from(body, 0)
    out: dict[str, FieldValue] = dict(zip(_VDEV_FIELDS, words, strict=True))
    out.update(status=status, num_of_vrings=nvrings)
    config_len = int(words[4])
    ring_end = _VDEV.size + _VRING[0].size * nvrings
    _need(f"{name} vrings + config", ring_end + config_len, len(body))
    vrings = []
    for i in range(nvrings):
        ring = body[_VDEV.size + i * _VRING[0].size :]
        _need(f"{name} vring[{i}]", _VRING[0].size, len(ring))
        values = _VRING[0].unpack_from(ring, 0)
        vrings.append(dict(zip(_VRING[1], values, strict=True)))
    out["vrings"] = vrings
    out["config"] = bytes(body[ring_end : ring_end + config_len]).hex()
    return out


def _entry(table: memoryview, index: int, offset: int, first: int) -> RscEntry:
    name = f"entry[{index}]"
    size = len(table)
    if offset < first or not (4 <= size and offset <= size - 4):
        raise RscTableFormatError(
            f"{name} offset", offset, f"must be in [{first:#x}, {size - 4:#x}]"
        )
    rsc_type = int.from_bytes(table[offset : offset + 4], "little")
    body = table[offset + 4 :]
    kind = type_name(rsc_type)
    fields: dict[str, FieldValue] = {}
    if kind in ("carveout", "devmem"):
        fields = _record(_CARVEOUT, body, name)
    elif kind == "trace":
        fields = _record(_TRACE, body, name)
    elif kind == "vdev":
        fields = _vdev(body, name)
    return RscEntry(offset, rsc_type, kind, fields)


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
        If the size is below 16, ``ver`` is not 1, a reserved word is set,
        the offset array or an entry does not fit, or an offset points into
        the header.
    """
    size = len(table)
    if size < RSC_HEADER_SIZE:
        raise RscTableFormatError("resource table size", size, "must be >= 16")
    ver, num, res0, res1 = struct.unpack_from("<4I", table, 0)
    if ver != 1:
        raise RscTableFormatError("resource table ver", ver, "must be 1")
    if res0 or res1:
        raise RscTableFormatError("resource table reserved", res0 or res1, "must be 0")
    if num > (size - RSC_HEADER_SIZE) // 4:
        raise RscTableFormatError(
            "resource table num", num, f"16 + 4*num > size {size}"
        )
    first = RSC_HEADER_SIZE + 4 * num
    offsets = struct.unpack_from(f"<{num}I", table, RSC_HEADER_SIZE)
    entries = tuple(_entry(table, i, off, first) for i, off in enumerate(offsets))
    return RscTable(ver, num, size, entries)
