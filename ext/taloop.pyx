"""The TA's per-segment loop and the PTA's segment commands, compiled.

A firmware of thousands of small segments spends its LOAD_FW in the
TA -> PTA call made for every segment, not in copying: about 100 us of
Python per call against 3 us to copy and hash 4 KiB. This kernel runs that
loop at C speed *without* batching it away: for each program header the TA
side makes upstream's checks, builds the four ``TEE_Param`` slots and the
parameter-type word, and invokes the PTA's LOAD_SEGMENT_SHA256 then
SET_MEMORY through :meth:`PtaLane.invoke`, which makes the core's memref
checks, the PTA's type-word, state, processor-id, region and writability
checks, copies and hashes in one pass (``fusedsha_impl.h``), compares the
digest and logs the write, one call per segment as upstream does.

The kernel only ever takes the path where everything succeeds. At the first
call, check or read it would not answer with SUCCESS (a bad header, a read
past the shared memory, no region, a digest mismatch...) it stops and says
where: ``stage`` 0, before program header ``index`` (nothing of it logged;
bytes it copied for a mismatching digest are copied again by the caller), or
1, after its LOAD_SEGMENT_SHA256 and before its SET_MEMORY. The Python TA
resumes there and produces the exact answer, message and log upstream would,
so the compiled loop never has to know an error message.

Both loops hold the GIL (the calls are short; a large copy releases it), so
the TA and the PTA see the shared memory and the PTA state exactly as the
Python calls would, between segments.
"""

cimport cython
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

import hashlib

import numpy as np

from _bounds cimport contains_u64


cdef extern from "fusedsha_impl.h" nogil:
    int RP_IMPL_NONE
    int rp_fused_cpu_impl()
    void rp_fused_copy_sha256(int impl, uint8_t* dst, const uint8_t* src,
                              size_t n, uint8_t* out)


cdef enum:
    CMD_LOAD_SEGMENT_SHA256 = 3
    CMD_SET_MEMORY = 4
    #: TEE_PARAM_TYPES(VALUE_INPUT, MEMREF_INPUT, VALUE_INPUT, MEMREF_INPUT)
    PT_LOAD_SEGMENT = 0x5151
    #: TEE_PARAM_TYPES(VALUE_INPUT x 4)
    PT_SET_MEMORY = 0x1111
    PT_LOAD = 1
    #: a copy of this size or more runs with the GIL released
    NOGIL_MIN = 65536

#: ``invoke`` answered TEE_SUCCESS.
LANE_OK = 0
#: ``invoke`` would not succeed (or cannot tell): make the call in Python.
LANE_DEFER = 1
#: Stages of a loop's answer (see the module docs).
STAGE_SEGMENT = 0
STAGE_FILL = 1
STAGE_DONE = 2
#: Write-log operation codes.
OP_COPY = 0
OP_ZERO = 1

ctypedef struct lane_param:
    # a value slot (a, b) and a memref slot (buffer, offset, size, avail:
    # bytes of the memory behind buffer); the type word says which is read
    uint64_t a
    uint64_t b
    const uint8_t* buffer
    uint64_t offset
    uint64_t size
    uint64_t avail


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef inline uint32_t _u32(const uint8_t* p) noexcept nogil:
    return p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)


cdef inline bint _same_digest(const uint8_t* a, const uint8_t* b) noexcept nogil:
    # constant time, as hmac.compare_digest
    cdef uint8_t acc = 0
    cdef int k
    for k in range(32):
        acc |= a[k] ^ b[k]
    return acc == 0


