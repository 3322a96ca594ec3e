"""Pure-Python twin of ``rproctee._native.taloop``: same names, answers and log.

The TA's per-segment loop and the PTA's LOAD_SEGMENT_SHA256 / SET_MEMORY as
the compiled kernel runs them (see its module docs): each segment is one
:meth:`PtaLane.invoke` per command with the four parameter slots and the
type word; at the first call or check that would not succeed, the loop stops
and says where, and the Python TA resumes there.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rproctee._typing import Buffer

CMD_LOAD_SEGMENT_SHA256 = 3
CMD_SET_MEMORY = 4
PT_LOAD_SEGMENT = 0x5151
PT_SET_MEMORY = 0x1111
PT_MEMREF_INPUT = 5
PT_LOAD = 1
LANE_OK = 0
LANE_DEFER = 1
STAGE_SEGMENT = 0
STAGE_FILL = 1
STAGE_DONE = 2
OP_COPY = 0
OP_ZERO = 1
U32 = 0xFFFFFFFF
_RECORD = struct.Struct("<4Q32s")
_PHDR = struct.Struct("<8I")


@dataclass
class LaneParam:
    """One parameter slot: value words and a memref (the type word decides)."""

    a: int = 0
    b: int = 0
    buffer: memoryview | None = None
    offset: int = 0
    size: int = 0
    avail: int = 0


def _value(a: int, b: int = 0) -> LaneParam:
    return LaneParam(a & U32, b & U32)


def _memref(buf: memoryview | None, avail: int, offset: int, size: int) -> LaneParam:
    return LaneParam(0, 0, buf, offset, size, avail - offset if offset <= avail else 0)


class PtaLane:
    """The PTA's segment commands for one processor (see the native docs)."""

    def __init__(
        self,
        pta: Any,
        das: Sequence[int],
        sizes: Sequence[int],
        pas: Sequence[int],
        writable: Sequence[bool],
        memories: Sequence[npt.NDArray[np.uint8]],
        rproc_id: int,
        id_known: bool,
        fill_nonzero: bool = False,
        capacity: int = 64,
    ) -> None:
        n = len(das)
        if not (len(sizes) == len(pas) == len(writable) == len(memories) == n):
            raise ValueError(
                "PtaLane: one das/sizes/pas/writable/memories entry a region"
            )
        self.pta = pta
        self.da = [int(x) for x in das]
        self.rsize = [int(x) for x in sizes]
        self.pa = [int(x) for x in pas]
        self.writable = [bool(w) for w in writable]
        self.memories = [np.asarray(m) for m in memories]
        for k, arr in enumerate(self.memories):
            if arr.shape[0] != self.rsize[k]:
                raise ValueError(
                    f"PtaLane: region {k} is {arr.shape[0]} bytes, "
                    f"size says {self.rsize[k]}"
                )
        self.rproc_id = int(rproc_id)
        self.id_known = bool(id_known)
        self.fill_nonzero = bool(fill_nonzero)
        self._log: list[tuple[int, int, int, int, float]] = []
        self.calls = 0
        del capacity  # the list grows as needed

    @property
    def count(self) -> int:
        """Write-log entries not yet taken."""
        return len(self._log)

    def commit(self) -> None:
        """Hand the writes made since the last call to the PTA's log."""
        self.pta.absorb_lane_log(self)

    def take_log(self) -> tuple[npt.NDArray[Any], ...]:
        """The writes logged since the last call, in order (see native)."""
        rows = self._log
        self._log = []
        return (
            np.array([r[0] for r in rows], np.uint8),
            np.array([r[1] for r in rows], np.uint64),
            np.array([r[2] for r in rows], np.uint64),
            np.array([r[3] for r in rows], np.uint64),
            np.array([r[4] for r in rows], np.float64),
        )

    def _region(self, da: int, n: int) -> int:
        if n == 0:
            return -1
        for k, (base, size) in enumerate(zip(self.da, self.rsize, strict=True)):
            if da >= base and n <= size and da - base <= size - n:
                return k if self.writable[k] else -1
        return -1

    def _may_write(self, p: list[LaneParam]) -> bool:
        if self.pta.running:
            return False
        return self.id_known and p[0].a == self.rproc_id

    def invoke(self, cmd: int, ptypes: int, p: list[LaneParam]) -> int:
        """One TEE_InvokeTACommand to the PTA: core checks, then the command."""
        self.calls += 1
        for k in range(4):
            if (ptypes >> (4 * k)) & 0xF == PT_MEMREF_INPUT and (
                p[k].buffer is None or p[k].size > p[k].avail
            ):
                return LANE_DEFER
        if cmd == CMD_LOAD_SEGMENT_SHA256 and ptypes == PT_LOAD_SEGMENT:
            return self._load_segment(p)
        if cmd == CMD_SET_MEMORY and ptypes == PT_SET_MEMORY:
            return self._set_memory(p)
        return LANE_DEFER

    def _load_segment(self, p: list[LaneParam]) -> int:
        n = p[1].size
        da = p[2].b << 32 | p[2].a
        if p[3].size != 32 or not self._may_write(p):
            return LANE_DEFER
        k = self._region(da, n)
        if k < 0:
            return LANE_DEFER
        src, want = p[1].buffer, p[3].buffer
        assert src is not None and want is not None  # invoke checked
        off = da - self.da[k]
        t0 = time.perf_counter()
        stored = self.memories[k][off : off + n]
        stored[:] = np.frombuffer(src, np.uint8, n, p[1].offset)
        digest = hashlib.sha256(stored).digest()
        expected = bytes(want[p[3].offset : p[3].offset + 32])
        if not hmac.compare_digest(digest, expected):
            return LANE_DEFER
        elapsed = time.perf_counter() - t0
        self._log.append((OP_COPY, da, self.pa[k] + off, n, elapsed))
        return LANE_OK

    def _set_memory(self, p: list[LaneParam]) -> int:
        da, n, raw = p[1].a, p[2].a, p[3].a
        nonzero = raw != 0 if self.fill_nonzero else raw & 0xFF != 0
        if nonzero or not self._may_write(p):
            return LANE_DEFER
        k = self._region(da, n)
        if k < 0:
            return LANE_DEFER
        off = da - self.da[k]
        t0 = time.perf_counter()
        self.memories[k][off : off + n] = 0
        elapsed = time.perf_counter() - t0
        self._log.append((OP_ZERO, da, self.pa[k] + off, n, elapsed))
        return LANE_OK


