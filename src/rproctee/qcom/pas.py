"""The secure side of Qualcomm PAS, as a model: TrustZone's PIL service.

Linux (``qcom_scm.c``) sees four calls of SCM service ``QCOM_SCM_SVC_PIL``;
what TrustZone does inside them is closed.  This model does what the kernel
thread between Bjorn Andersson and Arnaud Pouliquen (spec section 5.6)
describes, and every choice beyond that is stated where it is made:

``PAS_INIT_IMAGE(pas_id, metadata)``
    Takes a private copy of the metadata (ELF header + program headers
    immediately followed by the hash segment), checks it, checks the
    certificate chain and the signature over the digest table, and keeps
    it.  Non-relocatable images must lie inside the peripheral's carveout.
``PAS_MEM_SETUP(pas_id, addr, size)``
    Relocatable images only: where the image will be; inside the carveout
    and at least the image's span.
``PAS_AUTH_AND_RESET(pas_id)``
    Locks the carveout against the normal world *first* (so what it hashes
    cannot change afterwards), hashes every loadable segment's file bytes
    where Linux put them, zeroes each segment's ``[p_filesz, p_memsz)``
    tail itself (no digest covers it), and releases the processor.  On a
    mismatch it wipes the carveout, unlocks it and forgets the metadata.
``PAS_SHUTDOWN(pas_id)``
    Stops the processor and unlocks the carveout.  The memory is not wiped:
    Linux's coredump reads the carveout after ``stop``.

Status codes are the SCM error codes of ``qcom_scm.h``; what Linux makes of
them is :func:`rproctee.qcom.constants.qcom_scm_remap_error` (the value a
caller of ``qcom_scm_pas_*`` gets).  The mapping of each failure to a code
is this model's: malformed metadata or a call in the wrong state
``QCOM_SCM_EINVAL_ARG``, an address outside the carveout
``QCOM_SCM_EINVAL_ADDR``, a failed signature or digest ``QCOM_SCM_ERROR``,
a call while the processor runs ``QCOM_SCM_V2_EBUSY``, an oversized blob
``QCOM_SCM_ENOMEM``.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rproctee import kernels
from rproctee._typing import Buffer
from rproctee.elf import Phdr
from rproctee.platform.memory import DeviceMemory
from rproctee.qcom import certs
from rproctee.qcom import constants as c
from rproctee.qcom.errors import MdtError, MdtFormatError, PasAccessError
from rproctee.qcom.format import (
    MdtHeader,
    check_header,
    find_hash_segment,
    is_loadable,
    is_relocatable,
    read_phdrs,
)
from rproctee.qcom.hashseg import HashSegment, parse_hash_segment

#: Largest metadata blob PAS_INIT_IMAGE accepts (real ones are a few KiB).
MAX_METADATA = 1 << 20


@dataclass(frozen=True)
class Carveout:
    """A physical range reserved for one peripheral's firmware."""

    name: str
    pa: int
    size: int

    def holds(self, pa: int, size: int) -> bool:
        """``[pa, pa+size)`` lies inside (overflow-free comparison)."""
        return self.pa <= pa and size <= self.size and pa - self.pa <= self.size - size


class PasState(enum.Enum):
    """Where one peripheral is in the PAS life cycle."""

    IDLE = "idle"
    INITIALISED = "initialised"
    RUNNING = "running"


@dataclass(frozen=True)
class ScmCall:
    """One SCM call: what was asked and what TrustZone answered.

    ``status`` is the SCM status (0 or a ``QCOM_SCM_*`` error), ``result``
    ``res.result[0]``; :attr:`ret` is what the ``qcom_scm_pas_*`` caller
    gets (``ret ? : res.result[0]``).
    """

    command: int
    pas_id: int
    args: tuple[int, ...]
    status: int
    result: int = 0
    reason: str | None = None

    @property
    def ret(self) -> int:
        """The kernel-visible return value (0 or a negative errno)."""
        if self.status < 0:
            return c.qcom_scm_remap_error(self.status)
        return self.result

    @property
    def name(self) -> str:
        """``PAS_INIT_IMAGE`` and so on."""
        return c.PAS_COMMAND_NAMES.get(self.command, f"cmd {self.command:#x}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "command": self.name,
            "pas_id": self.pas_id,
            "args": list(self.args),
            "status": c.SCM_STATUS_NAMES.get(self.status, self.status),
            "ret": self.ret,
            "reason": self.reason,
        }


