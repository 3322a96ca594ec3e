"""The Linux remoteproc ELF ops, as ``remoteproc_elf_loader.c`` of Linux 6.12.

Pure functions over a firmware buffer (``struct firmware``'s ``data``) and,
where the kernel translates device addresses, a ``da_to_va(da, len)``
callback, so the rproc core can plug its carveouts and device memory in and
``rproctee check`` can plug a dry run over the platform's regions in.  The
code read is Linux 6.12.117 (``drivers/remoteproc/remoteproc_elf_loader.c``,
``remoteproc_core.c``, ``include/linux/rsc_table.h``, ``stm32_rproc.c``,
``imx_rproc.c``); each function names the kernel function it models.

Behaviours that decide verdicts (issue 13):

1. :func:`rproc_elf_sanity_check` checks neither ``e_phentsize`` nor
   ``e_shentsize``: headers are read at the native ``sizeof(Elf32_Phdr)``,
   ``sizeof(Elf32_Shdr)`` (or ELF64) strides whatever the file says.
2. :func:`rproc_elf_load_segments` skips every ``PT_LOAD`` whose ``p_memsz``
   is 0, wherever it points.
3. What a rejected table means is the platform driver's ``parse_fw``
   (:class:`ParseFwPolicy`): stm32 and imx log and boot without a table, the
   default (``rproc_elf_load_rsc_table`` itself) fails.  :func:`find_table`
   takes the first ``.resource_table``.
4. The entry walk is :mod:`rproctee.rsctable`'s, on every platform, plus
   ``rproc_handle_carveout``'s matching of entries to the registered
   carveouts (:func:`registered_carveout_handler`).
5. Where the kernel itself would read or write outside the firmware buffer
   or a carveout (``find_table``'s unbounded ``name_table + sh_name``,
   program headers past the file, a 64-bit ``p_offset + p_filesz`` wrap, a
   ``size_t`` wrap in ``rproc_da_to_va``), the model refuses with
   :class:`LinuxElfError` ``kernel_oob=True`` and says so: such an image would
   make a real kernel read out of bounds (and maybe oops).  The model itself
   never reads outside the buffer.

Every error is a :class:`LinuxElfError` carrying the errno name and the
kernel's own ``dev_err`` line.  ``size_t`` is 64 bits by default (a 64-bit
kernel, as the reference runs); ``size_t_bits=32`` models a 32-bit kernel
such as stm32mp15's: ``rproc_u64_fit_in_size_t`` can fail there (-EOVERFLOW)
and ``rproc_da_to_va``'s ``offset + len`` wraps at 2**32, so a huge
``p_memsz`` passes the carveout check and the zero-fill would run over
kernel memory (reported as ``kernel_oob``).
"""

from __future__ import annotations

import enum
import errno as _errno_mod
import fnmatch
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rproctee import kernels
from rproctee.errors import RprocError
from rproctee.rsctable import (
    FW_RSC_ADDR_ANY,
    CarveoutRsc,
    HandleRsc,
    ResourceTable,
    RscTableError,
    check_table_header,
    parse_resource_table,
)

ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
PT_LOAD = 1
EHDR_SIZE = {ELFCLASS32: 52, ELFCLASS64: 64}
PHDR_SIZE = {ELFCLASS32: 32, ELFCLASS64: 56}
SHDR_SIZE = {ELFCLASS32: 40, ELFCLASS64: 64}
RSC_SECTION = ".resource_table"
_U64 = (1 << 64) - 1
_ERRNO = {
    name: getattr(_errno_mod, name)
    for name in ("EINVAL", "ENOMEM", "EFAULT", "EOVERFLOW")
}

# (offset, width) of the fields the kernel reads, per class.
_EHDR = {
    ELFCLASS32: {
        "e_entry": (24, 4),
        "e_phoff": (28, 4),
        "e_shoff": (32, 4),
        "e_phnum": (44, 2),
        "e_shnum": (48, 2),
        "e_shstrndx": (50, 2),
    },
    ELFCLASS64: {
        "e_entry": (24, 8),
        "e_phoff": (32, 8),
        "e_shoff": (40, 8),
        "e_phnum": (56, 2),
        "e_shnum": (60, 2),
        "e_shstrndx": (62, 2),
    },
}
_PHDR = {
    ELFCLASS32: {
        "p_type": (0, 4),
        "p_offset": (4, 4),
        "p_paddr": (12, 4),
        "p_filesz": (16, 4),
        "p_memsz": (20, 4),
    },
    ELFCLASS64: {
        "p_type": (0, 4),
        "p_offset": (8, 8),
        "p_paddr": (24, 8),
        "p_filesz": (32, 8),
        "p_memsz": (40, 8),
    },
}
_SHDR = {
    ELFCLASS32: {
        "sh_name": (0, 4),
        "sh_addr": (12, 4),
        "sh_offset": (16, 4),
        "sh_size": (20, 4),
    },
    ELFCLASS64: {
        "sh_name": (0, 4),
        "sh_addr": (16, 8),
        "sh_offset": (24, 8),
        "sh_size": (32, 8),
    },
}
_WIDTH = {2: struct.Struct("<H"), 4: struct.Struct("<I"), 8: struct.Struct("<Q")}


