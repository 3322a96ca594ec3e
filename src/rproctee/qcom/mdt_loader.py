"""The Linux side of the Qualcomm path: ``drivers/soc/qcom/mdt_loader.c`` (6.12).

Each function returns what the kernel function returns (a size, 0 or a
negative errno) and appends the kernel's ``dev_err`` lines to ``log``.
Arithmetic the kernel does in 32 bits (``p_paddr + p_memsz``, ``ALIGN`` of
it, ``p_offset + p_filesz``) is done in 32 bits here too, so wrap-around
behaves as on the device.  Two places where 6.12 would read past the
firmware buffer are refused instead, with a ``model:`` log line saying so:

* ``qcom_mdt_read_metadata`` copies ``phdrs[0].p_filesz`` bytes from the
  ``.mdt`` without checking that many exist;
* ``__qcom_mdt_load``'s ``p_offset + p_filesz`` truncation check wraps in
  32 bits (reachable only with a carveout of 4 GiB or more).

Memory is written only through a :class:`rproctee.qcom.pas.NormalWorldBus`
(the XPU then DeviceMemory), at ``mem_phys + offset`` (the kernel writes at
``mem_region + offset``, the mapping of ``mem_phys``).  ``.bNN`` files come
from a :data:`rproctee.qcom.format.Fetch`, as ``request_firmware_into_buf``
would read them: straight into the carveout, at most ``p_filesz`` bytes.
"""

from __future__ import annotations

import errno

from rproctee.elf import Phdr
from rproctee.qcom import constants as c
from rproctee.qcom.errors import MdtFileError
from rproctee.qcom.format import (
    Fetch,
    MdtHeader,
    is_hash_segment,
    is_loadable,
    mdt_header_valid,
    read_phdrs,
)
from rproctee.qcom.pas import NormalWorldBus, PasService

EINVAL, ENOMEM, ENOENT, EFBIG = errno.EINVAL, errno.ENOMEM, errno.ENOENT, errno.EFBIG
PHYS_ADDR_MAX = (1 << 64) - 1
#: kmalloc's ceiling with 4 KiB pages (order-10 allocation): 4 MiB.
KMALLOC_MAX_SIZE = 4 << 20


def _u32(value: int) -> int:
    return value & c.U32_MASK


def _align_4k_u32(value: int) -> int:
    """``ALIGN(x, SZ_4K)`` with ``x`` a u32: the result is a u32 too."""
    return _u32(value + c.SZ_4K - 1) & ~(c.SZ_4K - 1) & c.U32_MASK


def _headers(fw: bytes) -> tuple[MdtHeader, tuple[Phdr, ...]]:
    hdr = MdtHeader.unpack(fw)
    return hdr, read_phdrs(fw, hdr)


def _span(phdrs: tuple[Phdr, ...]) -> tuple[int, int, bool]:
    """min_addr, max_addr and relocate as the kernel's loops compute them."""
    min_addr, max_addr, relocate = PHYS_ADDR_MAX, 0, False
    for ph in phdrs:
        if not is_loadable(ph):
            continue
        if ph.p_flags & c.QCOM_MDT_RELOCATABLE:
            relocate = True
        min_addr = min(min_addr, ph.p_paddr)
        end = _u32(ph.p_paddr + ph.p_memsz)
        if end > max_addr:
            max_addr = _align_4k_u32(end)
    return min_addr, max_addr, relocate


def qcom_mdt_get_size(fw: bytes) -> int:
    """Size of the memory the loadable segments need, or ``-EINVAL``."""
    if not mdt_header_valid(fw):
        return -EINVAL
    _, phdrs = _headers(fw)
    min_addr, max_addr, _ = _span(phdrs)
    return max_addr - min_addr if min_addr < max_addr else -EINVAL