class _Refused(Exception):
    """Internal: a call fails with ``status`` for ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class _Metadata:
    """A checked private copy of the metadata blob."""

    blob: bytes
    header: MdtHeader
    phdrs: tuple[Phdr, ...]
    hash_segment: HashSegment
    relocatable: bool
    min_addr: int
    span: int


@dataclass
class _Peripheral:
    pas_id: int
    carveout: Carveout
    state: PasState = PasState.IDLE
    metadata: _Metadata | None = None
    reloc_base: int | None = None


#: Told of each step: ``(kind, name, detail)`` with kind ``scm``, ``scm_ret``
#: or ``xpu`` (an event-log adapter, for instance).
Observer = Callable[[str, str, dict[str, Any]], None]


class Xpu:
    """Who may touch which physical range: the model of TrustZone's XPUs."""

    def __init__(self) -> None:
        self.locked: dict[int, Carveout] = {}
        self.observer: Observer | None = None

    def lock(self, pas_id: int, carveout: Carveout) -> None:
        """Deny the normal world ``carveout`` until :meth:`unlock`."""
        self.locked[pas_id] = carveout
        self._tell("lock", pas_id, carveout)

    def unlock(self, pas_id: int) -> None:
        """Give ``pas_id``'s carveout back to the normal world."""
        region = self.locked.pop(pas_id, None)
        if region is not None:
            self._tell("unlock", pas_id, region)

    def _tell(self, name: str, pas_id: int, region: Carveout) -> None:
        if self.observer is not None:
            detail = {"pas_id": pas_id, "pa": region.pa, "len": region.size}
            self.observer("xpu", name, detail)

    def check_normal_world(self, op: str, pa: int, size: int) -> None:
        """Raise :class:`PasAccessError` if ``[pa, pa+size)`` touches a lock."""
        for pas_id, region in self.locked.items():
            if pa < region.pa + region.size and region.pa < pa + size:
                raise PasAccessError(op, pa, size, pas_id)


class NormalWorldBus:
    """Linux's access to physical memory: :class:`DeviceMemory` behind the XPU.

    Every access is checked against the XPU first; writes then go through
    :meth:`DeviceMemory.copy_in` / :meth:`DeviceMemory.fill` (recorded).
    """

    def __init__(self, memory: DeviceMemory, xpu: Xpu) -> None:
        self.memory = memory
        self.xpu = xpu

    def write(self, pa: int, data: Buffer) -> None:
        """Copy ``data`` to physical address ``pa``."""
        size = memoryview(data).nbytes
        self.xpu.check_normal_world("write", pa, size)
        self.memory.copy_in(self.memory.pa_to_da(pa, size), data)

    def zero(self, pa: int, size: int) -> None:
        """Zero ``[pa, pa+size)``."""
        self.xpu.check_normal_world("write", pa, size)
        self.memory.fill(self.memory.pa_to_da(pa, size), size)

    def read(self, pa: int, size: int) -> bytes:
        """A copy of ``[pa, pa+size)``."""
        self.xpu.check_normal_world("read", pa, size)
        return bytes(self.memory.view_pa(pa, size))