class ParseFwPolicy(enum.Enum):
    """What the platform driver's ``parse_fw`` does with a rejected table.

    ``DEFAULT``: ``rproc_elf_load_rsc_table`` as the op: ``-EINVAL``, no boot.
    ``STM32``: ``stm32_rproc_parse_fw``: ``dev_warn`` "no resource table found
    for this firmware" and boot without a table.
    ``IMX``: ``imx_rproc_parse_fw``: ``dev_info`` "No resource table in elf"
    and boot without a table.
    ``IMX_DSP``: ``imx_dsp_rproc_parse_fw``: as stm32 (same warning).
    """

    DEFAULT = "default"
    STM32 = "stm32"
    IMX = "imx"
    IMX_DSP = "imx_dsp"

    @property
    def fails(self) -> bool:
        """Whether a rejected or missing table refuses the boot."""
        return self is ParseFwPolicy.DEFAULT

    @property
    def driver_function(self) -> str:
        """The kernel function installed as ``parse_fw``."""
        return {
            ParseFwPolicy.DEFAULT: "rproc_elf_load_rsc_table",
            ParseFwPolicy.STM32: "stm32_rproc_parse_fw",
            ParseFwPolicy.IMX: "imx_rproc_parse_fw",
            ParseFwPolicy.IMX_DSP: "imx_dsp_rproc_parse_fw",
        }[self]

    @property
    def no_table_log(self) -> str | None:
        """The line the driver logs when it goes on without a table."""
        return {
            ParseFwPolicy.DEFAULT: None,
            ParseFwPolicy.STM32: "no resource table found for this firmware",
            ParseFwPolicy.IMX: "No resource table in elf",
            ParseFwPolicy.IMX_DSP: "no resource table found for this firmware",
        }[self]


#: ``compatible`` patterns (fnmatch) -> the driver's ``parse_fw`` in 6.12.
#: TI K3 drivers set no ``load``, so ``rproc_alloc_ops`` installs the ELF
#: defaults, ``rproc_elf_load_rsc_table`` included.
_DRIVER_PARSE_FW = (
    ("st,stm32mp*", "stm32"),
    ("fsl,*-hifi4", "imx_dsp"),
    ("fsl,imx*", "imx"),
    ("ti,*", "default"),
)
_COMPAT_NOTE = re.compile(r"^remote processor .* \(compatible (?P<compat>[^)]*)\)$")


def _compatibles(platform: Any) -> tuple[str, ...]:
    """The processor node's ``compatible`` strings, if the platform knows them.

    A ``compatible`` attribute if present, else the device-tree loader's
    "remote processor NODE (compatible A, B)" note.
    """
    compat = getattr(platform, "compatible", None)
    if compat:
        return tuple(compat)
    for note in getattr(platform, "notes", ()):
        match = _COMPAT_NOTE.match(str(note))
        if match:
            return tuple(match["compat"].split(", "))
    return ()


def parse_fw_policy_for(platform: Any) -> ParseFwPolicy:
    """The ``parse_fw`` of the Linux driver that serves ``platform``.

    In order: a ``linux_driver`` attribute (``"default"``, ``"stm32"``,
    ``"imx"``, ``"imx_dsp"``); the processor's ``compatible`` (stm32mp:
    ``stm32_rproc``; NXP: ``imx_rproc`` or ``imx_dsp_rproc``; TI K3: the
    generic default); otherwise ``stm32_rproc``, the driver of the presets
    and of the stm32mp PTA that TOML profiles describe.

    Parameters
    ----------
    platform : rproctee.platform.PlatformSpec
    """
    driver = getattr(platform, "linux_driver", None)
    if driver is not None:
        return ParseFwPolicy(driver)
    for compat in _compatibles(platform):
        for pattern, name in _DRIVER_PARSE_FW:
            if fnmatch.fnmatchcase(compat, pattern):
                return ParseFwPolicy(name)
    return ParseFwPolicy.STM32


class LinuxElfError(RprocError, ValueError):
    """The Linux ELF ops refuse the firmware.

    Attributes
    ----------
    errno : str
        The errno name the kernel function returns (``"EINVAL"``...).
    message : str
        The kernel's ``dev_err`` line, or ``""`` when it logs nothing.
    function : str
        The kernel function that refuses (``rproc_elf_load_segments``...).
    kernel_oob : bool
        True when a real kernel would not refuse but read or write outside
        the firmware buffer here; ``message`` then says what it would touch.
    note : str
        The model's explanation when the kernel logs nothing.
    segment : int or None
        The program header concerned, for segment-load refusals.
    """

    def __init__(
        self,
        function: str,
        message: str,
        *,
        errno: str = "EINVAL",
        kernel_oob: bool = False,
        note: str = "",
        segment: int | None = None,
    ) -> None:
        self.segment = segment
        self.errno = errno
        self.message = message
        self.function = function
        self.kernel_oob = kernel_oob
        self.note = note
        text = message or note
        super().__init__(f"{function}: {text}" + ("" if kernel_oob else f": -{errno}"))


def _oob(function: str, what: str, access: str = "reads") -> LinuxElfError:
    return LinuxElfError(
        function,
        f"{what}: a Linux 6.12 kernel {access} out of bounds in {function} here "
        "(refused by the model; a real kernel may oops)",
        errno="EFAULT",
        kernel_oob=True,
    )


