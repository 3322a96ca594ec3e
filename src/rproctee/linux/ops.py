"""``struct rproc_ops`` and ``struct firmware``, as Python objects.

Every member of the kernel's ops table is an optional callable here; the
core calls it through the same wrappers as ``remoteproc_internal.h`` (an
absent op gives the neutral value: 0, NULL, ``RSC_IGNORED``, and ``-EINVAL``
for ``load``). Ops signal failure by raising
:class:`~rproctee.linux.errors.RprocErrno`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rproctee.linux.core import Rproc

#: ``handle_rsc`` answers (``enum rsc_handling_status``).
RSC_HANDLED = 0
RSC_IGNORED = 1


@dataclass(frozen=True)
class Firmware:
    """``struct firmware``: what ``request_firmware`` returned."""

    name: str
    data: bytes | bytearray | memoryview

    @property
    def size(self) -> int:
        """Size in bytes."""
        return memoryview(self.data).nbytes


@dataclass(frozen=True)
class DeviceTable:
    """A resource table that lives in device memory (``table_ptr`` target).

    ``da`` is where the remote processor sees it, ``pa`` where the host
    maps it, ``size`` the bytes in effect.
    """

    da: int
    pa: int
    size: int


RprocFn = Callable[["Rproc"], None]
FwFn = Callable[["Rproc", Firmware], None]


@dataclass
class RprocOps:
    """``struct rproc_ops`` (current members plus the TEE series' two).

    Attributes
    ----------
    prepare, unprepare, start, stop, attach, detach : callable(rproc) or None
    kick : callable(rproc, vqid) or None
    da_to_va : callable(rproc, da, len) -> numpy view or None
    parse_fw, load, sanity_check : callable(rproc, fw) or None
    handle_rsc : callable(rproc, type, entry, offset, avail) -> int or None
    find_loaded_rsc_table : callable(rproc, fw) -> DeviceTable | None
    get_loaded_rsc_table : callable(rproc) -> DeviceTable | None
    get_boot_addr : callable(rproc, fw) -> int or None
    panic : callable(rproc) -> int (ms) or None
    coredump : callable(rproc) or None (the core installs ``rproc_coredump``)
    release_fw : callable(rproc) or None (TEE series v15..v22)
    load_fw : callable(rproc, fw) or None (TEE series v15 only)
    """

    prepare: RprocFn | None = None
    unprepare: RprocFn | None = None
    start: RprocFn | None = None
    stop: RprocFn | None = None
    attach: RprocFn | None = None
    detach: RprocFn | None = None
    kick: Callable[[Rproc, int], None] | None = None
    da_to_va: Callable[[Rproc, int, int], Any] | None = None
    parse_fw: FwFn | None = None
    handle_rsc: Callable[[Rproc, int, Any, int, int], int] | None = None
    find_loaded_rsc_table: Callable[[Rproc, Firmware], DeviceTable | None] | None = (
        None
    )
    get_loaded_rsc_table: Callable[[Rproc], DeviceTable | None] | None = None
    load: FwFn | None = None
    sanity_check: FwFn | None = None
    get_boot_addr: Callable[[Rproc, Firmware], int] | None = None
    panic: Callable[[Rproc], int] | None = None
    coredump: RprocFn | None = None
    release_fw: RprocFn | None = None
    load_fw: FwFn | None = None

    def present(self) -> list[str]:
        """Names of the ops that are set, in struct order."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]
