"""The remoteproc resource table: one validating parser for the whole project.

The format is Linux's ``include/linux/rsc_table.h`` (spec section 3): a
16-byte header (``ver``, ``num``, two reserved words), ``num`` u32 entry
offsets counted from the table start, and at each offset a ``fw_rsc_hdr``
(u32 ``type``) followed by the type's body.  Everything is little-endian and
packed.

The checks are the ones Linux 6.12 (6.12.117 was read) makes, in its order
and with its ``dev_err`` wording:

* :func:`check_table_header` is the table half of ``find_table``
  (``remoteproc_elf_loader.c``): size, version, reserved words, offset array;
* :func:`parse_resource_table` then walks the entries as
  ``rsc_table_for_each_entry`` (``rsc_table.h``) and ``rproc_handle_rsc_entry``
  do, applying the format checks of ``rproc_handle_carveout`` /
  ``_devmem`` / ``_trace`` / ``_vdev`` (``remoteproc_core.c``).

What the handlers do beyond the format (matching carveouts by name,
allocating vrings, ``rproc_parse_vring``'s ``num``/``align`` test in the
virtio probe) belongs to the rproc core, not here.

The input is hostile: every read is preceded by an overflow-free bounds check
in Python integers (the kernel's ``int``/``u32`` quirks are reproduced only
where they change a verdict, never by reading outside the buffer), and the
table is copied once before any check, so memory the remote processor
rewrites concurrently cannot pass a check and then change.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from rproctee.errors import RprocError

RSC_CARVEOUT = 0
RSC_DEVMEM = 1
RSC_TRACE = 2
RSC_VDEV = 3
RSC_LAST = 4
RSC_VENDOR_START = 128
RSC_VENDOR_END = 512
FW_RSC_ADDR_ANY = 0xFFFFFFFF

#: ``rproc_handle_rsc`` results (``include/linux/remoteproc.h``).
RSC_HANDLED = 0
RSC_IGNORED = 1

#: ``struct resource_table`` without its offset array.
RSC_HEADER_SIZE = 16
#: ``struct fw_rsc_hdr``: the u32 type before each body.
RSC_HDR_SIZE = 4
#: Body sizes (without the 4-byte type), as ``sizeof`` of the kernel structs.
CARVEOUT_SIZE = 52
DEVMEM_SIZE = 52
TRACE_SIZE = 44
VDEV_SIZE = 24
VRING_SIZE = 20
NAME_SIZE = 32
#: ``RVDEV_NUM_VRINGS``: vrings a vdev may have (``ARRAY_SIZE(rvdev->vring)``).
RVDEV_NUM_VRINGS = 2

TYPE_NAMES = {
    RSC_CARVEOUT: "carveout",
    RSC_DEVMEM: "devmem",
    RSC_TRACE: "trace",
    RSC_VDEV: "vdev",
}

_HEADER = struct.Struct("<4I")
_MEM = struct.Struct("<5I32s")  # carveout and devmem bodies
_TRACE = struct.Struct("<3I32s")
_VDEV = struct.Struct("<5I2B2B")
_VRING = struct.Struct("<5I")
_U32 = struct.Struct("<I")


class RscTableError(RprocError, ValueError):
    """The kernel would refuse this resource table.

    Attributes
    ----------
    errno : str
        The kernel's errno name (``"EINVAL"`` for every format rule).
    message : str
        The kernel's own ``dev_err`` wording, e.g. ``"rsc table is truncated"``.
    offset : int or None
        Offset in the table of the entry concerned (its ``fw_rsc_hdr``), or
        None for a header problem.
    index : int or None
        Index of that entry in the offset array.
    check : str
        Which rule broke, for callers that map it onto their own fields:
        ``size``, ``ver``, ``reserved``, ``num`` (header), ``offset`` (entry
        walk), ``truncated``, ``entry-reserved``, ``vrings``, ``iommu``,
        ``vendor`` (handlers).
    value : int or None
        The offending value.
    note : str
        The model's explanation where the kernel logs nothing (``message``
        is then ``""``).
    """

    def __init__(
        self,
        message: str,
        *,
        check: str,
        errno: str = "EINVAL",
        offset: int | None = None,
        index: int | None = None,
        value: int | None = None,
        note: str = "",
    ) -> None:
        self.errno = errno
        self.message = message
        self.note = note
        self.offset = offset
        self.index = index
        self.check = check
        self.value = value
        where = "" if offset is None else f" (entry {index} at offset {offset:#x})"
        super().__init__(f"{message or note}{where}: -{errno}")


@dataclass(frozen=True)
class CarveoutRsc:
    """``struct fw_rsc_carveout``: physically contiguous memory to set up."""

    offset: int
    da: int
    pa: int
    len: int
    flags: int
    reserved: int
    name: str
    type: int = field(default=RSC_CARVEOUT, init=False, repr=False)


@dataclass(frozen=True)
class DevmemRsc:
    """``struct fw_rsc_devmem``: a peripheral to map through the IOMMU."""

    offset: int
    da: int
    pa: int
    len: int
    flags: int
    reserved: int
    name: str
    type: int = field(default=RSC_DEVMEM, init=False, repr=False)


@dataclass(frozen=True)
class TraceRsc:
    """``struct fw_rsc_trace``: a trace buffer the firmware writes to."""

    offset: int
    da: int
    len: int
    reserved: int
    name: str
    type: int = field(default=RSC_TRACE, init=False, repr=False)


@dataclass(frozen=True)
class VringRsc:
    """``struct fw_rsc_vdev_vring``: one vring of a vdev."""

    da: int
    align: int
    num: int
    notifyid: int
    pa: int


@dataclass(frozen=True)
class VdevRsc:
    """``struct fw_rsc_vdev`` with its vrings and virtio config space."""

    offset: int
    id: int
    notifyid: int
    dfeatures: int
    gfeatures: int
    config_len: int
    status: int
    num_of_vrings: int
    reserved: tuple[int, int]
    vrings: tuple[VringRsc, ...]
    config: bytes
    type: int = field(default=RSC_VDEV, init=False, repr=False)

    @property
    def status_offset(self) -> int:
        """Absolute offset in the table of the virtio ``status`` byte."""
        return self.offset + RSC_HDR_SIZE + 20

    @property
    def config_offset(self) -> int:
        """Absolute offset in the table of the virtio config space."""
        return self.vring_offset(self.num_of_vrings)

    def vring_offset(self, i: int) -> int:
        """Absolute offset in the table of vring ``i``'s struct.

        Parameters
        ----------
        i : int
            Vring index (``0 <= i <= num_of_vrings``; ``num_of_vrings`` gives
            the config space).
        """
        if not 0 <= i <= self.num_of_vrings:
            raise IndexError(f"vring index {i} not in [0, {self.num_of_vrings}]")
        return self.offset + RSC_HDR_SIZE + VDEV_SIZE + VRING_SIZE * i


@dataclass(frozen=True)
class VendorRsc:
    """A vendor entry (type 128..512): handed to ``ops->handle_rsc`` if any."""

    offset: int
    type: int


@dataclass(frozen=True)
class UnknownRsc:
    """A type the kernel skips with "unsupported resource %d" (4..127, > 512)."""

    offset: int
    type: int


RscEntry = CarveoutRsc | DevmemRsc | TraceRsc | VdevRsc | VendorRsc | UnknownRsc


class HandleRsc(Protocol):
    """``ops->handle_rsc(rproc, type, rsc, offset, avail)`` for vendor entries.

    ``body`` holds the ``avail`` bytes from the entry body to the table end;
    ``offset`` is the body's offset.  Return :data:`RSC_HANDLED` or
    :data:`RSC_IGNORED`, or raise :class:`RscTableError` to refuse the boot.
    """

    def __call__(self, rsc_type: int, body: bytes, offset: int, avail: int) -> int:
        """Handle one vendor resource."""
        ...


@dataclass(frozen=True)
class ResourceTable:
    """A validated resource table, decoded from one snapshot.

    ``warnings`` are the kernel's ``dev_warn`` lines for entries it skips.
    """

    ver: int
    num: int
    reserved: tuple[int, int]
    offsets: tuple[int, ...]
    entries: tuple[RscEntry, ...]
    size: int
    warnings: tuple[str, ...] = ()

    def carveouts(self) -> tuple[CarveoutRsc, ...]:
        """The carveout entries, in table order."""
        return tuple(e for e in self.entries if isinstance(e, CarveoutRsc))

    def devmems(self) -> tuple[DevmemRsc, ...]:
        """The devmem entries, in table order."""
        return tuple(e for e in self.entries if isinstance(e, DevmemRsc))

    def traces(self) -> tuple[TraceRsc, ...]:
        """The trace entries, in table order (``trace0``, ``trace1``, ...)."""
        return tuple(e for e in self.entries if isinstance(e, TraceRsc))

    def vdevs(self) -> tuple[VdevRsc, ...]:
        """The vdev entries, in table order (``vdev0``, ``vdev1``, ...)."""
        return tuple(e for e in self.entries if isinstance(e, VdevRsc))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (addresses as integers, config as hex)."""
        return {
            "ver": self.ver,
            "num": self.num,
            "size": self.size,
            "offsets": list(self.offsets),
            "entries": [entry_dict(e) for e in self.entries],
            "warnings": list(self.warnings),
        }

    def encode(self) -> bytes:
        """Bytes of exactly ``size`` whose parse is this table.

        Entries are written at their recorded offsets (in order, so a later
        overlapping entry wins); unused bytes are zero.
        """
        out = bytearray(self.size)
        _HEADER.pack_into(out, 0, self.ver, self.num, *self.reserved)
        for i, off in enumerate(self.offsets):
            _U32.pack_into(out, RSC_HEADER_SIZE + 4 * i, off)
        for entry in self.entries:
            raw = encode_entry(entry)
            out[entry.offset : entry.offset + len(raw)] = raw
        return bytes(out)


