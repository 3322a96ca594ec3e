"""``struct rproc`` and the rproc core (``drivers/remoteproc/remoteproc_core.c``).

Each method names the kernel function it models; the orders and the failure
unwinding are those of Linux 6.12 (``linux-remoteproc.md`` sections 1-2),
plus the TEE series' additions selected by ``series``:

* ``"mainline"``: no ``load_fw``/``release_fw`` calls;
* ``"v15"`` (the thread's version): ``rproc_load_fw`` after
  ``request_firmware`` in ``rproc_boot`` and in ``rproc_boot_recovery``;
  ``rproc_release_fw`` in the ``rproc_fw_boot`` clean-up path, in
  ``rproc_boot`` when ``rproc_fw_boot`` failed (so twice, as the review of
  patch 3/8 pointed out), in recovery when ``rproc_start`` fails, and at the
  end of ``rproc_shutdown``;
* ``"v22"`` (v16 and later): no ``load_fw``; ``rproc_release_fw`` when
  ``rproc_fw_boot`` fails (in ``rproc_boot``), when ``rproc_start`` fails in
  recovery, and in ``rproc_shutdown`` after the IOMMU is disabled.

``rproc->lock`` is a real lock: ``boot``, ``shutdown``, ``detach``,
``trigger_recovery``, ``set_firmware`` and the crash worker take it, so sysfs
writes from several threads keep ``power`` and ``state`` consistent.
"""

from __future__ import annotations

import dataclasses
import errno
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from rproctee.linux.carveouts import DmaPool, MemEntry, da_to_va
from rproctee.linux.coredump import (
    ELFCLASSNONE,
    EM_NONE,
    CoreDump,
    DumpSegment,
    rproc_coredump,
)
from rproctee.linux.errors import RprocErrno, einval, enodev, enoent, enomem
from rproctee.linux.events import EventLog
from rproctee.linux.ops import DeviceTable, Firmware, RprocOps
from rproctee.linux.remote import RemoteProcessor
from rproctee.linux.resources import Trace, alloc_registered_carveouts
from rproctee.linux.resources import handle_resources as _handle_resources
from rproctee.linux.state import CrashType, DumpConf, RprocState, crash_word
from rproctee.linux.virtio import RprocVdev
from rproctee.platform.memory import DeviceMemory

SERIES = ("mainline", "v15", "v22")
#: ``RPROC_FEAT_ATTACH_ON_RECOVERY``.
FEAT_ATTACH_ON_RECOVERY = 0


def alloc_ops(ops: RprocOps, series: str) -> RprocOps:
    """``rproc_alloc_ops``: a private copy with the defaults installed.

    ``coredump`` defaults to ``rproc_coredump``. When ``load`` is NULL (v15:
    and ``load_fw`` too) the five ELF defaults are installed, overwriting
    those slots.
    """
    own = dataclasses.replace(ops)
    if own.coredump is None:
        own.coredump = rproc_coredump
    skip = own.load is not None or (series == "v15" and own.load_fw is not None)
    if not skip:
        from rproctee.linux.elf_ops import install_elf_defaults

        install_elf_defaults(own)
    return own


RequestFirmware = Callable[[str], bytes | bytearray | memoryview]