def _view(fw: Any) -> memoryview:
    """``fw->data`` as bytes (no copy: the firmware buffer does not change)."""
    view = memoryview(fw)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _read(data: memoryview, base: int, spec: tuple[int, int], function: str) -> int:
    off, width = spec
    start = base + off
    if start + width > len(data):
        raise _oob(
            function,
            f"reading {width} bytes at {start:#x} past the {len(data):#x}-byte file",
        )
    value: int = _WIDTH[width].unpack_from(data, start)[0]
    return value


# --------------------------------------------------------------------------
# rproc_elf_sanity_check, rproc_elf_get_boot_addr


@dataclass(frozen=True)
class ElfHeader:
    """The ELF header fields the kernel's ELF ops read."""

    elf_class: int
    e_entry: int
    e_phoff: int
    e_shoff: int
    e_phnum: int
    e_shnum: int
    e_shstrndx: int

    @property
    def phdr_size(self) -> int:
        """``elf_size_of_phdr``: the stride, whatever ``e_phentsize`` says."""
        return PHDR_SIZE[self.elf_class]

    @property
    def shdr_size(self) -> int:
        """``elf_size_of_shdr``: the stride, whatever ``e_shentsize`` says."""
        return SHDR_SIZE[self.elf_class]


def _header(data: memoryview, function: str) -> ElfHeader:
    """The header as the kernel's accessors read it (not ELF32 means ELF64)."""
    if len(data) <= 4:
        raise _oob(function, f"EI_CLASS at 0x4 is past the {len(data):#x}-byte file")
    elf_class = ELFCLASS32 if data[4] == ELFCLASS32 else ELFCLASS64
    fields = {k: _read(data, 0, v, function) for k, v in _EHDR[elf_class].items()}
    return ElfHeader(elf_class, **fields)


def rproc_elf_sanity_check(fw: Any) -> ElfHeader:
    """``rproc_elf_sanity_check``: is this a loadable ELF32/ELF64 image?

    Checks in the kernel's order, each ``-EINVAL`` with its message: size
    ("Image is too small"), magic ("Image is corrupted (bad magic)"), class
    ("Unsupported class: %d"), ELF64 size ("elf64 header is too small"),
    endianness ("Unsupported firmware endianness"), section-header table
    bounds ("Section header table is out of bounds", "Section headers are
    out of bounds", "Image is too small" for ``e_shstrndx``), ``e_phnum``
    ("No loadable segments"), ``e_phoff`` ("Firmware size is too small").
    ``e_phentsize``, ``e_shentsize``, ``e_machine``, ``e_type``, the
    program-header table's end and the section names are not checked.

    Parameters
    ----------
    fw : bytes-like or None
        The firmware image.

    Returns
    -------
    ElfHeader
        The header fields the other ops read.

    Raises
    ------
    LinuxElfError
        The first failing check.
    """
    fn = "rproc_elf_sanity_check"
    if fw is None:
        raise LinuxElfError(fn, "failed to load firmware")
    data = _view(fw)
    size = len(data)
    if size < EHDR_SIZE[ELFCLASS32]:
        raise LinuxElfError(fn, "Image is too small")
    if bytes(data[:4]) != b"\x7fELF":
        raise LinuxElfError(fn, "Image is corrupted (bad magic)")
    # ``char class``: unsigned since Linux 6.2 builds with -funsigned-char.
    elf_class = data[4]
    if elf_class not in (ELFCLASS32, ELFCLASS64):
        raise LinuxElfError(fn, f"Unsupported class: {elf_class}")
    if elf_class == ELFCLASS64 and size < EHDR_SIZE[ELFCLASS64]:
        raise LinuxElfError(fn, "elf64 header is too small")
    if data[5] != ELFDATA2LSB:
        raise LinuxElfError(fn, "Unsupported firmware endianness")
    hdr = _header(data, fn)
    _check_section_table(hdr, size, fn)
    if hdr.e_phnum == 0:
        raise LinuxElfError(fn, "No loadable segments")
    if hdr.e_phoff > size:
        raise LinuxElfError(fn, "Firmware size is too small")
    return hdr


def _check_section_table(hdr: ElfHeader, size: int, fn: str) -> None:
    """The three section-table bounds of 6.12 (``size_add``/``size_mul``
    saturate, so exact Python arithmetic gives the same verdicts)."""
    if hdr.e_shoff > size:
        raise LinuxElfError(fn, "Section header table is out of bounds")
    if hdr.e_shnum and hdr.e_shoff + hdr.shdr_size * hdr.e_shnum > size:
        raise LinuxElfError(fn, "Section headers are out of bounds")
    # find_table() reads the header at e_shstrndx even with no sections.
    if hdr.e_shoff + hdr.shdr_size * (hdr.e_shstrndx + 1) > size:
        raise LinuxElfError(fn, "Image is too small")


def rproc_elf_get_boot_addr(fw: Any) -> int:
    """``rproc_elf_get_boot_addr``: ``e_entry`` as a u64 (after the sanity check).

    Parameters
    ----------
    fw : bytes-like
        A firmware :func:`rproc_elf_sanity_check` accepted.
    """
    return _header(_view(fw), "rproc_elf_get_boot_addr").e_entry


