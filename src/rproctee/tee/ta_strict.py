"""The strict policy's plan: validate every image completely before writing.

Runs the upstream checks in upstream order (so the same code wins where
upstream rejects too) and adds, each with its own reason:

* HASHTYPE must be SHA-256 when present; IMGSIZE must add up to ``img_len``;
* every image gets the ELF header checks, plus EI_DATA, e_machine, e_type;
* program headers are read once into a private copy (no double fetch);
* PT_LOAD headers and PT_LOAD hash entries match 1:1, in order, all eight
  fields equal; a signed segment left over is a dropped segment;
* ``p_filesz <= p_memsz``; ``p_paddr + p_memsz`` does not wrap; no overlap;
* every file range and zero-fill range translates (DA_TO_PA) before a write,
  and each segment lies whole in one region;
* the resource table lies in the file-backed part of a loaded segment of its
  image and ``sh_addr`` is where those bytes are loaded;
* the table is validated from a private copy (not from the shared buffer,
  which may change before the copy), entries included, by the one parser
  the normal world uses (:func:`rproctee.rsctable.parse_resource_table`): a
  table Linux would refuse (a vdev declaring vrings past the table, a
  ``config_len`` that wraps, entry offsets inside the header...) is refused
  at LOAD_FW; once loaded (and hashed by the platform against the signed
  digest) the table in device memory must be that very copy
  (``FirmwareLoad._loaded_table_is_the_validated_one``).

Unless a phase hook watches, the segment checks run on numpy arrays of all
program headers of an image at once (thousands of small segments would
otherwise cost more to plan than to load); the answer is the same, the
first refused segment is handed to the per-segment checks to raise.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rproctee import kernels
from rproctee.elf import Phdr
from rproctee.rsctable import RscTableError, parse_resource_table
from rproctee.tee.params import Memref, Param, ParamType, Value, param_types
from rproctee.tee.pta_stm32mp import PtaCommand
from rproctee.tee.results import TeeError, TeeResult
from rproctee.tee.ta_elf import (
    PT_LOAD,
    Ehdr,
    RscSection,
    SharedReader,
    check_ehdr,
    check_ehdr_strict,
    check_rsc_table,
    check_segment_range,
    find_rsc_section_strict,
    phdr_table_start,
    read_phdr_bytes,
    read_phdr_table,
)
from rproctee.tee.ta_load import Segment, _s32
from rproctee.tee.ta_tlv import U32, Tlv

if TYPE_CHECKING:
    from rproctee.tee.ta_load import FirmwareLoad

VI, VO = ParamType.VALUE_INPUT, ParamType.VALUE_OUTPUT
MI = ParamType.MEMREF_INPUT


def _fmt(reason: str) -> TeeError:
    return TeeError(TeeResult.TEE_ERROR_BAD_FORMAT, reason)


def _bad(reason: str) -> TeeError:
    return TeeError(TeeResult.TEE_ERROR_BAD_PARAMETERS, reason)


#: What the executor loads: one row per planned PT_LOAD, in plan order
#: (empty ones included); a row's bytes are those of
#: ``pta_stm32mp.BATCH_RECORD.pack(src, da, filesz, memsz, digest)``.
#: Signed hash entries from which the plan checks its segments with numpy
#: (below, the per-segment loop is faster: 0.9 against 1.4 ms for one).
VECTOR_MIN_ENTRIES = 16

PLAN_RECORD = np.dtype(
    [("src", "<u8"), ("da", "<u8"), ("filesz", "<u8"), ("memsz", "<u8"),
     ("digest", "S32")]
)  # fmt: skip
#: Where a planned segment comes from: image and program-header index.
PLAN_ORIGIN = np.dtype([("image", "<u4"), ("index", "<u4")])
#: Word positions in an ELF32 program header (and a hash-table entry).
_TYPE, _OFFSET, _PADDR, _FILESZ, _MEMSZ = 0, 1, 3, 4, 5
#: The ranges each segment asks to write, in the order they are checked.
_RANGE_KINDS = ("segment", "zero-fill", "whole segment")


class _Rows:
    """Planned segments as arrays; :class:`Segment` objects made on demand.

    Iterating yields the segments in plan order (what ``_rsc`` looks through
    for the one holding the resource table, usually among the first).
    """

    def __init__(
        self,
        records: npt.NDArray[np.void],
        origin: npt.NDArray[np.void],
        phdrs: npt.NDArray[np.uint32],
    ) -> None:
        self.records = records
        self.origin = origin
        self.phdrs = phdrs  # (n, 8) words of each program header

    @classmethod
    def of_segments(cls, segments: list[Segment]) -> _Rows:
        records = np.array(
            [(s.src, s.phdr.p_paddr, s.phdr.p_filesz, s.phdr.p_memsz, s.digest)
             for s in segments],
            dtype=PLAN_RECORD,
        )  # fmt: skip
        origin = np.array([(s.image, s.index) for s in segments], dtype=PLAN_ORIGIN)
        phdrs = np.array([s.phdr.words() for s in segments], dtype="<u4")
        return cls(records, origin, phdrs.reshape(-1, 8))

    @classmethod
    def concat(cls, parts: list[_Rows]) -> _Rows:
        if not parts:
            return cls.of_segments([])
        if len(parts) == 1:
            return parts[0]
        return cls(
            np.concatenate([p.records for p in parts]),
            np.concatenate([p.origin for p in parts]),
            np.concatenate([p.phdrs for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Segment]:
        return (self.segment(t) for t in range(len(self.records)))

    def segment(self, t: int) -> Segment:
        image, index = self.origin[t].tolist()
        # the digest from the raw row: numpy drops an S32 value's trailing NULs
        digest = self.records[t : t + 1].tobytes()[32:]
        ph = Phdr(*self.phdrs[t].tolist())
        return Segment(image, index, ph, int(self.records["src"][t]), digest)

    def segments(self) -> list[Segment]:
        raw = self.records.tobytes()
        size = PLAN_RECORD.itemsize
        return [
            Segment(image, index, Phdr(*words), src, raw[at + 32 : at + size])
            for image, index, words, src, at in zip(
                self.origin["image"].tolist(),
                self.origin["index"].tolist(),
                self.phdrs.tolist(),
                self.records["src"].tolist(),
                range(0, len(raw), size),
                strict=True,
            )
        ]


class _SignedTable:
    """The hash table of the TA's private copy, as arrays.

    ``phdrs``: the eight words of each entry; ``digests``: their SHA-256;
    ``loads``: the indices of the PT_LOAD entries, in order.
    """

    def __init__(self, raw: bytes) -> None:
        entries = np.frombuffer(raw, dtype="<u4").reshape(-1, 16)
        self.phdrs = entries[:, :8]
        self.digests = np.frombuffer(raw, dtype="S32")[1::2]
        self.loads = np.flatnonzero(self.phdrs[:, _TYPE] == PT_LOAD)
        paddr = self.phdrs[:, _PADDR]
        if np.all(paddr[1:] > paddr[:-1]):
            # the usual table: sorted and unique, each entry its own first
            self._paddrs, self._first = paddr, np.arange(len(paddr))
        else:
            self._paddrs, self._first = np.unique(paddr, return_index=True)

    def load_phdrs(self, first: int, n: int) -> npt.NDArray[np.uint32]:
        """The words of PT_LOAD entries ``first .. first + n - 1``."""
        picked = self.loads[first : first + n]
        if n and picked[-1] - picked[0] == n - 1:
            # consecutive entries (a table of PT_LOADs only): no gather
            return self.phdrs[picked[0] : picked[0] + n]
        return _take_rows(self.phdrs, picked)

    def first_entries(
        self, paddr: npt.NDArray[np.uint32]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.intp]]:
        """For each p_paddr: whether an entry has it, and the first that does
        (``FirmwareLoad.segment_hash``'s lookup; some valid index if none)."""
        pos = self._run_of(paddr)
        if pos is None:
            pos = np.searchsorted(self._paddrs, paddr)
            pos = np.minimum(pos, len(self._paddrs) - 1)
        return self._paddrs[pos] == paddr, self._first[pos]

    def _run_of(self, paddr: npt.NDArray[np.uint32]) -> npt.NDArray[np.intp] | None:
        """Where ``paddr`` is a run of the sorted p_paddr (the usual image:
        its headers in table order), found without a search of each."""
        if not len(paddr):
            return None
        start = int(np.searchsorted(self._paddrs, paddr[0]))
        run = self._paddrs[start : start + len(paddr)]
        if len(run) == len(paddr) and np.array_equal(run, paddr):
            return np.arange(start, start + len(paddr))
        return None

    def entry_phdrs(self, entry: npt.NDArray[np.intp]) -> npt.NDArray[np.uint32]:
        """The words of entries ``entry``."""
        return _take_rows(self.phdrs, entry)


class StrictPlan:
    """Everything LOAD_FW will write, proven valid before the first write.

    Two ways to the same plan. Segment by segment is the reference, and the
    only way that reports each ``phdr_checked`` phase to a watching hook.
    Vectorised (numpy) checks all PT_LOAD headers of an image at once: the
    per-segment cost of Python objects would take longer than loading
    thousands of small segments. It gives the same answer, code and reason:
    it finds the first segment that fails any check and lets the per-segment
    checks raise for that one.
    """

    def __init__(self, load: FirmwareLoad) -> None:
        self.load = load
        self.rsc: tuple[int, int] = (0, 0)
        #: (sh_addr, bytes) of the resource table the plan validated: the
        #: executor checks that the loaded table is exactly this copy
        self.rsc_copy: tuple[int, bytes] | None = None
        self.cursor = 0
        self.signed_loads: list[int] = []
        self._rows = _Rows.of_segments([])
        self._checked: list[Segment] = []  # the per-segment path's segments
        self._segments: list[Segment] | None = []

    @property
    def records(self) -> npt.NDArray[np.void]:
        """One :data:`PLAN_RECORD` per planned PT_LOAD, in plan order."""
        return self._rows.records

    @property
    def origin(self) -> npt.NDArray[np.void]:
        """Image and program-header index of each row of :attr:`records`."""
        return self._rows.origin

    @property
    def segments(self) -> list[Segment]:
        """The planned segments as objects (the vectorised plan makes them
        on first use)."""
        if self._segments is None:
            self._segments = self._rows.segments()
        return self._segments

    def build(self, *, vectorised: bool | None = None) -> None:
        """Check all images, segments, regions and the resource table.

        ``vectorised``: None takes the vectorised checks for
        :data:`VECTOR_MIN_ENTRIES` signed entries or more, unless a phase
        hook watches (it must see ``phdr_checked`` of each segment, in turn).
        """
        ld = self.load
        first = check_ehdr(ld.r, ld.img_off, ld.hdr[4])
        check_ehdr_strict(first)
        ld.phase("ehdr_checked", image=0)
        ld.get_hash_table()
        fast = vectorised
        if fast is None:
            # numpy's fixed costs outweigh a loop over a few segments
            many = len(ld.hash_raw) >= VECTOR_MIN_ENTRIES * 64
            fast = many and not ld._phases_watched()
        self._hash_type()
        num = ld.num_img()
        sizes = self._sizes(num)
        signed = _SignedTable(ld.tlv(Tlv.HASHTABLE) or b"") if fast else None
        if signed is None:
            self.signed_loads = [
                k for k, e in enumerate(ld.table) if e.phdr.p_type == PT_LOAD
            ]
        else:
            self.signed_loads = signed.loads.tolist()
        parts: list[_Rows] = []
        offset = 0
        for i, size in enumerate(sizes):
            base = ld.img_off + _s32(offset)
            ehdr = first if i == 0 else None
            if signed is None:
                self._image(i, base, size, ehdr)
            else:
                parts.append(self._image_fast(i, base, size, ehdr, signed))
            offset = (offset + size) & U32
        self._left_over()
        if signed is None:
            self._rows = _Rows.of_segments(self._checked)
            self._segments = self._checked
            self._overlaps()
        else:
            self._rows = _Rows.concat(parts)
            self._segments = None
            self._overlaps_fast()
        t0 = time.perf_counter()
        if signed is None:
            self._regions()
        else:
            self._regions_fast()
        nbytes = int(self.records["memsz"].sum())
        ld.marks.append(("region checks", nbytes, time.perf_counter() - t0))

    def _hash_type(self) -> None:
        raw = self.load.tlv(Tlv.HASHTYPE)
        if raw is not None and len(raw) != 1:
            raise _bad(f"HASHTYPE TLV length {len(raw)}, expected 1")
        if raw is not None and raw[0] != 1:
            raise TeeError(
                TeeResult.TEE_ERROR_NOT_SUPPORTED,
                f"HASHTYPE = {raw[0]}, only 1 (SHA-256) is supported",
            )

    def _sizes(self, num: int) -> list[int]:
        ld = self.load
        sizes = []
        for i in range(num):
            ld.img_type(num, i)
            sizes.append(ld.img_size(num, i))
        if sum(sizes) != ld.hdr[4]:
            raise _bad(
                f"IMGSIZE values add up to {sum(sizes):#x}, img_len is {ld.hdr[4]:#x}"
            )
        return sizes

    def _ehdr(self, i: int, base: int, size: int, ehdr: Ehdr | None) -> Ehdr:
        """Image ``i``'s ELF header, read and checked once (``ehdr``: already)."""
        if ehdr is None:
            ld = self.load
            ehdr = check_ehdr(ld.r, base, size)
            check_ehdr_strict(ehdr)
            ld.phase("ehdr_checked", image=i)
        return ehdr

    # -- segment by segment (the reference; phdr_checked for each) -------------
    def _image(self, i: int, base: int, size: int, ehdr: Ehdr | None) -> None:
        """One image, one segment at a time."""
        ld = self.load
        ehdr, table = phdr_table_start(
            ld.r, base, size, self._ehdr(i, base, size, ehdr)
        )
        words = read_phdr_table(ld.r, base, size, table, ehdr.e_phnum)
        mine: list[Segment] = []
        for j, w in enumerate(words):
            if w[0] == PT_LOAD:  # p_type; only PT_LOAD entries become Phdrs
                mine.append(self._segment(i, j, base, size, Phdr(*w)))
        self._checked += mine
        ld.phase("rsc_lookup_before", image=i)
        self._rsc(i, base, size, ehdr, mine)

    def _segment(self, i: int, j: int, base: int, size: int, ph: Phdr) -> Segment:
        check_segment_range(j, ph, size)
        digest = self.load.segment_hash(base + ph.p_offset, ph)
        self._ordered(i, j, ph)
        if ph.p_filesz > ph.p_memsz:
            raise _fmt(
                f"image {i} program header {j}: p_filesz {ph.p_filesz:#x} > "
                f"p_memsz {ph.p_memsz:#x}"
            )
        if ph.p_paddr + ph.p_memsz > U32 + 1:
            raise _fmt(
                f"image {i} program header {j}: p_paddr {ph.p_paddr:#x} + "
                f"p_memsz {ph.p_memsz:#x} wraps 32 bits"
            )
        self.load.phdr_checked(i, j, ph)
        return Segment(i, j, ph, base + ph.p_offset, digest)

    def _ordered(self, i: int, j: int, ph: Phdr) -> None:
        table = self.load.table
        if self.cursor >= len(self.signed_loads):
            raise _bad(
                f"image {i} program header {j} (p_paddr {ph.p_paddr:#x}): "
                "more PT_LOAD headers than signed PT_LOAD entries"
            )
        k = self.signed_loads[self.cursor]
        if table[k].phdr != ph:
            raise _bad(
                f"image {i} program header {j} (p_paddr {ph.p_paddr:#x}) "
                f"differs from signed PT_LOAD entry {k} (p_paddr "
                f"{table[k].phdr.p_paddr:#x}): order or fields changed"
            )
        self.cursor += 1

    def _left_over(self) -> None:
        if self.cursor < len(self.signed_loads):
            k = self.signed_loads[self.cursor]
            paddr = self.load.table[k].phdr.p_paddr
            raise _bad(
                f"signed PT_LOAD entry {k} (p_paddr {paddr:#x}) has no "
                "program header: a signed segment was dropped"
            )

    def _overlaps(self) -> None:
        # sort on the addresses only: two equal spans must not fall through
        # to comparing the Segment objects (they do not order)
        spans = sorted(
            (s for s in self._checked if s.phdr.p_memsz),
            key=lambda s: (s.phdr.p_paddr, s.phdr.p_paddr + s.phdr.p_memsz),
        )
        for a, b in zip(spans, spans[1:], strict=False):
            if b.phdr.p_paddr < a.phdr.p_paddr + a.phdr.p_memsz:
                raise _overlap(a, b)

    def _regions(self) -> None:
        ranges: list[tuple[int, int, str]] = []
        for s in self._checked:
            ph = s.phdr
            if ph.p_filesz:
                ranges.append((ph.p_paddr, ph.p_filesz, "segment"))
            if ph.p_memsz > ph.p_filesz:
                ranges.append(
                    (ph.p_paddr + ph.p_filesz, ph.p_memsz - ph.p_filesz, "zero-fill")
                )
            if ph.p_filesz and ph.p_memsz > ph.p_filesz:
                # a segment is one object: its file bytes and its zero-fill
                # in one region (upstream translates them apart, so a segment
                # may straddle two adjacent regions; Linux refuses that too)
                ranges.append((ph.p_paddr, ph.p_memsz, "whole segment"))
        # all ranges in one platform call; from the first it refuses (or for
        # all, on a platform without it) one call each, whose answer is the
        # exact error of the range-by-range check
        pairs = np.array([(da, size) for da, size, _w in ranges], dtype="<u8")
        for da, size, what in ranges[self._writable_prefix(pairs.reshape(-1, 2)) :]:
            self._translate(da, size, what)
        self._translate_rsc()

    # -- vectorised (no hook watches) ----------------------------------------------
    def _image_fast(
        self, i: int, base: int, size: int, ehdr: Ehdr | None, signed: _SignedTable
    ) -> _Rows:
        """One image, all its segments at once; the same checks as ``_image``."""
        ld = self.load
        ehdr, table = phdr_table_start(
            ld.r, base, size, self._ehdr(i, base, size, ehdr)
        )
        words = _phdr_words(ld.r, base, size, table, ehdr.e_phnum)
        index = np.flatnonzero(words[:, _TYPE] == PT_LOAD)
        phdrs = words if len(index) == len(words) else _take_rows(words, index)
        found, entry = signed.first_entries(phdrs[:, _PADDR])
        failed = self._first_failing(base, size, phdrs, found, entry, signed)
        if failed < len(phdrs):
            self.cursor += failed  # the ones before it are in order
            self._raise_for(i, base, size, int(index[failed]), phdrs[failed])
        self.cursor += len(phdrs)
        rows = _rows(i, base, index, phdrs, signed.digests[entry])
        ld.phase("rsc_lookup_before", image=i)
        self._rsc(i, base, size, ehdr, rows)
        return rows

    def _first_failing(
        self,
        base: int,
        size: int,
        phdrs: npt.NDArray[np.uint32],
        found: npt.NDArray[np.bool_],
        entry: npt.NDArray[np.intp],
        signed: _SignedTable,
    ) -> int:
        """Index of the first of ``phdrs`` that ``_segment`` refuses, or
        ``len(phdrs)``; ``entry``: each one's first hash entry, if ``found``."""
        ld = self.load
        off, paddr, filesz, memsz = (
            phdrs[:, k].astype(np.int64)  # sums of two u32 must not wrap
            for k in (_OFFSET, _PADDR, _FILESZ, _MEMSZ)
        )
        e = signed.entry_phdrs(entry)
        e_filesz = e[:, _FILESZ].astype(np.int64)
        src, lo, hi = base + off, ld.img_off, ld.img_off + ld.hdr[4]
        bad = (off >= size) | (off + filesz > size)  # check_segment_range
        # segment_hash: an entry; PT_LOAD; same sizes; source in the images
        bad |= ~found | (e[:, _TYPE] != PT_LOAD)
        bad |= (e_filesz != filesz) | (e[:, _MEMSZ] != memsz)
        bad |= (src < lo) | (src > hi) | (src + e_filesz > hi)
        bad |= ~self._in_signed_order(phdrs, signed)
        bad |= (filesz > memsz) | (paddr + memsz > U32 + 1)
        return int(np.argmax(bad)) if bad.any() else len(bad)

    def _in_signed_order(
        self, phdrs: npt.NDArray[np.uint32], signed: _SignedTable
    ) -> npt.NDArray[np.bool_]:
        """``_ordered`` for each of ``phdrs``, the first at the cursor."""
        ok = np.zeros(len(phdrs), dtype=bool)
        n = max(0, min(len(phdrs), len(signed.loads) - self.cursor))
        expected = signed.load_phdrs(self.cursor, n)
        # the eight words of a header as four u64: half the comparisons
        ok[:n] = (_as_u64(expected) == _as_u64(phdrs[:n])).all(axis=1)
        return ok

    def _raise_for(
        self, i: int, base: int, size: int, j: int, words: npt.NDArray[np.uint32]
    ) -> None:
        """The per-segment checks of the first refused segment (the cursor
        at it), which raise exactly as the per-segment plan would."""
        self._segment(i, j, base, size, Phdr(*words.tolist()))
        raise AssertionError(
            f"image {i} program header {j}: the vectorised checks refuse it, "
            "the per-segment checks do not"
        )

    def _overlaps_fast(self) -> None:
        """``_overlaps`` on the arrays: a stable sort on (start, end) takes
        the same pairs in the same order."""
        memsz = self.records["memsz"]
        spans = np.flatnonzero(memsz != 0)
        start = self.records["da"][spans]
        order = np.lexsort((start + memsz[spans], start))
        start, end = start[order], (start + memsz[spans])[order]
        clash = start[1:] < end[:-1]
        if clash.any():
            t = int(np.argmax(clash))
            a, b = spans[order[t]], spans[order[t + 1]]
            raise _overlap(self._rows.segment(int(a)), self._rows.segment(int(b)))

    def _regions_fast(self) -> None:
        """``_regions`` on the arrays: the same ranges in the same order."""
        at, ranges = _ranges(self.records)
        for t in range(self._writable_prefix(ranges), len(at)):
            what = _RANGE_KINDS[int(at[t]) % 3]  # only for a refused range
            self._translate(int(ranges[t, 0]), int(ranges[t, 1]), what)
        self._translate_rsc()

    # -- both -------------------------------------------------------------------------
    def _translate_rsc(self) -> None:
        if self.rsc[1]:
            pa = self.load.translate_rsc(self.rsc[0], self.rsc[1])
            self.rsc = (pa, self.rsc[1])

    def _writable_prefix(self, ranges: npt.NDArray[np.uint64]) -> int:
        """How many leading ``ranges`` ((da, size) rows) PTA RANGES_WRITABLE
        accepts (0: none, or the platform does not have the command)."""
        if len(ranges) < 2:
            return 0
        ld = self.load
        table = ranges & U32 if (ranges > U32).any() else ranges
        out = Value(kind=VO)
        params: list[Param] = [ld._id(), Memref(table.tobytes(), kind=MI,
                               addr=0x100000), out]  # fmt: skip
        try:
            ld.ta.pta(PtaCommand.RANGES_WRITABLE, param_types(VI, MI, VO), params)
        except TeeError:
            return 0
        return min(out.a, len(ranges))

    def _translate(self, da: int, size: int, what: str) -> None:
        self.load.da_to_pa(da, size, what, write=True)

    def _rsc(
        self, i: int, base: int, size: int, ehdr: Ehdr, mine: Iterable[Segment]
    ) -> None:
        try:
            s = find_rsc_section_strict(self.load.r, base, size, ehdr)
        except TeeError as exc:
            if exc.result == TeeResult.TEE_ERROR_NO_DATA:
                return
            raise
        self._check_rsc_loaded(i, s, mine)
        t0 = time.perf_counter()
        try:
            self._rsc_private_copy(base, s)
        finally:
            self.load.marks.append(
                ("resource table", s.sh_size, time.perf_counter() - t0)
            )
        if self.rsc[1]:
            raise _fmt("more than one image has a resource table")
        self.rsc = (s.sh_addr, s.sh_size)

    def _rsc_private_copy(self, base: int, s: RscSection) -> None:
        """Validate the table bytes that will be loaded, not a caller's copy.

        ``find_rsc_table`` checked the bytes at ``sh_offset`` in the shared
        buffer, which the caller may change before the segment is copied
        (checklist 5.6): a valid table shown during the plan and the signed,
        invalid one put back for the copy passed every check. Read the table
        once into a private copy and run the checks on that copy
        (:attr:`rsc_copy`). That it is the signed content is settled after
        the copy, without hashing its segment a second time: the PTA hashes
        what lands in device memory against the signed digest, and the
        executor then asks the PTA whether the loaded table is this very
        copy (MEMORY_EQUALS); when it is not, the load fails with SECURITY
        and is wiped.
        """
        ld = self.load
        at = base + s.sh_offset
        ld._alloc(s.sh_size, "resource table copy")
        table = ld.r.read(at, s.sh_size)
        private = SharedReader(memoryview(table), ld.r.addr + at)
        check_rsc_table(
            private, 0, s.sh_size, RscSection(s.sh_addr, 0, s.sh_size, s.index),
            strict=True,
        )  # fmt: skip
        _check_entries(table)
        self.rsc_copy = (s.sh_addr, table)

    @staticmethod
    def _check_rsc_loaded(i: int, s: RscSection, mine: Iterable[Segment]) -> None:
        """The table lies in the file bytes of a loaded segment of its image,
        and ``sh_addr`` is where those bytes load."""
        for seg in mine:
            ph = seg.phdr
            start = s.sh_offset - ph.p_offset
            if 0 <= start and s.sh_offset + s.sh_size <= ph.p_offset + ph.p_filesz:
                if s.sh_addr == ph.p_paddr + start:
                    return
                raise _fmt(
                    f"image {i} .resource_table sh_addr {s.sh_addr:#x} is not "
                    f"where its bytes load (da {ph.p_paddr + start:#x})"
                )
        raise _fmt(
            f"image {i} .resource_table [sh_offset {s.sh_offset:#x}, "
            f"+{s.sh_size:#x}) is not inside the file bytes of a PT_LOAD"
        )


def _check_entries(table: bytes) -> None:
    """Every entry as Linux's resource walk checks it; refusal: BAD_FORMAT."""
    try:
        parse_resource_table(table)
    except RscTableError as exc:
        raise _fmt(f"resource table: {exc} (Linux would refuse to boot)") from exc


def _overlap(a: Segment, b: Segment) -> TeeError:
    return _fmt(
        f"segments image {a.image} phdr {a.index} and image {b.image} "
        f"phdr {b.index} overlap at da {b.phdr.p_paddr:#x}"
    )


def _phdr_words(
    r: SharedReader, base: int, size: int, table: int, count: int
) -> npt.NDArray[np.uint32]:
    """:func:`read_phdr_table` as an (n, 8) array of the words: the same one
    bounded read of the entries inside the image, then the first entry
    outside it refused with :func:`read_phdr`'s error."""
    raw = read_phdr_bytes(r, base, size, table, count)
    return np.frombuffer(raw, dtype="<u4").reshape(-1, 8)


def _rows(
    i: int,
    base: int,
    index: npt.NDArray[np.intp],
    phdrs: npt.NDArray[np.uint32],
    digests: npt.NDArray[np.bytes_],
) -> _Rows:
    """The checked PT_LOAD headers ``phdrs`` (at ``index`` in image ``i``)."""
    records = np.zeros(len(phdrs), dtype=PLAN_RECORD)
    records["src"] = base + phdrs[:, _OFFSET].astype(np.int64)
    records["da"] = phdrs[:, _PADDR]
    records["filesz"] = phdrs[:, _FILESZ]
    records["memsz"] = phdrs[:, _MEMSZ]
    records["digest"] = digests
    origin = np.zeros(len(phdrs), dtype=PLAN_ORIGIN)
    origin["image"] = i
    origin["index"] = index
    return _Rows(records, origin, phdrs)


def _as_u64(words: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint64]:
    """(n, 8) u32 words as (n, 4) u64 (rows contiguous, maybe strided)."""
    if not words.flags.c_contiguous and words.strides[1] != 4:
        words = np.ascontiguousarray(words)
    return words.view(np.uint64)


def _ranges(
    records: npt.NDArray[np.void],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint64]]:
    """The ranges the plan writes, as (da, size) rows in check order, and
    where each comes from: ``3 * segment + kind`` (:data:`_RANGE_KINDS`);
    one pass of :func:`rproctee.kernels.segment_ranges` over the records."""
    rows = np.ascontiguousarray(records).view("<u8").reshape(-1, 8)
    at, ranges = kernels.segment_ranges(rows)
    return at, ranges


def _take_rows(
    words: npt.NDArray[np.uint32], rows: npt.NDArray[np.intp]
) -> npt.NDArray[np.uint32]:
    """``words[rows]`` of an (n, 8) array whose rows are contiguous, taken as
    one 32-byte item each (numpy gathers short rows several times slower)."""
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and np.all(np.diff(rows) == 1):
        return words[rows[0] : rows[0] + len(rows)]
    if words.strides[1] != 4:
        words = np.ascontiguousarray(words)
    items = np.lib.stride_tricks.as_strided(
        words.view("V32"), shape=(len(words),), strides=(words.strides[0],)
    )
    return items[rows].view("<u4").reshape(-1, 8)
