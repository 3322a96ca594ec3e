"""The normal world's rproc core runs the ELF ops' own steps.

``rproctee.linux.carveouts`` translates and checks carveouts with
:mod:`rproctee.linux.elf_loader`'s functions and ``rproctee.linux.resources``
runs each handler as the walk reaches its entry, so the real ``--no-tee``
boot fails where, and with the line, ``rproctee check`` says.
"""

from __future__ import annotations

import dataclasses
import errno
import re
import struct

import pytest
from elf_factory import Sec, Seg, build
from test_check_linux import CORPUS

from rproctee.linux.carveouts import (
    FW_RSC_ADDR_ANY,
    MemEntry,
    check_carveout_da,
    da_to_va,
)
from rproctee.linux.elf_loader import ParseFwPolicy, parse_fw_policy_for
from rproctee.linux.errors import RprocErrno
from rproctee.linux.system import System, build_system
from rproctee.platform.board import PlatformSpec, load_platform
from rproctee.preflight import check_firmware
from rproctee.rsctable import CarveoutRsc, build_resource_table

DK2 = load_platform("stm32mp15-dk2")
GOOD = [Seg(0x0, b"\xaa" * 64), Seg(0x10000000, b"\xbb" * 8, memsz=0x100)]


def _elf(table: bytes, segs: list[Seg] | None = None, elf_class: int = 32) -> bytes:
    sections = [Sec(".resource_table", 0x10000000, table)]
    return build(segs or GOOD, sections, elf_class=elf_class)[0]


def _carveout_entry(da: int, length: int, name: str) -> bytes:
    """One carveout entry (type word and body) as build_resource_table lays it."""
    table = build_resource_table([CarveoutRsc(0, da, 0, length, 0, 0, name)])
    return table[20:]


def _boot(
    elf: bytes, platform: PlatformSpec = DK2
) -> tuple[RprocErrno | None, list[tuple[str, str]], System]:
    system = build_system(platform, elf, tee=False)
    try:
        system.rproc.boot()
    except RprocErrno as exc:
        return exc, system.rproc.messages, system
    return None, system.rproc.messages, system


def test_elf64_paddr_above_4g_lands_in_mcuram2_as_linux_loads_it() -> None:
    # int offset = da - carveout->da: 0x1_1000_1000 - 0x1000_0000 keeps 0x1000
    elf = _elf(build_resource_table([]), [Seg(0x1_1000_1000, b"\xcc" * 8)], 64)
    failure, _, system = _boot(elf)
    assert failure is None
    landed = system.memory.view_pa(0x10001000, 8)
    assert bytes(landed) == b"\xcc" * 8
    assert check_firmware(elf, DK2).linux_would_load


def test_da_to_va_skips_unmapped_carveouts_and_keeps_32_signed_bits() -> None:
    buf = bytearray(0x100)
    unmapped = MemEntry("a", 0x1000, 0x1000, 0x100)
    mapped = MemEntry("b", 0x1000, 0x2000, 0x100, va=buf)
    assert da_to_va([unmapped, mapped], 0x1010, 0x10) == (mapped, 0x10)
    assert da_to_va([mapped], 0x1_0000_1000, 0x10) == (mapped, 0)
    with pytest.raises(LookupError, match="0xfff"):
        da_to_va([mapped], 0xFFF, 0x10)  # offset -1: negative, skipped


class _Log:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def log_msg(self, level: str, text: str, **_: object) -> None:
        self.messages.append((level, text))


@pytest.mark.parametrize(
    ("mem_da", "da", "length", "line"),
    [
        (0x1000, 0x1000, 0x200, "Registered carveout doesn't fit len request"),
        (0x1000, 0xFFF, 0x10, "Registered carveout doesn't fit da request"),
        (0x1000, 0x10F8, 0x10, "Registered carveout doesn't fit len request"),
        # a registered carveout without a device address: -EINVAL, no line
        (FW_RSC_ADDR_ANY, 0x1000, 0x10, ""),
        (0x1000, 0x1010, 0x10, None),
        (0x1000, FW_RSC_ADDR_ANY, 0x100, None),
    ],
)
def test_check_carveout_da_gives_and_logs_the_kernel_line(
    mem_da: int, da: int, length: int, line: str | None
) -> None:
    log = _Log()
    mem = MemEntry("mcuram", mem_da, 0x1000, 0x100)
    assert check_carveout_da(mem, da, length, log) == line  # type: ignore[arg-type]
    assert log.messages == ([("err", line)] if line else [])


