"""Device memories: numpy-backed regions with da/pa translation and a write log.

A region is what a remote processor sees at device address ``da`` and the
main CPU at physical address ``pa``.  Its bytes live in a numpy array
(anonymous memory, or an ``np.memmap`` file the user can inspect after a
load).  Every write goes through :class:`DeviceMemory`, which refuses any
range not held whole by one region and records ``(op, da, pa, len)``.

Real device memory exists before a load, so by default the model's memory
does too: every region is prefaulted when it is built (``prefault``):
``MADV_POPULATE_WRITE`` where the kernel has it, a native page-touching loop
otherwise, with transparent huge pages asked for on large anonymous regions.
``prefault="lazy"`` keeps the old lazily-zeroed memory for huge platforms;
then the pages a write is about to touch are faulted in just before it, so
that first-touch time is its own line in :attr:`DeviceMemory.first_touch`
instead of hiding inside the copy.
"""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from rproctee import kernels
from rproctee._lazylog import LazyRecords, append_columns
from rproctee._typing import Buffer
from rproctee.errors import AddressError

U64_LIMIT = 1 << 64
PAGE = mmap.PAGESIZE
#: ``madvise`` advice numbers of Linux (Python 3.11's mmap does not name them).
MADV_POPULATE_WRITE = 23
#: Regions from this size get transparent huge pages (numpy's own threshold).
THP_MIN = 4 << 20
PREFAULT_MODES = ("auto", "populate", "touch", "lazy")
_CODE_REASON = {
    kernels.LOC_OUTSIDE: "outside",
    kernels.LOC_STRADDLE: "straddle",
    kernels.LOC_ZERO_SIZE: "zero-size",
}


#: Up to this many regions, lookups loop in Python (see DeviceMemory._locate).
SMALL_TABLE = 16


def _locate_small(addr: int, size: int, spans: list[tuple[int, int]]) -> int:
    """``kernels.locate`` over ``(start, end)`` spans, same answers and codes:
    the first region holding ``[addr, addr+size)`` whole, else straddle if
    one overlaps it, else outside; size 0 is zero-size."""
    if size == 0:
        return int(kernels.LOC_ZERO_SIZE)
    end = addr + size
    touched = False
    for i, (lo, hi) in enumerate(spans):
        if lo <= addr and end <= hi:
            return i
        if addr < hi and lo < end:
            touched = True
    return int(kernels.LOC_STRADDLE if touched else kernels.LOC_OUTSIDE)


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
class FirstTouch:
    """Time spent faulting in pages of one region (prefault or lazy write)."""

    region: str
    how: str  # "populate", "touch" or "lazy"
    len: int
    seconds: float


