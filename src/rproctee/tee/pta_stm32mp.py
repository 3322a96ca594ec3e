"""The stm32mp remoteproc pseudo TA (PTA): the platform side of the load.

Only this module writes device memory, and only through
:class:`~rproctee.platform.memory.DeviceMemory` (which records every write).
It answers the commands of spec 3.2 with upstream's checks in upstream's
order. ``policy`` only changes the two places where upstream is wrong in a
harmless way (the SET_MEMORY fill byte) and nothing else: the platform is the
same for both policies, the TA is what differs.
"""

from __future__ import annotations

import heapq
import hmac
import struct
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from rproctee import kernels
from rproctee._lazylog import LazyRecords, append_columns
from rproctee.errors import AddressError
from rproctee.platform.memory import DeviceMemory
from rproctee.tee.core import UUID
from rproctee.tee.coredump import build_elf_core, write_out
from rproctee.tee.params import Memref, Param, ParamType, Value, param_types
from rproctee.tee.policy import Policy
from rproctee.tee.results import TeeError, TeeResult

PTA_RPROC_UUID = UUID("54af4a68-19be-40d7-bbe6-8950350a8744")
TA_REMOTEPROC_UUID = UUID("80a4c275-0a47-4905-8285-1486a9771a08")

#: Algorithm ids carried in the key-info block (GlobalPlatform TEE_ALG_*).
TEE_ALG_RSASSA_PKCS1_V1_5_SHA256 = 0x70004830
TEE_ALG_ECDSA_P256 = 0x70003042

#: Capability bits returned by HW_CAPABILITIES.
HWCAP_FMT_ELF = 1 << 0
HWCAP_PROT_HASH_TABLE = 1 << 0

VI, VO = ParamType.VALUE_INPUT, ParamType.VALUE_OUTPUT
MI, MO = ParamType.MEMREF_INPUT, ParamType.MEMREF_OUTPUT
PT_ID_ONLY = param_types(VI)


class PtaCommand(IntEnum):
    """Commands of the remoteproc PTA (``remoteproc_pta.h``)."""

    #: [0] in a = id; [1] out a = format bits; [2] out a = protection bits.
    HW_CAPABILITIES = 1
    #: id + memref of a proprietary format; stm32mp: NOT_IMPLEMENTED.
    FIRMWARE_LOAD = 2
    #: [0] id; [1] memref in data; [2] in a/b = device address; [3] memref hash.
    LOAD_SEGMENT_SHA256 = 3
    #: [0] id; [1] a = device address; [2] a = size; [3] a = fill byte.
    SET_MEMORY = 4
    #: [0] id. Starts the core; platform state OFF -> ON.
    FIRMWARE_START = 5
    #: [0] id. Stops the core; platform state ON -> OFF.
    FIRMWARE_STOP = 6
    #: [0] id; [1] a = device address; [2] a = size; [3] out a/b = PA low/high.
    FIRMWARE_DA_TO_PA = 7
    #: [0] id; [1] memref key info; [2] memref digest; [3] memref signature.
    VERIFY_DIGEST = 8
    #: [0] id. Zeroes every memory region of the processor (every writable
    #: one: read-only regions of a profile are never loaded, so skipped).
    RELEASE = 9
    #: Model extension, strict platforms only (not upstream): [0] id;
    #: [1] memref out = ELF core of every region (Linux rproc_coredump
    #: layout); SHORT_BUFFER with the size needed when it does not fit.
    DUMP_MEMORY = 0x1000
    #: Model extension, strict platforms only (not upstream): [0] id;
    #: [1] a = device address; [2] a = size; [3] out a/b = PA low/high.
    #: DA_TO_PA for a range the loader will write: also ACCESS_DENIED when
    #: the range is in a read-only region, so the strict plan refuses such
    #: an image before its first write.
    DA_TO_PA_WRITABLE = 0x1001
    #: Model extension, strict platforms only (not upstream): [0] id;
    #: [1] memref in = the image (shared memory); [2] memref in = segment
    #: records (:data:`BATCH_RECORD`: memref offset, da, filesz, memsz,
    #: SHA-256); [3] a = worker threads. The same writes, log, answers and
    #: first error as LOAD_SEGMENT_SHA256 (when filesz) then SET_MEMORY 0
    #: (when memsz > filesz) for each record in order, the copies and hashes
    #: running on the worker threads. Any range the per-segment calls would
    #: refuse: NOT_SUPPORTED before any write (make those calls instead).
    LOAD_SEGMENTS_SHA256 = 0x1002
    #: Model extension, strict platforms only (not upstream): [0] id;
    #: [1] memref in = (da, size) u64 little-endian pairs; [2] out a = how
    #: many leading ranges DA_TO_PA_WRITABLE would accept, all checked in
    #: one pass (the strict plan's region checks of many segments).
    RANGES_WRITABLE = 0x1003
    #: Model extension, strict platforms only (not upstream): [0] id;
    #: [1] a/b = device address low/high; [2] memref in = expected bytes;
    #: [3] out a = 1 when device memory there holds exactly those bytes,
    #: else 0 (ACCESS_DENIED: the range is not inside one region). The
    #: strict TA checks that the resource table it loaded is the copy it
    #: validated, without hashing its segment a second time.
    MEMORY_EQUALS = 0x1004


