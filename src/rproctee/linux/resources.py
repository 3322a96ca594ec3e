"""``rproc_handle_resources`` and the loading handlers of ``remoteproc_core.c``.

The table in effect (``table_ptr``) is copied once and walked by the one
parser, :func:`rproctee.rsctable.parse_resource_table`, with the kernel's
checks and messages; each entry's handler runs as soon as the entry passes
its checks, in table order, as ``rproc_handle_resources`` does:

* carveout (``rproc_handle_carveout``): tie the entry to the pre-registered
  carveout of the same name (``rproc_check_carveout_da``, ``-ENOMEM`` on a
  mismatch or when already tied) or register a new DMA carveout;
* devmem (``rproc_handle_devmem``): an IOMMU mapping (refused without one);
* trace (``rproc_handle_trace``): a debugfs ``trace<N>`` file;
* vdev (``rproc_handle_vdev``): an ``rproc-virtio`` device whose probe
  allocates the vrings (:mod:`rproctee.linux.virtio`). As in Linux 5.19+, a
  failing probe is logged and the vdev left out; the boot goes on;
* vendor: ``ops->handle_rsc``.

:func:`alloc_registered_carveouts` is ``rproc_alloc_registered_carveouts``:
each carveout's ``alloc`` in list order, then pa/da/len written back into the
table for the ones a table entry asked for (spec 2.3 step 9).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rproctee.linux.carveouts import (
    FW_RSC_ADDR_ANY,
    MemEntry,
    check_carveout_da,
    dma_alloc_carveout,
    dma_release_carveout,
)
from rproctee.linux.errors import RprocErrno, enomem
from rproctee.linux.ops import RSC_IGNORED
from rproctee.linux.virtio import RprocVdev
from rproctee.rsctable import (
    RSC_HDR_SIZE,
    CarveoutRsc,
    DevmemRsc,
    RscEntry,
    RscTableError,
    TraceRsc,
    VdevRsc,
    parse_resource_table,
)

if TYPE_CHECKING:
    from rproctee.linux.core import Rproc


@dataclass
class Trace:
    """``struct rproc_debug_trace``: one ``trace<N>`` debugfs file."""

    index: int
    da: int
    len: int
    name: str


def _errno_of(exc: RscTableError) -> RprocErrno:
    import errno as errno_mod

    code = getattr(errno_mod, exc.errno, errno_mod.EINVAL)
    return RprocErrno(code, str(exc))


def handle_resources(rproc: Rproc) -> None:
    """``rproc_handle_resources(rproc, rproc_loading_handlers)``.

    As the kernel's ``rsc_table_for_each_entry`` loop: each entry is checked
    by the one parser (:func:`rproctee.rsctable.parse_resource_table`) and
    its handler runs right then (``on_entry``), so the walk stops at the
    first entry that fails, be it a format check or a handler, and the
    handlers of the entries before it have run (``rproc_fw_boot``'s
    unwinding cleans them up).  The parser's warnings ("unsupported vendor
    resource %d"...) are logged once the walk is through.

    Raises
    ------
    RprocErrno
        The first handler error, or the parser's verdict (``-EINVAL`` with the
        kernel's message, e.g. "rsc table is truncated").
    """
    raw = rproc.table_bytes()
    if raw is None:
        return
    ops = rproc.ops

    def vendor(rsc_type: int, body: bytes, offset: int, avail: int) -> int:
        if ops.handle_rsc is None:
            return RSC_IGNORED
        return ops.handle_rsc(rproc, rsc_type, body, offset, avail)

    try:
        table = parse_resource_table(
            raw, has_iommu=rproc.has_iommu, handle_rsc=vendor,
            on_entry=lambda entry: handle_entry(rproc, entry),
        )  # fmt: skip
    except RscTableError as exc:
        # the walk's own dev_err ("rsc table is truncated"...); a check the
        # kernel makes silently has no message
        if exc.message:
            rproc.log_msg("err", exc.message)
        raise _errno_of(exc) from exc
    for warning in table.warnings:
        rproc.log_msg("warn", warning)


def handle_entry(rproc: Rproc, entry: RscEntry) -> None:
    """``rproc_loading_handlers[hdr->type]`` for one checked entry."""
    if isinstance(entry, CarveoutRsc):
        handle_carveout(rproc, entry)
    elif isinstance(entry, DevmemRsc):
        rproc.mappings.append((entry.da, entry.pa, entry.len))
    elif isinstance(entry, TraceRsc):
        handle_trace(rproc, entry)
    elif isinstance(entry, VdevRsc):
        handle_vdev(rproc, entry)


def handle_carveout(rproc: Rproc, rsc: CarveoutRsc) -> None:
    """``rproc_handle_carveout`` (format checks done by the parser).

    A registered carveout of the entry's name must not be tied to an entry
    yet and must fit it (:func:`check_carveout_da`, whose kernel line is
    logged); both failures are ``-ENOMEM``.
    """
    body = rsc.offset + RSC_HDR_SIZE
    mem = rproc.find_carveout_by_name(rsc.name)
    if mem is not None:
        if mem.rsc_offset != FW_RSC_ADDR_ANY:
            line = "Carveout already associated to resource table"
            rproc.log_msg("err", line, carveout=rsc.name)
            raise enomem(line)
        why = check_carveout_da(mem, rsc.da, rsc.len, rproc)
        if why is not None:
            raise enomem(why)
        mem.rsc_offset, mem.flags = body, rsc.flags
        return
    mem = MemEntry(
        rsc.name, rsc.da, 0, rsc.len,
        alloc=dma_alloc_carveout, release=dma_release_carveout,
        rsc_offset=body, flags=rsc.flags,
    )  # fmt: skip
    rproc.add_carveout(mem)


def handle_trace(rproc: Rproc, rsc: TraceRsc) -> None:
    """``rproc_handle_trace``: a ``trace<N>`` file; ``da`` translated at read."""
    rproc.traces.append(Trace(len(rproc.traces), rsc.da, rsc.len, rsc.name))


def handle_vdev(rproc: Rproc, rsc: VdevRsc) -> None:
    """``rproc_handle_vdev``: register an rproc-virtio device and probe it."""
    rvdev = RprocVdev(rproc, rsc.id, rproc.nb_vdev, rsc.offset)
    rproc.nb_vdev += 1
    try:
        rvdev.probe(rsc)
    except RprocErrno as exc:
        # platform_device_register_data() succeeds even when probe fails;
        # the driver core's line (drivers/base/dd.c, really_probe), printed
        # by the rproc-virtio device
        rproc.log_msg(
            "err", f"probe with driver rproc-virtio failed with error {exc.ret}",
            vdev=rvdev.index, reason=exc.message,
        )  # fmt: skip
        for rvring in rvdev.vrings:
            if rvring.notifyid >= 0:
                rproc.idr_remove(rvring.notifyid)
        return
    rproc.rvdevs.append(rvdev)
    rproc.subdevs.append(rvdev)


def alloc_registered_carveouts(rproc: Rproc) -> None:
    """``rproc_alloc_registered_carveouts``.

    Raises
    ------
    RprocErrno
        ``-ENOMEM`` "Unable to allocate carveout %s".
    """
    for mem in list(rproc.carveouts):
        if mem.alloc is not None:
            try:
                mem.alloc(rproc, mem)
            except RprocErrno as exc:
                raise enomem(f"Unable to allocate carveout {mem.name}: {exc}") from exc
        if mem.rsc_offset != FW_RSC_ADDR_ANY:
            pa = mem.dma
            if pa >> 32:
                rproc.log_msg("warn", "Physical address cast in 32bit to fit rsc table")
            rproc.table_write(
                mem.rsc_offset, struct.pack("<3I", mem.da, pa & 0xFFFFFFFF, mem.len)
            )