class WriteRecord(NamedTuple):
    """One write to device memory: ``copy``, ``zero``, ``fill`` or ``scrub``.

    A named tuple, not a dataclass: a load of thousands of segments logs
    thousands of these, and a tuple is made four times faster.
    """

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
        (created zeroed); otherwise anonymous zeroed memory.
    prefault : str, optional
        ``"auto"`` (``MADV_POPULATE_WRITE``, else touching each page),
        ``"populate"``, ``"touch"`` or ``"lazy"`` (fault pages in at their
        first write, timed apart). Default: ``$RPROCTEE_PREFAULT`` or
        ``"auto"``.

    Raises
    ------
    ValueError
        An unknown ``prefault`` mode.
    """

    def __init__(
        self,
        regions: Sequence[RegionSpec],
        *,
        backing_dir: str | os.PathLike[str] | None = None,
        prefault: str | None = None,
    ) -> None:
        mode = prefault or os.environ.get("RPROCTEE_PREFAULT") or "auto"
        if mode not in PREFAULT_MODES:
            raise ValueError(
                f"prefault = {mode!r}: expected one of {', '.join(PREFAULT_MODES)}"
            )
        self.prefault = mode
        self.regions: tuple[RegionSpec, ...] = tuple(regions)
        self.writes: list[WriteRecord] = LazyRecords(WriteRecord)
        #: Page-fault time, per region at build (prefault) or per lazy write.
        self.first_touch: list[FirstTouch] = []
        self.backing_dir = Path(backing_dir) if backing_dir is not None else None
        self._maps: list[mmap.mmap | None] = []
        self._arrays = [self._allocate(r) for r in self.regions]
        #: lazy mode: which pages of each region have been faulted in
        self._touched = [
            np.zeros((r.size + PAGE - 1) // PAGE, dtype=bool) if mode == "lazy"
            else None
            for r in self.regions
        ]  # fmt: skip
        self._da_base = np.array([r.da for r in self.regions], dtype=np.uint64)
        self._pa_base = np.array([r.pa for r in self.regions], dtype=np.uint64)
        self._sizes = np.array([r.size for r in self.regions], dtype=np.uint64)
        self._da_spans = [(r.da, r.da + r.size) for r in self.regions]
        self._pa_spans = [(r.pa, r.pa + r.size) for r in self.regions]
        if mode != "lazy":
            for index in range(len(self.regions)):
                self._prefault_region(index)

    def _allocate(self, region: RegionSpec) -> npt.NDArray[np.uint8]:
        if self.backing_dir is None:
            # an anonymous map of our own (not np.zeros) so that it can be
            # madvised: huge pages for large regions, then populated
            mm = mmap.mmap(-1, region.size)
            if region.size >= THP_MIN and hasattr(mmap, "MADV_HUGEPAGE"):
                mm.madvise(mmap.MADV_HUGEPAGE)
            self._maps.append(mm)
            return np.frombuffer(mm, dtype=np.uint8)
        self.backing_dir.mkdir(parents=True, exist_ok=True)
        path = self.backing_dir / f"{region.name}.bin"
        arr = np.memmap(path, dtype=np.uint8, mode="w+", shape=(region.size,))
        self._maps.append(getattr(arr, "_mmap", None))
        return arr

    def _prefault_region(self, index: int) -> None:
        """Fault every page of region ``index`` in now; time it."""
        t0 = time.perf_counter()
        how = self.prefault
        mm = self._maps[index]
        if how in ("auto", "populate") and mm is not None:
            try:
                mm.madvise(MADV_POPULATE_WRITE)
                how = "populate"
            except OSError:
                how = "touch"  # kernel < 5.14: no MADV_POPULATE_WRITE
        else:
            how = "touch"
        if how == "touch":
            kernels.touch_pages(self._arrays[index], PAGE)
        region = self.regions[index]
        self.first_touch.append(
            FirstTouch(region.name, how, region.size, time.perf_counter() - t0)
        )

    def _touch_lazily(self, index: int, off: int, size: int) -> None:
        """Lazy mode: fault in the pages of a write before it, timed apart."""
        pages = self._touched[index]
        if pages is None or size == 0:
            return
        p0, p1 = off // PAGE, (off + size + PAGE - 1) // PAGE
        todo = pages[p0:p1]
        if todo.all():
            return
        t0 = time.perf_counter()
        kernels.touch_pages(self._arrays[index][off : off + size], PAGE)
        todo[:] = True
        self.first_touch.append(
            FirstTouch(self.regions[index].name, "lazy", size, time.perf_counter() - t0)
        )

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
        if len(self.regions) <= SMALL_TABLE:
            # a few regions: a loop over Python ints beats entering the
            # kernel with numpy arrays (about 1 us against several per call)
            table = self._da_spans if bases is self._da_base else self._pa_spans
            code = _locate_small(addr, size, table)
        else:
            code = int(kernels.locate(addr, size, bases, self._sizes))
        if code < 0:
            raise AddressError(space, addr, size, _CODE_REASON[code])
        return code

    def writable_prefix(
        self, das: npt.NDArray[np.uint64], sizes: npt.NDArray[np.uint64]
    ) -> int:
        """How many leading ranges ``[das[k], +sizes[k])`` each lie whole in
        one writable region (one pass, stopping at the first refusal; see
        :meth:`require_writable`). The columns may be strided views."""
        if das.size == 0:
            return 0
        writable = np.array(
            [self.is_writable(i) for i in range(len(self.regions))], dtype=np.uint8
        )
        return int(
            kernels.first_unwritable(das, sizes, self._da_base, self._sizes, writable)
        )

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

    def _writable(self, da: int, size: int) -> tuple[int, int]:
        index, off = self.require_writable(da, size)
        self._touch_lazily(index, off, size)
        return index, off

    def _record(self, op: str, index: int, da: int, size: int) -> None:
        # the region is known: translate without a second lookup
        region = self.regions[index]
        self.writes.append(WriteRecord(op, da, region.pa + (da - region.da), size))

    def add_write_columns(self, *columns: Sequence[object]) -> None:
        """Log writes already made elsewhere (the compiled segment calls,
        :class:`rproctee.kernels.PtaLane`), in order, given as columns
        ``op, da, pa, len`` (lists or numpy arrays of equal length).

        The records are made when the log is first read: a load of
        thousands of segments whose log nobody reads makes none.
        """
        append_columns(self.writes, WriteRecord, *columns)

    def record(self, op: str, index: int, da: int, size: int) -> None:
        """Log a write made with ``record=False`` (parallel writers log in order)."""
        self._record(op, index, da, size)

    def copy_in(self, da: int, src: Buffer) -> None:
        """Copy ``src`` to device address ``da`` (op ``copy``)."""
        size = memoryview(src).nbytes
        index, off = self._writable(da, size)
        kernels.copy_segment(self._arrays[index], off, src)
        self._record("copy", index, da, size)

    def copy_in_hashed(
        self, da: int, src: Buffer, chunk_size: int = kernels.DEFAULT_CHUNK
    ) -> bytes:
        """Copy ``src`` to ``da``; return SHA-256 of what landed.

        One pass through the fused kernel (SHA instructions of the CPU, GIL
        released); without them, the chunked copy-then-hash kernel in
        ``chunk_size`` steps. Either way the digest is of the stored bytes.
        """
        size = memoryview(src).nbytes
        index, off = self._writable(da, size)
        return self._copy_hashed_at(index, off, da, src, size, chunk_size)

    def copy_in_hashed_at(
        self, index: int, da: int, src: Buffer, *, record: bool = True
    ) -> bytes:
        """:meth:`copy_in_hashed` into region ``index``, already looked up.

        For callers that have just checked ``[da, da+len(src))`` with
        :meth:`require_writable` (the PTA): the range is checked again here
        only by arithmetic, never by a second region search.

        Raises
        ------
        AddressError
            The range is not inside region ``index`` or it is read-only.
        """
        region = self.regions[index]
        size = memoryview(src).nbytes
        off = da - region.da
        if size == 0 or off < 0 or off > region.size - size:
            raise AddressError("device", da, size, "outside")
        if not self.is_writable(index):
            raise AddressError("device", da, size, "read-only")
        self._touch_lazily(index, off, size)
        return self._copy_hashed_at(
            index, off, da, src, size, kernels.DEFAULT_CHUNK, record
        )

    def copy_in_hashed_many(
        self, items: Sequence[tuple[int, int, Buffer]]
    ) -> list[bytes]:
        """Several :meth:`copy_in_hashed_at` jobs in one kernel call, unlogged.

        ``items`` are ``(index, da, src)``; the fused kernel runs two of
        them at a time on one core (:func:`rproctee.kernels.copy_and_hash_many`).
        The caller logs the writes (:meth:`record`) in the order it wants.

        Raises
        ------
        AddressError
            A range not inside its region, or a read-only region (nothing
            written then).
        """
        jobs = []
        for index, da, src in items:
            region = self.regions[index]
            size = memoryview(src).nbytes
            off = da - region.da
            if size == 0 or off < 0 or off > region.size - size:
                raise AddressError("device", da, size, "outside")
            if not self.is_writable(index):
                raise AddressError("device", da, size, "read-only")
            jobs.append((self._arrays[index], off, src))
        for (index, _da, src), (_a, off, _s) in zip(items, jobs, strict=True):
            self._touch_lazily(index, off, memoryview(src).nbytes)
        if kernels.FUSED_IMPL == "chunked":
            return [kernels.copy_and_hash(a, o, s) for a, o, s in jobs]
        digests: list[bytes] = kernels.copy_and_hash_many(jobs)
        return digests

    def _copy_hashed_at(
        self,
        index: int,
        off: int,
        da: int,
        src: Buffer,
        size: int,
        chunk_size: int,
        record: bool = True,
    ) -> bytes:
        arr = self._arrays[index]
        digest: bytes
        if kernels.FUSED_IMPL != "chunked":
            digest = kernels.copy_and_hash_fused(arr, off, src)
        else:
            digest = kernels.copy_and_hash(arr, off, src, chunk_size)
        if record:
            self._record("copy", index, da, size)
        return digest

    def fill(
        self,
        da: int,
        size: int,
        value: int = 0,
        op: str = "zero",
        *,
        record: bool = True,
    ) -> None:
        """Fill ``[da, da+size)`` with ``value`` (op ``zero`` by default)."""
        index, off = self._writable(da, size)
        if value == 0:
            kernels.zero_fill(self._arrays[index], off, size)
        else:
            self._arrays[index][off : off + size] = value
        if record:
            self._record(op, index, da, size)

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