# --------------------------------------------------------------------------
# find_table, rproc_elf_load_rsc_table, parse_fw


@dataclass(frozen=True)
class RscSection:
    """The ``.resource_table`` section ``find_table`` returned."""

    index: int
    sh_addr: int
    sh_offset: int
    sh_size: int


_NAME = RSC_SECTION.encode() + b"\0"


def _is_rsc_name(data: memoryview, name_at: int, index: int) -> bool:
    """``strcmp(name_table + sh_name, ".resource_table") == 0``, bounded.

    ``strcmp`` stops at the first differing byte or at the shared NUL, so
    the kernel stays inside the file unless the name runs off its end while
    still matching; that is the case the model refuses.
    """
    for i, want in enumerate(_NAME):
        pos = name_at + i
        if pos >= len(data):
            raise _oob(
                "find_table",
                f"section {index} name at file offset {name_at:#x} (string "
                f"table + sh_name) is past the {len(data):#x}-byte file",
            )
        if data[pos] != want:
            return False
    return True


def _section(data: memoryview, hdr: ElfHeader, index: int) -> dict[str, int]:
    base = hdr.e_shoff + index * hdr.shdr_size
    spec = _SHDR[hdr.elf_class]
    return {k: _read(data, base, v, "find_table") for k, v in spec.items()}


def find_table(fw: Any) -> RscSection | None:
    """``find_table``: the first ``.resource_table`` section, checked.

    Parameters
    ----------
    fw : bytes-like
        A firmware :func:`rproc_elf_sanity_check` accepted.

    Returns
    -------
    RscSection or None
        The first section named ``.resource_table`` (later ones are never
        looked at), or None when there is none (the kernel logs nothing).

    Raises
    ------
    LinuxElfError
        The first match fails a check: "resource table truncated",
        "header-less resource table", "unsupported fw ver: %d", "non zero
        reserved bytes", "resource table incomplete" (the kernel logs it and
        returns NULL; ``errno`` is what ``rproc_elf_load_rsc_table`` then
        returns).  ``kernel_oob`` when a section name lies past the file.
    """
    data = _view(fw)
    hdr = _header(data, "find_table")
    strtab = _section(data, hdr, hdr.e_shstrndx)["sh_offset"]
    for index in range(hdr.e_shnum):
        sh = _section(data, hdr, index)
        if not _is_rsc_name(data, strtab + sh["sh_name"], index):
            continue
        _check_rsc_section(data, sh["sh_offset"], sh["sh_size"])
        return RscSection(index, sh["sh_addr"], sh["sh_offset"], sh["sh_size"])
    return None


def _check_rsc_section(data: memoryview, offset: int, size: int) -> None:
    # offset + size > fw_size || offset + size < size: with exact integers
    # the wrap test is the same test.
    if offset + size > len(data):
        raise LinuxElfError("find_table", "resource table truncated")
    try:
        check_table_header(data[offset : offset + size])
    except RscTableError as exc:
        raise LinuxElfError("find_table", exc.message) from exc


def rproc_elf_load_rsc_table(fw: Any) -> tuple[bytes, int]:
    """``rproc_elf_load_rsc_table``: copy the table (``cached_table``).

    Parameters
    ----------
    fw : bytes-like
        A firmware :func:`rproc_elf_sanity_check` accepted.

    Returns
    -------
    (bytes, int)
        The ``kmemdup`` copy and ``table_sz``.

    Raises
    ------
    LinuxElfError
        ``-EINVAL`` when :func:`find_table` finds no valid table, with its
        message (empty when there is no section at all).
    """
    section = find_table(fw)
    if section is None:
        raise LinuxElfError(
            "rproc_elf_load_rsc_table",
            "",
            note=f"no {RSC_SECTION} section (find_table returns NULL silently)",
        )
    data = _view(fw)
    start = section.sh_offset
    return bytes(data[start : start + section.sh_size]), section.sh_size


@dataclass(frozen=True)
class ParseFwResult:
    """What ``parse_fw`` left: the cached table (or none) and its log lines."""

    policy: ParseFwPolicy
    table: bytes | None
    section: RscSection | None
    log: tuple[str, ...] = ()
    rejected: LinuxElfError | None = None

    @property
    def table_sz(self) -> int:
        """``rproc->table_sz`` (0 without a table)."""
        return len(self.table) if self.table is not None else 0


def parse_fw(fw: Any, policy: ParseFwPolicy = ParseFwPolicy.DEFAULT) -> ParseFwResult:
    """The driver's ``parse_fw`` op under ``policy``.

    Parameters
    ----------
    fw : bytes-like
        A firmware :func:`rproc_elf_sanity_check` accepted.
    policy : ParseFwPolicy
        Which driver's ``parse_fw``.

    Returns
    -------
    ParseFwResult
        The table (None when stm32/imx go on without one) and what was logged.

    Raises
    ------
    LinuxElfError
        Under ``DEFAULT``, any table :func:`rproc_elf_load_rsc_table` refuses;
        under every policy, a ``kernel_oob`` finding.
    """
    try:
        table, _ = rproc_elf_load_rsc_table(fw)
    except LinuxElfError as exc:
        if exc.kernel_oob or policy.fails:
            raise
        log = tuple(x for x in (exc.message, policy.no_table_log) if x)
        return ParseFwResult(policy, None, None, log, exc)
    return ParseFwResult(policy, table, find_table(fw))