def mdt_load_split_segment(
    write: NormalWorldBus | None,
    pa: int,
    ph: Phdr,
    segment: int,
    fw_name: str,
    fetch: Fetch,
    log: list[str],
) -> tuple[int, bytes]:
    """Read ``fw_name``'s ``.bNN`` for ``segment`` into memory (or just return it).

    ``request_firmware_into_buf`` with a ``p_filesz`` buffer: a missing file
    is ``-ENOENT``, a longer one ``-EFBIG`` (nothing written); a shorter one
    lands in memory and then fails the kernel's exact-size check.

    Returns
    -------
    (ret, bytes)
        0 or a negative errno, and the bytes read.
    """
    if len(fw_name) < 4:
        return -EINVAL, b""
    seg_name = c.segment_file_name(fw_name, segment)
    try:
        blob = fetch(seg_name, ph.p_filesz)
    except MdtFileError:
        log.append(f"error {-ENOENT} loading {seg_name}")
        return -ENOENT, b""
    if len(blob) > ph.p_filesz:
        log.append(f"error {-EFBIG} loading {seg_name}")
        return -EFBIG, b""
    if write is not None and blob:
        write.write(pa, blob)
    if len(blob) != ph.p_filesz:
        log.append(f"failed to load segment {segment} from truncated file {seg_name}")
        return -EINVAL, blob
    return 0, blob


def qcom_mdt_read_metadata(
    fw: bytes, fw_name: str, fetch: Fetch, log: list[str]
) -> bytes | int:
    """The ELF header + program headers immediately followed by the hash segment.

    Returns
    -------
    bytes or int
        The metadata blob, or a negative errno.
    """
    if not mdt_header_valid(fw):
        return -EINVAL
    hdr, phdrs = _headers(fw)
    if hdr.e_phnum < 2 or phdrs[0].p_type == c.PT_LOAD:
        return -EINVAL
    hash_segment = next(
        (i for i in range(1, hdr.e_phnum) if is_hash_segment(phdrs[i])), 0
    )
    if not hash_segment:
        log.append(f"no hash segment found in {fw_name}")
        return -EINVAL
    ehdr_size, hash_size = phdrs[0].p_filesz, phdrs[hash_segment].p_filesz
    if ehdr_size + hash_size > KMALLOC_MAX_SIZE:
        return -ENOMEM
    if ehdr_size > len(fw):
        log.append(
            f"model: phdr[0].p_filesz {ehdr_size:#x} exceeds the {len(fw):#x}-byte "
            "file; Linux 6.12 would read past the firmware buffer here"
        )
        return -EINVAL
    head = fw[:ehdr_size]
    if ehdr_size + hash_size == len(fw):
        return head + fw[ehdr_size:]
    offset = phdrs[hash_segment].p_offset
    if offset + hash_size <= len(fw):
        return head + fw[offset : offset + hash_size]
    ret, blob = mdt_load_split_segment(
        None, 0, phdrs[hash_segment], hash_segment, fw_name, fetch, log
    )
    return ret if ret else head + blob


def qcom_scm_pas_init_image(scm: PasService, pas_id: int, metadata: bytes) -> int:
    """``qcom_scm_pas_init_image``: 0 or a negative errno."""
    return scm.init_image(pas_id, metadata).ret


def qcom_scm_pas_mem_setup(scm: PasService, pas_id: int, addr: int, size: int) -> int:
    """``qcom_scm_pas_mem_setup``: 0 or a negative errno."""
    return scm.mem_setup(pas_id, addr, size).ret


def qcom_scm_pas_auth_and_reset(scm: PasService, pas_id: int) -> int:
    """``qcom_scm_pas_auth_and_reset``: 0 or a negative errno."""
    return scm.auth_and_reset(pas_id).ret


def qcom_scm_pas_shutdown(scm: PasService, pas_id: int) -> int:
    """``qcom_scm_pas_shutdown``: 0 or a negative errno."""
    return scm.shutdown(pas_id).ret


def qcom_mdt_pas_init(
    fw: bytes,
    fw_name: str,
    pas_id: int,
    mem_phys: int,
    scm: PasService,
    fetch: Fetch,
    log: list[str],
) -> int:
    """Send the metadata to TrustZone, then (relocatable) the memory range."""
    if not mdt_header_valid(fw):
        return -EINVAL
    _, phdrs = _headers(fw)
    min_addr, max_addr, relocate = _span(phdrs)
    metadata = qcom_mdt_read_metadata(fw, fw_name, fetch, log)
    if isinstance(metadata, int):
        log.append(f"error {metadata} reading firmware {fw_name} metadata")
        return metadata
    ret = qcom_scm_pas_init_image(scm, pas_id, metadata)
    if ret:
        log.append(f"error {ret} initializing firmware {fw_name}")
        return ret
    if relocate:
        # The kernel passes max - min as a phys_addr_t: a negative difference
        # (min above max after a 32-bit wrap) becomes a huge unsigned size.
        ret = qcom_scm_pas_mem_setup(
            scm, pas_id, mem_phys, (max_addr - min_addr) % (1 << 64)
        )
        if ret:
            log.append(f"error {ret} setting up firmware {fw_name}")
    return ret