class PasService:
    """TrustZone's PAS service for a set of peripherals (see module docs).

    Parameters
    ----------
    memory : DeviceMemory
        Physical memory; it must hold every carveout.
    carveouts : mapping
        PAS id -> the :class:`Carveout` that peripheral may run from.
    trusted_root : bytes or None
        SHA-256 of the root certificate the chain must end in (the model of
        the OEM public-key-hash fuse); None models a device without secure
        boot: the chain and signature are reported but not required.
    """

    def __init__(
        self,
        memory: DeviceMemory,
        carveouts: Mapping[int, Carveout],
        trusted_root: bytes | None,
    ) -> None:
        self.memory = memory
        self.trusted_root = trusted_root
        self.xpu = Xpu()
        self.calls: list[ScmCall] = []
        self._observer: Observer | None = None
        self._peripherals = {
            pas_id: _Peripheral(pas_id, region) for pas_id, region in carveouts.items()
        }
        for region in carveouts.values():
            memory.locate_pa(region.pa, region.size)  # AddressError if not memory

    @property
    def observer(self) -> Observer | None:
        """Told of every SCM call, its return and each XPU change, in order."""
        return self._observer

    @observer.setter
    def observer(self, value: Observer | None) -> None:
        self._observer = value
        self.xpu.observer = value

    def normal_world(self) -> NormalWorldBus:
        """The bus Linux uses: the same memory behind this service's XPU."""
        return NormalWorldBus(self.memory, self.xpu)

    def state(self, pas_id: int) -> PasState:
        """The life-cycle state of ``pas_id``.

        Raises
        ------
        KeyError
            ``pas_id`` is not one of this service's peripherals.
        """
        return self._peripherals[pas_id].state

    # -- the SCM calls -------------------------------------------------------

    def is_supported(self, pas_id: int) -> ScmCall:
        """PAS_IS_SUPPORTED: result 1 for a known PAS id, else 0."""
        known = int(pas_id in self._peripherals)
        return self._call(c.QCOM_SCM_PIL_PAS_IS_SUPPORTED, pas_id, (), lambda: known)

    def init_image(self, pas_id: int, metadata: Buffer) -> ScmCall:
        """PAS_INIT_IMAGE: check and keep a private copy of the metadata."""
        size = memoryview(metadata).nbytes
        return self._call(
            c.QCOM_SCM_PIL_PAS_INIT_IMAGE,
            pas_id,
            (size,),
            lambda: self._init_image(self._peripheral(pas_id), metadata, size),
        )

    def mem_setup(self, pas_id: int, addr: int, size: int) -> ScmCall:
        """PAS_MEM_SETUP: where a relocatable image will be placed."""
        return self._call(
            c.QCOM_SCM_PIL_PAS_MEM_SETUP,
            pas_id,
            (addr, size),
            lambda: self._mem_setup(self._peripheral(pas_id), addr, size),
        )

    def auth_and_reset(self, pas_id: int) -> ScmCall:
        """PAS_AUTH_AND_RESET: lock, verify what Linux loaded, release reset."""
        return self._call(
            c.QCOM_SCM_PIL_PAS_AUTH_AND_RESET,
            pas_id,
            (),
            lambda: self._auth_and_reset(self._peripheral(pas_id)),
        )

    def shutdown(self, pas_id: int) -> ScmCall:
        """PAS_SHUTDOWN: stop the processor and unlock its carveout."""
        return self._call(
            c.QCOM_SCM_PIL_PAS_SHUTDOWN,
            pas_id,
            (),
            lambda: self._shutdown(self._peripheral(pas_id)),
        )

    # -- plumbing ------------------------------------------------------------

    def _peripheral(self, pas_id: int) -> _Peripheral:
        try:
            return self._peripherals[pas_id]
        except KeyError:
            raise _Refused(c.QCOM_SCM_EINVAL_ARG, f"unknown PAS id {pas_id}") from None

    def _call(
        self,
        command: int,
        pas_id: int,
        args: tuple[int, ...],
        body: Callable[[], int | None],
    ) -> ScmCall:
        """Run one SCM call: tell the observer, run ``body``, record the answer.

        ``body`` returns ``result[0]`` (None for 0); a :class:`_Refused` it
        raises becomes the call's error status.
        """
        name = c.PAS_COMMAND_NAMES[command]
        if self._observer is not None:
            self._observer("scm", name, {"pas_id": pas_id, "args": list(args)})
        try:
            result = body()
        except _Refused as exc:
            return self._record(
                ScmCall(command, pas_id, args, exc.status, 0, exc.reason)
            )
        return self._record(
            ScmCall(command, pas_id, args, c.QCOM_SCM_SUCCESS, result or 0)
        )

    def _record(self, call: ScmCall) -> ScmCall:
        self.calls.append(call)
        if self._observer is not None:
            detail = {"pas_id": call.pas_id, "ret": call.ret, "reason": call.reason}
            self._observer("scm_ret", call.name, detail)
        return call

    # -- PAS_INIT_IMAGE ------------------------------------------------------

    def _init_image(self, p: _Peripheral, metadata: Buffer, size: int) -> None:
        if p.state is PasState.RUNNING:
            raise _Refused(c.QCOM_SCM_V2_EBUSY, "the processor is running")
        if size > MAX_METADATA:
            raise _Refused(
                c.QCOM_SCM_ENOMEM,
                f"metadata of {size:#x} bytes exceeds {MAX_METADATA:#x}",
            )
        blob = bytes(metadata)  # the private copy: Linux's buffer is not read again
        meta = _check_metadata(blob)
        if not meta.relocatable:
            _check_fixed_segments(meta, p.carveout)
        if self.trusted_root is not None:
            _authenticate(meta.hash_segment, self.trusted_root)
        p.metadata, p.reloc_base, p.state = meta, None, PasState.INITIALISED

    # -- PAS_MEM_SETUP -------------------------------------------------------

    def _mem_setup(self, p: _Peripheral, addr: int, size: int) -> None:
        meta = _initialised(p)
        if not meta.relocatable:
            raise _Refused(c.QCOM_SCM_EINVAL_ARG, "image is not relocatable")
        if not p.carveout.holds(addr, size):
            raise _Refused(
                c.QCOM_SCM_EINVAL_ADDR,
                f"[{addr:#x}, +{size:#x}) is not inside carveout "
                f"{p.carveout.name} [{p.carveout.pa:#x}, +{p.carveout.size:#x})",
            )
        if size < meta.span:
            raise _Refused(
                c.QCOM_SCM_EINVAL_ARG,
                f"size {size:#x} is smaller than the image span {meta.span:#x}",
            )
        p.reloc_base = addr

    # -- PAS_AUTH_AND_RESET --------------------------------------------------

    def _auth_and_reset(self, p: _Peripheral) -> None:
        meta = _initialised(p)
        if meta.relocatable and p.reloc_base is None:
            raise _Refused(
                c.QCOM_SCM_EINVAL_ARG, "relocatable image without PAS_MEM_SETUP"
            )
        self.xpu.lock(p.pas_id, p.carveout)  # before reading: no TOCTOU window
        try:
            for index, ph in enumerate(meta.phdrs):
                if is_loadable(ph):
                    self._verify_segment(p, meta, index, ph)
        except _Refused:
            self._fail(p)
            raise
        p.state = PasState.RUNNING

    def _load_address(self, p: _Peripheral, meta: _Metadata, ph: Phdr) -> int:
        if p.reloc_base is None:
            return ph.p_paddr
        return p.reloc_base + (ph.p_paddr - meta.min_addr)

    def _verify_segment(
        self, p: _Peripheral, meta: _Metadata, index: int, ph: Phdr
    ) -> None:
        pa = self._load_address(p, meta, ph)
        if not p.carveout.holds(pa, ph.p_memsz):  # checked at init/mem_setup too
            raise _Refused(
                c.QCOM_SCM_EINVAL_ADDR,
                f"segment {index} at {pa:#x} leaves the carveout",
            )
        expected = meta.hash_segment.hashes[index]
        if ph.p_filesz:
            actual = _digest(
                meta.hash_segment.algorithm, self.memory.view_pa(pa, ph.p_filesz)
            )
            if actual != expected:
                raise _Refused(
                    c.QCOM_SCM_ERROR,
                    f"segment {index} at {pa:#x}: loaded bytes hash to "
                    f"{actual.hex()[:16]}..., table has {expected.hex()[:16]}...",
                )
        if ph.p_memsz > ph.p_filesz:
            da = self.memory.pa_to_da(pa + ph.p_filesz, ph.p_memsz - ph.p_filesz)
            self.memory.fill(da, ph.p_memsz - ph.p_filesz)

    def _fail(self, p: _Peripheral) -> None:
        """After a failed authentication: wipe, unlock, forget."""
        region = p.carveout
        self.memory.scrub_pa(region.pa, region.size)
        self.xpu.unlock(p.pas_id)
        p.state, p.metadata, p.reloc_base = PasState.IDLE, None, None

    # -- PAS_SHUTDOWN --------------------------------------------------------

    def _shutdown(self, p: _Peripheral) -> None:
        if p.state is PasState.IDLE:
            raise _Refused(c.QCOM_SCM_EINVAL_ARG, "nothing to shut down")
        self.xpu.unlock(p.pas_id)
        p.state, p.metadata, p.reloc_base = PasState.IDLE, None, None