def test_the_first_failing_entry_is_the_kernels() -> None:
    # entry 0: a carveout its registered namesake cannot hold (handler,
    # -ENOMEM); entry 1: an offset past the table (format, -EINVAL). The
    # kernel runs entry 0's handler before it looks at entry 1.
    table = struct.pack("<6I", 1, 2, 0, 0, 24, 0xFFFF) + _carveout_entry(
        0x0, 0x20000, "retram"
    )
    elf = _elf(table)
    failure, messages, _ = _boot(elf)
    assert failure is not None and failure.errno == errno.ENOMEM
    line = "Registered carveout doesn't fit len request"
    assert failure.message == line
    assert ("err", line) in messages
    assert ("err", "Failed to process resources: -12") in messages
    assert not any("truncated" in text for _, text in messages)
    report = check_firmware(elf, DK2)
    assert not report.linux_would_load
    assert report.linux[0].errno == "ENOMEM" and report.linux[0].message == line


def test_a_carveout_tied_twice_is_refused_with_the_kernels_line() -> None:
    entry = _carveout_entry(0x10000000, 0x1000, "mcuram2")
    table = struct.pack("<6I", 1, 2, 0, 0, 24, 24 + len(entry)) + entry * 2
    failure, messages, system = _boot(_elf(table))
    line = "Carveout already associated to resource table"
    assert failure is not None and failure.errno == errno.ENOMEM
    assert failure.message == line and ("err", line) in messages
    # the failed boot unwound the first entry's handler
    assert system.rproc.carveouts == []


def _spec(driver: str) -> PlatformSpec:
    return dataclasses.replace(DK2, name=f"dk2-{driver}", linux_driver=driver)


@pytest.mark.parametrize("driver", ["default", "imx", "imx_dsp"])
def test_every_driver_boots_what_check_says(driver: str) -> None:
    # build_system(tee=False) takes the driver parse_fw_policy_for names
    spec = _spec(driver)
    policy = parse_fw_policy_for(spec)
    assert policy is ParseFwPolicy(driver)
    for name, elf in CORPUS.items():
        failure, _, _ = _boot(elf, spec)
        assert (failure is None) == check_firmware(elf, spec).linux_would_load, name


@pytest.mark.parametrize("driver", ["stm32", "imx", "imx_dsp", "default"])
def test_a_refused_table_is_logged_as_check_says(driver: str) -> None:
    # stm32 and the default log find_table's refusal twice (find_loaded
    # runs find_table again), imx once; the driver's own line in between
    spec = _spec(driver)
    elf = CORPUS["table-past-eof"]
    verdict = check_firmware(elf, spec).linux[0]
    failure, messages, system = _boot(elf, spec)
    assert (failure is None) == verdict.loads
    lines = set(verdict.log)
    assert [text for _, text in messages if text in lines] == list(verdict.log)
    if verdict.loads:
        assert system.rproc.cached_table is None


def test_the_core_uses_the_drivers_ops() -> None:
    from rproctee.linux.elf_ops import (
        elf_load_rsc_table,
        imx_find_loaded_rsc_table,
        imx_parse_fw,
        stm32_parse_fw,
    )

    def ops(driver: str) -> tuple[object, object]:
        o = build_system(_spec(driver), CORPUS["good"], tee=False).rproc.ops
        return o.parse_fw, o.find_loaded_rsc_table

    assert ops("stm32")[0] is stm32_parse_fw
    assert ops("imx") == (imx_parse_fw, imx_find_loaded_rsc_table)
    assert ops("default")[0] is elf_load_rsc_table
    # a TI K3 tree, by its compatible alone
    ti = dataclasses.replace(DK2, compatible=("ti,am64-r5f",))
    assert build_system(ti, CORPUS["good"], tee=False).rproc.ops.parse_fw is (
        elf_load_rsc_table
    )


_ERRNO_NAME = re.compile(
    r"^(Failed to (?:process resources|load program segments)): -(E[A-Z]+)$"
)


def _as_kernel_prints(line: str) -> str:
    """The core names the errno ("-EINVAL") where the kernel prints %d ("-22")."""
    match = _ERRNO_NAME.match(line)
    if match is None:
        return line
    return f"{match[1]}: -{getattr(errno, match[2])}"


@pytest.mark.parametrize("driver", ["stm32", "imx", "default"])
def test_the_boot_logs_the_lines_check_reports(driver: str) -> None:
    spec = _spec(driver)
    for name, elf in CORPUS.items():
        verdict = check_firmware(elf, spec).linux[0]
        _, messages, _ = _boot(elf, spec)
        lines = set(verdict.log)
        logged = [_as_kernel_prints(text) for _, text in messages]
        assert [t for t in logged if t in lines] == list(verdict.log), name