#: Write-log operation names of the compiled calls' codes (taloop OP_*).
_OP_NAMES = np.array(["copy", "zero"], dtype=object)

#: One record of LOAD_SEGMENTS_SHA256: memref offset, da, filesz, memsz
#: (u64 little-endian each), then the segment's signed SHA-256.
BATCH_RECORD = struct.Struct("<4Q32s")


class SegmentTiming(NamedTuple):
    """Time the platform spent on one device-memory operation (a named
    tuple: thousands are made per load of many small segments)."""

    op: str
    da: int
    len: int
    seconds: float


@dataclass(frozen=True)
class _BatchJob:
    """One LOAD_SEGMENTS_SHA256 record, its ranges already checked."""

    index: int  # region of the file bytes (-1: none)
    da: int
    src: memoryview
    expected: bytes
    tail_index: int  # region of the zero-filled tail (-1: none)
    tail_da: int
    tail: int


@dataclass
class _BatchResult:
    """What a worker did for one record."""

    digest: bytes | None = None
    copy_s: float = 0.0
    zero_s: float = 0.0
    error: Exception | None = None


def _balanced(jobs: list[_BatchJob], workers: int) -> list[list[tuple[int, _BatchJob]]]:
    """Records spread over at most ``workers`` groups of similar byte counts
    (largest first onto the lightest group); each keeps its record index.
    Inside a group records stay largest first, so the kernel's two lanes
    run messages of similar lengths side by side."""
    groups: list[list[tuple[int, _BatchJob]]] = [[] for _ in range(workers)]
    heap = [(0, g) for g in range(workers)]
    for k in sorted(range(len(jobs)), key=lambda k: -(len(jobs[k].src) + jobs[k].tail)):
        load, g = heapq.heappop(heap)
        groups[g].append((k, jobs[k]))
        heapq.heappush(heap, (load + len(jobs[k].src) + jobs[k].tail, g))
    return [g for g in groups if g] or [[]]


def _fail(result: TeeResult, reason: str) -> TeeError:
    return TeeError(result, reason)


def _value(params: list[Param], i: int) -> Value:
    p = params[i]
    return p if isinstance(p, Value) else Value()


def _memref(params: list[Param], i: int) -> Memref:
    p = params[i]
    return p if isinstance(p, Memref) else Memref()


def _check_types(cmd: PtaCommand, ptypes: int, expected: int) -> None:
    if ptypes != expected:
        raise _fail(
            TeeResult.TEE_ERROR_BAD_PARAMETERS,
            f"PTA {cmd.name}: parameter types {ptypes:#06x}, expected {expected:#06x}",
        )


PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
_Handler = Callable[[int, list[Param]], None]