@cython.auto_pickle(False)
cdef class PtaLane:
    """The PTA's LOAD_SEGMENT_SHA256 and SET_MEMORY for one processor, compiled.

    Parameters
    ----------
    pta : object
        The platform PTA; its ``running`` flag is read at every call (another
        TA instance may start a processor between two segments).
    das, sizes, pas : sequence of int
        Each memory region's device address, size and physical address, in
        the platform's order (the first region holding a range wins).
    writable : sequence of bool
        Whether the loader may write each region.
    memories : sequence of writable uint8 arrays
        Each region's bytes (``len == size``).
    rproc_id : int
        The processor id calls must name; ``id_known``: the platform knows it.
    fill_nonzero : bool
        How SET_MEMORY reads its fill value: ``True`` upstream's ``a && 0xFF``
        (``optee``), ``False`` ``a & 0xFF``; only a zero fill is made here.
    capacity : int
        Write-log entries to reserve (grows when needed).
    """

    cdef object pta
    cdef Py_ssize_t nreg
    cdef uint64_t* da
    cdef uint64_t* rsize
    cdef uint64_t* pa
    cdef uint8_t* writable
    cdef uint8_t** mem
    cdef object memories
    cdef readonly uint32_t rproc_id
    cdef bint id_known
    cdef bint fill_nonzero
    cdef int impl
    cdef object log_op, log_da, log_pa, log_len, log_sec
    cdef uint8_t[::1] v_op
    cdef uint64_t[::1] v_da
    cdef uint64_t[::1] v_pa
    cdef uint64_t[::1] v_len
    cdef double[::1] v_sec
    cdef readonly Py_ssize_t count
    cdef readonly Py_ssize_t calls

    def __init__(self, pta, das, sizes, pas, writable, memories, rproc_id,
                 id_known, fill_nonzero=False, capacity=64):
        cdef Py_ssize_t k, n = len(das)
        cdef uint8_t[::1] arr
        if not (len(sizes) == len(pas) == len(writable) == len(memories) == n):
            raise ValueError("PtaLane: one das/sizes/pas/writable/memories entry a region")
        self.pta = pta
        self.nreg = n
        self._free_tables()  # __init__ called again
        self.da = <uint64_t*>malloc(max(n, 1) * sizeof(uint64_t))
        self.rsize = <uint64_t*>malloc(max(n, 1) * sizeof(uint64_t))
        self.pa = <uint64_t*>malloc(max(n, 1) * sizeof(uint64_t))
        self.writable = <uint8_t*>malloc(max(n, 1))
        self.mem = <uint8_t**>malloc(max(n, 1) * sizeof(uint8_t*))
        if not (self.da and self.rsize and self.pa and self.writable and self.mem):
            raise MemoryError()
        self.memories = [np.asarray(m) for m in memories]
        for k in range(n):
            arr = self.memories[k]
            if <uint64_t>arr.shape[0] != <uint64_t>sizes[k]:
                raise ValueError(f"PtaLane: region {k} is {arr.shape[0]} bytes, size says {sizes[k]}")
            self.da[k] = das[k]
            self.rsize[k] = sizes[k]
            self.pa[k] = pas[k]
            self.writable[k] = 1 if writable[k] else 0
            self.mem[k] = &arr[0]
        self.rproc_id = rproc_id
        self.id_known = bool(id_known)
        self.fill_nonzero = bool(fill_nonzero)
        self.impl = rp_fused_cpu_impl()
        self.count = 0
        self.calls = 0
        self._allocate_log(max(int(capacity), 16))

    def __dealloc__(self):
        self._free_tables()

    cdef void _free_tables(self) noexcept:
        free(self.da)
        free(self.rsize)
        free(self.pa)
        free(self.writable)
        free(self.mem)
        self.da = self.rsize = self.pa = NULL
        self.writable = NULL
        self.mem = NULL

    cdef int _allocate_log(self, Py_ssize_t cap) except -1:
        old = (self.log_op, self.log_da, self.log_pa, self.log_len, self.log_sec)
        self.log_op = np.zeros(cap, np.uint8)
        self.log_da = np.zeros(cap, np.uint64)
        self.log_pa = np.zeros(cap, np.uint64)
        self.log_len = np.zeros(cap, np.uint64)
        self.log_sec = np.zeros(cap, np.float64)
        if old[0] is not None:
            for new, was in zip((self.log_op, self.log_da, self.log_pa, self.log_len,
                                 self.log_sec), old):
                new[: self.count] = was[: self.count]
        self.v_op = self.log_op
        self.v_da = self.log_da
        self.v_pa = self.log_pa
        self.v_len = self.log_len
        self.v_sec = self.log_sec
        return 0

    def commit(self):
        """Hand the writes made since the last call to the PTA's log
        (``pta.absorb_lane_log``), in the order they were made."""
        self.pta.absorb_lane_log(self)

    def take_log(self):
        """The writes logged since the last call, in order, and forget them.

        Returns
        -------
        (ops, das, pas, lens, seconds) : tuple of numpy arrays
            ``ops`` holds :data:`OP_COPY` (copy + SHA-256) or :data:`OP_ZERO`.
        """
        n = self.count
        out = (self.log_op[:n].copy(), self.log_da[:n].copy(),
               self.log_pa[:n].copy(), self.log_len[:n].copy(),
               self.log_sec[:n].copy())
        self.count = 0
        return out

    cdef inline void _log(self, uint8_t op, uint64_t da, uint64_t pa, uint64_t n,
                          double secs):
        cdef Py_ssize_t c = self.count
        self.v_op[c] = op
        self.v_da[c] = da
        self.v_pa[c] = pa
        self.v_len[c] = n
        self.v_sec[c] = secs
        self.count = c + 1

    cdef inline Py_ssize_t _region(self, uint64_t da, uint64_t n) noexcept:
        # the first region holding [da, da+n) whole, and writable; else -1
        cdef Py_ssize_t k
        if n == 0:
            return -1
        for k in range(self.nreg):
            if contains_u64(self.da[k], self.rsize[k], da, n):
                return k if self.writable[k] else -1
        return -1

    cdef int _may_write(self, const lane_param* p) except -1:
        # the checks every writing command makes before its region lookup
        if self.count >= self.v_op.shape[0]:
            self._allocate_log(2 * self.v_op.shape[0])
        if self.pta.running:
            return LANE_DEFER  # BAD_STATE
        if not self.id_known or p[0].a != self.rproc_id:
            return LANE_DEFER  # unknown processor: BAD_PARAMETERS
        return LANE_OK

    cdef int invoke(self, uint32_t cmd, uint32_t ptypes, lane_param* p) except -1:
        """One TEE_InvokeTACommand to the PTA: core checks, then the command."""
        cdef int k
        self.calls += 1
        # the core: a memref may not reach past the memory behind it
        for k in range(4):
            if (ptypes >> (4 * k)) & 0xF == 5 and (
                p[k].buffer == NULL or p[k].size > p[k].avail
            ):
                return LANE_DEFER  # the core's BAD_PARAMETERS: a TA panic
        if cmd == CMD_LOAD_SEGMENT_SHA256 and ptypes == PT_LOAD_SEGMENT:
            return self._load_segment(p)
        if cmd == CMD_SET_MEMORY and ptypes == PT_SET_MEMORY:
            return self._set_memory(p)
        return LANE_DEFER

    cdef int _load_segment(self, lane_param* p) except -1:
        cdef uint64_t n = p[1].size
        cdef uint64_t da = (p[2].b << 32) | p[2].a
        cdef const uint8_t* src = p[1].buffer + p[1].offset
        cdef uint8_t digest[32]
        cdef Py_ssize_t k
        cdef uint8_t* dst
        cdef double t0
        if p[3].size != 32:
            return LANE_DEFER  # hash size: BAD_PARAMETERS
        if self._may_write(p):
            return LANE_DEFER
        k = self._region(da, n)
        if k < 0:
            return LANE_DEFER  # ACCESS_DENIED (outside, straddling, read-only)
        dst = self.mem[k] + (da - self.da[k])
        t0 = _now()
        if self.impl == RP_IMPL_NONE:
            self._copy_then_hashlib(k, da, dst, src, n, digest)
        elif n >= NOGIL_MIN:
            with nogil:
                rp_fused_copy_sha256(self.impl, dst, src, n, digest)
        else:
            rp_fused_copy_sha256(self.impl, dst, src, n, digest)
        if not _same_digest(digest, p[3].buffer + p[3].offset):
            return LANE_DEFER  # SECURITY: the caller copies again and answers
        self._log(OP_COPY, da, self.pa[k] + (da - self.da[k]), n, _now() - t0)
        return LANE_OK

    cdef int _copy_then_hashlib(self, Py_ssize_t k, uint64_t da, uint8_t* dst,
                                const uint8_t* src, uint64_t n,
                                uint8_t* digest) except -1:
        # no SHA instructions: copy, then hash the stored bytes
        memcpy(dst, src, n)
        off = da - self.da[k]
        stored = self.memories[k][off : off + n]
        got = hashlib.sha256(stored).digest()
        memcpy(digest, <const uint8_t*>(<bytes>got), 32)
        return 0

    cdef int _set_memory(self, lane_param* p) except -1:
        cdef uint64_t da = p[1].a
        cdef uint64_t n = p[2].a
        cdef uint64_t raw = p[3].a
        cdef Py_ssize_t k
        cdef double t0
        if (raw != 0) if self.fill_nonzero else (raw & 0xFF) != 0:
            return LANE_DEFER  # only zero fills are made here
        if self._may_write(p):
            return LANE_DEFER
        k = self._region(da, n)
        if k < 0:
            return LANE_DEFER
        t0 = _now()
        memset(self.mem[k] + (da - self.da[k]), 0, n)
        self._log(OP_ZERO, da, self.pa[k] + (da - self.da[k]), n, _now() - t0)
        return LANE_OK