def _segment_calls(
    lane: PtaLane,
    image: memoryview,
    src: int,
    da: int,
    filesz: int,
    memsz: int,
    digest: memoryview,
) -> tuple[int, bool]:
    """LOAD_SEGMENT_SHA256 then SET_MEMORY; (stage to resume at, loaded)."""
    loaded = False
    if filesz:
        params = [
            _value(lane.rproc_id),
            _memref(image, len(image), src, filesz),
            _value(da),
            _memref(digest, 32, 0, 32),
        ]
        if src > len(image) or lane.invoke(
            CMD_LOAD_SEGMENT_SHA256, PT_LOAD_SEGMENT, params
        ):
            return STAGE_SEGMENT, loaded
        loaded = True
    if filesz < memsz:
        fill = [_value(lane.rproc_id), _value(da + filesz), _value(memsz - filesz),
                _value(0)]  # fmt: skip
        if lane.invoke(CMD_SET_MEMORY, PT_SET_MEMORY, fill):
            return STAGE_FILL, loaded
    return STAGE_DONE, loaded


def _u8(buf: Buffer) -> memoryview:
    return memoryview(buf).cast("B")


def _first_entry(keys: Sequence[int], first: Sequence[int], paddr: int) -> int:
    at = bisect.bisect_left(keys, paddr)
    if at < len(keys) and keys[at] == paddr:
        return int(first[at])
    return -1


def optee_segment_loop(
    lane: PtaLane,
    image: Buffer,
    addr: int,
    base: int,
    size: int,
    table: int,
    start: int,
    hashes: Buffer,
    keys: Buffer,
    first: Buffer,
    img_off: int,
    img_end: int,
) -> tuple[int, int, int, int, int, int]:
    """Upstream's program-header loop of one image (see the native docs)."""
    view, hv = _u8(image), _u8(hashes)
    key_list = [int(k) for k in np.asarray(keys)]
    first_list = [int(f) for f in np.asarray(first)]
    n, i, copies = len(view), start, 0
    if base < 0 or table < 0 or start < 0 or len(hv) % 64:
        return start, STAGE_SEGMENT, 0, 0, 0, 0
    fw = addr + base
    while True:
        if base + 46 > n:
            break
        if i >= view[base + 44] | view[base + 45] << 8:
            return i, STAGE_DONE, 0, 0, 0, copies
        entry = addr + table + 32 * i
        off = table + 32 * i
        if not (fw <= entry and entry + 31 < fw + size) or off + 32 > n:
            break
        p_type, p_offset, _v, p_paddr, p_filesz, p_memsz, _f, _a = _PHDR.unpack_from(
            view, off
        )
        if p_type != PT_LOAD:
            i += 1
            continue
        if p_offset >= size or p_offset + p_filesz > size:
            break
        k = _first_entry(key_list, first_list, p_paddr)
        if k < 0 or (k + 1) * 64 > len(hv):
            break
        e_type, _o, _v2, _p, e_filesz, e_memsz, _f2, _a2 = _PHDR.unpack_from(hv, 64 * k)
        if e_type != PT_LOAD or e_filesz != p_filesz or e_memsz != p_memsz:
            break
        src = base + p_offset
        if src < img_off or src > img_end or src + p_filesz > img_end:
            break
        digest = hv[64 * k + 32 : 64 * k + 64]
        stage, loaded = _segment_calls(
            lane, view, src, p_paddr, p_filesz, p_memsz, digest
        )
        copies += loaded
        if stage != STAGE_DONE:
            return i, stage, p_paddr, p_filesz, p_memsz, copies
        i += 1
    return i, STAGE_SEGMENT, 0, 0, 0, copies


def planned_segment_loop(
    lane: PtaLane, image: Buffer, records: Buffer, start: int
) -> tuple[int, int, int]:
    """The strict TA's calls for its planned segments (see the native docs)."""
    view, rv = _u8(image), _u8(records)
    if len(rv) % 64 or start < 0:
        return start, STAGE_SEGMENT, 0
    count, k, copies = len(rv) // 64, start, 0
    while k < count:
        src, da, filesz, memsz, _d = _RECORD.unpack_from(rv, 64 * k)
        if filesz > memsz or da > U32 or memsz > U32:
            return k, STAGE_SEGMENT, copies
        digest = rv[64 * k + 32 : 64 * k + 64]
        stage, loaded = _segment_calls(lane, view, src, da, filesz, memsz, digest)
        copies += loaded
        if stage != STAGE_DONE:
            return k, stage, copies
        k += 1
    return k, STAGE_DONE, copies