def type_name(rsc_type: int) -> str:
    """Name a resource type: ``carveout`` .. ``vdev``, ``vendor``, ``unknown``.

    Parameters
    ----------
    rsc_type : int
        The entry's u32 type.
    """
    if RSC_VENDOR_START <= rsc_type <= RSC_VENDOR_END:
        return "vendor"
    return TYPE_NAMES.get(rsc_type, "unknown")


def entry_dict(entry: RscEntry) -> dict[str, Any]:
    """One entry as a JSON-ready mapping: offset, type, type_name, fields."""
    out: dict[str, Any] = {
        "offset": entry.offset,
        "type": entry.type,
        "type_name": type_name(entry.type),
    }
    if isinstance(entry, VdevRsc):
        out.update(
            id=entry.id,
            notifyid=entry.notifyid,
            dfeatures=entry.dfeatures,
            gfeatures=entry.gfeatures,
            config_len=entry.config_len,
            status=entry.status,
            num_of_vrings=entry.num_of_vrings,
            reserved=list(entry.reserved),
            vrings=[vars(v).copy() for v in entry.vrings],
            config=entry.config.hex(),
            status_offset=entry.status_offset,
        )
    elif not isinstance(entry, VendorRsc | UnknownRsc):
        out.update({k: v for k, v in vars(entry).items() if k not in out})
    return out


