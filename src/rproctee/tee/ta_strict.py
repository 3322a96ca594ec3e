"""The strict policy's plan: validate every image completely before writing.

Runs the upstream checks in upstream order (so the same code wins where
upstream rejects too) and adds, each with its own reason:

* HASHTYPE must be SHA-256 when present; IMGSIZE must add up to ``img_len``;
* every image gets the ELF header checks, plus EI_DATA, e_machine, e_type;
* program headers are read once into a private list (no double fetch);
* PT_LOAD headers and PT_LOAD hash entries match 1:1, in order, all eight
  fields equal; a signed segment left over is a dropped segment;
* ``p_filesz <= p_memsz``; ``p_paddr + p_memsz`` does not wrap; no overlap;
* every file range and zero-fill range translates (DA_TO_PA) before a write,
  and each segment lies whole in one region;
* the resource table lies in the file-backed part of a loaded segment of its
  image and ``sh_addr`` is where those bytes are loaded;
* the table is validated from a private copy proven to be the signed bytes
  (not from the shared buffer, which may change before the copy), entries
  included, by the one parser the normal world uses
  (:func:`rproctee.rsctable.parse_resource_table`): a table Linux would
  refuse (a vdev declaring vrings past the table, a ``config_len`` that wraps,
  entry offsets inside the header...) is refused at LOAD_FW.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import TYPE_CHECKING

import numpy as np

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


class StrictPlan:
    """Everything LOAD_FW will write, proven valid before the first write."""

    def __init__(self, load: FirmwareLoad) -> None:
        self.load = load
        self.segments: list[Segment] = []
        self.rsc: tuple[int, int] = (0, 0)
        self.cursor = 0
        self.signed_loads: list[int] = []

    def build(self) -> None:
        """Check all images, segments, regions and the resource table."""
        ld = self.load
        first = check_ehdr(ld.r, ld.img_off, ld.hdr[4])
        check_ehdr_strict(first)
        ld.phase("ehdr_checked", image=0)
        ld.get_hash_table()
        self._hash_type()
        num = ld.num_img()
        sizes = self._sizes(num)
        self.signed_loads = [
            k for k, e in enumerate(ld.table) if e.phdr.p_type == PT_LOAD
        ]
        offset = 0
        for i, size in enumerate(sizes):
            base = ld.img_off + _s32(offset)
            self._image(i, base, size, first if i == 0 else None)
            offset = (offset + size) & U32
        self._left_over()
        self._overlaps()
        t0 = time.perf_counter()
        self._regions()
        nbytes = sum(s.phdr.p_memsz for s in self.segments)
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

    def _image(self, i: int, base: int, size: int, ehdr: Ehdr | None) -> None:
        """One image; its ELF header is read once (``ehdr``: already read)."""
        ld = self.load
        if ehdr is None:
            ehdr = check_ehdr(ld.r, base, size)
            check_ehdr_strict(ehdr)
            ld.phase("ehdr_checked", image=i)
        ehdr, table = phdr_table_start(ld.r, base, size, ehdr)
        words = read_phdr_table(ld.r, base, size, table, ehdr.e_phnum)
        mine: list[Segment] = []
        for j, w in enumerate(words):
            if w[0] == PT_LOAD:  # p_type; only PT_LOAD entries become Phdrs
                mine.append(self._segment(i, j, base, size, Phdr(*w)))
        self.segments += mine
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
            (s for s in self.segments if s.phdr.p_memsz),
            key=lambda s: (s.phdr.p_paddr, s.phdr.p_paddr + s.phdr.p_memsz),
        )
        for a, b in zip(spans, spans[1:], strict=False):
            b0 = b.phdr.p_paddr
            if b0 < a.phdr.p_paddr + a.phdr.p_memsz:
                raise _fmt(
                    f"segments image {a.image} phdr {a.index} and image {b.image} "
                    f"phdr {b.index} overlap at da {b0:#x}"
                )

    def _regions(self) -> None:
        ranges: list[tuple[int, int, str]] = []
        for s in self.segments:
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
        for da, size, what in ranges[self._writable_prefix(ranges) :]:
            self._translate(da, size, what)
        if self.rsc[1]:
            pa = self.load.translate_rsc(self.rsc[0], self.rsc[1])
            self.rsc = (pa, self.rsc[1])

    def _writable_prefix(self, ranges: list[tuple[int, int, str]]) -> int:
        """How many leading ``ranges`` PTA RANGES_WRITABLE accepts (0: none,
        or the platform does not have the command)."""
        if len(ranges) < 2:
            return 0
        ld = self.load
        table = np.array([(da & U32, size & U32) for da, size, _w in ranges],
                         dtype="<u8")  # fmt: skip
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
        self, i: int, base: int, size: int, ehdr: Ehdr, mine: list[Segment]
    ) -> None:
        try:
            s = find_rsc_section_strict(self.load.r, base, size, ehdr)
        except TeeError as exc:
            if exc.result == TeeResult.TEE_ERROR_NO_DATA:
                return
            raise
        seg = self._rsc_loaded(i, s, mine)
        t0 = time.perf_counter()
        try:
            self._rsc_signed(base, s, seg)
        finally:
            self.load.marks.append(
                ("resource table", seg.phdr.p_filesz, time.perf_counter() - t0)
            )
        if self.rsc[1]:
            raise _fmt("more than one image has a resource table")
        self.rsc = (s.sh_addr, s.sh_size)

    def _rsc_signed(self, base: int, s: RscSection, seg: Segment) -> None:
        """Validate the table bytes that will be loaded, not a caller's copy.

        ``find_rsc_table`` checked the bytes at ``sh_offset`` in the shared
        buffer, which the caller may change before the segment is copied
        (checklist 5.6): a valid table shown during the plan and the signed,
        invalid one put back for the copy passed every check. Read the table
        once into a private copy, run the same checks on that copy, and prove
        it is the signed content: the segment hashed with the private copy in
        place of the table bytes must give the signed digest. The PTA then
        hashes what lands in memory against the same digest, so the loaded
        table is the validated one.
        """
        ld, ph = self.load, seg.phdr
        at = base + s.sh_offset
        ld._alloc(s.sh_size, "resource table copy")
        table = ld.r.read(at, s.sh_size)
        private = SharedReader(memoryview(table), ld.r.addr + at)
        check_rsc_table(
            private, 0, s.sh_size, RscSection(s.sh_addr, 0, s.sh_size, s.index),
            strict=True,
        )  # fmt: skip
        _check_entries(table)
        end = seg.src + ph.p_filesz
        # hashed in place: the segment around the table is never copied out
        # of the shared buffer (a 32 MiB segment would be 32 MiB of new
        # pages), only the table itself, privately, above
        h = hashlib.sha256(_shared(ld.r, seg.src, at - seg.src))
        h.update(table)
        h.update(_shared(ld.r, at + s.sh_size, end - at - s.sh_size))
        if not hmac.compare_digest(h.digest(), seg.digest):
            raise TeeError(
                TeeResult.TEE_ERROR_SECURITY,
                f"segment holding the resource table (p_paddr {ph.p_paddr:#x}) "
                "does not hash to its signed digest",
            )

    @staticmethod
    def _rsc_loaded(i: int, s: RscSection, mine: list[Segment]) -> Segment:
        for seg in mine:
            ph = seg.phdr
            start = s.sh_offset - ph.p_offset
            if 0 <= start and s.sh_offset + s.sh_size <= ph.p_offset + ph.p_filesz:
                if s.sh_addr == ph.p_paddr + start:
                    return seg
                raise _fmt(
                    f"image {i} .resource_table sh_addr {s.sh_addr:#x} is not "
                    f"where its bytes load (da {ph.p_paddr + start:#x})"
                )
        raise _fmt(
            f"image {i} .resource_table [sh_offset {s.sh_offset:#x}, "
            f"+{s.sh_size:#x}) is not inside the file bytes of a PT_LOAD"
        )


def _shared(r: SharedReader, off: int, n: int) -> memoryview | bytes:
    """``r.read(off, n)`` without the copy where the bytes lie in the memref.

    The plan has checked that a segment lies inside the images, so this is
    the case for every caller; a range reaching past the memref still goes
    through :meth:`SharedReader.read` (zero-padded page, or a TA panic).
    """
    if 0 <= off and off + n <= len(r.view):
        return r.view[off : off + n]
    return r.read(off, n)


def _check_entries(table: bytes) -> None:
    """Every entry as Linux's resource walk checks it; refusal: BAD_FORMAT."""
    try:
        parse_resource_table(table)
    except RscTableError as exc:
        raise _fmt(f"resource table: {exc} (Linux would refuse to boot)") from exc