cdef inline void _value(lane_param* p, uint64_t a, uint64_t b) noexcept:
    p.a = a & 0xFFFFFFFF  # the core passes 32-bit words
    p.b = b & 0xFFFFFFFF
    p.buffer = NULL


cdef inline void _memref(lane_param* p, const uint8_t* buf, uint64_t avail,
                         uint64_t offset, uint64_t size) noexcept:
    p.buffer = buf
    p.offset = offset
    p.size = size
    p.avail = avail - offset if offset <= avail else 0


cdef int _segment_calls(PtaLane lane, const uint8_t* image, uint64_t image_len,
                        uint64_t src, uint64_t da, uint64_t filesz,
                        uint64_t memsz, const uint8_t* digest,
                        bint* loaded) except -1:
    """LOAD_SEGMENT_SHA256 (file bytes) then SET_MEMORY (the zero tail).

    Returns the stage to resume at, or STAGE_DONE.
    """
    cdef lane_param p[4]
    loaded[0] = False
    if filesz:
        _value(&p[0], lane.rproc_id, 0)
        _memref(&p[1], image, image_len, src, filesz)
        _value(&p[2], da, 0)
        _memref(&p[3], digest, 32, 0, 32)
        if src > image_len or lane.invoke(CMD_LOAD_SEGMENT_SHA256, PT_LOAD_SEGMENT, p):
            return STAGE_SEGMENT
        loaded[0] = True
    if filesz < memsz:
        _value(&p[0], lane.rproc_id, 0)
        _value(&p[1], da + filesz, 0)
        _value(&p[2], memsz - filesz, 0)
        _value(&p[3], 0, 0)
        if lane.invoke(CMD_SET_MEMORY, PT_SET_MEMORY, p):
            return STAGE_FILL
    return STAGE_DONE