class Stm32mpRemoteprocPta:
    """stm32mp remoteproc PTA over a device-memory model.

    Parameters
    ----------
    memory : DeviceMemory
        The processor's memory regions.
    processor_ids : tuple of int
        Ids a driver instance knows (stm32mp15: ``(0,)``).
    public_key : RSA or EC public key, optional
        The built-in verification key (``RPROC_SIGN_KEY``).
    accept_ecdsa : bool
        Accept ECDSA P-256 signatures (upstream stm32mp does not).
    policy : Policy
        ``optee`` keeps upstream's SET_MEMORY fill-byte bug (W9).
    """

    def __init__(
        self,
        memory: DeviceMemory,
        *,
        processor_ids: tuple[int, ...] = (0,),
        public_key: PublicKey | None = None,
        accept_ecdsa: bool = False,
        policy: Policy = Policy.STRICT,
    ) -> None:
        self.memory = memory
        self.processor_ids = tuple(processor_ids)
        self.public_key = public_key
        self.accept_ecdsa = accept_ecdsa
        self.policy = policy
        self.running = False  # the PTA's one global ON/OFF flag
        self.timings: list[SegmentTiming] = LazyRecords(SegmentTiming)
        self.events: list[str] = []
        self._handler_cache: tuple[Policy, dict[int, _Handler]] | None = None

    # -- entry points -----------------------------------------------------
    def open_session(
        self, ptypes: int, params: list[Param], caller: UUID | None
    ) -> object:
        """Accept only the remoteproc TA, with a known processor id."""
        if ptypes != PT_ID_ONLY:
            raise _fail(
                TeeResult.TEE_ERROR_BAD_PARAMETERS,
                f"PTA open session: parameter types {ptypes:#06x}, expected 0x0001",
            )
        if caller != TA_REMOTEPROC_UUID:
            raise _fail(
                TeeResult.TEE_ERROR_ACCESS_DENIED,
                f"PTA open session: caller {caller} is not the remoteproc TA",
            )
        self._known_id(_value(params, 0).a)
        return None

    def close_session(self, session: object) -> None:
        """Nothing to clean up per session."""

    def invoke_command(
        self, session: object, cmd: int, ptypes: int, params: list[Param]
    ) -> None:
        """Flat command switch; unknown commands: NOT_IMPLEMENTED."""
        handler = self._handlers().get(cmd)  # built once per policy
        if handler is None:
            raise _fail(
                TeeResult.TEE_ERROR_NOT_IMPLEMENTED,
                f"PTA: command {cmd:#x} not implemented",
            )
        handler(ptypes, params)

    def _handlers(self) -> dict[int, _Handler]:
        # the table depends only on the policy: build it once per policy,
        # not once per call (a load makes one call per segment)
        cached = self._handler_cache
        if cached is not None and cached[0] is self.policy:
            return cached[1]
        table = self._build_handlers()
        self._handler_cache = (self.policy, table)
        return table

    def _build_handlers(self) -> dict[int, _Handler]:
        return {
            PtaCommand.HW_CAPABILITIES: self._capabilities,
            PtaCommand.LOAD_SEGMENT_SHA256: self._load_segment,
            PtaCommand.SET_MEMORY: self._set_memory,
            PtaCommand.FIRMWARE_START: self._start,
            PtaCommand.FIRMWARE_STOP: self._stop,
            PtaCommand.FIRMWARE_DA_TO_PA: self._da_to_pa,
            PtaCommand.VERIFY_DIGEST: self._verify_digest,
            PtaCommand.RELEASE: self._release,
            **(
                {
                    PtaCommand.DUMP_MEMORY: self._dump,
                    PtaCommand.DA_TO_PA_WRITABLE: self._da_to_pa_writable,
                    PtaCommand.LOAD_SEGMENTS_SHA256: self._load_segments,
                    PtaCommand.RANGES_WRITABLE: self._ranges_writable,
                    PtaCommand.MEMORY_EQUALS: self._memory_equals,
                }
                if self.policy is Policy.STRICT
                else {}
            ),
        }

    # -- the compiled segment calls ---------------------------------------------
    def segment_lane(self, rproc_id: int) -> Any:
        """LOAD_SEGMENT_SHA256 and SET_MEMORY of this PTA, compiled, for one
        processor (:class:`rproctee.kernels.PtaLane`): same checks, writes
        and log as :meth:`invoke_command`, and it never answers an error
        itself (it leaves such a call to :meth:`invoke_command`).

        None with lazily faulted device memory, whose first touch is timed
        write by write in Python.
        """
        mem = self.memory
        if mem.prefault == "lazy":
            return None
        regions = mem.regions
        return kernels.PtaLane(
            self,
            [r.da for r in regions],
            [r.size for r in regions],
            [r.pa for r in regions],
            [mem.is_writable(i) for i in range(len(regions))],
            [mem.array(i) for i in range(len(regions))],
            rproc_id,
            rproc_id in self.processor_ids,
            fill_nonzero=self.policy is Policy.OPTEE,
        )

    def absorb_lane_log(self, lane: object) -> None:
        """Move the writes a lane made into the memory's log and the timings,
        in the order it made them (as its calls would have logged them);
        as columns, made into records when first read."""
        ops, das, pas, lens, secs = lane.take_log()  # type: ignore[attr-defined]
        names = _OP_NAMES[ops]
        self.memory.add_write_columns(names, das, pas, lens)
        append_columns(self.timings, SegmentTiming, names, das, lens, secs)

    # -- helpers ------------------------------------------------------------
    def _known_id(self, rproc_id: int, code: TeeResult | None = None) -> None:
        if rproc_id not in self.processor_ids:
            raise _fail(
                code or TeeResult.TEE_ERROR_NOT_SUPPORTED,
                f"PTA: processor id {rproc_id} unknown to the platform "
                f"(known: {list(self.processor_ids)})",
            )

    def _require_off(self, cmd: PtaCommand) -> None:
        if self.running:
            raise _fail(
                TeeResult.TEE_ERROR_BAD_STATE,
                f"PTA {cmd.name}: the remote processor is running",
            )

    def _translate(self, rproc_id: int, da: int, size: int) -> int:
        # stm32_rproc_da_to_pa(): unknown id is BAD_PARAMETERS there
        self._known_id(rproc_id, TeeResult.TEE_ERROR_BAD_PARAMETERS)
        try:
            return self.memory.da_to_pa(da, size)
        except AddressError as exc:
            raise _fail(TeeResult.TEE_ERROR_ACCESS_DENIED, str(exc)) from exc

    def _translate_writable(self, rproc_id: int, da: int, size: int) -> int:
        """``_translate``, then refuse a read-only region (ACCESS_DENIED).

        Upstream's stm32mp regions are all writable; a read-only region of a
        profile is never a load target under either policy.
        """
        return self._writable_region(rproc_id, da, size)[1]

    def _writable_region(self, rproc_id: int, da: int, size: int) -> tuple[int, int]:
        """Region index and PA of a range the loader will write: one lookup.

        Same checks, order and messages as translating, then asking the
        memory whether the region is writable, without searching the
        regions twice.
        """
        self._known_id(rproc_id, TeeResult.TEE_ERROR_BAD_PARAMETERS)
        mem = self.memory
        try:
            index = mem.locate_da(da, size)
        except AddressError as exc:
            raise _fail(TeeResult.TEE_ERROR_ACCESS_DENIED, str(exc)) from exc
        region = mem.regions[index]
        if not mem.is_writable(index):
            refused = AddressError("device", da, size, "read-only")
            raise _fail(
                TeeResult.TEE_ERROR_ACCESS_DENIED,
                f"{refused}: region {region.name!r} may not be written by the loader",
            )
        return index, region.pa + (da - region.da)

    # -- commands -------------------------------------------------------------
    def _capabilities(self, ptypes: int, params: list[Param]) -> None:
        _check_types(PtaCommand.HW_CAPABILITIES, ptypes, param_types(VI, VO, VO))
        self._known_id(_value(params, 0).a)
        _value(params, 1).a = HWCAP_FMT_ELF
        _value(params, 2).a = HWCAP_PROT_HASH_TABLE

    def _load_segment(self, ptypes: int, params: list[Param]) -> None:
        cmd = PtaCommand.LOAD_SEGMENT_SHA256
        _check_types(cmd, ptypes, param_types(VI, MI, VI, MI))
        src, hash_ref = _memref(params, 1), _memref(params, 3)
        if hash_ref.buffer is None or hash_ref.length != 32:
            raise _fail(
                TeeResult.TEE_ERROR_BAD_PARAMETERS,
                f"PTA {cmd.name}: hash size {hash_ref.length}, expected 32",
            )
        self._require_off(cmd)
        loc = _value(params, 2)
        da = loc.b << 32 | loc.a
        index, _pa = self._writable_region(_value(params, 0).a, da, src.length)
        self._copy_and_check(index, da, src.view(), bytes(hash_ref.view()))

    def _copy_and_check(
        self, index: int, da: int, src: memoryview, expected: bytes
    ) -> None:
        t0 = time.perf_counter()
        # hash what landed in device memory, not the shared source (TOCTOU)
        digest = self.memory.copy_in_hashed_at(index, da, src)
        self.timings.append(
            SegmentTiming("copy", da, len(src), time.perf_counter() - t0)
        )
        self._check_digest(da, len(src), digest, expected)

    def _check_digest(self, da: int, size: int, digest: bytes, expected: bytes) -> None:
        """A loaded segment whose digest is not the signed one is wiped."""
        if not hmac.compare_digest(digest, expected):
            self.memory.fill(da, size, 0, op="scrub")
            raise _fail(
                TeeResult.TEE_ERROR_SECURITY,
                f"segment at da {da:#x} (+{size:#x}): SHA-256 of the loaded "
                f"bytes {digest.hex()[:16]}... != signed {expected.hex()[:16]}...",
            )

    # -- LOAD_SEGMENTS_SHA256: the per-segment calls, copies in parallel ------
    def _load_segments(self, ptypes: int, params: list[Param]) -> None:
        cmd = PtaCommand.LOAD_SEGMENTS_SHA256
        _check_types(cmd, ptypes, param_types(VI, MI, MI, VI))
        if self.running:  # the per-segment calls give the answer (BAD_STATE)
            raise _fail(
                TeeResult.TEE_ERROR_NOT_SUPPORTED,
                f"PTA {cmd.name} refused, nothing written: the processor is running",
            )
        jobs = self._batch_jobs(
            _value(params, 0).a, _memref(params, 1).view(), _memref(params, 2).view()
        )
        groups = _balanced(jobs, max(1, _value(params, 3).a))
        if len(groups) == 1:
            results = [self._batch_work(groups[0])]
        else:
            with ThreadPoolExecutor(len(groups)) as pool:
                results = list(pool.map(self._batch_work, groups))
        # the order of the work does not matter: the log is written here, in
        # record order, as the per-segment calls would have written it
        done: dict[int, _BatchResult] = {}
        for res in results:
            done.update(res)
        for k, job in enumerate(jobs):
            self._batch_commit(job, done[k])

    def _batch_jobs(
        self, rproc_id: int, image: memoryview, raw: memoryview
    ) -> list[_BatchJob]:
        """Every record checked as its per-segment calls would be, or refused."""
        if len(raw) % BATCH_RECORD.size:
            raise _fail(
                TeeResult.TEE_ERROR_BAD_PARAMETERS,
                f"PTA LOAD_SEGMENTS_SHA256: {len(raw)} bytes of records, not a "
                f"multiple of {BATCH_RECORD.size}",
            )
        jobs = []
        try:
            for off, da, filesz, memsz, digest in BATCH_RECORD.iter_unpack(raw):
                if off + filesz > len(image) or filesz > memsz:
                    raise _fail(TeeResult.TEE_ERROR_BAD_PARAMETERS, "record")
                index = self._writable_region(rproc_id, da, filesz)[0] if filesz else -1
                tail_da, tail = (da + filesz) & 0xFFFFFFFF, memsz - filesz
                tail_index = (
                    self._writable_region(rproc_id, tail_da, tail)[0] if tail else -1
                )
                jobs.append(
                    _BatchJob(index, da, image[off : off + filesz], digest,
                              tail_index, tail_da, tail)
                )  # fmt: skip
        except TeeError as exc:
            raise _fail(
                TeeResult.TEE_ERROR_NOT_SUPPORTED,
                f"PTA LOAD_SEGMENTS_SHA256 refused, nothing written ({exc.reason}):"
                " use LOAD_SEGMENT_SHA256 and SET_MEMORY",
            ) from exc
        return jobs

    def _batch_work(
        self, group: list[tuple[int, _BatchJob]]
    ) -> dict[int, _BatchResult]:
        """One worker's records: copy+hash two at a time, then the
        zero-fills; nothing logged (see ``_batch_commit``)."""
        out = {k: _BatchResult() for k, _job in group}
        loaded = [(k, j) for k, j in group if j.src]
        t0 = time.perf_counter()
        try:
            digests = self.memory.copy_in_hashed_many(
                [(j.index, j.da, j.src) for _k, j in loaded]
            )
        except Exception as exc:  # noqa: BLE001 - raised in order, in _batch_commit
            for k, _j in loaded:
                out[k].error = exc
            return out
        # one kernel call for the group: its time, shared out by bytes
        spent = time.perf_counter() - t0
        total = sum(len(j.src) for _k, j in loaded) or 1
        for (k, j), digest in zip(loaded, digests, strict=True):
            out[k].digest = digest
            out[k].copy_s = spent * len(j.src) / total
        failed: Exception | None = None
        for k, j in group:
            if failed is not None:  # never filled: must not be logged as filled
                out[k].error = failed
            elif j.tail:
                t0 = time.perf_counter()
                try:
                    self.memory.fill(j.tail_da, j.tail, 0, record=False)
                except Exception as exc:  # noqa: BLE001 - as above
                    failed = out[k].error = exc
                out[k].zero_s = time.perf_counter() - t0
        return out

    def _batch_commit(self, job: _BatchJob, res: _BatchResult) -> None:
        """Log and answer one record as its per-segment calls would have.

        A later record's bytes may already be in memory when an earlier one
        fails here; the strict TA wipes every region after any failure
        (RELEASE), so memory ends as after the per-segment calls.
        """
        if job.src:
            if res.digest is None:
                raise res.error or RuntimeError("segment copy did not run")
            self.memory.record("copy", job.index, job.da, len(job.src))
            self.timings.append(SegmentTiming("copy", job.da, len(job.src), res.copy_s))
            self._check_digest(job.da, len(job.src), res.digest, job.expected)
        if res.error is not None:
            raise res.error
        if job.tail:
            self.memory.record("zero", job.tail_index, job.tail_da, job.tail)
            self.timings.append(
                SegmentTiming("zero", job.tail_da, job.tail, res.zero_s)
            )

    def _set_memory(self, ptypes: int, params: list[Param]) -> None:
        cmd = PtaCommand.SET_MEMORY
        _check_types(cmd, ptypes, param_types(VI, VI, VI, VI))
        da, size = _value(params, 1).a, _value(params, 2).a
        raw = _value(params, 3).a
        # upstream computes the byte as `a && 0xFF` (W9): 0 or 1
        value = int(bool(raw)) if self.policy is Policy.OPTEE else raw & 0xFF
        self._require_off(cmd)
        self._translate_writable(_value(params, 0).a, da, size)
        t0 = time.perf_counter()
        self.memory.fill(da, size, value, op="zero")
        self.timings.append(SegmentTiming("zero", da, size, time.perf_counter() - t0))

    def _start(self, ptypes: int, params: list[Param]) -> None:
        _check_types(PtaCommand.FIRMWARE_START, ptypes, PT_ID_ONLY)
        self._require_off(PtaCommand.FIRMWARE_START)
        self._known_id(_value(params, 0).a, TeeResult.TEE_ERROR_BAD_PARAMETERS)
        self.running = True
        self.events.append(f"start {_value(params, 0).a}")

    def _stop(self, ptypes: int, params: list[Param]) -> None:
        _check_types(PtaCommand.FIRMWARE_STOP, ptypes, PT_ID_ONLY)
        if not self.running:
            raise _fail(
                TeeResult.TEE_ERROR_BAD_STATE,
                "PTA FIRMWARE_STOP: the remote processor is not running",
            )
        self._known_id(_value(params, 0).a, TeeResult.TEE_ERROR_BAD_PARAMETERS)
        self.running = False
        self.events.append(f"stop {_value(params, 0).a}")

    def _da_to_pa(self, ptypes: int, params: list[Param]) -> None:
        cmd = PtaCommand.FIRMWARE_DA_TO_PA
        _check_types(cmd, ptypes, param_types(VI, VI, VI, VO))
        addr, size = _value(params, 1), _value(params, 2)
        if addr.b or size.b:
            raise _fail(
                TeeResult.TEE_ERROR_BAD_PARAMETERS,
                f"PTA {cmd.name}: high words must be 0 (address b = {addr.b:#x}, "
                f"size b = {size.b:#x})",
            )
        pa = self._translate(_value(params, 0).a, addr.a, size.a)
        out = _value(params, 3)
        out.a, out.b = pa & 0xFFFFFFFF, pa >> 32

    def _da_to_pa_writable(self, ptypes: int, params: list[Param]) -> None:
        cmd = PtaCommand.DA_TO_PA_WRITABLE
        _check_types(cmd, ptypes, param_types(VI, VI, VI, VO))
        addr, size = _value(params, 1), _value(params, 2)
        pa = self._translate_writable(_value(params, 0).a, addr.a, size.a)
        out = _value(params, 3)
        out.a, out.b = pa & 0xFFFFFFFF, pa >> 32

    def _ranges_writable(self, ptypes: int, params: list[Param]) -> None:
        cmd = PtaCommand.RANGES_WRITABLE
        _check_types(cmd, ptypes, param_types(VI, MI, VO))
        raw = _memref(params, 1).view()
        out = _value(params, 2)
        if _value(params, 0).a not in self.processor_ids or len(raw) % 16:
            out.a = 0  # every range-by-range call would refuse: let them say why
            return
        pairs = np.frombuffer(raw, dtype="<u8").reshape(-1, 2)
        out.a = self.memory.writable_prefix(pairs[:, 0], pairs[:, 1])

    def _memory_equals(self, ptypes: int, params: list[Param]) -> None:
        cmd = PtaCommand.MEMORY_EQUALS
        _check_types(cmd, ptypes, param_types(VI, VI, MI, VO))
        loc, expected = _value(params, 1), _memref(params, 2).view()
        da = loc.b << 32 | loc.a
        self._known_id(_value(params, 0).a, TeeResult.TEE_ERROR_BAD_PARAMETERS)
        try:
            held = self.memory.view_da(da, len(expected))
        except AddressError as exc:
            raise _fail(TeeResult.TEE_ERROR_ACCESS_DENIED, str(exc)) from exc
        same = hmac.compare_digest(held.tobytes(), bytes(expected))
        _value(params, 3).a = int(same)

    def _verify_digest(self, ptypes: int, params: list[Param]) -> None:
        cmd = PtaCommand.VERIFY_DIGEST
        _check_types(cmd, ptypes, param_types(VI, MI, MI, MI))
        self._known_id(_value(params, 0).a)
        self._require_off(cmd)
        algo = self._key_info_algo(_memref(params, 1))
        self._no_ignored_key_info(_memref(params, 1))
        digest = bytes(_memref(params, 2).view())
        signature = bytes(_memref(params, 3).view())
        if algo == TEE_ALG_RSASSA_PKCS1_V1_5_SHA256:
            self._verify_rsa(digest, signature)
        elif algo == TEE_ALG_ECDSA_P256 and self.accept_ecdsa:
            self._verify_ecdsa(digest, signature)
        else:
            raise _fail(
                TeeResult.TEE_ERROR_NOT_SUPPORTED,
                f"PTA {cmd.name}: algorithm {algo:#010x} not supported by this "
                "platform (stm32mp verifies RSA PKCS#1 v1.5 SHA-256 only; "
                "--accept-ecdsa lets the model's platform verify ECDSA P-256)",
            )

    def _no_ignored_key_info(self, info: Memref) -> None:
        """Strict: refuse key-selection data this platform would ignore.

        The stm32mp PTA verifies with its one built-in key and never looks at
        the PKEYINFO bytes; upstream accepts them silently, so an image whose
        signer meant another key is verified with this one. Under ``strict``
        such data must not reach a platform that ignores it.
        """
        # BAD_PARAMETERS, as strict's other refusals of TLV content
        if self.policy is Policy.STRICT and info.length > 8:
            raise _fail(
                TeeResult.TEE_ERROR_BAD_PARAMETERS,
                f"PTA VERIFY_DIGEST: PKEYINFO of {info.length - 8} bytes, but this "
                "platform does not select keys by key info (it verifies with its "
                "one built-in key)",
            )

    def _key_info_algo(self, info: Memref) -> int:
        view = info.view()
        declared = int.from_bytes(view[4:8], "little") + 8 if len(view) >= 8 else -1
        if info.buffer is None or declared != info.length:
            raise _fail(
                TeeResult.TEE_ERROR_BAD_PARAMETERS,
                f"PTA VERIFY_DIGEST: key-info size {info.length} != 8 + info length",
            )
        return int.from_bytes(view[0:4], "little")

    def _verify_rsa(self, digest: bytes, signature: bytes) -> None:
        key = self._require_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise _invalid("the platform key is not an RSA key")
        if len(signature) != key.key_size // 8 + (key.key_size % 8 > 0):
            raise _invalid(
                f"sign_len {len(signature)} != modulus size "
                f"{(key.key_size + 7) // 8} of the platform key"
            )
        try:
            key.verify(
                signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
            )
        except (InvalidSignature, ValueError) as exc:
            raise _invalid("RSA PKCS#1 v1.5 signature does not verify") from exc

    def _require_key(self) -> PublicKey:
        if self.public_key is None:
            raise _invalid(
                "the platform has no verification key (a device tree or profile "
                "does not name one): give the PTA's public key with --key"
            )
        return self.public_key

    def _verify_ecdsa(self, digest: bytes, signature: bytes) -> None:
        key = self._require_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise _invalid("the platform key is not an EC key")
        if key.curve.name != "secp256r1" or len(signature) != 64:
            raise _invalid(f"ECDSA P-256 needs a 64-byte r||s, got {len(signature)}")
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        der = utils.encode_dss_signature(r, s)
        try:
            key.verify(der, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        except (InvalidSignature, ValueError) as exc:
            raise _invalid("ECDSA P-256 signature does not verify") from exc

    def _release(self, ptypes: int, params: list[Param]) -> None:
        _check_types(PtaCommand.RELEASE, ptypes, PT_ID_ONLY)
        self._require_off(PtaCommand.RELEASE)
        self._known_id(_value(params, 0).a, TeeResult.TEE_ERROR_BAD_PARAMETERS)
        # upstream zeroes every region (all writable on stm32mp); a read-only
        # region cannot hold anything the loader wrote, so it is skipped
        for index in range(len(self.memory.regions)):
            if self.memory.is_writable(index):
                self.memory.scrub_region(index)

    def _dump(self, ptypes: int, params: list[Param]) -> None:
        _check_types(PtaCommand.DUMP_MEMORY, ptypes, param_types(VI, MO))
        self._known_id(_value(params, 0).a, TeeResult.TEE_ERROR_BAD_PARAMETERS)
        core = build_elf_core(
            [(r.da, self.memory.array(i)) for i, r in enumerate(self.memory.regions)]
        )
        write_out(_memref(params, 1), core)


def _invalid(reason: str) -> TeeError:
    return TeeError(TeeResult.TEE_ERROR_SIGNATURE_INVALID, reason)


def load_public_key(pem: bytes) -> PublicKey:
    """Read a PEM public key usable by VERIFY_DIGEST (RSA or EC P-256).

    Raises
    ------
    ValueError
        The PEM holds another kind of key.
    """
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem)
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return key
    raise ValueError(f"unsupported public key type {type(key).__name__}")
