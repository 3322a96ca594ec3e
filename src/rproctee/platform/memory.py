"""Device memories: numpy-backed regions with da/pa translation and a write log.

A region is what a remote processor sees at device address ``da`` and the
main CPU at physical address ``pa``.  Its bytes live in a numpy array
(anonymous memory, or an ``np.memmap`` file the user can inspect after a
load).  Every write goes through :class:`DeviceMemory`, which refuses any
range not held whole by one region and records ``(op, da, pa, len)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rproctee import kernels
from rproctee._typing import Buffer
from rproctee.errors import AddressError

U64_LIMIT = 1 << 64
_CODE_REASON = {
    kernels.LOC_OUTSIDE: "outside",
    kernels.LOC_STRADDLE: "straddle",
    kernels.LOC_ZERO_SIZE: "zero-size",
}


@dataclass(frozen=True)
class RegionSpec:
    """One device memory: name, device address, physical address, size, rights."""

    name: str
    da: int
    pa: int
    size: int
    access: str = "rwx"

    def __post_init__(self) -> None:
        for field in ("da", "pa"):
            base = getattr(self, field)
            if base < 0 or self.size <= 0 or base > U64_LIMIT - self.size:
                raise ValueError(
                    f"region {self.name!r}: {field} {base:#x} with size "
                    f"{self.size:#x} is not a non-empty 64-bit range"
                )


@dataclass(frozen=True)
class WriteRecord:
    """One write to device memory: ``copy``, ``zero``, ``fill`` or ``scrub``."""

    op: str
    da: int
    pa: int
    len: int


class DeviceMemory:
    """The device memories of one remote processor.

    Parameters
    ----------
    regions : sequence of RegionSpec
    backing_dir : path, optional
        When given, each region is an ``np.memmap`` file ``<name>.bin`` there
        (created zeroed); otherwise anonymous, lazily-zeroed memory.
    """

    def __init__(
        self,
        regions: Sequence[RegionSpec],
        *,
        backing_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.regions: tuple[RegionSpec, ...] = tuple(regions)
        self.writes: list[WriteRecord] = []
        self.backing_dir = Path(backing_dir) if backing_dir is not None else None
        self._arrays = [self._allocate(r) for r in self.regions]
        self._da_base = np.array([r.da for r in self.regions], dtype=np.uint64)
        self._pa_base = np.array([r.pa for r in self.regions], dtype=np.uint64)
        self._sizes = np.array([r.size for r in self.regions], dtype=np.uint64)

    def _allocate(self, region: RegionSpec) -> npt.NDArray[np.uint8]:
        if self.backing_dir is None:
            return np.zeros(region.size, dtype=np.uint8)
        self.backing_dir.mkdir(parents=True, exist_ok=True)
        path = self.backing_dir / f"{region.name}.bin"
        return np.memmap(path, dtype=np.uint8, mode="w+", shape=(region.size,))

    # -- lookup and translation ---------------------------------------------

    def array(self, index: int) -> npt.NDArray[np.uint8]:
        """The whole byte array of region ``index``."""
        return self._arrays[index]

    def locate_da(self, da: int, size: int) -> int:
        """Index of the first region whose device range holds ``[da, da+size)``.

        Raises
        ------
        AddressError
            Outside every region, straddling, or empty.
        """
        return self._locate("device", da, size, self._da_base)

    def locate_pa(self, pa: int, size: int) -> int:
        """Index of the first region whose physical range holds the buffer."""
        return self._locate("physical", pa, size, self._pa_base)

    def _locate(self, space: str, addr: int, size: int, bases: np.ndarray) -> int:
        if addr < 0 or size < 0 or addr >= U64_LIMIT or size >= U64_LIMIT:
            raise AddressError(space, addr, size, "outside")
        code = int(kernels.locate(addr, size, bases, self._sizes))
        if code < 0:
            raise AddressError(space, addr, size, _CODE_REASON[code])
        return code

    def da_to_pa(self, da: int, size: int) -> int:
        """Translate a device range to the physical address of its start."""
        index = self.locate_da(da, size)
        region = self.regions[index]
        return region.pa + (da - region.da)

    def pa_to_da(self, pa: int, size: int) -> int:
        """Translate a physical range to the device address of its start."""
        index = self.locate_pa(pa, size)
        region = self.regions[index]
        return region.da + (pa - region.pa)

    def view_da(self, da: int, size: int) -> npt.NDArray[np.uint8]:
        """A writable numpy view of ``[da, da+size)`` (held whole by one region)."""
        index = self.locate_da(da, size)
        off = da - self.regions[index].da
        return self._arrays[index][off : off + size]

    def view_pa(self, pa: int, size: int) -> npt.NDArray[np.uint8]:
        """A writable numpy view of ``[pa, pa+size)`` (held whole by one region)."""
        index = self.locate_pa(pa, size)
        off = pa - self.regions[index].pa
        return self._arrays[index][off : off + size]

    def read_da(self, da: int, size: int) -> bytes:
        """A copy of ``size`` bytes at device address ``da``."""
        return self.view_da(da, size).tobytes()

    # -- writes (all recorded) ------------------------------------------------

    def is_writable(self, index: int) -> bool:
        """Whether the loader may write region ``index``.

        A region without ``w`` in its access letters (``access = "rx"`` in a
        profile: code in ROM or flash the remote processor executes in
        place) is never a load target: loads and fills aimed at it are
        refused, and clean-up (PTA RELEASE, strict scrubbing) skips it,
        since nothing can have been loaded there.
        """
        return "w" in self.regions[index].access

    def require_writable(self, da: int, size: int) -> tuple[int, int]:
        """Region index and offset of ``[da, da+size)``, if the loader may write it.

        Raises
        ------
        AddressError
            Outside every region, straddling, empty, or read-only.
        """
        index = self.locate_da(da, size)
        if not self.is_writable(index):
            raise AddressError("device", da, size, "read-only")
        return index, da - self.regions[index].da

    _writable = require_writable

    def _record(self, op: str, da: int, size: int) -> None:
        self.writes.append(WriteRecord(op, da, self.da_to_pa(da, size), size))

    def copy_in(self, da: int, src: Buffer) -> None:
        """Copy ``src`` to device address ``da`` (op ``copy``)."""
        size = memoryview(src).nbytes
        index, off = self._writable(da, size)
        kernels.copy_segment(self._arrays[index], off, src)
        self._record("copy", da, size)

    def copy_in_hashed(
        self, da: int, src: Buffer, chunk_size: int = kernels.DEFAULT_CHUNK
    ) -> bytes:
        """Copy ``src`` to ``da`` in chunks; return SHA-256 of what landed."""
        size = memoryview(src).nbytes
        index, off = self._writable(da, size)
        digest: bytes = kernels.copy_and_hash(self._arrays[index], off, src, chunk_size)
        self._record("copy", da, size)
        return digest

    def fill(self, da: int, size: int, value: int = 0, op: str = "zero") -> None:
        """Fill ``[da, da+size)`` with ``value`` (op ``zero`` by default)."""
        index, off = self._writable(da, size)
        if value == 0:
            kernels.zero_fill(self._arrays[index], off, size)
        else:
            self._arrays[index][off : off + size] = value
        self._record(op, da, size)

    def scrub_pa(self, pa: int, size: int) -> None:
        """Wipe ``[pa, pa+size)`` after a failure (op ``scrub``)."""
        self.fill(self.pa_to_da(pa, size), size, op="scrub")

    def scrub_region(self, index: int) -> None:
        """Wipe a whole region (op ``scrub``)."""
        region = self.regions[index]
        self.fill(region.da, region.size, op="scrub")

    def flush(self) -> None:
        """Write memmap-backed regions through to their files."""
        for arr in self._arrays:
            if isinstance(arr, np.memmap):
                arr.flush()