# --------------------------------------------------------------------------
# Reading


def snapshot(buf: Any) -> bytes:
    """Copy ``buf`` once (bytes, bytearray, memoryview, numpy uint8 array).

    Device memory can change under the reader; every check and every decoded
    value of one parse comes from this single copy.
    """
    if isinstance(buf, bytes):
        return buf
    return memoryview(buf).tobytes()


def _c_string(raw: bytes) -> str:
    """A fixed 32-byte name up to its first NUL (the kernel prints ``%s``)."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _signed32(value: int) -> int:
    """``value`` as the kernel's ``%d`` prints a u32."""
    return value - (1 << 32) if value >= 1 << 31 else value


def check_table_header(buf: Any) -> tuple[int, int]:
    """Check a table's header exactly as ``find_table`` does.

    ``find_table`` (``remoteproc_elf_loader.c``) first makes sure the section
    lies inside the file ("resource table truncated"); that check is the ELF
    layer's (:mod:`rproctee.linux.elf_loader`).  These are the rest.

    Parameters
    ----------
    buf : bytes-like
        The table, exactly ``sh_size`` (or ``table_sz``) bytes.

    Returns
    -------
    (ver, num)

    Raises
    ------
    RscTableError
        "header-less resource table" (size < 16), "unsupported fw ver: %d",
        "non zero reserved bytes", "resource table incomplete" (the offset
        array does not fit; ``struct_size`` saturates, so no wrap).
    """
    return _check_header(snapshot(buf))


