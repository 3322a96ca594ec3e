"""LOAD_FW of the remoteproc TA, step by step (spec 2.5-2.7).

``optee`` follows upstream literally: checks, writes and result codes come in
the same order, so the same code wins. ``strict`` runs the same steps with
the checklist's extra checks, builds a complete plan (every range, region,
overlap and the resource table) before the first write, and has the platform
wipe the processor's memories if anything fails after a write.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rproctee import kernels
from rproctee.elf import Phdr
from rproctee.tee.params import Memref, Param, ParamType, Value, param_types
from rproctee.tee.policy import Policy
from rproctee.tee.pta_stm32mp import (
    BATCH_RECORD,
    HWCAP_FMT_ELF,
    HWCAP_PROT_HASH_TABLE,
    TEE_ALG_ECDSA_P256,
    TEE_ALG_RSASSA_PKCS1_V1_5_SHA256,
    PtaCommand,
)
from rproctee.tee.results import TeeError, TeeResult
from rproctee.tee.ta_elf import (
    PT_LOAD,
    SharedReader,
    check_ehdr,
    check_segment_range,
    find_rsc_table,
    phdr_table_start,
    read_phdr,
)
from rproctee.tee.ta_tlv import (
    HDR_SIZE,
    MAGIC,
    U32,
    VERSION,
    Tlv,
    add32,
    get_tlv,
    header_words,
    r8_32,
    walk_tlvs,
)

if TYPE_CHECKING:
    from rproctee.tee.ta_remoteproc import LoadReport, RemoteprocTa, RprocContext

VI, VO, MI = ParamType.VALUE_INPUT, ParamType.VALUE_OUTPUT, ParamType.MEMREF_INPUT
ENTRY_SIZE = 64
E_PHNUM_OFFSET = 44  # Elf32_Ehdr.e_phnum
ALGOS = {1: TEE_ALG_RSASSA_PKCS1_V1_5_SHA256, 2: TEE_ALG_ECDSA_P256}
#: Mean bytes per segment under which a strict load makes the compiled
#: per-segment calls rather than one LOAD_SEGMENTS_SHA256 (whose per-record
#: checks run in Python, ~25 us each).
BATCH_MIN_MEAN = 256 << 10
#: Mean bytes per segment from which a strict load's compiled calls run on
#: several worker threads (their copies release the GIL from 64 KiB).
PARALLEL_MIN_MEAN = 64 << 10
#: Image bytes from which a strict load's copies are spread over worker
#: threads: below it, starting them costs more than they save.
PARALLEL_MIN_TOTAL = 8 << 20
#: Answers of LOAD_SEGMENTS_SHA256 that mean "nothing written, not here".
_BATCH_REFUSED = (
    TeeResult.TEE_ERROR_NOT_SUPPORTED,
    TeeResult.TEE_ERROR_NOT_IMPLEMENTED,
)


@dataclass(frozen=True)
class HashEntry:
    """One 64-byte hash-table record: a program header and its SHA-256."""

    phdr: Phdr
    digest: bytes


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD the strict plan will load."""

    image: int
    index: int
    phdr: Phdr
    src: int  # memref offset of the file bytes
    digest: bytes


def _err(code: TeeResult, reason: str) -> TeeError:
    return TeeError(code, reason)


def _bad(reason: str) -> TeeError:
    return TeeError(TeeResult.TEE_ERROR_BAD_PARAMETERS, reason)