def rproc_handle_resources(
    table: bytes | None,
    *,
    has_iommu: bool = False,
    handle_rsc: HandleRsc | None = None,
    carveouts: Sequence[Any] | None = None,
) -> ResourceTable | None:
    """``rproc_handle_resources``: the entry walk (None table: nothing to do).

    Parameters
    ----------
    table : bytes or None
        ``cached_table``.
    has_iommu, handle_rsc
        As for :func:`rproctee.rsctable.parse_resource_table`.
    carveouts : sequence, optional
        The carveouts the driver registered (``name``, ``da``, ``size`` or
        ``len``): carveout entries are matched to them by name as
        ``rproc_handle_carveout`` does (:func:`registered_carveout_handler`).

    Raises
    ------
    RscTableError
        The first entry a check refuses; the kernel then logs "Failed to
        process resources: %d".
    """
    if table is None:
        return None
    on_entry = None if carveouts is None else registered_carveout_handler(carveouts)
    return parse_resource_table(
        table, has_iommu=has_iommu, handle_rsc=handle_rsc, on_entry=on_entry
    )


def registered_carveout_handler(carveouts: Sequence[Any]) -> Callable[[Any], None]:
    """``rproc_handle_carveout`` after its format checks, as an ``on_entry``.

    A carveout entry whose name is a registered carveout's must fit it
    (``rproc_check_carveout_da``) and may be tied to it once; any other name
    becomes a new carveout of that name (allocated later from DMA memory, not
    modelled here), which a later entry of the same name finds already tied.
    Failures are ``-ENOMEM`` with the kernel's lines.
    """
    tied: set[str] = set()
    index = [-1]

    def on_entry(entry: Any) -> None:
        index[0] += 1
        if not isinstance(entry, CarveoutRsc):
            return
        if entry.name in tied:
            message = "Carveout already associated to resource table"
            raise _carveout_error(entry, index[0], message, "")
        tied.add(entry.name)
        mem = next((c for c in carveouts if c.name == entry.name), None)
        problem = (
            None if mem is None else rproc_check_carveout_da(mem, entry.da, entry.len)
        )
        if problem is not None:
            raise _carveout_error(entry, index[0], *problem)

    return on_entry


def _carveout_error(
    entry: CarveoutRsc, index: int, message: str, note: str
) -> RscTableError:
    return RscTableError(
        message,
        check="carveout",
        errno="ENOMEM",
        offset=entry.offset,
        index=index,
        value=entry.da,
        note=note,
    )


def rproc_check_carveout_da(mem: Any, da: int, length: int) -> tuple[str, str] | None:
    """``rproc_check_carveout_da``: (kernel line, model note), or None if it fits.

    ``int delta = da - mem->da``, and ``delta + len`` is u32 arithmetic.  The
    kernel line is ``""`` when the kernel logs nothing (a registered
    carveout without a device address); the note then says why.

    Parameters
    ----------
    mem : object with ``name``, ``da`` and ``size`` (or ``len``)
        The registered carveout.
    da, length : int
        The carveout entry's request.
    """
    mem_len, mem_da = _carveout_len(mem), int(mem.da)
    too_long = "Registered carveout doesn't fit len request"
    if length > mem_len:
        return too_long, ""
    if da == FW_RSC_ADDR_ANY:
        return None
    if mem_da == FW_RSC_ADDR_ANY:
        return "", (
            f"carveout {mem.name} has no device address for da request "
            f"0x{da:x} (rproc_check_carveout_da logs nothing)"
        )
    delta = (da - mem_da) & 0xFFFFFFFF
    if delta >= 1 << 31:
        return "Registered carveout doesn't fit da request", ""
    if (delta + length) & 0xFFFFFFFF > mem_len:
        return too_long, ""
    return None


# --------------------------------------------------------------------------
# rproc_elf_load_segments, rproc_elf_find_loaded_rsc_table


class DaToVa(Protocol):
    """``rproc_da_to_va(rproc, da, len)``: where ``[da, +len)`` is, or None.

    For a real load the answer is a writable buffer of at least ``len``
    bytes (a numpy view of a carveout); for a dry run anything but None.
    """

    def __call__(self, da: int, length: int) -> Any:
        """Translate one device range."""
        ...


OnWrite = Callable[[str, int, int], None]


@dataclass(frozen=True)
class LoadedSegment:
    """One ``PT_LOAD`` the loader wrote (or would write)."""

    index: int
    da: int
    p_offset: int
    filesz: int
    memsz: int
    target: Any = field(compare=False, repr=False)


def _phdr(data: memoryview, hdr: ElfHeader, index: int) -> dict[str, int]:
    base = hdr.e_phoff + index * hdr.phdr_size
    spec = _PHDR[hdr.elf_class]
    try:
        return {
            k: _read(data, base, v, "rproc_elf_load_segments") for k, v in spec.items()
        }
    except LinuxElfError as exc:
        raise _oob(
            "rproc_elf_load_segments",
            f"program header {index} at {base:#x} runs past the "
            f"{len(data):#x}-byte file (e_phoff + e_phnum * {hdr.phdr_size} is "
            "never checked)",
        ) from exc