def _check_header(data: bytes) -> tuple[int, int]:
    size = len(data)
    if size < RSC_HEADER_SIZE:
        raise RscTableError("header-less resource table", check="size", value=size)
    ver, num, res0, res1 = _HEADER.unpack_from(data, 0)
    if ver != 1:
        # table->ver is a u32 printed with %d.
        raise RscTableError(
            f"unsupported fw ver: {_signed32(ver)}", check="ver", value=ver
        )
    if res0 or res1:
        raise RscTableError(
            "non zero reserved bytes", check="reserved", value=res0 or res1
        )
    # Python integers cannot wrap: this is struct_size() with its saturation.
    if RSC_HEADER_SIZE + 4 * num > size:
        raise RscTableError("resource table incomplete", check="num", value=num)
    return ver, num


def parse_resource_table(
    buf: Any,
    *,
    has_iommu: bool = True,
    handle_rsc: HandleRsc | None = None,
    on_entry: Callable[[RscEntry], None] | None = None,
) -> ResourceTable:
    """Validate and decode a resource table as Linux 6.12 walks it.

    Parameters
    ----------
    buf : bytes, bytearray, memoryview or numpy uint8 array
        The table (``table_sz`` bytes).  Copied once before any check.
    has_iommu : bool
        Whether the processor has an IOMMU domain.  Without one,
        ``rproc_handle_devmem`` refuses any devmem entry with ``-EINVAL``
        before looking at it (the stm32 and imx M4 have none).
    handle_rsc : callable, optional
        The driver's ``ops->handle_rsc`` for vendor entries (none: every
        vendor entry is skipped with "unsupported vendor resource %d").
    on_entry : callable(entry), optional
        Called with each entry right after its format checks, in table
        order: the rest of the kernel's handler (matching a carveout to a
        registered one...).  Raising :class:`RscTableError` stops the walk
        there, as a handler's error does.

    Returns
    -------
    ResourceTable
        Header values and the decoded entries, skipped ones included as
        :class:`VendorRsc` / :class:`UnknownRsc`.

    Raises
    ------
    RscTableError
        The first rule broken, with the kernel's message, in the kernel's
        order (the walk stops at the first failing entry).
    """
    data = snapshot(buf)
    ver, num = _check_header(data)
    offsets = struct.unpack_from(f"<{num}I", data, RSC_HEADER_SIZE)
    entries: list[RscEntry] = []
    warnings: list[str] = []
    for index, offset in enumerate(offsets):
        _check_entry_offset(offset, len(data), index)
        entry = _entry(data, index, offset, has_iommu, handle_rsc, warnings)
        if on_entry is not None:
            on_entry(entry)
        entries.append(entry)
    return ResourceTable(
        ver, num, (0, 0), tuple(offsets), tuple(entries), len(data), tuple(warnings)
    )


