"""``qcom_q6v5_pas``'s rproc ops over the Linux rproc core (:mod:`rproctee.linux`).

The driver flow of Linux 6.12 ``drivers/remoteproc/qcom_q6v5_pas.c`` (spec
5.5), without its power, clock, SMP2P and DTB-image parts:

* ``load`` (``qcom_pas_load``) only keeps the firmware: since the 2023 DTB
  support the main image is not loaded there;
* ``start`` (``qcom_pas_start``): ``qcom_mdt_pas_init`` (metadata to
  TrustZone, and PAS_MEM_SETUP for relocatable images), then
  ``qcom_mdt_load_no_init`` into the carveout (Linux writes every segment),
  then ``qcom_scm_pas_auth_and_reset`` (TrustZone locks the carveout,
  checks what Linux wrote and releases the core), then the core's "ready";
* ``stop`` (``qcom_pas_stop``): ``qcom_scm_pas_shutdown`` (the carveout is
  given back to Linux);
* ``da_to_va`` (``qcom_pas_da_to_va``): ``offset = da - mem_reloc`` with
  the kernel's ``int`` offset and bounds, into the carveout;
* ``parse_fw`` (``qcom_register_dump_segments``, ``qcom_common.c``): one
  coredump segment per loadable program header;
* no ELF defaults (``load`` is set): no sanity check, no resource table,
  boot address 0.

Because ``start`` re-runs PAS init and the load, every recovery authenticates
the firmware again.  SCM calls are logged as ``scm``/``scm_ret`` events of
the ``tee`` layer (the secure world's side of the event log; see
:func:`attach_pas`), the writes TrustZone makes are attributed to it, and
XPU changes are ``xpu`` events.
"""

from __future__ import annotations

import errno as errno_mod
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rproctee.linux.errors import RprocErrno
from rproctee.linux.ops import Firmware, RprocOps
from rproctee.qcom import constants as c
from rproctee.qcom import mdt_loader as ml
from rproctee.qcom.errors import MdtFileError
from rproctee.qcom.format import Fetch
from rproctee.qcom.pas import Carveout, PasService

if TYPE_CHECKING:
    from rproctee.linux.core import Rproc
    from rproctee.linux.firmware_hook import RunningFirmware
    from rproctee.linux.system import System

PRIV_KEY = "qcom_pas"


@dataclass
class QcomPas:
    """``struct qcom_pas``: what the driver keeps for one remote processor.

    Attributes
    ----------
    pas_id : int
        The peripheral's PAS id (modem 4, adsp 1, cdsp 18...).
    scm : PasService
        TrustZone.
    carveout : Carveout
        ``mem_phys``/``mem_size`` (the DT memory-region).
    fetch : Fetch
        Reads ``.bNN`` files (``request_firmware_into_buf``).
    mem_reloc : int
        Where ``da`` 0-offset maps: ``mem_phys`` until a load sets it.
    firmware : Firmware or None
        Kept by ``load`` for ``start`` (``pas->firmware``).
    metadata_held : bool
        The PAS metadata context is allocated (released by ``start`` or
        ``unprepare``).
    """

    pas_id: int
    scm: PasService
    carveout: Carveout
    fetch: Fetch
    mem_reloc: int = 0
    firmware: Firmware | None = None
    metadata_held: bool = False

    def __post_init__(self) -> None:
        self.mem_reloc = self.carveout.pa


def _pas(rproc: Rproc) -> QcomPas:
    pas: QcomPas = rproc.priv[PRIV_KEY]
    return pas


def _fail(rproc: Rproc, ret: int, message: str) -> RprocErrno:
    rproc.log_msg("err", message)
    return RprocErrno(-ret, message)


@contextmanager
def _secure_calls(rproc: Rproc) -> Iterator[None]:
    """Writes made in this block (TrustZone's) are attributed to ``trustzone``."""
    with rproc.log.acting("trustzone"):
        yield


def attach_pas(rproc: Rproc, pas: QcomPas) -> None:
    """Make ``pas`` the driver data of ``rproc`` (``rproc->priv``).

    TrustZone's SCM calls, their returns and XPU changes then become events
    of ``rproc``'s log (layer ``trustzone``, kinds ``scm``/``scm_ret``/``xpu``),
    in the order they happen.
    """
    rproc.priv[PRIV_KEY] = pas

    def observe(kind: str, name: str, detail: dict[str, Any]) -> None:
        rproc.log.add("trustzone", kind, name, **detail)

    pas.scm.observer = observe


def _flush(rproc: Rproc, log: list[str]) -> None:
    for line in log:
        rproc.log_msg("err", line)
    log.clear()


def qcom_pas_load(rproc: Rproc, fw: Firmware) -> None:
    """``qcom_pas_load``: keep the firmware for ``start`` (no DTB image here)."""
    _pas(rproc).firmware = fw