def plan_segment(
    data: memoryview,
    hdr: ElfHeader,
    index: int,
    da_to_va: DaToVa,
    size_t_bits: int = 64,
) -> LoadedSegment | None:
    """One pass of ``rproc_elf_load_segments``' loop, without the write.

    Returns None for a skipped header (not ``PT_LOAD``, or ``p_memsz`` 0).
    Errors carry ``segment = index``.
    """
    try:
        return _plan_segment(data, hdr, index, da_to_va, size_t_bits)
    except LinuxElfError as exc:
        if exc.segment is None:
            exc.segment = index
        raise


def _plan_segment(
    data: memoryview, hdr: ElfHeader, index: int, da_to_va: DaToVa, size_t_bits: int
) -> LoadedSegment | None:
    fn = "rproc_elf_load_segments"
    ph = _phdr(data, hdr, index)
    da, memsz, filesz, offset = (
        ph["p_paddr"],
        ph["p_memsz"],
        ph["p_filesz"],
        ph["p_offset"],
    )
    if ph["p_type"] != PT_LOAD or memsz == 0:
        return None
    if filesz > memsz:
        raise LinuxElfError(fn, f"bad phdr filesz 0x{filesz:x} memsz 0x{memsz:x}")
    need = (offset + filesz) & _U64  # u64 arithmetic, no wrap check
    if need > len(data):
        raise LinuxElfError(fn, f"truncated fw: need 0x{need:x} avail 0x{len(data):x}")
    if not _fits_size_t(memsz, size_t_bits):
        message = f"size ({memsz:x}) does not fit in size_t type"
        raise LinuxElfError(fn, message, errno="EOVERFLOW")
    target = da_to_va(da, memsz)
    if target is None:
        raise LinuxElfError(fn, f"bad phdr da 0x{da:x} mem 0x{memsz:x}")
    if filesz and offset + filesz > len(data):
        raise _oob(
            fn,
            f"segment {index}: p_offset 0x{offset:x} + p_filesz 0x{filesz:x} wraps "
            "64 bits past the 'truncated fw' check; memcpy reads past the file",
        )
    return LoadedSegment(index, da, offset, filesz, memsz, target)


def _fits_size_t(value: int, size_t_bits: int) -> bool:
    """``rproc_u64_fit_in_size_t``."""
    return value < 1 << size_t_bits


def rproc_elf_load_segments(
    fw: Any,
    da_to_va: DaToVa,
    *,
    dry_run: bool = False,
    on_write: OnWrite | None = None,
    size_t_bits: int = 64,
) -> list[LoadedSegment]:
    """``rproc_elf_load_segments``: copy each ``PT_LOAD`` where ``p_paddr`` says.

    For each program header, at ``e_phoff + i * sizeof(Elf_Phdr)``: skip it
    unless ``PT_LOAD`` with ``p_memsz`` != 0; refuse ``p_filesz > p_memsz``
    ("bad phdr filesz 0x%llx memsz 0x%llx"), a file part past the end
    ("truncated fw: need 0x%llx avail 0x%zx"), an untranslatable range
    ("bad phdr da 0x%llx mem 0x%llx"); copy ``p_filesz`` bytes and zero the
    rest up to ``p_memsz``.  The loop stops at the first error; segments
    already written stay written, as in the kernel.

    Parameters
    ----------
    fw : bytes-like
        A firmware :func:`rproc_elf_sanity_check` accepted.
    da_to_va : callable(da, len)
        Writable buffer of at least ``len`` bytes, or None.
    dry_run : bool
        Translate and check only; write nothing.
    on_write : callable(op, da, size), optional
        Told of each write (``"copy"``, ``"zero"``) after it happens.
    size_t_bits : int
        64 or 32: the kernel's ``size_t`` (``p_memsz`` must fit it,
        "size (%llx) does not fit in size_t type", ``-EOVERFLOW``).

    Returns
    -------
    list of LoadedSegment
        The segments written, in order.

    Raises
    ------
    LinuxElfError
        The first failing segment (``-EINVAL``), or ``kernel_oob``.
    """
    data = _view(fw)
    hdr = _header(data, "rproc_elf_load_segments")
    done: list[LoadedSegment] = []
    for index in range(hdr.e_phnum):
        seg = plan_segment(data, hdr, index, da_to_va, size_t_bits)
        if seg is None:
            continue
        if not dry_run:
            _write_segment(data, seg, on_write)
        done.append(seg)
    return done


def _write_segment(
    data: memoryview, seg: LoadedSegment, on_write: OnWrite | None
) -> None:
    """``memcpy`` the file part, ``memset`` the rest, through the kernels."""
    src = data[seg.p_offset : seg.p_offset + seg.filesz]
    rest = seg.memsz - seg.filesz
    if isinstance(seg.target, DeviceSpan):
        _write_device(seg, src, rest)
    else:
        _write_buffer(seg, src, rest)
    if on_write is not None:
        if seg.filesz:
            on_write("copy", seg.da, seg.filesz)
        if rest:
            on_write("zero", seg.da + seg.filesz, rest)