def _check_entry_offset(offset: int, size: int, index: int) -> None:
    """``rsc_table_for_each_entry``: the entry header must lie in the table.

    The offset may point anywhere past the 16-byte header, into the offset
    array or at an odd address: the kernel then judges whatever it decodes.
    """
    if offset < RSC_HEADER_SIZE or offset >= size or size - offset < RSC_HDR_SIZE:
        raise RscTableError(
            "rsc table is truncated",
            check="offset",
            offset=offset,
            index=index,
            value=offset,
        )


def _entry(
    data: bytes,
    index: int,
    offset: int,
    has_iommu: bool,
    handle_rsc: HandleRsc | None,
    warnings: list[str],
) -> RscEntry:
    """``rproc_handle_rsc_entry``: dispatch one entry on its type."""
    (rsc_type,) = _U32.unpack_from(data, offset)
    body = offset + RSC_HDR_SIZE
    avail = len(data) - body
    if RSC_VENDOR_START <= rsc_type <= RSC_VENDOR_END:
        _vendor(data, rsc_type, body, avail, handle_rsc, warnings)
        return VendorRsc(offset, rsc_type)
    if rsc_type >= RSC_LAST:
        warnings.append(f"unsupported resource {rsc_type}")
        return UnknownRsc(offset, rsc_type)
    ctx = _Ctx(index, offset)
    if rsc_type == RSC_CARVEOUT:
        return CarveoutRsc(offset, *_mem_body(data, body, avail, "carveout", ctx))
    if rsc_type == RSC_DEVMEM:
        if not has_iommu:
            raise ctx.error(
                "devmem rsc without an IOMMU domain (the kernel returns -EINVAL "
                "without a message)",
                "iommu",
                rsc_type,
            )
        return DevmemRsc(offset, *_mem_body(data, body, avail, "devmem", ctx))
    if rsc_type == RSC_TRACE:
        return _trace(data, body, avail, ctx)
    return _vdev(data, body, avail, ctx)


@dataclass(frozen=True)
class _Ctx:
    """Where an entry sits, for its errors."""

    index: int
    offset: int

    def error(self, message: str, check: str, value: int) -> RscTableError:
        return RscTableError(
            message, check=check, offset=self.offset, index=self.index, value=value
        )


def _vendor(
    data: bytes,
    rsc_type: int,
    body: int,
    avail: int,
    handle_rsc: HandleRsc | None,
    warnings: list[str],
) -> None:
    result = RSC_IGNORED
    if handle_rsc is not None:
        result = handle_rsc(rsc_type, data[body:], body, avail)
    if result != RSC_HANDLED:
        warnings.append(f"unsupported vendor resource {rsc_type}")


def _mem_body(
    data: bytes, body: int, avail: int, kind: str, ctx: _Ctx
) -> tuple[int, int, int, int, int, str]:
    """Carveout and devmem share one layout and the same two checks."""
    if _MEM.size > avail:
        raise ctx.error(f"{kind} rsc is truncated", "truncated", avail)
    da, pa, length, flags, reserved, name = _MEM.unpack_from(data, body)
    if reserved:
        raise ctx.error(
            f"{kind} rsc has non zero reserved bytes", "entry-reserved", reserved
        )
    return da, pa, length, flags, reserved, _c_string(name)


def _trace(data: bytes, body: int, avail: int, ctx: _Ctx) -> TraceRsc:
    if _TRACE.size > avail:
        raise ctx.error("trace rsc is truncated", "truncated", avail)
    da, length, reserved, name = _TRACE.unpack_from(data, body)
    if reserved:
        raise ctx.error(
            "trace rsc has non zero reserved bytes", "entry-reserved", reserved
        )
    return TraceRsc(ctx.offset, da, length, reserved, _c_string(name))