def _initialised(p: _Peripheral) -> _Metadata:
    if p.state is PasState.RUNNING:
        raise _Refused(c.QCOM_SCM_V2_EBUSY, "the processor is running")
    if p.metadata is None:
        raise _Refused(c.QCOM_SCM_EINVAL_ARG, "no PAS_INIT_IMAGE for this PAS id")
    return p.metadata


def _digest(algorithm: str, view: np.ndarray) -> bytes:
    """Digest of device memory, with the shared SHA-256 kernel when it applies."""
    if algorithm == "sha256":
        digest: bytes = kernels.sha256_staged(view)
        return digest
    return hashlib.new(algorithm, view).digest()


def _check_metadata(blob: bytes) -> _Metadata:
    """Parse the metadata blob; every rule broken is ``QCOM_SCM_EINVAL_ARG``."""
    try:
        return _parse_metadata(blob)
    except MdtError as exc:
        raise _Refused(c.QCOM_SCM_EINVAL_ARG, f"metadata: {exc}") from exc


def _parse_metadata(blob: bytes) -> _Metadata:
    hdr = check_header(blob)
    phdrs = read_phdrs(blob, hdr)
    hash_index = find_hash_segment(phdrs) if hdr.e_phnum >= 2 else None
    if hash_index is None or phdrs[0].p_type == c.PT_LOAD:
        raise MdtFormatError(
            "e_phnum", hdr.e_phnum, "needs a non-LOAD header segment and a hash segment"
        )
    ehdr_size = phdrs[0].p_filesz
    if not hdr.phdr_end <= ehdr_size <= len(blob):
        raise MdtFormatError(
            "phdr[0].p_filesz",
            ehdr_size,
            f"must cover the headers and fit the {len(blob):#x}-byte blob",
        )
    if len(blob) - ehdr_size != phdrs[hash_index].p_filesz:
        raise MdtFormatError(
            f"phdr[{hash_index}].p_filesz",
            phdrs[hash_index].p_filesz,
            f"the blob holds {len(blob) - ehdr_size:#x} hash-segment bytes",
        )
    table = parse_hash_segment(blob[ehdr_size:], hdr.e_phnum)
    if hashlib.new(table.algorithm, blob[:ehdr_size]).digest() != table.hashes[0]:
        raise MdtFormatError(
            "hash[0]", 0, "does not match the ELF header + program headers"
        )
    loadable = [(i, p) for i, p in enumerate(phdrs) if is_loadable(p)]
    if not loadable:
        raise MdtFormatError("e_phnum", hdr.e_phnum, "no loadable segment")
    for i, ph in loadable:
        if ph.p_filesz > ph.p_memsz:
            raise MdtFormatError(
                f"phdr[{i}].p_filesz",
                ph.p_filesz,
                f"larger than p_memsz {ph.p_memsz:#x}",
            )
    _check_no_overlap(loadable)
    low = min(p.p_paddr for _, p in loadable)
    high = max(p.p_paddr + p.p_memsz for _, p in loadable)
    return _Metadata(blob, hdr, phdrs, table, is_relocatable(phdrs), low, high - low)