def _write_device(seg: LoadedSegment, src: memoryview, rest: int) -> None:
    # Write where rproc_da_to_va pointed (region start + its offset), which
    # differs from p_paddr when the kernel's int offset truncated it.
    span = seg.target
    memory, at = span.memory, span.region_da + span.offset
    if seg.filesz:
        memory.copy_in(at, src)
    if rest:
        memory.fill(at + seg.filesz, rest)


def _write_buffer(seg: LoadedSegment, src: memoryview, rest: int) -> None:
    dst = seg.target
    room = memoryview(dst).nbytes
    if room < seg.memsz:
        raise ValueError(
            f"da_to_va(0x{seg.da:x}, 0x{seg.memsz:x}) returned a 0x{room:x}-byte buffer"
        )
    if seg.filesz:
        kernels.copy_segment(dst, 0, src)
    if rest:
        kernels.zero_fill(dst, seg.filesz, rest)


@dataclass(frozen=True)
class DeviceSpan:
    """A translated range of a :class:`~rproctee.platform.DeviceMemory`.

    ``da``/``size`` are what was asked; ``region``, ``region_da`` and
    ``offset`` where ``rproc_da_to_va`` put it.  Writes to it go through
    ``DeviceMemory.copy_in`` / ``fill`` (checked, recorded, done by the
    kernels) at ``region_da + offset``.
    """

    memory: Any
    da: int
    size: int
    region: str
    region_da: int = 0
    offset: int = 0

    def __str__(self) -> str:
        return self.region


def device_memory_da_to_va(memory: Any) -> DaToVa:
    """``rproc_da_to_va`` over a ``DeviceMemory``'s regions taken as carveouts.

    Parameters
    ----------
    memory : rproctee.platform.DeviceMemory
        Its regions, in order, are the carveout list.

    Returns
    -------
    callable(da, len) -> DeviceSpan or None
    """
    regions = memory.regions

    def da_to_va(da: int, length: int) -> DeviceSpan | None:
        hit = carveout_da_to_va(regions, da, length)
        if hit is None:
            return None
        region = regions[hit[0]]
        return DeviceSpan(memory, da, length, region.name, region.da, hit[1])

    return da_to_va


def rproc_elf_find_loaded_rsc_table(
    fw: Any,
    da_to_va: DaToVa,
    *,
    log: list[str] | None = None,
    size_t_bits: int = 64,
) -> Any:
    """``rproc_elf_find_loaded_rsc_table``: the table in device memory, or None.

    ``find_table`` again (its refusals give None, as NULL, and its
    ``dev_err`` line is logged a second time: appended to ``log``), then
    ``rproc_da_to_va(sh_addr, sh_size)``: the section address, not a
    program header's.  ``kernel_oob`` findings are raised.
    """
    try:
        section = find_table(fw)
    except LinuxElfError as exc:
        if exc.kernel_oob:
            raise
        if log is not None:
            log.append(exc.message)
        return None
    if section is None:
        return None
    if not _fits_size_t(section.sh_size, size_t_bits):
        if log is not None:
            log.append(f"size ({section.sh_size:x}) does not fit in size_t type")
        return None
    return da_to_va(section.sh_addr, section.sh_size)


# --------------------------------------------------------------------------
# rproc_da_to_va over a carveout list, and the whole ELF boot as a dry run


def _carveout_len(mem: Any) -> int:
    """``carveout->len``: a ``RegionSpec``'s ``size`` or a ``MemEntry``'s ``len``."""
    size = getattr(mem, "size", None)
    return int(mem.len if size is None else size)


def carveout_da_to_va(
    carveouts: Sequence[Any], da: int, length: int, *, size_t_bits: int = 64
) -> tuple[int, int] | None:
    """``rproc_da_to_va``'s carveout walk: (index, offset) of the first fit.

    ``carveouts`` are objects with ``name``, ``da`` and ``size`` (or ``len``),
    in list order; entries the caller has not allocated must be left out.

    ``int offset = da - carveout->da`` keeps 32 signed bits, so a difference
    of 2**31 or more (mod 2**32) is negative and skipped; ``offset + len`` is
    ``size_t`` arithmetic (a wrap is reported as ``kernel_oob``).

    Raises
    ------
    LinuxElfError
        ``kernel_oob`` when ``offset + len`` wraps ``size_t`` and the kernel
        would return a pointer for a range the carveout cannot hold.
    """
    size_max = (1 << size_t_bits) - 1
    for index, mem in enumerate(carveouts):
        offset = (da - mem.da) & 0xFFFFFFFF
        if offset >= 1 << 31:
            continue
        end = offset + length
        if end & size_max > _carveout_len(mem):
            continue
        if end > size_max:
            raise _oob(
                "rproc_da_to_va",
                f"da 0x{da:x} len 0x{length:x}: offset + len wraps the "
                f"{size_t_bits}-bit size_t and passes the check against "
                f"carveout {mem.name}",
                access="writes",
            )
        return index, offset
    return None