def _vdev(data: bytes, body: int, avail: int, ctx: _Ctx) -> VdevRsc:
    # The kernel reads num_of_vrings and config_len before knowing 24 bytes
    # are there; below 24 the verdict is "truncated" whatever they hold.
    if VDEV_SIZE > avail:
        raise ctx.error("vdev rsc is truncated", "truncated", avail)
    vid, notifyid, dfeat, gfeat, config_len, status, nvrings, r0, r1 = (
        _VDEV.unpack_from(data, body)
    )
    if VDEV_SIZE + VRING_SIZE * nvrings + config_len > avail:
        raise ctx.error("vdev rsc is truncated", "truncated", avail)
    if r0 or r1:
        raise ctx.error(
            "vdev rsc has non zero reserved bytes", "entry-reserved", r0 or r1
        )
    if nvrings > RVDEV_NUM_VRINGS:
        raise ctx.error(f"too many vrings: {nvrings}", "vrings", nvrings)
    rings = body + VDEV_SIZE
    vrings = tuple(
        VringRsc(*_VRING.unpack_from(data, rings + VRING_SIZE * i))
        for i in range(nvrings)
    )
    cfg = rings + VRING_SIZE * nvrings
    return VdevRsc(
        ctx.offset,
        vid,
        notifyid,
        dfeat,
        gfeat,
        config_len,
        status,
        nvrings,
        (r0, r1),
        vrings,
        data[cfg : cfg + config_len],
    )


# --------------------------------------------------------------------------
# Writing (tests, demo firmware)


def encode_entry(entry: RscEntry) -> bytes:
    """The bytes of one entry: its ``fw_rsc_hdr`` then its body.

    Vendor and unknown entries encode as their type word only.
    """
    head = _U32.pack(entry.type)
    if isinstance(entry, CarveoutRsc | DevmemRsc):
        name = _name_bytes(entry.name)
        values = (entry.da, entry.pa, entry.len, entry.flags, entry.reserved)
        return head + _MEM.pack(*values, name)
    if isinstance(entry, TraceRsc):
        name = _name_bytes(entry.name)
        return head + _TRACE.pack(entry.da, entry.len, entry.reserved, name)
    if isinstance(entry, VdevRsc):
        return head + _encode_vdev(entry)
    return head


def _name_bytes(name: str) -> bytes:
    raw = name.encode()
    if len(raw) > NAME_SIZE:
        raise ValueError(f"resource name {name!r} is longer than {NAME_SIZE} bytes")
    return raw


def _encode_vdev(entry: VdevRsc) -> bytes:
    words = (entry.id, entry.notifyid, entry.dfeatures, entry.gfeatures)
    head = _VDEV.pack(
        *words, entry.config_len, entry.status, entry.num_of_vrings, *entry.reserved
    )
    rings = b"".join(
        _VRING.pack(v.da, v.align, v.num, v.notifyid, v.pa) for v in entry.vrings
    )
    return head + rings + entry.config


def build_resource_table(
    entries: Iterable[RscEntry], *, tail: int = 0, ver: int = 1
) -> bytes:
    """Lay out a table: header, offsets, then each entry right after the last.

    The entries' own ``offset`` fields are ignored; parse the result to get
    them at their new places.

    Parameters
    ----------
    entries : iterable of entries
        In table order.
    tail : int
        Zero bytes appended after the last entry (room for vendor bodies).
    ver : int
        Header version (anything but 1 is refused by the parser).
    """
    raws = [encode_entry(e) for e in entries]
    first = RSC_HEADER_SIZE + 4 * len(raws)
    offsets, pos = [], first
    for raw in raws:
        offsets.append(pos)
        pos += len(raw)
    head = _HEADER.pack(ver, len(raws), 0, 0) + struct.pack(f"<{len(raws)}I", *offsets)
    return head + b"".join(raws) + bytes(tail)


def relocate(entries: Sequence[RscEntry]) -> tuple[RscEntry, ...]:
    """``entries`` with the offsets :func:`build_resource_table` gives them."""
    pos = RSC_HEADER_SIZE + 4 * len(entries)
    out: list[RscEntry] = []
    for entry in entries:
        out.append(replace(entry, offset=pos))
        pos += len(encode_entry(entry))
    return tuple(out)
