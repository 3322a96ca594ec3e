"""The "will this load?" pre-flight: the verdicts of both worlds, without a load.

:func:`check_firmware` takes a signed image or a plain ELF and a
:class:`~rproctee.platform.board.PlatformSpec`.

The TEE verdict is not a second implementation of the TA's rules: it is the
very LOAD_FW ``rproctee load`` runs (:func:`rproctee.api.run_load`), under the
same policy, on a scratch secure world of the same platform whose memories
are thrown away afterwards, so ``check`` and ``load`` cannot disagree. A
signed image is verified with the platform's key (or ``key_pem``) as ``load``
would; a plain ELF is first put into an image exactly as ``rproctee sign``
does, signed with a key made for the check (its signature is the one thing
the verdict cannot speak for).

Around that verdict, to explain it, the placement walk says what the TA and
the PTA do with each segment (spec sections 2.5-2.7 and 3.3):

* each ``PT_LOAD`` is written by two PTA calls translated separately:
  ``LOAD_SEGMENT_SHA256`` for ``[p_paddr, +p_filesz)`` and ``SET_MEMORY`` for
  the zero-fill ``[p_paddr + p_filesz, +(p_memsz - p_filesz))`` (32-bit
  arithmetic, as the value parameters are 32-bit); a range in no single region
  gives ``TEE_ERROR_ACCESS_DENIED``;
* the ``.resource_table`` section is checked as the TA does, then translated
  with ``DA_TO_PA(sh_addr, sh_size)``.

The Linux verdict comes from the one implementation of the Linux ELF ops,
:func:`rproctee.linux.elf_loader.elf_boot_verdict` (Linux 6.12), run as a dry
run over the platform's Linux carveouts with the ``parse_fw`` of the
platform's driver (:class:`~rproctee.linux.elf_loader.ParseFwPolicy`: stm32
for presets and device trees, the generic default for TOML profiles), the
same code the normal world's ``--no-tee`` boot runs.  Its refusal (or the
table it logs and boots without) is attached to the finding for the same
place, in the kernel's own wording, so users can search either message.
Signatures and hashes are not checked here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from rproctee import kernels
from rproctee.elf import ElfScan, scan_elf
from rproctee.errors import AddressError, ElfFormatError, FormatError
from rproctee.linux.elf_loader import (
    LinuxElfError,
    LinuxVerdict,
    ParseFwPolicy,
    carveout_da_to_va,
    elf_boot_verdict,
    parse_fw_policy_for,
)
from rproctee.platform.board import PlatformSpec
from rproctee.platform.memory import RegionSpec

IMAGE_MAGIC = 0x3543A468
ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1
RSC_SECTION = ".resource_table"
TEE_RESULTS = {
    "TEE_SUCCESS": 0x00000000,
    "TEE_ERROR_ACCESS_DENIED": 0xFFFF0001,
    "TEE_ERROR_BAD_FORMAT": 0xFFFF0005,
    "TEE_ERROR_BAD_PARAMETERS": 0xFFFF0006,
    "TEE_ERROR_NOT_SUPPORTED": 0xFFFF000A,
    "TEE_ERROR_NO_DATA": 0xFFFF000B,
    "TEE_ERROR_CORRUPT_OBJECT": 0xF0100001,
}
_REASONS = {
    kernels.LOC_OUTSIDE: "outside",
    kernels.LOC_STRADDLE: "straddle",
    kernels.LOC_ZERO_SIZE: "zero-size",
}
_U32 = 1 << 32


@dataclass(frozen=True)
class TeeVerdict:
    """What LOAD_FW answered on the scratch world (the ``load`` code path)."""

    result: str
    code: int
    reason: str
    policy: str
    #: (op, da, len, region) of every write the load made.
    writes: tuple[tuple[str, int, int, str], ...]
    #: ``(pa, size)`` from GET_RSC_TABLE, or None.
    rsc_table: tuple[int, int] | None
    #: True when the input was a plain ELF signed for the check.
    signed_for_check: bool

    @property
    def ok(self) -> bool:
        """LOAD_FW answered ``TEE_SUCCESS``."""
        return self.code == 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        doc = asdict(self)
        doc["writes"] = [
            {"op": op, "da": da, "len": n, "region": region}
            for op, da, n, region in self.writes
        ]
        doc["rsc_table"] = (
            None if self.rsc_table is None
            else {"pa": self.rsc_table[0], "size": self.rsc_table[1]}
        )  # fmt: skip
        return doc


@dataclass(frozen=True)
class Placement:
    """Where one PTA call's device range lands.

    ``op`` is the PTA command (``LOAD_SEGMENT_SHA256``, ``SET_MEMORY``,
    ``DA_TO_PA``); ``region``/``pa`` are None and ``reason`` is ``"outside"``,
    ``"straddle"`` or ``"zero-size"`` when no single region holds the range.
    """

    op: str
    da: int
    size: int
    region: str | None
    pa: int | None
    reason: str | None


@dataclass(frozen=True)
class Finding:
    """One problem, in processing order.

    ``severity``: ``"error"`` (OP-TEE refuses: ``ta`` is its result),
    ``"warning"`` (OP-TEE loads it, but it is dangerous or surprising) or
    ``"linux"`` (only the Linux ELF ops would refuse). ``linux`` is the line
    the Linux kernel logs for the same input, if it logs one (for a table
    stm32/imx boot without, the table's refusal).
    """

    severity: str
    where: str
    ta: str | None
    message: str
    linux: str | None = None


@dataclass(frozen=True)
class SegmentCheck:
    """One program header of one embedded ELF and where it lands."""

    image: int
    index: int
    p_type: int
    p_offset: int
    p_vaddr: int
    p_paddr: int
    p_filesz: int
    p_memsz: int
    p_flags: int
    copy: Placement | None
    fill: Placement | None
    linux_region: str | None
    status: str

    @property
    def where(self) -> str:
        """``image I segment N``."""
        return f"image {self.image} segment {self.index}"


@dataclass(frozen=True)
class RscTableCheck:
    """The ``.resource_table`` section and its translation."""

    image: int
    section: int
    sh_addr: int
    sh_offset: int
    sh_size: int
    placement: Placement | None
    segment: int | None


@dataclass(frozen=True)
class CheckReport:
    """The whole pre-flight answer."""

    source: str
    kind: str
    platform: PlatformSpec
    images: int
    segments: tuple[SegmentCheck, ...]
    rsc_table: RscTableCheck | None
    findings: tuple[Finding, ...]
    linux: tuple[LinuxVerdict, ...] = ()
    parse_fw: ParseFwPolicy = ParseFwPolicy.DEFAULT
    #: LOAD_FW's own answer on a scratch world (None: the input could not be
    #: put into an image, e.g. an ELF whose headers cannot be read).
    tee: TeeVerdict | None = None

    @property
    def would_load(self) -> bool:
        """Whether LOAD_FW succeeds (the TA's answer, as ``load`` gets it)."""
        if self.tee is not None:
            return self.tee.ok
        return not any(f.severity == "error" for f in self.findings)

    @property
    def ta_result(self) -> str:
        """The TA's answer: LOAD_FW's result, else the first error finding's."""
        if self.tee is not None:
            return self.tee.result
        for finding in self.findings:
            if finding.severity == "error" and finding.ta:
                return finding.ta
        return "TEE_SUCCESS"

    @property
    def linux_would_load(self) -> bool:
        """Whether ``rproc_fw_boot`` with the Linux ELF ops accepts every ELF."""
        return all(v.loads for v in self.linux)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (addresses as integers)."""
        return {
            "source": self.source,
            "kind": self.kind,
            "platform": {"name": self.platform.name, "source": self.platform.source},
            "would_load": self.would_load,
            "ta_result": self.ta_result,
            "ta_result_code": (
                self.tee.code if self.tee is not None else TEE_RESULTS[self.ta_result]
            ),
            "tee": self.tee.to_dict() if self.tee is not None else None,
            "linux_would_load": self.linux_would_load,
            "linux": {
                "parse_fw": self.parse_fw.value,
                "parse_fw_function": self.parse_fw.driver_function,
                "images": [v.to_dict() for v in self.linux],
            },
            "images": self.images,
            "segments": [_segment_dict(s) for s in self.segments],
            "resource_table": asdict(self.rsc_table) if self.rsc_table else None,
            "findings": [asdict(f) for f in self.findings],
        }


def _segment_dict(seg: SegmentCheck) -> dict[str, Any]:
    doc = asdict(seg)
    doc["where"] = seg.where
    return doc


class _RegionTable:
    """The platform's regions as the kernels want them (device-address view)."""

    def __init__(self, regions: Sequence[RegionSpec]) -> None:
        self.regions = tuple(regions)
        self.bases = np.array([r.da for r in regions], dtype=np.uint64)
        self.sizes = np.array([r.size for r in regions], dtype=np.uint64)

    def place(self, op: str, da: int, size: int) -> Placement:
        """Locate ``[da, +size)`` as the PTA does: first region holding it whole."""
        code = int(kernels.locate(da, size, self.bases, self.sizes))
        if code < 0:
            return Placement(op, da, size, None, None, _REASONS[code])
        region = self.regions[code]
        return Placement(op, da, size, region.name, region.pa + da - region.da, None)


def check_firmware(
    buf: bytes | bytearray | memoryview,
    platform: PlatformSpec,
    source: str = "",
    *,
    parse_fw: ParseFwPolicy | None = None,
    policy: str = "strict",
    key_pem: bytes | None = None,
    accept_ecdsa: bool | None = None,
) -> CheckReport:
    """Pre-flight a signed image or ELF file against a platform.

    Parameters
    ----------
    buf : bytes-like
        A signed image (magic 0x3543A468, little-endian) or a plain ELF file.
    platform : PlatformSpec
        From :func:`rproctee.platform.board.load_platform`.
    source : str
        File name kept in the report.
    parse_fw : ParseFwPolicy, optional
        The Linux driver's ``parse_fw``; by default the platform's
        (:func:`~rproctee.linux.elf_loader.parse_fw_policy_for`).
    policy : {"strict", "optee"}
        The TA's policy, as ``rproctee load --policy`` (default: strict).
    key_pem : bytes, optional
        The PTA's key for a signed image (default: the platform's own).
    accept_ecdsa : bool, optional
        Override whether the platform verifies ECDSA P-256.

    Returns
    -------
    CheckReport
        Per segment its placement, the resource table's location, and the
        findings in the order the TA would meet them.

    Raises
    ------
    FormatError
        Neither magic matches.  (An ELF whose headers the TA cannot read is
        a ``TEE_ERROR_BAD_FORMAT`` finding, beside Linux's own verdict; a
        signed-image container the format's parser refuses still gets
        LOAD_FW's verdict, with the parser's complaint as a warning.)
    """
    view = memoryview(buf).cast("B")
    linux_policy = parse_fw if parse_fw is not None else parse_fw_policy_for(platform)
    state = _State(_RegionTable(platform.regions), platform, linux_policy)
    elfs = _split_input(view, state)
    for image, (data, abs_offset) in enumerate(elfs):
        _check_elf(state, image, data, abs_offset)
    state.findings.extend(_overlap_findings(state.segments))
    tee = tee_verdict(view, state.kind, platform, policy, key_pem, accept_ecdsa)
    return CheckReport(
        source=source,
        kind=state.kind,
        platform=platform,
        images=len(elfs),
        segments=tuple(state.segments),
        rsc_table=state.rsc,
        findings=tuple(state.findings),
        linux=tuple(state.linux),
        parse_fw=linux_policy,
        tee=tee,
    )


def tee_verdict(
    view: memoryview,
    kind: str,
    platform: PlatformSpec,
    policy: str = "strict",
    key_pem: bytes | None = None,
    accept_ecdsa: bool | None = None,
) -> TeeVerdict | None:
    """LOAD_FW of ``view`` on a scratch secure world of ``platform``.

    The same :func:`rproctee.api.run_load` that ``rproctee load`` runs; the
    scratch world's memories are lazily allocated (only what is written costs
    anything) and dropped on return. A plain ELF is signed for the check
    first; None when it cannot be put into an image at all.
    """
    from rproctee.api import run_load
    from rproctee.tee import build_secure_world

    image, signed_for_check = view, False
    if kind == "elf":
        wrapped = _signed_for_check(view)
        if wrapped is None:
            return None
        image, key_pem = memoryview(wrapped[0]), wrapped[1]
        signed_for_check = True
    world = build_secure_world(
        platform, policy=policy, key_pem=key_pem, accept_ecdsa=accept_ecdsa,
        prefault="lazy",
    )  # fmt: skip
    result = run_load(world, image)
    return TeeVerdict(
        result=result.result,
        code=result.code,
        reason=result.reason,
        policy=result.policy,
        writes=tuple((w.op, w.da, w.len, w.region) for w in result.writes),
        rsc_table=result.rsc_table_address,
        signed_for_check=signed_for_check,
    )


_CHECK_KEY: list[Any] = []


def _signed_for_check(elf: memoryview) -> tuple[bytes, bytes] | None:
    """The ELF in an image as ``rproctee sign`` makes it, and the public key.

    The key is made once per process (RSA-2048, what stm32mp verifies).
    """
    from rproctee.image import KeySigner, build_image, generate_key, public_key_pem

    if not _CHECK_KEY:
        _CHECK_KEY.append(generate_key("rsa2048"))
    key = _CHECK_KEY[0]
    try:
        image = build_image([elf], KeySigner(key))
    except (FormatError, ValueError):
        return None  # headers the signing tool itself cannot read
    return image, public_key_pem(key)


def _split_input(view: memoryview, state: _State) -> list[tuple[memoryview, int]]:
    if len(view) >= 4 and int.from_bytes(view[:4], "little") == IMAGE_MAGIC:
        from rproctee.image import ImageFormatError, parse_image

        state.kind = "signed-image"
        try:
            signed = parse_image(view)
        except ImageFormatError as exc:
            # the format's own parser is stricter than the TA: the verdict
            # stays LOAD_FW's, this only explains why nothing is laid out
            state.add("warning", "image", None, f"not laid out: {exc}", None)
            return []
        state.hash_table = [
            (e.p_type, e.p_paddr, e.p_filesz, e.p_memsz) for e in signed.hash_table
        ]
        _sign_type_findings(state, int(signed.sign_type))
        return [(img.data, img.offset) for img in signed.images]
    if bytes(view[:4]) == ELF_MAGIC:
        return [(view, 0)]
    magic = int.from_bytes(view[:4], "little") if len(view) >= 4 else 0
    raise FormatError(
        "magic", magic, "neither a signed image (0x3543a468) nor an ELF file"
    )


def _sign_type_findings(state: _State, sign_type: int) -> None:
    if sign_type == 2 and not state.platform.accept_ecdsa:
        state.add(
            "error",
            "signature",
            "TEE_ERROR_NOT_SUPPORTED",
            f"SIGNTYPE 2 (ECDSA P-256): platform {state.platform.name} verifies "
            "RSA only (PTA VERIFY_DIGEST)",
            None,
        )


class _State:
    """What the walk accumulates: segments, findings, the resource table."""

    def __init__(
        self, table: _RegionTable, platform: PlatformSpec, policy: ParseFwPolicy
    ) -> None:
        self.table = table
        self.platform = platform
        self.policy = policy
        self.carveouts = platform.linux_carveouts()
        self.linux: list[LinuxVerdict] = []
        self.kind = "elf"
        #: (p_type, p_paddr, p_filesz, p_memsz) of each HASHTABLE entry.
        self.hash_table: list[tuple[int, int, int, int]] | None = None
        self.segments: list[SegmentCheck] = []
        self.findings: list[Finding] = []
        self.rsc: RscTableCheck | None = None

    def add(
        self, severity: str, where: str, ta: str | None, msg: str, linux: str | None
    ) -> None:
        """Record one finding."""
        self.findings.append(Finding(severity, where, ta, msg, linux))


def _check_elf(state: _State, image: int, data: memoryview, abs_offset: int) -> None:
    try:
        scan = scan_elf(data)
    except ElfFormatError as exc:
        # The TA cannot read the headers; Linux reads fewer fields (issue 13:
        # no e_phentsize/e_shentsize check) and still gets its own verdict.
        where = f"image {image} ELF header"
        state.add("error", where, "TEE_ERROR_BAD_FORMAT", str(exc), None)
    else:
        _check_scanned(state, image, scan, abs_offset)
    verdict = elf_boot_verdict(data, state.carveouts, policy=state.policy)
    state.linux.append(verdict)
    _merge_linux(state, image, verdict)
    narrow = elf_boot_verdict(
        data, state.carveouts, policy=state.policy, size_t_bits=32
    )
    _warn_32bit(state, image, verdict, narrow)


def _check_scanned(state: _State, image: int, scan: ElfScan, abs_offset: int) -> None:
    """The TA's side: header, each program header, the resource table."""
    if image == 0:
        _header_findings(state, scan)
    _machine_finding(state, image, scan.machine)
    for index in range(scan.phnum):
        seg = _check_segment(state, image, index, scan)
        if seg is not None:
            state.segments.append(seg)
    _check_rsc_table(state, image, scan, abs_offset)


#: The ``e_machine`` a processor's firmware is built for, by core family
#: (``PlatformSpec.cpu``: from the device tree's compatible or the preset).
_CPU_MACHINES = (
    ("cortex-", (40,)),  # EM_ARM: Cortex-M and Cortex-R cores
    ("c66x", (140,)), ("c71x", (140,)),  # EM_TI_C6000
    ("hifi", (94,)),  # EM_XTENSA
    ("riscv", (243,)),  # EM_RISCV
)  # fmt: skip


def _machine_finding(state: _State, image: int, machine: int) -> None:
    """Firmware built for another CPU than the platform's processor node: a
    warning in words (the TA looks at e_machine only under strict, Linux
    never does; the core would run garbage)."""
    from rproctee.elf import describe_machine

    cpu = state.platform.cpu or ""
    expected = next(
        (m for prefix, m in _CPU_MACHINES if cpu.startswith(prefix)), None
    )
    if expected is None or machine in expected:
        return
    wanted = " or ".join(describe_machine(m) for m in expected)
    state.add(
        "warning",
        f"image {image} ELF header",
        None,
        f"e_machine {describe_machine(machine)}: built for another CPU than "
        f"the platform's {cpu} (firmware for it is {wanted})",
        None,
    )


def _header_findings(state: _State, scan: ElfScan) -> None:
    where = "image 0 ELF header"
    if scan.elf_class != 32:
        state.add(
            "error",
            where,
            "TEE_ERROR_BAD_FORMAT",
            f"EI_CLASS is ELF{scan.elf_class}: the TA loads 32-bit ELF only",
            None,
        )
    if scan.phnum == 0:
        state.add("error", where, "TEE_ERROR_BAD_FORMAT", "e_phnum is 0", None)


def _check_segment(
    state: _State, image: int, index: int, scan: ElfScan
) -> SegmentCheck | None:
    ph = {k: int(scan.phdrs[index][k]) for k in scan.phdrs.dtype.names or ()}
    if ph["p_type"] != PT_LOAD:
        return None
    where = f"image {image} segment {index}"
    paddr, filesz, memsz = ph["p_paddr"], ph["p_filesz"], ph["p_memsz"]
    end = ph["p_offset"] + filesz
    if end > len(scan.buf):
        state.add(
            "error",
            where,
            "TEE_ERROR_BAD_FORMAT",
            f"p_offset {ph['p_offset']:#x} + p_filesz {filesz:#x} is beyond the "
            f"{len(scan.buf):#x}-byte ELF file",
            None,
        )
        return _segment(image, index, ph, None, None, None, "truncated")
    copy, fill = _ta_placements(state.table, paddr, filesz, memsz)
    linux = _linux_carveout(state, paddr, memsz)
    if not _hash_entry_ok(state, where, paddr, filesz, memsz):
        return _segment(image, index, ph, copy, fill, linux, "no-hash")
    status = _segment_findings(state, where, ph, copy, fill, linux)
    return _segment(image, index, ph, copy, fill, linux, status)


def _linux_carveout(state: _State, paddr: int, memsz: int) -> str | None:
    """The carveout ``rproc_da_to_va`` gives ``[p_paddr, +p_memsz)`` (display).

    None for ``p_memsz`` 0 (Linux skips the segment) or no carveout.
    """
    if memsz == 0:
        return None
    try:
        hit = carveout_da_to_va(state.carveouts, paddr, memsz)
    except LinuxElfError:
        return None
    return None if hit is None else state.carveouts[hit[0]].name


def _segment(
    image: int,
    index: int,
    ph: dict[str, int],
    copy: Placement | None,
    fill: Placement | None,
    linux: str | None,
    status: str,
) -> SegmentCheck:
    return SegmentCheck(
        image,
        index,
        ph["p_type"],
        ph["p_offset"],
        ph["p_vaddr"],
        ph["p_paddr"],
        ph["p_filesz"],
        ph["p_memsz"],
        ph["p_flags"],
        copy,
        fill,
        linux,
        status,
    )


def _hash_entry_ok(
    state: _State, where: str, paddr: int, filesz: int, memsz: int
) -> bool:
    if state.hash_table is None:
        return True
    entry = next((e for e in state.hash_table if e[1] == paddr), None)
    if entry is None:
        msg = f"no HASHTABLE entry has p_paddr {paddr:#x}"
        state.add("error", where, "TEE_ERROR_NO_DATA", msg, None)
        return False
    if entry[0] != PT_LOAD or entry[2:] != (filesz, memsz):
        msg = (
            f"HASHTABLE entry for p_paddr {paddr:#x} (p_type {entry[0]}, "
            f"p_filesz {entry[2]:#x}, p_memsz {entry[3]:#x}) differs from the ELF"
        )
        state.add("error", where, "TEE_ERROR_BAD_PARAMETERS", msg, None)
        return False
    return True


def _ta_placements(
    table: _RegionTable, paddr: int, filesz: int, memsz: int
) -> tuple[Placement | None, Placement | None]:
    copy = table.place("LOAD_SEGMENT_SHA256", paddr, filesz) if filesz else None
    fill = None
    if filesz < memsz:
        # SET_MEMORY takes 32-bit value parameters: the address wraps.
        fill = table.place("SET_MEMORY", (paddr + filesz) % _U32, memsz - filesz)
    return copy, fill


def _segment_findings(
    state: _State,
    where: str,
    ph: dict[str, int],
    copy: Placement | None,
    fill: Placement | None,
    linux_region: str | None,
) -> str:
    filesz, memsz = ph["p_filesz"], ph["p_memsz"]
    for placement in (copy, fill):
        if placement is not None and placement.reason is not None:
            state.add(
                "error",
                where,
                "TEE_ERROR_ACCESS_DENIED",
                f"PTA {placement.op}: {_address_text(placement)}",
                None,
            )
            return placement.reason
    return "empty" if filesz == 0 and memsz == 0 else "ok"


def _address_text(placement: Placement) -> str:
    assert placement.reason is not None
    return str(AddressError("device", placement.da, placement.size, placement.reason))


def _merge_linux(state: _State, image: int, verdict: LinuxVerdict) -> None:
    """Attach the Linux verdict to the finding for the same place.

    A table stm32/imx log and boot without is a warning; a refusal goes on
    the TA's finding for the same place, or becomes a ``linux`` finding.
    """
    rsc_where = f"image {image} {RSC_SECTION}"
    if verdict.table_error is not None:
        text = (
            f"Linux ({verdict.policy.driver_function}) logs this and boots "
            "without a resource table"
        )
        _attach(state, rsc_where, verdict.table_error, "warning", text)
    if verdict.loads or verdict.message is None:
        return
    where = _linux_where(image, verdict)
    _attach(state, where, verdict.message, "linux", _linux_only_text(verdict))


def _linux_where(image: int, verdict: LinuxVerdict) -> str:
    """The finding place of a Linux refusal."""
    if verdict.segment is not None:
        return f"image {image} segment {verdict.segment}"
    if verdict.function in _RSC_FUNCTIONS:
        return f"image {image} {RSC_SECTION}"
    return f"image {image} ELF header"


def _warn_32bit(
    state: _State, image: int, wide: LinuxVerdict, narrow: LinuxVerdict
) -> None:
    """Warn when a 32-bit kernel (stm32mp15 runs one) would answer otherwise.

    The verdict stays the 64-bit kernel's (the normal world's model); a huge
    ``p_memsz`` that wraps ``rproc_da_to_va``'s 32-bit ``offset + len`` is
    refused there but corrupts memory here.
    """
    if (narrow.loads, narrow.kernel_oob) == (wide.loads, wide.kernel_oob):
        return
    if narrow.kernel_oob:
        what = f"would access memory out of bounds in {narrow.function} (it may oops)"
    elif not narrow.loads:
        what = f"refuses it in {narrow.function}"
    else:
        what = "loads it"
    text = (
        "on a 32-bit kernel (size_t of 32 bits, as on stm32mp15's Cortex-A7) "
        f"Linux {what}"
    )
    where = _linux_where(image, narrow if not narrow.loads else wide)
    state.add("warning", where, None, text, narrow.message)


_RSC_FUNCTIONS = ("find_table", "rproc_elf_load_rsc_table", "rproc_handle_resources")


def _attach(state: _State, where: str, linux: str, severity: str, text: str) -> None:
    for i, finding in enumerate(state.findings):
        if finding.where == where and finding.severity == "error" and not finding.linux:
            state.findings[i] = replace(finding, linux=linux)
            return
    state.add(severity, where, None, text, linux)


def _linux_only_text(verdict: LinuxVerdict) -> str:
    """Why only Linux refuses, in a sentence."""
    message = verdict.message or ""
    if verdict.kernel_oob:
        return (
            "a real Linux kernel would access memory out of bounds in "
            f"{verdict.function} on this image (it may oops); the model refuses it"
        )
    if message == "Unsupported firmware endianness":
        return (
            "EI_DATA is big-endian: the TA does not check it and reads the "
            "fields little-endian"
        )
    if message.startswith("bad phdr filesz"):
        return (
            "p_filesz > p_memsz: the TA copies p_filesz bytes and zero-fills "
            "nothing; Linux refuses the segment"
        )
    if message.startswith("bad phdr da"):
        return (
            "Linux needs [p_paddr, +p_memsz) inside one carveout "
            "(rproc_da_to_va); the TA translates the file part and the "
            "zero-fill separately"
        )
    return (
        f"Linux {verdict.function} refuses this image "
        f"(parse_fw: {verdict.policy.driver_function})"
    )


def _check_rsc_table(state: _State, image: int, scan: ElfScan, abs_offset: int) -> None:
    where = f"image {image} {RSC_SECTION}"
    try:
        index = scan.find_section(RSC_SECTION)
    except ElfFormatError as exc:
        state.add("error", where, "TEE_ERROR_BAD_FORMAT", str(exc), None)
        return
    if index is None:
        return
    sh = {k: int(scan.shdrs[index][k]) for k in ("sh_addr", "sh_offset", "sh_size")}
    if sh["sh_size"] == 0:
        return
    if state.rsc is not None:
        state.add(
            "error",
            where,
            "TEE_ERROR_BAD_FORMAT",
            f"a second resource table (image {state.rsc.image} has one)",
            None,
        )
        return
    problem = _rsc_layout_problem(scan, sh, abs_offset)
    placement = None
    if problem is not None:
        state.add("error", where, problem[0], problem[1], None)
    else:
        placement = state.table.place("DA_TO_PA", sh["sh_addr"], sh["sh_size"])
        _rsc_placement_findings(state, where, placement)
    segment = _containing_segment(state.segments, image, sh["sh_addr"], sh["sh_size"])
    state.rsc = RscTableCheck(
        image, index, sh["sh_addr"], sh["sh_offset"], sh["sh_size"], placement, segment
    )
    if placement is not None and placement.reason is None and segment is None:
        state.add(
            "warning",
            where,
            None,
            f"sh_addr {sh['sh_addr']:#x} is in no loaded segment's file part: the "
            "table the PTA points Linux to is not what the TA checked",
            None,
        )
    _relocated_table(state, where, image, sh)


def _relocated_table(
    state: _State, where: str, image: int, sh: dict[str, int]
) -> None:
    """The table's bytes sit in a segment whose load address (p_paddr)
    differs from its run address (p_vaddr): they land elsewhere than sh_addr.

    Typical of a linker script that puts ``.resource_table`` in the ``.data``
    group loaded ``AT>`` flash or another RAM: the loader copies p_paddr, the
    start-up code copies ``.data`` (maybe not up to the table), and sh_addr
    (a run address) is where nobody put the table.
    """
    start, end = sh["sh_offset"], sh["sh_offset"] + sh["sh_size"]
    for seg in state.segments:
        if seg.image != image or seg.p_vaddr == seg.p_paddr:
            continue
        if not seg.p_offset <= start and end <= seg.p_offset + seg.p_filesz:
            continue
        lands = seg.p_paddr + (start - seg.p_offset)
        state.add(
            "warning",
            where,
            None,
            f"in {seg.where}, loaded at p_paddr {seg.p_paddr:#x} but linked at "
            f"p_vaddr {seg.p_vaddr:#x}: the table's bytes land at da {lands:#x}, "
            f"not at sh_addr {sh['sh_addr']:#x}. In the linker script, give "
            ".resource_table its own output section placed where it runs "
            "(`> RAM`, no `AT>`), outside the .data group, so that its load "
            "address equals its run address",
            None,
        )
        return


def _rsc_layout_problem(
    scan: ElfScan, sh: dict[str, int], abs_offset: int
) -> tuple[str, str] | None:
    """The TA's checks of the table section (result, reason), or None."""
    off, size, file_len = sh["sh_offset"], sh["sh_size"], len(scan.buf)
    bad = "TEE_ERROR_BAD_FORMAT"
    if size > file_len or off > file_len - size:
        msg = f"[sh_offset {off:#x}, +{size:#x}) is beyond the {file_len:#x}-byte file"
        return bad, msg
    if size < 16:
        return bad, f"sh_size {size} < 16"
    if (abs_offset + off) % 4:
        return "TEE_ERROR_CORRUPT_OBJECT", "table not 4-byte aligned in memory"
    words = np.frombuffer(scan.buf[off : off + 16], dtype="<u4").tolist()
    if words[0] != 1:
        return bad, f"version {words[0]} is not 1"
    if words[2] or words[3]:
        return bad, "reserved words are not 0"
    if 16 + 4 * words[1] > size:
        return bad, f"{words[1]} entries do not fit sh_size {size:#x}"
    return None


def _rsc_placement_findings(state: _State, where: str, placement: Placement) -> None:
    if placement.reason is None:
        return
    state.add(
        "error",
        where,
        "TEE_ERROR_ACCESS_DENIED",
        f"PTA DA_TO_PA: {_address_text(placement)}",
        None,
    )


def _containing_segment(
    segments: list[SegmentCheck], image: int, addr: int, size: int
) -> int | None:
    for seg in segments:
        if seg.image != image or seg.status == "truncated":
            continue
        if seg.p_paddr <= addr and addr + size <= seg.p_paddr + seg.p_filesz:
            return seg.index
    return None


def _overlap_findings(segments: list[SegmentCheck]) -> list[Finding]:
    spans = [
        (s, s.p_paddr, s.p_paddr + max(s.p_filesz, s.p_memsz))
        for s in segments
        if s.status not in ("truncated", "empty")
    ]
    findings = []
    for i, (later, start, end) in enumerate(spans):
        for earlier, e_start, e_end in spans[:i]:
            if start < e_end and e_start < end:
                findings.append(
                    _overlap_finding(later, earlier, start, end, e_start, e_end)
                )
    return findings


def _overlap_finding(
    later: SegmentCheck,
    earlier: SegmentCheck,
    start: int,
    end: int,
    e_start: int,
    e_end: int,
) -> Finding:
    lo, hi = max(start, e_start), min(end, e_end)
    return Finding(
        "warning",
        later.where,
        None,
        f"overlaps {earlier.where} on [{lo:#x}, {hi:#x}): loaded later, it "
        "overwrites (or zero-fills) bytes already written and verified",
        None,
    )