def _bins_are_split_u32(size: int, phdrs: tuple[Phdr, ...]) -> bool:
    """``qcom_mdt_bins_are_split``: its ``p_offset + p_filesz`` is a u32 sum."""
    return any(
        p.p_filesz and (p.p_offset > size or _u32(p.p_offset + p.p_filesz) > size)
        for p in phdrs
    )


def qcom_mdt_load_no_init(
    fw: bytes,
    fw_name: str,
    bus: NormalWorldBus | None,
    mem_phys: int,
    mem_size: int,
    fetch: Fetch,
    log: list[str],
) -> tuple[int, int]:
    """Copy every loadable segment into the carveout (``__qcom_mdt_load``).

    Parameters
    ----------
    fw : bytes
        The ``.mdt`` / ``.mbn`` file.
    fw_name : str
        Its name, for the ``.bNN`` names.
    bus : NormalWorldBus or None
        Linux's access to memory (None models a NULL ``mem_region``).
    mem_phys, mem_size : int
        The carveout.
    fetch : Fetch
        Reads ``.bNN`` files.
    log : list of str
        Receives the kernel's error lines.

    Returns
    -------
    (ret, reloc_base)
        0 or a negative errno, and ``mem_reloc`` (set even on failure, as
        the kernel does once it got past the argument checks).
    """
    if not fw or bus is None or not mem_phys or not mem_size:
        return -EINVAL, 0
    if not mdt_header_valid(fw):
        return -EINVAL, 0
    _, phdrs = _headers(fw)
    is_split = _bins_are_split_u32(len(fw), phdrs)
    min_addr, _, relocate = _span(phdrs)
    mem_reloc = min_addr if relocate else mem_phys
    for index, ph in enumerate(phdrs):
        if not is_loadable(ph):
            continue
        ret = _load_segment(
            fw,
            fw_name,
            bus,
            mem_phys,
            mem_size,
            mem_reloc,
            index,
            ph,
            is_split,
            fetch,
            log,
        )
        if ret:
            return ret, mem_reloc
    return 0, mem_reloc


def _load_segment(
    fw: bytes,
    fw_name: str,
    bus: NormalWorldBus,
    mem_phys: int,
    mem_size: int,
    mem_reloc: int,
    index: int,
    ph: Phdr,
    is_split: bool,
    fetch: Fetch,
    log: list[str],
) -> int:
    offset = ph.p_paddr - mem_reloc
    if offset < 0 or offset + ph.p_memsz > mem_size:
        log.append("segment outside memory range")
        return -EINVAL
    if ph.p_filesz > ph.p_memsz:
        log.append(f"refusing to load segment {index} with p_filesz > p_memsz")
        return -EINVAL
    pa = mem_phys + offset
    if ph.p_filesz and not is_split:
        if _u32(ph.p_offset + ph.p_filesz) > len(fw):
            log.append(f"file {fw_name} segment {index} would be truncated")
            return -EINVAL
        if ph.p_offset + ph.p_filesz > len(fw):
            log.append(
                f"model: segment {index} p_offset + p_filesz wraps in 32 bits; "
                "Linux 6.12 would read past the firmware buffer here"
            )
            return -EINVAL
        bus.write(pa, memoryview(fw)[ph.p_offset : ph.p_offset + ph.p_filesz])
    elif ph.p_filesz:
        ret, _ = mdt_load_split_segment(bus, pa, ph, index, fw_name, fetch, log)
        if ret:
            return ret
    if ph.p_memsz > ph.p_filesz:
        bus.zero(pa + ph.p_filesz, ph.p_memsz - ph.p_filesz)
    return 0


def qcom_mdt_load(
    fw: bytes,
    fw_name: str,
    pas_id: int,
    scm: PasService,
    bus: NormalWorldBus | None,
    mem_phys: int,
    mem_size: int,
    fetch: Fetch,
    log: list[str],
) -> tuple[int, int]:
    """``qcom_mdt_pas_init`` then ``qcom_mdt_load_no_init``."""
    ret = qcom_mdt_pas_init(fw, fw_name, pas_id, mem_phys, scm, fetch, log)
    if ret:
        return ret, 0
    return qcom_mdt_load_no_init(fw, fw_name, bus, mem_phys, mem_size, fetch, log)