class FirmwareLoad:
    """One LOAD_FW on one context (the TA's locals, made explicit)."""

    def __init__(self, ta: RemoteprocTa, ctx: RprocContext, image: Memref) -> None:
        from rproctee.tee.ta_remoteproc import LoadReport

        self.ta = ta
        self.ctx = ctx
        self.strict = ta.policy is Policy.STRICT
        self.r = SharedReader(image.view(), image.addr)
        self.n = image.length & U32
        self.heap = ta.env.heap
        self.tokens: list[int] = []
        self.copy = b""
        self.hdr = (0, 0, 0, 0, 0)
        #: the TA's private copy of the hash table (64-byte entries)
        self.hash_raw = b""
        self._table: list[HashEntry] | None = None
        self._first_entry: dict[int, int] | None = None
        self.report: LoadReport = LoadReport(ctx.rproc_id)
        self.wrote = False
        self.copies = 0
        #: (what, bytes, seconds) of the costs the phases do not show apart,
        #: kept with the report (read back by load_profile)
        self.marks = self.report.profile_marks

    def phase(self, name: str, **info: Any) -> None:
        """Tell the TA's ``on_phase`` hook where the load is (module docs)."""
        hook = self.ta.on_phase
        if hook is not None:
            hook(name, {"rproc_id": self.ctx.rproc_id, "policy": self.ta.policy.value,
                        **info})  # fmt: skip

    # -- driver -----------------------------------------------------------
    def run(self) -> None:
        """All steps; the report goes to ``ta.last_load`` whatever happens."""
        self.ta.last_load = self.report
        steps: list[tuple[str, Callable[[], None]]] = [
            ("capabilities", self.capabilities),
            ("header", self.save_header),
            ("signature", self.verify_signature),
        ]
        marks = {"header": "header_copied", "signature": "authenticated"}
        steps += (
            [("plan", self.plan), ("load", self.execute)]
            if self.strict
            else [("load", self.load_elf)]
        )
        try:
            for name, step in steps:
                self._timed(name, step)
                if name in marks:
                    self.phase(marks[name])
        except TeeError as exc:
            self.report.result, self.report.reason = exc.result, exc.reason
            raise
        except Exception:
            # the TA is about to die (the core answers TARGET_DEAD); under
            # strict it wipes what it wrote first, so no bytes stay behind
            if self.strict and self.wrote:
                self.scrub(TeeError(TeeResult.TEE_ERROR_TARGET_DEAD, "TA fault"))
            raise
        finally:
            for token in self.tokens:
                self.heap.free(token)
            self.report.heap_peak = self.heap.peak

    def _timed(self, name: str, step: Callable[[], None]) -> None:
        t0 = time.perf_counter()
        try:
            step()
        finally:
            self.report.phases.append((name, time.perf_counter() - t0))

    def _alloc(self, nbytes: int, what: str) -> None:
        self.tokens.append(self.heap.alloc(nbytes, what))

    def _free_last(self) -> None:
        self.heap.free(self.tokens.pop())

    def _id(self) -> Value:
        return Value(self.ctx.rproc_id, 0, VI)

    # -- step 4: platform capabilities ---------------------------------------
    def capabilities(self) -> None:
        """HW_CAPABILITIES; the format must be ELF with hash-table protection."""
        fmt, prot = Value(kind=VO), Value(kind=VO)
        params: list[Param] = [self._id(), fmt, prot, None]
        self.ta.pta(PtaCommand.HW_CAPABILITIES, param_types(VI, VO, VO), params)
        if fmt.a != HWCAP_FMT_ELF or not prot.a & HWCAP_PROT_HASH_TABLE:
            raise _err(
                TeeResult.TEE_ERROR_NOT_IMPLEMENTED,
                f"platform capabilities format {fmt.a:#x} / protection {prot.a:#x}:"
                " only ELF with a hash table is implemented",
            )

    # -- steps 5-6: private copy of header, TLVs and signature -----------------
    def save_header(self) -> None:
        """Size checks, private copy, then magic/version/total size."""
        if self.r.addr % 4:
            raise _bad(f"image buffer address {self.r.addr:#x} not 4-byte aligned")
        if self.strict and self.n < HDR_SIZE:
            raise _bad(f"image is {self.n} bytes, shorter than the 20-byte header")
        # upstream reads the header before knowing the buffer holds it (W8)
        _m, _v, tlv_len, sign_len, img_len = header_words(self.r.read(0, HDR_SIZE))
        if self.strict:
            self._no_round_wrap(tlv_len=tlv_len, sign_len=sign_len, img_len=img_len)
        length = add32(HDR_SIZE, r8_32(tlv_len), r8_32(sign_len))
        if length is None:
            raise _bad(
                f"20 + r8(tlv_len {tlv_len:#x}) + r8(sign_len {sign_len:#x})"
                " overflows 32 bits"
            )
        self._check_header_sizes(length, tlv_len, sign_len)
        self._alloc(length, "copy of header, TLVs and signature")
        self.copy = self.r.read(0, length)
        self.hdr = header_words(self.copy[:HDR_SIZE])
        self._verify_header()

    def _no_round_wrap(self, **fields: int) -> None:
        for name, value in fields.items():
            if value > U32 - 7:
                raise _bad(f"{name} = {value:#x}: rounding up to 8 wraps 32 bits (W1)")

    def _check_header_sizes(self, length: int, tlv_len: int, sign_len: int) -> None:
        if self.n <= length:
            raise _bad(
                f"image size {self.n:#x} <= header+TLVs+signature size {length:#x}"
            )
        if not sign_len:
            raise _bad("sign_len = 0")
        if not tlv_len:
            raise _bad("tlv_len = 0")

    def _verify_header(self) -> None:
        magic, version, tlv_len, sign_len, img_len = self.hdr
        if magic != MAGIC:
            raise _bad(f"magic = {magic:#010x}, expected {MAGIC:#010x}")
        if version != VERSION:
            raise _bad(f"version = {version}, expected {VERSION}")
        total = add32(HDR_SIZE, r8_32(sign_len), r8_32(img_len), r8_32(tlv_len))
        if total != self.n:
            shown = "overflows 32 bits" if total is None else f"= {total:#x}"
            raise _bad(
                f"20 + r8(tlv_len) + r8(sign_len) + r8(img_len {img_len:#x}) "
                f"{shown}, image size is {self.n:#x}"
            )

    # -- step 7: signature ---------------------------------------------------------
    @property
    def tlvs(self) -> bytes:
        """The TLV area of the private copy (``r8(tlv_len)`` bytes)."""
        return self.copy[HDR_SIZE : HDR_SIZE + r8_32(self.hdr[2])]

    def tlv(self, kind: Tlv) -> bytes | None:
        """First TLV of ``kind`` (None when absent or empty)."""
        return get_tlv(self.tlvs, self.hdr[2], kind)

    def verify_signature(self) -> None:
        """SIGNTYPE, digest of header + TLVs, PTA VERIFY_DIGEST."""
        if self.strict:
            self._strict_tlv_area()
        sign_type = self.tlv(Tlv.SIGNTYPE)
        if sign_type is None or len(sign_type) != 1:
            shown = "missing or empty" if sign_type is None else f"{len(sign_type)}"
            raise _bad(f"SIGNTYPE TLV length {shown}, expected 1")
        if sign_type[0] not in ALGOS:
            raise _err(
                TeeResult.TEE_ERROR_NOT_SUPPORTED,
                f"SIGNTYPE = {sign_type[0]}, expected 1 (RSA) or 2 (ECDSA)",
            )
        self._alloc(32, "digest")
        digest = hashlib.sha256(self.copy[:HDR_SIZE] + self.tlvs).digest()
        info = self.tlv(Tlv.PKEYINFO) or b""
        self._alloc(8 + len(info), "key-info block")
        self._pta_verify(ALGOS[sign_type[0]], info, digest)
        self._free_last()
        self._free_last()

    def _pta_verify(self, algo: int, info: bytes, digest: bytes) -> None:
        block = algo.to_bytes(4, "little") + len(info).to_bytes(4, "little") + info
        sig_off = HDR_SIZE + r8_32(self.hdr[2])
        # memref of sign_len bytes over the heap copy; a size the copy cannot
        # hold (sign_len 0xFFFFFFFF, W1) is refused by the core: TA panic
        signature = Memref(self.copy, self.hdr[3], sig_off, MI, addr=0x100000)
        params: list[Param] = [
            self._id(),
            Memref(block, kind=MI, addr=0x100000),
            Memref(digest, kind=MI, addr=0x100000),
            signature,
        ]
        self.ta.pta(PtaCommand.VERIFY_DIGEST, param_types(VI, MI, MI, MI), params)

    def _strict_tlv_area(self) -> None:
        seen: set[int] = set()
        for off, kind, _value in walk_tlvs(self.tlvs, self.hdr[2]):
            known = kind in Tlv.__members__.values()
            if kind < 0x10000 and not known:
                raise _bad(f"TLV at {off:#x}: unknown generic type {kind:#x}")
            if kind >= 0x20000:
                raise _bad(f"TLV at {off:#x}: type {kind:#x} outside 0x0-0x1ffff")
            if known and kind in seen:
                raise _bad(f"TLV at {off:#x}: {Tlv(kind).name} duplicated")
            seen.add(kind)

    # -- steps 9-12 (optee): load as we go -----------------------------------------
    @property
    def img_off(self) -> int:
        """Memref offset of the first image."""
        return HDR_SIZE + r8_32(self.hdr[2]) + r8_32(self.hdr[3])

    def load_elf(self) -> None:
        """Upstream ``remoteproc_load_elf``: check, load, find the table."""
        check_ehdr(self.r, self.img_off, self.hdr[4])
        self.phase("ehdr_checked", image=0)
        self.get_hash_table()
        num = self.num_img()
        self.ctx.rsc_pa = self.ctx.rsc_size = 0
        offset = 0
        for i in range(num):
            self.img_type(num, i)
            size = self.img_size(num, i)
            base = self.img_off + _s32(offset)
            self.load_image(i, base, size)
            self.phase("rsc_lookup_before", image=i)
            self.store_rsc(self.rsc_table(base, size))
            offset = (offset + size) & U32

    def get_hash_table(self) -> None:
        """HASHTABLE: NO_DATA / BAD_PARAMETERS / heap copy."""
        raw = self.tlv(Tlv.HASHTABLE)
        if raw is None:
            raise _err(TeeResult.TEE_ERROR_NO_DATA, "HASHTABLE TLV missing or empty")
        if len(raw) % ENTRY_SIZE:
            raise _bad(f"HASHTABLE length {len(raw)} is not a multiple of 64")
        self._alloc(len(raw), "hash table copy")
        self.hash_raw = raw
        self._table = self._first_entry = None

    @property
    def table(self) -> list[HashEntry]:
        """The hash table's entries (decoded once, when first asked for)."""
        if self._table is None:
            raw = self.hash_raw
            self._table = [
                HashEntry(Phdr.unpack(raw[k : k + 32]), raw[k + 32 : k + 64])
                for k in range(0, len(raw), ENTRY_SIZE)
            ]
        return self._table

    @property
    def first_entry(self) -> dict[int, int]:
        """Index of the first hash entry of each p_paddr (see segment_hash)."""
        if self._first_entry is None:
            self._first_entry = {}
            for k, entry in enumerate(self.table):
                self._first_entry.setdefault(entry.phdr.p_paddr, k)
        return self._first_entry

    def first_entry_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The same index as sorted arrays: distinct p_paddr, first entry."""
        words = np.frombuffer(self.hash_raw, dtype="<u4").reshape(-1, 16)
        keys, first = np.unique(words[:, 3], return_index=True)
        return keys.astype(np.uint32), first.astype(np.int64)

    def num_img(self) -> int:
        """NUM_IMG: NO_DATA / BAD_FORMAT / NO_DATA for 0."""
        raw = self.tlv(Tlv.NUM_IMG)
        if raw is None:
            raise _err(TeeResult.TEE_ERROR_NO_DATA, "NUM_IMG TLV missing or empty")
        if len(raw) != 1:
            raise _err(
                TeeResult.TEE_ERROR_BAD_FORMAT,
                f"NUM_IMG TLV length {len(raw)}, expected 1",
            )
        if raw[0] == 0:
            raise _err(TeeResult.TEE_ERROR_NO_DATA, "NUM_IMG = 0")
        return raw[0]

    def img_type(self, num: int, i: int) -> None:
        """IMGTYPE entry ``i`` must be 1 (ELF)."""
        raw = self.tlv(Tlv.IMGTYPE)
        if raw is None:
            raise _err(TeeResult.TEE_ERROR_NO_DATA, "IMGTYPE TLV missing or empty")
        if len(raw) != num:
            raise _bad(f"IMGTYPE TLV length {len(raw)}, expected NUM_IMG = {num}")
        if raw[i] != 1:
            raise _err(
                TeeResult.TEE_ERROR_BAD_FORMAT,
                f"IMGTYPE[{i}] = {raw[i]}, expected 1 (ELF)",
            )

    def img_size(self, num: int, i: int) -> int:
        """IMGSIZE entry ``i``."""
        raw = self.tlv(Tlv.IMGSIZE)
        if raw is None:
            raise _err(TeeResult.TEE_ERROR_NO_DATA, "IMGSIZE TLV missing or empty")
        if len(raw) != 4 * num:
            raise _bad(f"IMGSIZE TLV length {len(raw)}, expected 4 x {num}")
        return int.from_bytes(raw[4 * i : 4 * i + 4], "little")

    def load_image(self, image: int, base: int, size: int) -> None:
        """Spec 2.6 for one image: every PT_LOAD, in program-header order."""
        _ehdr, table = phdr_table_start(self.r, base, size)
        start, done = self._compiled_phdr_loop(base, size, table)
        if done:
            return
        i = start - 1
        # Upstream's loop condition reads e_phnum from the shared buffer on
        # every pass (the table address is taken once): the caller can end the
        # loop early and drop signed segments (W2, by TOCTOU).
        while (i := i + 1) < self.r.u16(base + E_PHNUM_OFFSET):
            ph = read_phdr(self.r, base, size, table, i)
            if ph.p_type != PT_LOAD:
                continue
            check_segment_range(i, ph, size)
            digest = self.segment_hash(base + ph.p_offset, ph)
            self.phdr_checked(image, i, ph)
            self.load_segment(base + ph.p_offset, ph, digest)

    def phdr_checked(self, image: int, index: int, ph: Phdr) -> None:
        """The ``phdr_checked`` phase of one program header."""
        self.phase(
            "phdr_checked", image=image, index=index, p_paddr=ph.p_paddr,
            p_filesz=ph.p_filesz, p_memsz=ph.p_memsz,
        )  # fmt: skip

    def segment_hash(self, src: int, ph: Phdr) -> bytes:
        """First hash entry with this p_paddr, checked (``get_segment_hash``).

        Upstream scans the table from the start for every program header;
        the same first match comes from an index built once with the table,
        so thousands of program headers cost linear, not quadratic, time
        (checklist 5.8).
        """
        k = self.first_entry.get(ph.p_paddr)
        if k is None:
            raise _err(
                TeeResult.TEE_ERROR_NO_DATA,
                f"no hash-table entry with p_paddr {ph.p_paddr:#x}",
            )
        entry = self.table[k]
        e = entry.phdr
        if e.p_type != PT_LOAD:
            raise _bad(
                f"hash entry {k} for p_paddr {ph.p_paddr:#x}: p_type "
                f"{e.p_type:#x} is not PT_LOAD"
            )
        if e.p_filesz != ph.p_filesz or e.p_memsz != ph.p_memsz:
            raise _bad(
                f"p_paddr {ph.p_paddr:#x}: p_filesz/p_memsz {ph.p_filesz:#x}/"
                f"{ph.p_memsz:#x} != signed {e.p_filesz:#x}/{e.p_memsz:#x}"
            )
        end = self.img_off + self.hdr[4]
        if src < self.img_off or src > end or src + e.p_filesz > end:
            raise _bad(f"segment p_paddr {ph.p_paddr:#x}: source outside images")
        return entry.digest

    # -- the per-segment calls at C speed ------------------------------------
    def _lane(self) -> Any | None:
        """The PTA's compiled segment calls (``TaEnv.segment_lane``), when
        nothing watches the load's phases (a hook sees every call, and may
        act between two of them: those loads make each call in Python)."""
        if self._phases_watched() or self.ta.pta_session is None:
            return None
        return self.ta.env.segment_lane(self.ta.pta_session, self.ctx.rproc_id)

    def _compiled_phdr_loop(self, base: int, size: int, table: int) -> tuple[int, bool]:
        """optee: upstream's program-header loop of one image, compiled
        (:func:`rproctee.kernels.optee_segment_loop`), one LOAD_SEGMENT_SHA256
        and SET_MEMORY call per segment as the Python loop makes them.

        Returns
        -------
        (int, bool)
            The program header the Python loop resumes at, and whether the
            image is done. The loop stops at the first check or call that
            would not succeed; the Python loop then answers it exactly.
        """
        lane = self._lane()
        if lane is None:
            return 0, False
        keys, first = self.first_entry_arrays()
        end = self.img_off + self.hdr[4]
        i, stage, paddr, filesz, memsz, copies = kernels.optee_segment_loop(
            lane, self.r.view, self.r.addr, base, size, table, 0,
            self.hash_raw, keys, first, self.img_off, end,
        )  # fmt: skip
        self._absorb(lane, copies)
        if stage == kernels.STAGE_DONE:
            return i, True
        return self._resume_at(i, stage, (paddr, filesz, memsz)), False

    def _compiled_planned_calls(self, records: bytes, lane: Any | None) -> int:
        """strict: the planned segments' calls, compiled, on ``lane`` (None:
        none offered, 0); the index of the first record the Python loop must
        still load (``len`` when none).

        With worker threads (``TeeCore.threads``) and segments big enough
        to release the GIL while they are copied, the records are cut into
        one contiguous run per worker, each run making its calls on its own
        lane; see :meth:`_parallel_planned_calls`.
        """
        if lane is None:
            return 0
        runs = self._runs(records)
        if len(runs) > 1:
            return self._parallel_planned_calls(records, runs, lane)
        k, stage, copies = kernels.planned_segment_loop(lane, self.r.view, records, 0)
        self._absorb(lane, copies)
        return self._resume_at(int(k), int(stage), _record_tail(records, int(k)))

    def _resume_at(self, k: int, stage: int, tail: tuple[int, int, int]) -> int:
        """Where the Python loop resumes after the compiled calls stopped at
        segment ``k`` (``len`` when they all ran): when its file bytes are
        loaded, its zero-fill (``tail``: da, filesz, memsz) is made here and
        the loop goes on with the next one."""
        if stage != kernels.STAGE_FILL:
            return k
        self.fill_tail(*tail)
        return k + 1

    def _runs(self, records: bytes) -> list[tuple[int, int]]:
        """Contiguous runs of records of about equal bytes, one a worker, or
        one run when threads would not help (one worker, few records, or
        segments too small for their copies to leave the GIL)."""
        rows = np.frombuffer(records, dtype="<u8").reshape(-1, 8)
        count, workers = len(rows), min(self.ta.env.threads, len(rows))
        filesz = rows[:, 2]
        total = int(filesz.sum())
        small = total < PARALLEL_MIN_TOTAL or total < PARALLEL_MIN_MEAN * count
        if workers < 2 or small:
            return [(0, count)]
        ends = np.cumsum(filesz, dtype=np.float64)
        cuts = np.searchsorted(ends, ends[-1] * np.arange(1, workers) / workers)
        bounds = [0, *sorted({int(c) + 1 for c in cuts if 0 < c + 1 < count}), count]
        return list(zip(bounds[:-1], bounds[1:], strict=True))

    def _parallel_planned_calls(
        self, records: bytes, runs: list[tuple[int, int]], first_lane: Any
    ) -> int:
        """Each run's calls on its own lane and thread; logs taken in record
        order, as one thread would have made them.

        When a run stops early, the runs after it are not logged: the Python
        loop resumes at the stop and makes those calls again (the same bytes
        land again, and are logged then), and a failure there wipes every
        region, so memory and log end as after one thread's calls.
        """
        from concurrent.futures import ThreadPoolExecutor

        lanes = [first_lane] + [self._lane() for _ in runs[1:]]
        view = self.r.view

        def run(job: tuple[Any, tuple[int, int]]) -> tuple[int, int, int]:
            lane, (a, b) = job
            k, stage, copies = kernels.planned_segment_loop(
                lane, view, records[64 * a : 64 * b], 0
            )
            return int(k) + a, int(stage), int(copies)

        with ThreadPoolExecutor(len(runs)) as pool:
            results = list(pool.map(run, zip(lanes, runs, strict=True)))
        for lane, (k, stage, copies) in zip(lanes, results, strict=True):
            self._absorb(lane, copies)
            if stage != kernels.STAGE_DONE:
                for later in lanes[lanes.index(lane) + 1 :]:
                    later.take_log()  # made again by the Python loop
                return self._resume_at(k, stage, _record_tail(records, k))
        return len(records) // 64

    def _absorb(self, lane: Any, copies: int) -> None:
        if lane.count:
            self.wrote = True
        self.copies += copies
        lane.commit()  # its writes join the platform's log, in order

    def load_segment(self, src: int, ph: Phdr, digest: bytes) -> None:
        """PTA LOAD_SEGMENT_SHA256, then SET_MEMORY for the memsz tail."""
        if ph.p_filesz:
            data = Memref(self.r.view, ph.p_filesz, src, MI, addr=self.r.addr + src)
            params: list[Param] = [
                self._id(),
                data,
                Value(ph.p_paddr, 0, VI),
                Memref(digest, kind=MI, addr=0x100000),
            ]
            info = {"copy": self.copies, "da": ph.p_paddr, "size": ph.p_filesz,
                    "src": src}  # fmt: skip
            self.copies += 1
            self.phase("segment_copy_before", **info)
            self.wrote = True
            try:
                self.ta.pta(
                    PtaCommand.LOAD_SEGMENT_SHA256, param_types(VI, MI, VI, MI), params
                )
            finally:
                # whatever the platform answered: the caller's buffer was read
                self.phase("segment_copy_after", **info)
        if ph.p_filesz < ph.p_memsz:
            self.fill_tail(ph.p_paddr, ph.p_filesz, ph.p_memsz)

    def fill_tail(self, paddr: int, filesz: int, memsz: int) -> None:
        """PTA SET_MEMORY 0 over a segment's ``[filesz, memsz)`` tail."""
        fill: list[Param] = [
            self._id(),
            Value((paddr + filesz) & U32, 0, VI),
            Value(memsz - filesz, 0, VI),
            Value(0, 0, VI),
        ]
        self.wrote = True
        self.ta.pta(PtaCommand.SET_MEMORY, param_types(VI, VI, VI, VI), fill)

    def rsc_table(self, base: int, size: int) -> tuple[int, int] | None:
        """Spec 2.7: locate, check and translate; None when there is none."""
        try:
            s = find_rsc_table(self.r, base, size)
        except TeeError as exc:
            if exc.result == TeeResult.TEE_ERROR_NO_DATA:
                return None
            raise
        return self.translate_rsc(s.sh_addr, s.sh_size), s.sh_size

    def da_to_pa(
        self, da: int, size: int, what: str = "resource table", *, write: bool = False
    ) -> int:
        """PTA DA_TO_PA for ``what``; any failure is ACCESS_DENIED.

        ``write=True`` (strict plan only) asks the platform for a range the
        loader will write, which a read-only region also refuses.
        """
        out = Value(kind=VO)
        params: list[Param] = [self._id(), Value(da, 0, VI), Value(size, 0, VI), out]
        cmd = PtaCommand.DA_TO_PA_WRITABLE if write else PtaCommand.FIRMWARE_DA_TO_PA
        try:
            self.ta.pta(cmd, param_types(VI, VI, VI, VO), params)
        except TeeError as exc:
            raise _err(
                TeeResult.TEE_ERROR_ACCESS_DENIED,
                f"{what} da {da:#x} (+{size:#x}): {exc.reason}",
            ) from exc
        return out.b << 32 | out.a

    def translate_rsc(self, da: int, size: int) -> int:
        """The resource table's PA; a failure or PA 0 is ACCESS_DENIED."""
        pa = self.da_to_pa(da, size)
        if not pa:
            raise _err(
                TeeResult.TEE_ERROR_ACCESS_DENIED,
                f"resource table da {da:#x} translates to PA 0",
            )
        return pa

    def store_rsc(self, found: tuple[int, int] | None) -> None:
        """Keep the table; a second one (another image) is BAD_FORMAT."""
        if found is None:
            return
        if self.ctx.rsc_pa or self.ctx.rsc_size:
            raise _err(
                TeeResult.TEE_ERROR_BAD_FORMAT,
                "more than one image has a resource table",
            )
        self.ctx.rsc_pa, self.ctx.rsc_size = found

    # -- strict: plan everything, then write ------------------------------------------
    def plan(self) -> None:
        """Strict: every check of every image before the first write."""
        from rproctee.tee.ta_strict import StrictPlan

        self.strict_plan = StrictPlan(self)
        self.strict_plan.build()

    def execute(self) -> None:
        """Strict: write the planned segments; on failure wipe the memories."""
        try:
            lane = self._lane()
            if not self._load_in_parallel(lane_offered=lane is not None):
                records = self.strict_plan.records.tobytes()
                start = self._compiled_planned_calls(records, lane)
                if start < len(records) // BATCH_RECORD.size:
                    for seg in self.strict_plan.segments[start:]:
                        self.load_segment(seg.src, seg.phdr, seg.digest)
            self._loaded_table_is_the_validated_one()
        except TeeError as exc:
            if self.wrote:
                self.scrub(exc)
            raise
        self.ctx.rsc_pa, self.ctx.rsc_size = self.strict_plan.rsc

    def _loaded_table_is_the_validated_one(self) -> None:
        """Strict: the resource table in device memory is the private copy
        the plan validated (PTA MEMORY_EQUALS), else SECURITY.

        The PTA hashed what landed against the signed digest, so the loaded
        table is signed; equal to the validated copy, it is also valid. The
        caller cannot show one table to the plan and load another (checklist
        5.6), and the segment holding it is hashed once, not twice.
        """
        copy = self.strict_plan.rsc_copy
        if copy is None:
            return
        da, table = copy
        equal = Value(kind=VO)
        params: list[Param] = [
            self._id(),
            Value(da & U32, da >> 32, VI),
            Memref(table, kind=MI, addr=0x100000),
            equal,
        ]
        self.ta.pta(PtaCommand.MEMORY_EQUALS, param_types(VI, VI, MI, VO), params)
        if not equal.a:
            raise _err(
                TeeResult.TEE_ERROR_SECURITY,
                f"resource table at da {da:#x}: the loaded bytes are not the "
                "copy validated before the load (the shared buffer changed "
                "between the checks and the copy)",
            )

    def _load_in_parallel(self, *, lane_offered: bool) -> bool:
        """Strict: every planned segment in one LOAD_SEGMENTS_SHA256 call.

        The platform copies and hashes the segments two at a time per core,
        on ``TeeCore.threads`` workers, and answers and logs exactly as the
        per-segment calls (``execute``'s loop) would, in plan order; a
        failure is wiped by ``execute`` as there. Not used when a phase hook
        is watching (``segment_copy_before/after`` come around each copy of
        the loop, and a hook may change the buffer between copies), with
        ``TeeCore.batch_segments`` off, or for fewer than two segments.
        False: nothing was written, make the per-segment calls.
        """
        plan = self.strict_plan.records
        loaded = int(np.count_nonzero(plan["filesz"]))
        total = int(plan["filesz"].sum())
        # starting workers costs more than a small image takes to hash
        threads = self.ta.env.threads if total >= PARALLEL_MIN_TOTAL else 1
        batch = self.ta.env.batch_segments
        if not batch or loaded < 2 or self._phases_watched():
            return False
        if total < BATCH_MIN_MEAN * loaded and lane_offered:
            # small segments: the batch's per-record work in Python costs
            # more than the compiled per-segment calls
            return False
        # the plan's rows are LOAD_SEGMENTS_SHA256 records (same layout)
        records = plan[plan["memsz"] != 0].tobytes()
        params: list[Param] = [
            self._id(),
            Memref(self.r.view, kind=MI, addr=self.r.addr),
            Memref(records, kind=MI, addr=0x100000),
            Value(threads, 0, VI),
        ]
        self.wrote = True
        try:
            self.ta.pta(
                PtaCommand.LOAD_SEGMENTS_SHA256, param_types(VI, MI, MI, VI), params
            )
        except TeeError as exc:
            if exc.result in _BATCH_REFUSED:
                self.wrote = False
                return False
            raise
        finally:
            self.copies += loaded
        return True

    def _phases_watched(self) -> bool:
        """Whether an ``on_phase`` hook may act on the load's phases.

        The world's forwarding hook says whether a hook is set on the world
        (``watching``); any other hook is taken to watch.
        """
        hook = self.ta.on_phase
        return hook is not None and bool(getattr(hook, "watching", True))

    def scrub(self, first: TeeError) -> None:
        """PTA RELEASE: zero every writable region (recorded as scrub).

        The caller reports ``first``, the error that stopped the load; a
        failing clean-up is added to its reason, never put in its place.
        """
        try:
            self.ta.pta(PtaCommand.RELEASE, param_types(VI), [self._id()])
        except TeeError as exc:
            first.reason += f" (clean-up failed too: {exc.reason})"
            return
        self.report.scrubbed = True