@dataclass(frozen=True)
class LinuxVerdict:
    """What ``rproc_fw_boot`` with the ELF ops would do, step by step.

    ``loads`` is False at the first refusal: ``function``, ``errno`` and
    ``message`` (the kernel's log line) say where and why, ``segment`` which
    program header.  ``log`` holds every line the kernel would log, in
    order, warnings included.  ``table_error`` is the refusal of a table
    ``parse_fw`` went on without (stm32, imx).
    """

    loads: bool
    policy: ParseFwPolicy
    function: str | None = None
    errno: str | None = None
    message: str | None = None
    kernel_oob: bool = False
    log: tuple[str, ...] = ()
    boot_addr: int | None = None
    rsc_table: ResourceTable | None = None
    segments: tuple[tuple[int, str], ...] = ()
    loaded_table: str | None = None
    table_error: str | None = None
    segment: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "loads": self.loads,
            "parse_fw": self.policy.value,
            "parse_fw_function": self.policy.driver_function,
            "function": self.function,
            "errno": self.errno,
            "message": self.message,
            "kernel_oob": self.kernel_oob,
            "log": list(self.log),
            "boot_addr": self.boot_addr,
            "rsc_table": self.rsc_table.to_dict() if self.rsc_table else None,
            "segments": [{"index": i, "carveout": n} for i, n in self.segments],
            "loaded_table": self.loaded_table,
            "table_error": self.table_error,
            "segment": self.segment,
        }


def elf_boot_verdict(
    fw: Any,
    carveouts: Sequence[Any],
    *,
    policy: ParseFwPolicy = ParseFwPolicy.DEFAULT,
    has_iommu: bool = False,
    size_t_bits: int = 64,
) -> LinuxVerdict:
    """Run ``rproc_fw_boot``'s ELF steps as a dry run over ``carveouts``.

    The order is the kernel's: ``sanity_check``, ``get_boot_addr``,
    ``parse_fw`` (under ``policy``), ``rproc_handle_resources``,
    ``load`` (:func:`rproc_elf_load_segments`, nothing written),
    ``find_loaded_rsc_table`` (with a refused table, stm32 and the default
    run ``find_table`` again and log its refusal a second time).  Carveouts
    the resource table would allocate are not modelled (their addresses come
    from the DMA allocator): the walk translates over ``carveouts`` only.

    Parameters
    ----------
    fw : bytes-like
        The firmware image.
    carveouts : sequence of objects with ``name``, ``da``, ``size``
        The registered carveouts in list order (for stm32: one per
        ``memory-region``).
    policy : ParseFwPolicy
        The platform driver's ``parse_fw``.
    has_iommu : bool
        Whether devmem entries can be mapped.
    size_t_bits : int
        64 (default) or 32: the kernel's word size.

    Returns
    -------
    LinuxVerdict
    """
    log: list[str] = []
    state: dict[str, Any] = {}

    def translate(da: int, length: int) -> str | None:
        hit = carveout_da_to_va(carveouts, da, length, size_t_bits=size_t_bits)
        return None if hit is None else carveouts[hit[0]].name

    try:
        rproc_elf_sanity_check(fw)
        state["boot_addr"] = rproc_elf_get_boot_addr(fw)
        parsed = parse_fw(fw, policy)
        log.extend(parsed.log)
        if parsed.rejected is not None and parsed.rejected.message:
            # a table find_table refused (not a missing section)
            state["table_error"] = parsed.rejected.message
        try:
            state["rsc_table"] = rproc_handle_resources(
                parsed.table, has_iommu=has_iommu, carveouts=carveouts
            )
        except RscTableError as exc:
            log.extend(x for x in (exc.message,) if x)
            log.append(f"Failed to process resources: {-_ERRNO[exc.errno]}")
            return LinuxVerdict(
                False, policy, "rproc_handle_resources", exc.errno,
                exc.message or exc.note, log=tuple(log), **state,
            )  # fmt: skip
        if state["rsc_table"] is not None:
            log.extend(state["rsc_table"].warnings)
        segs = rproc_elf_load_segments(
            fw, translate, dry_run=True, size_t_bits=size_t_bits
        )
        state["segments"] = tuple((s.index, str(s.target)) for s in segs)
        # stm32 and the default call it whatever parse_fw left; imx's
        # variant returns NULL at once without a table.
        if parsed.table is not None or policy is not ParseFwPolicy.IMX:
            state["loaded_table"] = rproc_elf_find_loaded_rsc_table(
                fw, translate, log=log, size_t_bits=size_t_bits
            )
    except LinuxElfError as exc:
        log.extend(_failure_log(exc))
        state["segment"] = exc.segment
        return LinuxVerdict(
            False, policy, exc.function, exc.errno, exc.message or exc.note,
            exc.kernel_oob, tuple(log), **state,
        )  # fmt: skip
    return LinuxVerdict(True, policy, log=tuple(log), **state)


def _failure_log(exc: LinuxElfError) -> list[str]:
    """The refusal's own line, and ``rproc_start``'s after a failed load."""
    lines = [exc.message] if exc.message else []
    if exc.function == "rproc_elf_load_segments" and not exc.kernel_oob:
        lines.append(f"Failed to load program segments: {-_ERRNO[exc.errno]}")
    return lines
