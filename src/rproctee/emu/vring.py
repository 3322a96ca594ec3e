"""The host's end of a legacy split virtqueue in device memory.

Enough of Linux's ``virtio_ring.c`` (driver side) to talk to a firmware
through the vrings the resource table names: offer buffers in the avail
ring and collect what the device returned in the used ring. Layout of
``include/uapi/linux/virtio_ring.h`` for ``num`` entries and ``align``::

    desc[num]   16 bytes each: addr u64, len u32, flags u16, next u16
    avail       flags u16, idx u16, ring[num] u16, used_event u16
    (pad to align)
    used        flags u16, idx u16, ring[num] of {id u32, len u32}, avail_event

All writes go through :meth:`DeviceMemory.copy_in` (recorded, as every
device write is); the firmware reads the same bytes.
"""

from __future__ import annotations

import struct

from rproctee.platform.memory import DeviceMemory

VRING_DESC_F_WRITE = 2
DESC_SIZE = 16


def vring_size(num: int, align: int) -> int:
    """``vring_size()``: bytes of a legacy vring of ``num`` entries."""
    head = DESC_SIZE * num + 2 * (3 + num)
    return (head + align - 1) // align * align + 2 * 3 + 8 * num


class HostVirtqueue:
    """The driver (host) side of one vring.

    Parameters
    ----------
    memory : DeviceMemory
    da : int
        Device address of the vring (``fw_rsc_vdev_vring.da``).
    num : int
        Number of entries (a power of two, as virtio requires).
    align : int
        Alignment of the used ring (``fw_rsc_vdev_vring.align``).

    Raises
    ------
    ValueError
        ``num`` not a power of two, or ``align`` not one.
    rproctee.errors.AddressError
        The vring is not inside one region.
    """

    def __init__(self, memory: DeviceMemory, da: int, num: int, align: int) -> None:
        for field, value in (("num", num), ("align", align)):
            if value < 1 or value & (value - 1):
                raise ValueError(f"vring {field} {value} is not a power of two")
        memory.locate_da(da, vring_size(num, align))
        self.memory = memory
        self.da = da
        self.num = num
        self.avail = da + DESC_SIZE * num
        head = DESC_SIZE * num + 2 * (3 + num)
        self.used = da + (head + align - 1) // align * align
        self.next_desc = 0
        self.avail_idx = 0
        self.last_used = 0

    def _u16(self, da: int) -> int:
        return int.from_bytes(self.memory.read_da(da, 2), "little")

    def offer(self, buf_da: int, length: int, *, device_writes: bool) -> int:
        """Put a buffer in the avail ring; its descriptor id.

        Parameters
        ----------
        buf_da : int
            Device address of the buffer.
        length : int
            Its size in bytes.
        device_writes : bool
            The device fills it (``VRING_DESC_F_WRITE``: a receive buffer).

        Raises
        ------
        ValueError
            Every descriptor is in flight.
        """
        if self.avail_idx - self.last_used >= self.num:
            raise ValueError(
                f"vring at {self.da:#x}: all {self.num} descriptors in use"
            )
        desc = self.next_desc
        self.next_desc = (desc + 1) % self.num
        flags = VRING_DESC_F_WRITE if device_writes else 0
        entry = struct.pack("<QIHH", buf_da, length, flags, 0)
        self.memory.copy_in(self.da + DESC_SIZE * desc, entry)
        slot = self.avail + 4 + 2 * (self.avail_idx % self.num)
        self.memory.copy_in(slot, struct.pack("<H", desc))
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        # the ring entry is written before the index that publishes it
        self.memory.copy_in(self.avail + 2, struct.pack("<H", self.avail_idx))
        return desc

    def take_used(self) -> list[tuple[int, int]]:
        """``(descriptor id, length)`` of each buffer the device gave back since."""
        out = []
        used_idx = self._u16(self.used + 2)
        while self.last_used != used_idx:
            elem = self.used + 4 + 8 * (self.last_used % self.num)
            out.append(struct.unpack("<II", self.memory.read_da(elem, 8)))
            self.last_used = (self.last_used + 1) & 0xFFFF
        return [(int(i), int(n)) for i, n in out]

    def buffer(self, desc: int) -> tuple[int, int]:
        """``(addr, len)`` of descriptor ``desc``."""
        addr, length, _, _ = struct.unpack(
            "<QIHH", self.memory.read_da(self.da + DESC_SIZE * desc, DESC_SIZE)
        )
        return int(addr), int(length)
