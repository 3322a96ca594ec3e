"""``remoteproc_virtio.c``: a vdev's vrings, notify ids and subdevice.

The vdev resource handler registers an ``rproc-virtio`` platform device whose
probe (:meth:`RprocVdev.probe`) checks each vring (``rproc_parse_vring``) and
allocates it (``rproc_alloc_vring``): from the pre-registered carveout named
``vdev<i>vring<j>`` if there is one (``rproc_check_carveout_da``), else from a
new DMA carveout; the notify id it gets is written into the table in effect.
The vdev is a subdevice: started after ``ops->start`` (the virtio device is
registered, its vrings zeroed and their ``da`` written into the loaded table,
``rp_find_vq``), stopped before ``ops->stop`` (the device is reset: status 0).

The host side has no rpmsg driver in this model, so nothing but the remote's
firmware sets the status byte beyond that reset (the default firmware sets
``DRIVER_OK``); both sides read it from the table in device memory.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rproctee.linux.carveouts import (
    FW_RSC_ADDR_ANY,
    MemEntry,
    check_carveout_da,
    dma_alloc_carveout,
    dma_release_carveout,
)
from rproctee.linux.errors import einval, enomem
from rproctee.rsctable import RSC_HDR_SIZE, VdevRsc

if TYPE_CHECKING:
    from rproctee.linux.core import Rproc

PAGE_SIZE = 0x1000
#: Offsets inside ``struct fw_rsc_vdev_vring``.
VRING_DA, VRING_NOTIFYID = 0, 12


def vring_size(num: int, align: int) -> int:
    """``vring_size()`` of ``include/uapi/linux/virtio_ring.h`` (legacy split)."""
    head = num * 16 + 2 * (3 + num)
    return ((head + align - 1) // align) * align + 2 * 3 + 8 * num


def page_align(size: int) -> int:
    """``PAGE_ALIGN``."""
    return (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


@dataclass
class RprocVring:
    """``struct rproc_vring``."""

    num: int
    align: int
    notifyid: int = -1
    mem: MemEntry | None = None


@dataclass(eq=False)
class RprocVdev:
    """``struct rproc_vdev``: one virtio device of the remote processor."""

    rproc: Rproc
    id: int
    index: int
    rsc_offset: int  # offset of the entry header (fw_rsc_hdr) in the table
    vrings: list[RprocVring] = field(default_factory=list)
    registered: bool = False

    # -- probe -----------------------------------------------------------------
    def probe(self, rsc: VdevRsc) -> None:
        """``rproc_virtio_probe``: parse and allocate the vrings.

        Raises
        ------
        RprocErrno
            ``-EINVAL`` "invalid qsz (%d) or alignment (%d)", ``-ENOMEM`` when
            the named carveout cannot hold the vring.
        """
        for i, vring in enumerate(rsc.vrings):
            if not vring.num or not vring.align:
                line = f"invalid qsz ({vring.num}) or alignment ({vring.align})"
                self.rproc.log_msg("err", line)  # rproc_parse_vring's dev_err
                raise einval(f"{line} of vdev{self.index}vring{i}")
            self.vrings.append(RprocVring(vring.num, vring.align))
        for i in range(len(rsc.vrings)):
            self._alloc_vring(rsc, i)

    def _alloc_vring(self, rsc: VdevRsc, i: int) -> None:
        """``rproc_alloc_vring``."""
        rproc, rvring = self.rproc, self.vrings[i]
        size = page_align(vring_size(rvring.num, rvring.align))
        name = f"vdev{self.index}vring{i}"
        da = rsc.vrings[i].da
        mem = rproc.find_carveout_by_name(name)
        if mem is not None:
            why = check_carveout_da(mem, da, size, rproc)  # logs as the kernel does
            if why is not None:
                raise enomem(why)
        else:
            mem = MemEntry(
                name, da, 0, size,
                alloc=dma_alloc_carveout, release=dma_release_carveout,
            )  # fmt: skip
            rproc.add_carveout(mem)
        rvring.mem = mem
        rvring.notifyid = rproc.idr_alloc(rvring)
        off = rsc.vring_offset(i) + VRING_NOTIFYID
        rproc.table_write(off, struct.pack("<I", rvring.notifyid))

    # -- subdevice -------------------------------------------------------------
    def start(self) -> None:
        """``rproc_vdev_do_start`` -> ``rproc_add_virtio_dev`` -> ``rp_find_vq``.

        Each vring's carveout must be mapped; its ``vring_size`` bytes are
        zeroed and its ``da`` written into the table in effect.
        """
        rproc = self.rproc
        for i, rvring in enumerate(self.vrings):
            mem = rproc.find_carveout_by_name(f"vdev{self.index}vring{i}")
            if mem is None or mem.va is None:
                raise enomem(f"vdev{self.index}vring{i}: carveout not mapped")
            rproc.mem_write(mem, 0, bytes(vring_size(rvring.num, rvring.align)))
            off = self.rsc_offset + RSC_HDR_SIZE + 24 + 20 * i + VRING_DA
            rproc.table_write(off, struct.pack("<I", mem.da))
        self.registered = True

    def stop(self, crashed: bool) -> None:
        """``rproc_vdev_do_stop``: remove the virtio device (status reset to 0)."""
        if self.registered:
            self.rproc.table_write(self.status_offset, b"\0")
        self.registered = False

    @property
    def status_offset(self) -> int:
        """Offset of the vdev's status byte in the table."""
        return self.rsc_offset + RSC_HDR_SIZE + 20

    def free_vrings(self) -> None:
        """``rproc_virtio_remove`` -> ``rproc_free_vring`` for each vring.

        The table in effect (the cached one, after a stop) gets ``da = 0``
        and ``notifyid = -1`` for each vring.
        """
        rproc = self.rproc
        for i, rvring in enumerate(self.vrings):
            rproc.idr_remove(rvring.notifyid)
            if rproc.table_ptr is not None:
                off = self.rsc_offset + RSC_HDR_SIZE + 24 + 20 * i
                rproc.table_write(off + VRING_DA, struct.pack("<I", 0))
                rproc.table_write(
                    off + VRING_NOTIFYID, struct.pack("<I", FW_RSC_ADDR_ANY)
                )