def load_profile(
    report: LoadReport | None,
    timings: Sequence[Any] = (),
    first_touch: Sequence[Any] = (),
) -> list[dict[str, Any]]:
    """Where the time of one LOAD_FW went, each cost with its bytes and GB/s.

    Parameters
    ----------
    report : LoadReport
        ``RemoteprocTa.last_load``.
    timings : sequence of SegmentTiming
        The PTA's timings of that load (``op`` ``copy``: copy+hash,
        ``zero``: zero-fill); with worker threads they overlap, so their sum
        can exceed the wall time of the ``load`` step.
    first_touch : sequence of FirstTouch
        Page faults taken during the load (lazy device memory).

    Returns
    -------
    list of dict
        ``{"what", "bytes", "seconds", "gb_per_s"}`` rows.
    """
    if report is None:
        return []
    rows: list[tuple[str, int, float]] = []
    steps = dict(report.phases)
    marks = report.profile_marks
    for name, nbytes, secs in marks:
        rows.append((name, nbytes, secs))
    for name in ("capabilities", "header", "signature"):
        if name in steps:
            label = {"header": "header copy", "signature": "signature check"}
            rows.append((label.get(name, name), 0, steps[name]))
    if "plan" in steps:
        inner = sum(s for n, _b, s in marks if n in _PLAN_MARKS)
        rows.append(("ELF parse and checks", 0, max(steps["plan"] - inner, 0.0)))
    kinds = (("first touch", None), ("copy+hash", "copy"), ("zero-fill", "zero"))
    for what, op in kinds:
        picked = [t for t in timings if t.op == op] if op else list(first_touch)
        if picked:
            total = sum(t.len for t in picked)
            rows.append((what, total, sum(t.seconds for t in picked)))
    if "load" in steps:
        rows.append(("load step (wall)", sum(t.len for t in timings), steps["load"]))
    return [
        {"what": w, "bytes": b, "seconds": s,
         "gb_per_s": (b / s / 1e9) if b and s > 0 else None}
        for w, b, s in rows
    ]  # fmt: skip


#: Marks the strict plan takes inside its own step.
_PLAN_MARKS = ("region checks", "resource table")


def _record_tail(records: bytes, k: int) -> tuple[int, int, int]:
    """(da, filesz, memsz) of LOAD_SEGMENTS_SHA256 record ``k`` (zeros past
    the end: nothing is pending there)."""
    if 64 * (k + 1) > len(records):
        return 0, 0, 0
    _src, da, filesz, memsz, _digest = BATCH_RECORD.unpack_from(records, 64 * k)
    return da, filesz, memsz


def _s32(x: int) -> int:
    """``int32_t`` view of a 32-bit value (upstream's image offset type)."""
    return x - (1 << 32) if x & 0x80000000 else x


__all__ = ["FirmwareLoad", "HashEntry", "Segment", "_s32", "load_profile"]