class Rproc:
    """One remote processor as the Linux core sees it (``struct rproc``).

    Parameters
    ----------
    name : str
        ``rproc->name`` (stm32: the DT node name, ``m4``).
    ops : RprocOps
        The driver's ops; copied by :func:`alloc_ops`.
    firmware : str, optional
        Firmware file name (default ``rproc-<name>-fw``).
    request_firmware : callable(name) -> bytes, optional
        The firmware loader (``request_firmware``); raising ``KeyError`` or
        ``OSError`` gives ``-ENOENT``.
    memory : DeviceMemory, optional
        The device memories carveouts map.
    series : str
        ``"mainline"``, ``"v15"`` or ``"v22"`` (see the module docstring).
    log : EventLog, optional
        Where every step is recorded.
    remote : RemoteProcessor, optional
        The core that runs the firmware.
    """

    def __init__(
        self,
        name: str,
        ops: RprocOps,
        *,
        firmware: str | None = None,
        request_firmware: RequestFirmware | None = None,
        memory: DeviceMemory | None = None,
        series: str = "mainline",
        log: EventLog | None = None,
        remote: RemoteProcessor | None = None,
    ) -> None:
        if series not in SERIES:
            raise ValueError(f"series {series!r} is not one of {', '.join(SERIES)}")
        self.name = name
        self.series = series
        self.firmware = firmware or f"rproc-{name}-fw"
        self.ops = alloc_ops(ops, series)
        self.log = log if log is not None else EventLog()
        self.memory = memory
        self.remote = remote
        self._request = request_firmware
        self.lock = threading.Lock()
        self._work_lock = threading.Lock()
        self._state = RprocState.OFFLINE
        self.power = 0
        self.index = 0
        self.recovery_disabled = False
        self.dump_conf = DumpConf.DISABLED
        self.sysfs_read_only = False
        self.has_iommu = False
        self.features: set[int] = set()
        self.crash_cnt = 0
        self.carveouts: list[MemEntry] = []
        self.mappings: list[tuple[int, int, int]] = []
        self.traces: list[Trace] = []
        self.rvdevs: list[RprocVdev] = []
        self.subdevs: list[Any] = []
        self.subdevs_started = False
        self.notifyids: dict[int, object] = {}
        self.max_notifyid = -1
        self.nb_vdev = 0
        self.table_ptr: bytearray | DeviceTable | None = None
        self.cached_table: bytearray | None = None
        self.clean_table: bytes | None = None
        self.table_sz = 0
        self.bootaddr = 0
        self.dump_segments: list[DumpSegment] = []
        self.elf_class = ELFCLASSNONE
        self.elf_machine = EM_NONE
        self.coredumps: list[bytes] = []
        self.dump_reader: Callable[[CoreDump], bytes] | None = None
        self.dma_pool = DmaPool()
        self.messages: list[tuple[str, str]] = []
        self.priv: dict[str, Any] = {}
        self.defer_crash_work = False
        self._crash_queued = False
        self.deleting = False
        if remote is not None:
            remote.on_crash = lambda crash: self.report_crash(crash.type)
            remote.on_kick = self._vq_interrupt

    # -- bookkeeping ----------------------------------------------------------
    @property
    def state(self) -> RprocState:
        """``rproc->state``."""
        return self._state

    def _set_state(self, new: RprocState) -> None:
        if new != self._state:
            self.log.add(
                "linux", "state", new.name, **{"from": self._state.name, "to": new.name}
            )
        self._state = new

    def log_msg(self, level: str, text: str, **detail: Any) -> None:
        """A kernel message (``dev_info``/``dev_warn``/``dev_err``)."""
        self.messages.append((level, text))
        self.log.add("linux", "log", text, level=level, **detail)

    def _call(self, name: str, *args: Any) -> Any:
        """Call op ``name`` (present) with the event log around it."""
        fn = getattr(self.ops, name)
        # which lane of a sequence diagram runs it: the TEE client driver for
        # the remoteproc_tee functions, the rproc driver/core otherwise
        lane = "tee" if getattr(fn, "__module__", "").endswith("tee_ops") else "linux"
        self.log.add("linux", "op", name, lane=lane, fn=getattr(fn, "__name__", name))
        t0 = time.perf_counter()
        try:
            result = fn(self, *args)
        except RprocErrno as exc:
            ms = (time.perf_counter() - t0) * 1e3
            self.log.add("linux", "op_ret", name, ret=f"-{exc.name}",
                         lane=lane, ms=ms, error=exc.message)  # fmt: skip
            raise
        ms = (time.perf_counter() - t0) * 1e3
        self.log.add("linux", "op_ret", name, ret="0", lane=lane, ms=ms)
        return result

    def _has(self, name: str) -> bool:
        return getattr(self.ops, name) is not None

    # -- remoteproc_internal.h wrappers --------------------------------------
    def _sanity_check(self, fw: Firmware) -> None:
        if self._has("sanity_check"):
            self._call("sanity_check", fw)

    def _get_boot_addr(self, fw: Firmware) -> int:
        return int(self._call("get_boot_addr", fw)) if self._has("get_boot_addr") else 0

    def _parse_fw(self, fw: Firmware) -> None:
        if self._has("parse_fw"):
            self._call("parse_fw", fw)

    def _load_segments(self, fw: Firmware) -> None:
        if not self._has("load"):
            raise einval("Failed to load program segments: no load op")
        self._call("load", fw)

    def _find_loaded_rsc_table(self, fw: Firmware) -> DeviceTable | None:
        if not self._has("find_loaded_rsc_table"):
            return None
        table: DeviceTable | None = self._call("find_loaded_rsc_table", fw)
        return table

    def _prepare_device(self) -> None:
        if self._has("prepare"):
            self._call("prepare")

    def _unprepare_device(self) -> None:
        if self._has("unprepare"):
            self._call("unprepare")

    def _load_fw(self, fw: Firmware) -> None:
        """``rproc_load_fw`` (TEE series v15)."""
        if self._has("load_fw"):
            self._call("load_fw", fw)

    def _release_fw(self) -> None:
        """``rproc_release_fw`` (TEE series v15..v22)."""
        if self._has("release_fw"):
            self._call("release_fw")

    def _request_firmware(self) -> Firmware:
        """``request_firmware(rproc->firmware)``."""
        if self._request is None:
            raise enoent(f"request_firmware failed: no loader for {self.firmware}")
        try:
            data = self._request(self.firmware)
        except (KeyError, OSError, RprocErrno) as exc:
            self.log_msg("err", f"request_firmware failed: -{errno.ENOENT}")
            raise enoent(f"request_firmware failed: {self.firmware}: {exc}") from exc
        self.log.add("linux", "log", "request_firmware", level="info",
                     firmware=self.firmware, size=memoryview(data).nbytes)  # fmt: skip
        return Firmware(self.firmware, data)

    # -- carveouts, notify ids, dump segments ----------------------------------
    def add_carveout(self, mem: MemEntry) -> None:
        """``rproc_add_carveout``."""
        self.carveouts.append(mem)

    def find_carveout_by_name(self, name: str) -> MemEntry | None:
        """``rproc_find_carveout_by_name``."""
        return next((m for m in self.carveouts if m.name == name), None)

    def coredump_add_segment(self, da: int, size: int) -> None:
        """``rproc_coredump_add_segment``."""
        self.dump_segments.append(DumpSegment(da, size))

    def coredump_set_elf_info(self, elf_class: int, machine: int) -> None:
        """``rproc_coredump_set_elf_info``; a class other than 1/2 is -EINVAL."""
        if elf_class not in (1, 2):
            raise einval(f"ELF class {elf_class} is neither ELFCLASS32 nor 64")
        self.elf_class, self.elf_machine = elf_class, machine

    def idr_alloc(self, owner: object) -> int:
        """``idr_alloc(&rproc->notifyids, ...)``: lowest free id from 0."""
        nid = 0
        while nid in self.notifyids:
            nid += 1
        self.notifyids[nid] = owner
        self.max_notifyid = max(self.max_notifyid, nid)
        return nid

    def idr_remove(self, nid: int) -> None:
        """``idr_remove``."""
        self.notifyids.pop(nid, None)

    def da_to_va(self, da: int, size: int) -> tuple[MemEntry, int] | None:
        """``rproc_da_to_va``: the driver's ``da_to_va`` op, then the carveouts.

        As in the kernel, the op answers first and the carveout walk runs
        only when it returns NULL (or there is none).  A buffer the op
        returns comes back as a :class:`MemEntry` of just that buffer
        (offset 0, ``dma`` its physical address in the device memory), so
        callers read ``mem.va`` either way.

        Returns
        -------
        (MemEntry, int) or None
            Where ``[da, da+size)`` is mapped, or None when nowhere.
        """
        if self.ops.da_to_va is not None:
            va = self.ops.da_to_va(self, da, size)
            if va is not None:
                return self._op_mapping(da, size, va), 0
        try:
            return da_to_va(self.carveouts, da, size)
        except LookupError:
            return None

    def _op_mapping(self, da: int, size: int, va: Any) -> MemEntry:
        """The buffer ``ops->da_to_va`` returned, as a carveout-like entry.

        Not ``is_iomem``: its ``da`` is the remote's (a relocated image's
        own address), not one :meth:`mem_write` could give the device memory.
        """
        pa = self._device_pa(va)
        return MemEntry("ops->da_to_va", da, da if pa is None else pa, size, va=va)

    def _device_pa(self, va: Any) -> int | None:
        """The physical address of ``va`` if it is a view of the device memory."""
        if self.memory is None:
            return None
        start = np.asarray(va).__array_interface__["data"][0]
        for index, region in enumerate(self.memory.regions):
            base = self.memory.array(index).__array_interface__["data"][0]
            if base <= start < base + region.size:
                return int(region.pa + (start - base))
        return None

    def copy_segment(self, seg: DumpSegment, offset: int, size: int) -> bytes:
        """``rproc_copy_segment``: segment bytes (through :meth:`da_to_va`, so
        the driver's op first), or 0xFF when unmapped."""
        hit = self.da_to_va(seg.da + offset, size)
        if hit is None:
            # remoteproc_coredump.c's line, its stray ')' included; %pad of
            # a 32-bit dma_addr_t prints 8 hex digits
            self.log_msg(
                "err",
                f"invalid copy request for segment 0x{seg.da:08x} with offset "
                f"{offset} and size {size})",
            )
            return b"\xff" * size
        mem, off = hit
        return bytes(mem.va[off : off + size])

    def mem_write(self, mem: MemEntry, offset: int, data: bytes) -> None:
        """A host write into a mapped carveout (recorded when it is device memory)."""
        if self.memory is not None and mem.is_iomem:
            self.memory.copy_in(mem.da + offset, data)
        else:
            mem.va[offset : offset + len(data)] = bytearray(data)

    # -- the table in effect ----------------------------------------------------
    def table_bytes(self) -> bytes | None:
        """A snapshot of ``table_ptr`` (``table_sz`` bytes), or None."""
        ptr = self.table_ptr
        if ptr is None:
            return None
        if isinstance(ptr, DeviceTable):
            if self.memory is None:
                raise enodev("device-resident table without device memory")
            return self.memory.read_da(ptr.da, self.table_sz)
        return bytes(ptr[: self.table_sz])

    def table_write(self, offset: int, data: bytes) -> None:
        """Write into the table in effect (device writes are recorded)."""
        ptr = self.table_ptr
        if ptr is None:
            return
        if offset < 0 or offset + len(data) > self.table_sz:
            raise einval(
                f"table write at {offset:#x}+{len(data)} outside the "
                f"{self.table_sz}-byte table"
            )
        if isinstance(ptr, DeviceTable):
            assert self.memory is not None
            self.memory.copy_in(ptr.da + offset, data)
        else:
            ptr[offset : offset + len(data)] = data

    def set_cached_table(self, data: bytes) -> None:
        """``cached_table = kmemdup(table)``; ``table_ptr``; ``table_sz``."""
        self.cached_table = bytearray(data)
        self.table_ptr = self.cached_table
        self.table_sz = len(data)

    def _reset_rsc_table_on_stop(self) -> None:
        """``rproc_reset_rsc_table_on_stop``."""
        if self.table_ptr is None:
            return
        if self.cached_table is not None:
            # normal boot: the device copy's runtime edits are discarded
            self.table_ptr = self.cached_table
            return
        raw = self.table_bytes()
        self.cached_table = bytearray(raw or b"")
        self.table_ptr = self.cached_table
        self.clean_table = None

    def _reset_rsc_table_on_detach(self) -> None:
        """``rproc_reset_rsc_table_on_detach``."""
        if self.table_ptr is None:
            return
        if self.clean_table is None:
            raise einval("no clean resource table to restore on detach")
        raw = self.table_bytes() or b""
        ptr = self.table_ptr
        if isinstance(ptr, DeviceTable) and self.memory is not None:
            self.memory.copy_in(ptr.da, self.clean_table[: self.table_sz])
        self.cached_table = bytearray(raw)
        self.table_ptr = self.cached_table

    # -- subdevices ---------------------------------------------------------------
    def _prepare_subdevices(self) -> None:
        done: list[Any] = []
        try:
            for sub in self.subdevs:
                if hasattr(sub, "prepare"):
                    sub.prepare()
                done.append(sub)
        except RprocErrno:
            for sub in reversed(done):
                if hasattr(sub, "unprepare"):
                    sub.unprepare()
            raise

    def _start_subdevices(self) -> None:
        done: list[Any] = []
        try:
            for sub in self.subdevs:
                sub.start()
                done.append(sub)
        except RprocErrno:
            for sub in reversed(done):
                sub.stop(True)
            raise
        self.subdevs_started = True

    def _stop_subdevices(self, crashed: bool) -> None:
        if not self.subdevs_started:
            return
        for sub in reversed(self.subdevs):
            sub.stop(crashed)
        self.subdevs_started = False

    def _unprepare_subdevices(self) -> None:
        for sub in reversed(self.subdevs):
            if hasattr(sub, "unprepare"):
                sub.unprepare()

    # -- boot ----------------------------------------------------------------------
    def boot(self) -> None:
        """``rproc_boot``.

        Raises
        ------
        RprocErrno
            ``-ENODEV`` when deleted; any error of the boot, with ``power``
            given back.
        """
        with self.lock:
            if self.deleting:  # 6.12: rproc->deleting, set first by rproc_del
                raise enodev(f"can't boot deleting rproc {self.name}")
            self.power += 1
            if self.power > 1:
                return
            try:
                self._boot_locked()
            except RprocErrno:
                self.power -= 1
                raise

    def _boot_locked(self) -> None:
        if self._state == RprocState.DETACHED:
            self.log_msg("info", f"attaching to {self.name}")
            self._attach()
            return
        self.log_msg("info", f"powering up {self.name}")
        fw = self._request_firmware()
        if self.series == "v15":
            self._load_fw(fw)  # failure: power down, no release_fw (as v15)
        try:
            self._fw_boot(fw)
        except RprocErrno:
            if self.series != "mainline":
                self._release_fw()
            raise

    def _fw_boot(self, fw: Firmware) -> None:
        """``rproc_fw_boot``: the order of spec 2.3, with its unwinding."""
        self._sanity_check(fw)
        self.log_msg("info", f"Booting fw image {fw.name}, size {fw.size}")
        try:
            self._prepare_device()
        except RprocErrno as exc:
            self.log_msg("err", f"can't prepare rproc {self.name}: {exc.ret}")
            raise
        self.bootaddr = self._get_boot_addr(fw)
        try:
            self._parse_fw(fw)
        except RprocErrno:
            self._unprepare_device()
            raise
        self.max_notifyid = -1
        self.nb_vdev = 0
        try:
            self._resources_and_start(fw)
        except RprocErrno:
            self._resource_cleanup()
            self.cached_table = None
            self.table_ptr = None
            if self.series == "v15":
                self._release_fw()
            self._unprepare_device()
            raise

    def _resources_and_start(self, fw: Firmware) -> None:
        try:
            _handle_resources(self)
        except RprocErrno as exc:
            self.log_msg("err", f"Failed to process resources: {exc.ret}")
            raise
        try:
            alloc_registered_carveouts(self)
        except RprocErrno as exc:
            self.log_msg("err", f"Failed to allocate associated carveouts: {exc.ret}")
            raise
        self._start(fw)

    def _start(self, fw: Firmware) -> None:
        """``rproc_start``."""
        try:
            self._load_segments(fw)
        except RprocErrno as exc:
            self.log_msg("err", f"Failed to load program segments: {exc.ret}")
            raise
        loaded = self._find_loaded_rsc_table(fw)
        if loaded is not None:
            if self.cached_table is not None and self.memory is not None:
                # memcpy(loaded_table, cached_table, table_sz): a host write
                image = bytes(self.cached_table[: self.table_sz])
                self.memory.copy_in(loaded.da, image)
            self.table_ptr = loaded
        if self.remote is not None:
            # the firmware knows where its own table was linked
            self.remote.rsc = (loaded.da, self.table_sz) if loaded else None
        try:
            self._prepare_subdevices()
        except RprocErrno:
            self.table_ptr = self.cached_table
            raise
        try:
            self._call("start")
        except RprocErrno as exc:
            self.log_msg("err", f"can't start rproc {self.name}: {exc.ret}")
            self._unprepare_subdevices()
            self.table_ptr = self.cached_table
            raise
        try:
            self._start_subdevices()
        except RprocErrno as exc:
            line = f"failed to probe subdevices for {self.name}: {exc.ret}"
            self.log_msg("err", line)
            self._call_stop_quiet()
            self._unprepare_subdevices()
            self.table_ptr = self.cached_table
            raise
        self._set_state(RprocState.RUNNING)
        self.log_msg("info", f"remote processor {self.name} is now up")

    def _call_stop_quiet(self) -> None:
        try:
            self._call("stop")
        except RprocErrno:
            pass  # the kernel ignores ops->stop's result on this unwind path

    # -- stop / shutdown ----------------------------------------------------------
    def _stop(self, crashed: bool) -> None:
        """``rproc_stop``."""
        if not self._has("stop"):
            raise einval(f"{self.name}: no stop op")
        self._stop_subdevices(crashed)
        self._reset_rsc_table_on_stop()
        try:
            self._call("stop")
        except RprocErrno as exc:
            self.log_msg("err", f"can't stop rproc: {exc.ret}")
            raise
        self._unprepare_subdevices()
        self._set_state(RprocState.OFFLINE)
        self.log_msg("info", f"stopped remote processor {self.name}")

    def shutdown(self) -> None:
        """``rproc_shutdown``.

        Raises
        ------
        RprocErrno
            ``-EINVAL`` unless RUNNING, ATTACHED or CRASHED; ``ops->stop``'s
            error (with ``power`` given back).
        """
        with self.lock:
            # 6.12.117 also shuts a CRASHED rproc down (recovery disabled or
            # failed before its stop), telling the subdevices it crashed
            live = (RprocState.RUNNING, RprocState.ATTACHED, RprocState.CRASHED)
            if self._state not in live:
                raise einval(f"{self.name} is {self._state.word}, not running")
            crashed = self._state == RprocState.CRASHED
            self.power -= 1
            if self.power > 0:
                return
            try:
                self._stop(crashed)
            except RprocErrno:
                self.power += 1
                raise
            self._resource_cleanup()
            self._unprepare_device()
            if self.series == "v22":
                self._release_fw()
            self.cached_table = None
            self.table_ptr = None
            self.table_sz = 0
            if self.series == "v15":
                self._release_fw()

    def _resource_cleanup(self) -> None:
        """``rproc_resource_cleanup``."""
        self.traces.clear()
        self.mappings.clear()
        for mem in list(self.carveouts):
            if mem.release is not None:
                mem.release(self, mem)
        self.carveouts.clear()
        for rvdev in list(self.rvdevs):
            rvdev.free_vrings()
            if rvdev in self.subdevs:
                self.subdevs.remove(rvdev)
        self.rvdevs.clear()
        self.dump_segments.clear()

    # -- attach / detach ----------------------------------------------------------
    def _attach(self) -> None:
        """``rproc_attach`` (spec 1.8)."""
        self._prepare_device()
        try:
            self._set_rsc_table()
            self.max_notifyid = -1
            self.nb_vdev = 0
            _handle_resources(self)
            alloc_registered_carveouts(self)
            self.__attach()
        except RprocErrno:
            self._resource_cleanup()
            self._unprepare_device()
            raise

    def _set_rsc_table(self) -> None:
        """``rproc_set_rsc_table``."""
        table = (
            self._call("get_loaded_rsc_table")
            if self._has("get_loaded_rsc_table")
            else None
        )
        if table is None:
            return
        self.table_ptr = table
        self.table_sz = table.size
        self.cached_table = None
        if self._has("detach"):
            self.clean_table = self.table_bytes()

    def __attach(self) -> None:
        """``__rproc_attach``."""
        self._prepare_subdevices()
        try:
            self._call("attach")
        except RprocErrno:
            self._unprepare_subdevices()
            raise
        try:
            self._start_subdevices()
        except RprocErrno:
            self._call_stop_quiet()
            self._unprepare_subdevices()
            raise
        self._set_state(RprocState.ATTACHED)
        self.log_msg("info", f"remote processor {self.name} is now attached")

    def _detach_locked(self) -> None:
        """``__rproc_detach``."""
        if not self._has("detach"):
            raise einval(f"{self.name}: no detach op")
        self._stop_subdevices(False)
        self._reset_rsc_table_on_detach()
        self._call("detach")
        self._unprepare_subdevices()
        self._set_state(RprocState.DETACHED)
        self.log_msg("info", f"detached remote processor {self.name}")

    def detach(self) -> None:
        """``rproc_detach``.

        Raises
        ------
        RprocErrno
            ``-EINVAL`` unless ATTACHED or without a detach op.
        """
        with self.lock:
            if self._state != RprocState.ATTACHED:
                raise einval(f"{self.name} is {self._state.word}, not attached")
            self.power -= 1
            if self.power > 0:
                return
            try:
                self._detach_locked()
            except RprocErrno:
                self.power += 1
                raise
            self._resource_cleanup()
            self._unprepare_device()
            self.cached_table = None
            self.table_ptr = None
            self.table_sz = 0

    # -- crash and recovery -------------------------------------------------------
    def report_crash(self, kind: CrashType | int) -> None:
        """``rproc_report_crash``: log, then queue the crash worker once."""
        self.log_msg(
            "err", f"crash detected in {self.name}: type {crash_word(int(kind))}"
        )
        with self._work_lock:
            if self._crash_queued:
                return  # queue_work on a queued item does nothing
            self._crash_queued = True
        if not self.defer_crash_work:
            self.flush_crash_work()

    def flush_crash_work(self) -> None:
        """Run the queued crash worker now (the workqueue, made explicit)."""
        with self._work_lock:
            if not self._crash_queued:
                return
            self._crash_queued = False
        self._crash_handler_work()

    def _crash_handler_work(self) -> None:
        """``rproc_crash_handler_work``."""
        with self.lock:
            if self.deleting or self._state in (RprocState.CRASHED, RprocState.OFFLINE):
                return  # only the first crash is handled; none after a stop
            self._set_state(RprocState.CRASHED)
            self.crash_cnt += 1
            self.log_msg("err", f"handling crash #{self.crash_cnt} in {self.name}")
        if not self.recovery_disabled:
            self.recover_logged()

    def recover_logged(self) -> None:
        """Callers that ignore ``rproc_trigger_recovery``'s result (the crash
        worker, the sysfs and debugfs ``recovery`` files). The kernel prints
        nothing more (the step that failed printed its own line): the result
        goes to the event log only, not to the kernel messages."""
        try:
            self.trigger_recovery()
        except RprocErrno as exc:
            self.log.add("linux", "recovery_failed", self.name, ret=exc.ret,
                         error=exc.message)  # fmt: skip

    def trigger_recovery(self) -> None:
        """``rproc_trigger_recovery``: a no-op unless CRASHED."""
        with self.lock:
            if self.deleting:
                raise enodev(f"{self.name} is being deleted")
            if self._state != RprocState.CRASHED:
                return
            self.log_msg("err", f"recovering {self.name}")
            if FEAT_ATTACH_ON_RECOVERY in self.features:
                self._attach_recovery()
            else:
                self._boot_recovery()

    def _attach_recovery(self) -> None:
        """``rproc_attach_recovery``: detach, clean up, attach again."""
        self._detach_locked()
        self._resource_cleanup()
        self._unprepare_device()
        self.cached_table = None
        self.table_ptr = None
        self._attach()

    def _boot_recovery(self) -> None:
        """``rproc_boot_recovery`` (spec 1.6 and 2.5)."""
        self._stop(True)
        self._call("coredump")
        fw = self._request_firmware()
        if self.series == "v15":
            self._load_fw(fw)
        try:
            self._start(fw)
        except RprocErrno:
            if self.series != "mainline":
                self._release_fw()
            raise

    # -- the rest ---------------------------------------------------------------
    def set_firmware(self, name: str) -> None:
        """``rproc_set_firmware``: OFFLINE only; cut at the first newline.

        Raises
        ------
        RprocErrno
            ``-EBUSY`` when not OFFLINE, ``-EINVAL`` for an empty name.
        """
        from rproctee.linux.errors import ebusy

        with self.lock:
            if self._state != RprocState.OFFLINE:
                raise ebusy("can't change firmware while running")
            cut = name.split("\n", 1)[0]
            if not cut:
                raise einval("can't provide empty string for firmware name")
            self.firmware = cut

    def delete(self) -> None:
        """``rproc_del``: mark deleting, shut down (result ignored), DELETED."""
        self.deleting = True
        try:
            self.shutdown()
        except RprocErrno:
            pass
        with self.lock:
            self._set_state(RprocState.DELETED)

    def _vq_interrupt(self, vqid: int) -> None:
        """``rproc_vq_interrupt``: the remote kicked virtqueue ``vqid``."""
        self.log.add("linux", "log", "vq_interrupt", level="debug", vqid=vqid)

    def tick(self, count: int = 1) -> int:
        """Let the remote processor run ``count`` ticks; return ticks run.

        Stops early at a crash (reported through ``rproc_report_crash``).
        """
        if self.remote is None:
            return 0
        for n in range(1, count + 1):
            if self.remote.tick() is not None:
                return n
        return count

    def require_memory(self) -> DeviceMemory:
        """The device memories (``-ENOMEM`` when the rproc has none)."""
        if self.memory is None:
            raise enomem(f"{self.name}: no device memory")
        return self.memory

    @property
    def loaded_table(self) -> DeviceTable | None:
        """The device-resident table in effect, if ``table_ptr`` points there."""
        ptr = self.table_ptr
        return ptr if isinstance(ptr, DeviceTable) else None

    def carveout_rows(self) -> list[dict[str, Any]]:
        """``{"name", "da", "pa", "len"}`` of each carveout."""
        return [m.to_dict() for m in self.carveouts]