def qcom_pas_start(rproc: Rproc) -> None:
    """``qcom_pas_start``: PAS init, Linux loads, auth-and-reset, wait for ready."""
    pas = _pas(rproc)
    fw = pas.firmware
    if fw is None:
        raise _fail(rproc, -errno_mod.EINVAL, "no firmware loaded before start")
    try:
        _start(rproc, pas, bytes(fw.data))
    finally:
        pas.metadata_held = False  # qcom_pas_metadata_release on every path
        pas.firmware = None


def _start(rproc: Rproc, pas: QcomPas, data: bytes) -> None:
    log: list[str] = []
    region = pas.carveout
    with _secure_calls(rproc):
        ret = ml.qcom_mdt_pas_init(
            data, rproc.firmware, pas.pas_id, region.pa, pas.scm, pas.fetch, log
        )
    _flush(rproc, log)
    if ret:
        raise RprocErrno(-ret, f"qcom_mdt_pas_init: {ret}")
    pas.metadata_held = True
    bus = pas.scm.normal_world()
    ret, pas.mem_reloc = ml.qcom_mdt_load_no_init(
        data, rproc.firmware, bus, region.pa, region.size, pas.fetch, log
    )
    _flush(rproc, log)
    if ret:
        raise RprocErrno(-ret, f"qcom_mdt_load_no_init: {ret}")
    with _secure_calls(rproc):
        ret = ml.qcom_scm_pas_auth_and_reset(pas.scm, pas.pas_id)
    if ret:
        raise _fail(rproc, ret, "failed to authenticate image and release reset")
    if rproc.remote is not None:
        with rproc.log.acting("remote"):
            rproc.remote.power_on()  # the "ready" interrupt arrives at once


def qcom_pas_stop(rproc: Rproc) -> None:
    """``qcom_pas_stop``: stop the core, then PAS_SHUTDOWN (carveout released)."""
    pas = _pas(rproc)
    if rproc.remote is not None:
        with rproc.log.acting("remote"):
            rproc.remote.power_off()
    with _secure_calls(rproc):
        ret = ml.qcom_scm_pas_shutdown(pas.scm, pas.pas_id)
    if ret:
        raise _fail(rproc, ret, f"failed to shutdown: {ret}")


def qcom_pas_unprepare(rproc: Rproc) -> None:
    """``qcom_pas_unprepare``: release the PAS metadata if still held."""
    _pas(rproc).metadata_held = False


def qcom_pas_da_to_va(rproc: Rproc, da: int, length: int) -> Any:
    """``qcom_pas_da_to_va``: a view of the carveout, or None.

    The kernel keeps ``offset`` in an ``int``; the model does the same
    (a difference that does not fit 32 bits wraps).  On hardware the
    returned pointer faults on use while TrustZone holds the carveout; a
    numpy view cannot fault, so the XPU is asked here instead
    (:class:`rproctee.qcom.errors.PasAccessError`).
    """
    pas = _pas(rproc)
    offset = (da - pas.mem_reloc) & c.U32_MASK
    offset = offset - (1 << 32) if offset >= 1 << 31 else offset
    if offset < 0 or offset + length > pas.carveout.size:
        return None
    pa = pas.carveout.pa + offset
    pas.scm.xpu.check_normal_world("map", pa, length)
    return pas.scm.memory.view_pa(pa, length)


def qcom_register_dump_segments(rproc: Rproc, fw: Firmware) -> None:
    """``qcom_register_dump_segments``: a dump segment per loadable header.

    The kernel reads the program headers right after the ELF header (not at
    ``e_phoff``) and checks no bound; the model stops at the end of the file.
    """
    data = bytes(fw.data)
    if len(data) < c.ELF32_EHDR_SIZE:
        return
    phnum = struct.unpack_from("<H", data, 44)[0]
    for i in range(phnum):
        off = c.ELF32_EHDR_SIZE + c.ELF32_PHDR_SIZE * i
        if off + c.ELF32_PHDR_SIZE > len(data):
            rproc.log_msg("warn", f"model: program header {i} lies past the file")
            return
        p_type, _, _, paddr, _, memsz, flags, _ = struct.unpack_from("<8I", data, off)
        hash_seg = (flags & c.QCOM_MDT_TYPE_MASK) == c.QCOM_MDT_TYPE_HASH
        if p_type == c.PT_LOAD and not hash_seg and memsz:
            rproc.coredump_add_segment(paddr, memsz)


def qcom_pas_panic(rproc: Rproc) -> int:
    """``qcom_pas_panic``: no time needed for the model core to flush caches."""
    return 0


def qcom_pas_ops() -> RprocOps:
    """``qcom_pas_ops`` (the non-minidump table)."""
    return RprocOps(
        unprepare=qcom_pas_unprepare,
        start=qcom_pas_start,
        stop=qcom_pas_stop,
        da_to_va=qcom_pas_da_to_va,
        parse_fw=qcom_register_dump_segments,
        load=qcom_pas_load,
        panic=qcom_pas_panic,
    )