cdef Py_ssize_t _first_entry(const uint32_t[::1] keys, const int64_t[::1] first,
                             uint32_t paddr) noexcept:
    # index of the first hash entry with this p_paddr (keys sorted), or -1
    cdef Py_ssize_t lo = 0, hi = keys.shape[0], mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < paddr:
            lo = mid + 1
        else:
            hi = mid
    if lo < keys.shape[0] and keys[lo] == paddr:
        return first[lo]
    return -1


def optee_segment_loop(PtaLane lane not None, const uint8_t[::1] image not None,
                       uint64_t addr, Py_ssize_t base, uint64_t size,
                       Py_ssize_t table, Py_ssize_t start,
                       const uint8_t[::1] hashes not None,
                       const uint32_t[::1] keys not None,
                       const int64_t[::1] first not None,
                       uint64_t img_off, uint64_t img_end):
    """Upstream's program-header loop of one image (``remoteproc_load_elf``).

    Parameters
    ----------
    lane : PtaLane
    image : uint8 buffer
        The LOAD_FW memref (shared memory, read in place; ``e_phnum`` is read
        again on every pass, as upstream does).
    addr : int
        Model address of ``image[0]``.
    base, size : int
        Memref offset and size of this ELF image.
    table : int
        Memref offset of its program-header table.
    start : int
        First program header to look at.
    hashes : uint8 buffer
        The TA's private copy of the hash table (64-byte entries).
    keys, first : arrays
        Sorted distinct ``p_paddr`` of the entries and the index of the first
        entry with each (upstream takes the first match).
    img_off, img_end : int
        Memref range of the images (a segment's source must lie inside).

    Returns
    -------
    (index, stage, p_paddr, p_filesz, p_memsz, copies) : tuple of int
        Where to resume (see the module docs); the header fields are those of
        ``index`` as read (stage 1), and ``copies`` the segments loaded.
    """
    cdef uint64_t n = image.shape[0]
    cdef Py_ssize_t i = start, k, copies = 0
    cdef uint64_t fw, entry, off, src
    cdef const uint8_t* ph
    cdef const uint8_t* e
    cdef uint32_t p_type, p_offset, p_paddr, p_filesz, p_memsz
    cdef bint loaded
    cdef int stage
    if base < 0 or table < 0 or start < 0 or hashes.shape[0] % 64:
        return start, STAGE_SEGMENT, 0, 0, 0, 0
    fw = addr + <uint64_t>base
    while True:
        if <uint64_t>base + 46 > n:
            break  # e_phnum past the memref: the caller's read decides
        if i >= (image[base + 44] | (image[base + 45] << 8)):
            return i, STAGE_DONE, 0, 0, 0, copies
        entry = addr + <uint64_t>table + 32 * <uint64_t>i
        off = <uint64_t>table + 32 * <uint64_t>i
        if not (fw <= entry and entry + 31 < fw + size) or off + 32 > n:
            break  # BAD_FORMAT, or a read past the memory: the caller's
        ph = &image[0] + off
        p_type = _u32(ph)
        if p_type != PT_LOAD:
            i += 1
            continue
        p_offset, p_paddr = _u32(ph + 4), _u32(ph + 12)
        p_filesz, p_memsz = _u32(ph + 16), _u32(ph + 20)
        if p_offset >= size or <uint64_t>p_offset + p_filesz > size:
            break
        k = _first_entry(keys, first, p_paddr)
        if k < 0 or <uint64_t>(k + 1) * 64 > <uint64_t>hashes.shape[0]:
            break
        e = &hashes[0] + 64 * k
        if _u32(e) != PT_LOAD or _u32(e + 16) != p_filesz or _u32(e + 20) != p_memsz:
            break
        src = <uint64_t>base + p_offset
        if src < img_off or src > img_end or src + p_filesz > img_end:
            break
        stage = _segment_calls(lane, &image[0], n, src, p_paddr, p_filesz,
                               p_memsz, e + 32, &loaded)
        copies += loaded
        if stage != STAGE_DONE:
            return i, stage, p_paddr, p_filesz, p_memsz, copies
        i += 1
    return i, STAGE_SEGMENT, 0, 0, 0, copies