def _check_no_overlap(loadable: list[tuple[int, Phdr]]) -> None:
    addrs = np.array([p.p_paddr for _, p in loadable], dtype=np.uint64)
    sizes = np.array([p.p_memsz for _, p in loadable], dtype=np.uint64)
    pair = kernels.find_overlap(addrs, sizes)
    if pair is not None:
        first, second = loadable[pair[0]][0], loadable[pair[1]][0]
        raise MdtFormatError(
            f"phdr[{second}].p_paddr",
            loadable[pair[1]][1].p_paddr,
            f"overlaps segment {first}",
        )


def _check_fixed_segments(meta: _Metadata, carveout: Carveout) -> None:
    for index, ph in enumerate(meta.phdrs):
        if is_loadable(ph) and not carveout.holds(ph.p_paddr, ph.p_memsz):
            raise _Refused(
                c.QCOM_SCM_EINVAL_ADDR,
                f"segment {index} [{ph.p_paddr:#x}, +{ph.p_memsz:#x}) is not inside "
                f"carveout {carveout.name} [{carveout.pa:#x}, +{carveout.size:#x})",
            )


def _authenticate(table: HashSegment, trusted_root: bytes) -> None:
    """Chain to the trusted root, and the OEM signature over the table."""
    oem = [a for a in table.authorities() if a.name == "oem"]
    if not oem or not oem[0].signature:
        raise _Refused(c.QCOM_SCM_ERROR, "unsigned image (no OEM signature)")
    try:
        leaf = certs.verify_chain(oem[0].cert_chain, trusted_root)[0]
        certs.verify_signature(
            leaf, oem[0].signature, table.signed_bytes, table.algorithm
        )
    except MdtError as exc:
        raise _Refused(c.QCOM_SCM_ERROR, f"authentication failed: {exc}") from exc