def files_fetch(request: Callable[[str], bytes]) -> Fetch:
    """A :data:`Fetch` over a ``request_firmware``-style loader.

    ``KeyError``/``OSError`` (and the core's ``-ENOENT``) mean "missing".
    """

    def fetch(name: str, max_size: int) -> bytes:
        try:
            return bytes(request(name))[: max_size + 1]
        except (KeyError, OSError, RprocErrno) as exc:
            raise MdtFileError(name, "missing segment file") from exc

    return fetch


def build_pas_system(
    files: dict[str, bytes],
    firmware_name: str,
    carveout: Carveout,
    *,
    trusted_root: bytes | None,
    pas_id: int = c.PAS_IDS["mpss"],
    firmware: RunningFirmware | None = None,
) -> System:
    """A board with TrustZone's PAS and a ``qcom_q6v5_pas`` remote processor.

    Parameters
    ----------
    files : dict
        The firmware folder: ``firmware_name`` (the ``.mdt``/``.mbn``) and
        any ``.bNN`` files.
    firmware_name : str
        ``rproc->firmware`` (``modem.mdt``).
    carveout : Carveout
        The remote processor's memory region (device memory = this region).
    trusted_root : bytes or None
        SHA-256 of the root certificate TrustZone trusts (None: no secure boot).
    pas_id : int
        The peripheral's PAS id.
    firmware : RunningFirmware, optional
        What runs on the remote core.

    Returns
    -------
    System
        ``world`` is None (no OP-TEE); TrustZone is
        ``system.rproc.priv["qcom_pas"].scm``.
    """
    from rproctee.linux.core import Rproc
    from rproctee.linux.coredump import ELFCLASS32, EM_NONE
    from rproctee.linux.events import EventLog
    from rproctee.linux.remote import RemoteProcessor
    from rproctee.linux.system import System
    from rproctee.linux.tracing import record_writes
    from rproctee.platform.board import PlatformSpec
    from rproctee.platform.memory import DeviceMemory, RegionSpec

    log = EventLog()
    region = RegionSpec(carveout.name, carveout.pa, carveout.pa, carveout.size)
    memory = DeviceMemory([region])
    record_writes(memory, log)
    scm = PasService(memory, {pas_id: carveout}, trusted_root)
    remote = RemoteProcessor(memory, firmware)
    remote.on_event = lambda name, detail: log.add("remote", "remote", name, **detail)
    request = files.__getitem__  # KeyError: the core's -ENOENT
    rproc = Rproc(
        firmware_name.rsplit(".", 1)[0],
        qcom_pas_ops(),
        firmware=firmware_name,
        request_firmware=request,
        memory=memory,
        log=log,
        remote=remote,
    )
    # qcom_pas_probe: rproc_coredump_set_elf_info(rproc, ELFCLASS32, EM_NONE)
    rproc.coredump_set_elf_info(ELFCLASS32, EM_NONE)
    attach_pas(rproc, QcomPas(pas_id, scm, carveout, files_fetch(request)))
    platform = PlatformSpec(
        name="qcom-pas",
        regions=(region,),
        processor_ids=(pas_id,),
        source="qcom_q6v5_pas model",
        notes=("TrustZone PAS (model); no OP-TEE",),
    )
    return System(platform, rproc, log, memory, remote, None, files, "mainline")


#: Most ``.bNN`` files :func:`firmware_folder` looks for (``b00``..``b99``).
MAX_SEGMENT_FILES = 100


def firmware_folder(path: str | Path) -> dict[str, bytes]:
    """The firmware files a boot of ``path`` may ask for, read from its folder.

    ``path`` itself (the ``.mdt``/``.mbn``) and every ``<name>.bNN`` beside
    it, for ``NN`` below ``e_phnum`` (at most :data:`MAX_SEGMENT_FILES`) when
    the header can be read, else below 100.  Missing ``.bNN`` files are
    simply absent (a boot that needs one fails with ``-ENOENT``).

    Raises
    ------
    MdtFileError
        ``path`` cannot be read.
    """
    from rproctee.qcom.format import MdtHeader

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MdtFileError(str(path), exc.strerror or str(exc)) from exc
    files = {path.name: data}
    count = MAX_SEGMENT_FILES
    if len(data) >= c.ELF32_EHDR_SIZE and len(path.name) >= 4:
        count = min(MdtHeader.unpack(data).e_phnum, MAX_SEGMENT_FILES)
    for index in range(count if len(path.name) >= 4 else 0):
        name = c.segment_file_name(path.name, index)
        try:
            files[name] = (path.parent / name).read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise MdtFileError(
                str(path.parent / name), exc.strerror or str(exc)
            ) from exc
    return files