def planned_segment_loop(PtaLane lane not None, const uint8_t[::1] image not None,
                         const uint8_t[::1] records not None, Py_ssize_t start):
    """The strict TA's calls for its planned segments, one record each.

    Parameters
    ----------
    lane : PtaLane
    image : uint8 buffer
        The LOAD_FW memref.
    records : uint8 buffer
        64-byte records ``<4Q32s``: memref offset, da, filesz, memsz, signed
        SHA-256 (the plan's ``records``).
    start : int
        First record to load.

    Returns
    -------
    (index, stage, copies) : tuple of int
        Where to resume (``stage`` 2: all done) and the segments loaded.
    """
    cdef Py_ssize_t count = records.shape[0] // 64, k = start, copies = 0
    cdef const uint8_t* r
    cdef uint64_t src, da, filesz, memsz
    cdef bint loaded
    cdef int stage
    if records.shape[0] % 64 or start < 0:
        return start, STAGE_SEGMENT, 0
    while k < count:
        r = &records[0] + 64 * k
        memcpy(&src, r, 8)
        memcpy(&da, r + 8, 8)
        memcpy(&filesz, r + 16, 8)
        memcpy(&memsz, r + 24, 8)
        if filesz > memsz or da > 0xFFFFFFFF or memsz > 0xFFFFFFFF:
            return k, STAGE_SEGMENT, copies  # not a plan's record
        stage = _segment_calls(lane, &image[0] if image.shape[0] else NULL,
                               image.shape[0], src, da, filesz, memsz, r + 32,
                               &loaded)
        copies += loaded
        if stage != STAGE_DONE:
            return k, stage, copies
        k += 1
    return k, STAGE_DONE, copies
