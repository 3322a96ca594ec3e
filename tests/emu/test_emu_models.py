"""The emulated core's pure-Python parts: peripherals, mapping plan, notes.

None of these need unicorn.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from rproctee.emu.faults import CORE_REGISTERS, FaultKind, Registers
from rproctee.emu.hook import cpu_for_platform, vector_base_for_platform
from rproctee.emu.mapping import DirectMap, MmioSpan, plan_mapping
from rproctee.emu.peripherals import (
    CSR_COUNTFLAG,
    IPCC_C1TOC2SR,
    IPCC_C2SCR,
    IPCC_C2TOC1SR,
    SYST_CSR,
    SYST_CVR,
    SYST_RVR,
    USART_ISR,
    USART_TDR,
    Ipcc,
    PeripheralFault,
    RegisterFile,
    SystemControl,
    Uart,
    Watchdog,
)
from rproctee.emu.prstatus import (
    PR_REG_OFFSET,
    PRSTATUS_SIZE,
    add_note,
    core_with_registers,
    prstatus_desc,
)
from rproctee.linux.state import CrashType
from rproctee.platform.board import PlatformSpec
from rproctee.platform.memory import DeviceMemory, RegionSpec
from rproctee.tee.coredump import build_elf_core

# -- IPCC -------------------------------------------------------------------------


def test_ipcc_firmware_set_rings_the_host_and_counts() -> None:
    rung: list[int] = []
    ipcc = Ipcc(notify=rung.append)
    ipcc.write(IPCC_C2SCR, 4, 1 << 16 | 1 << 17)
    assert rung == [0, 1]
    assert ipcc.doorbells[:2] == [1, 1]
    assert ipcc.read(IPCC_C2TOC1SR, 4) == 0  # the host's handler took them


def test_ipcc_host_ring_stays_up_until_the_firmware_clears_it() -> None:
    ipcc = Ipcc()
    ipcc.host_ring(1)
    assert ipcc.read(IPCC_C1TOC2SR, 4) == 0b10
    ipcc.write(IPCC_C2SCR, 4, 0b10)
    assert ipcc.read(IPCC_C1TOC2SR, 4) == 0


def test_ipcc_unknown_channel_and_register() -> None:
    with pytest.raises(ValueError, match="IPCC channel 6 does not exist"):
        Ipcc().host_ring(6)
    with pytest.raises(PeripheralFault, match=r"ipcc \+0x200"):
        Ipcc().read(0x200, 4)


# -- UART -------------------------------------------------------------------------


def test_uart_bytes_become_lines_at_newline() -> None:
    seen: list[str] = []
    uart = Uart(on_line=seen.append)
    assert uart.read(USART_ISR, 4) & (1 << 7)  # TXE: never waits
    for ch in b"hi\r\nthere":
        uart.write(USART_TDR, 1, ch)
    assert seen == ["hi"]
    uart.write(USART_TDR, 4, 0x0A)
    assert seen == ["hi", "there"] == uart.lines


def test_uart_byte_lane_write_of_tdr() -> None:
    uart = Uart()
    uart.write(USART_TDR, 2, 0x41)
    uart.flush()
    assert uart.lines == ["A"]


def test_misaligned_peripheral_access_faults() -> None:
    with pytest.raises(PeripheralFault, match="unaligned"):
        Uart().read(USART_TDR + 1, 2)


# -- watchdog ---------------------------------------------------------------------


def test_watchdog_barks_after_n_ticks_without_a_feed() -> None:
    dog = Watchdog(timeout_ticks=3)
    assert dog.tick() is None  # not started: never barks
    dog.write(0, 4, 0xCCCC)
    assert [dog.tick() is None for _ in range(3)] == [True, True, True]
    # started in tick 1 (a feed), then 2 and 3 idle: the 4th idle tick is 3rd
    crash = dog.tick()
    assert crash is not None and crash.kind == "watchdog"
    assert "not fed for 3 ticks" in crash.reason


def test_watchdog_feeding_keeps_it_quiet() -> None:
    dog = Watchdog(timeout_ticks=2)
    dog.write(0, 4, 0xCCCC)
    for _ in range(10):
        dog.write(0, 4, 0xAAAA)
        assert dog.tick() is None
    assert dog.feeds == 11


def test_watchdog_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout_ticks 0"):
        Watchdog(timeout_ticks=0)


# -- SysTick ----------------------------------------------------------------------


def test_systick_counts_down_reloads_and_flags() -> None:
    scs = SystemControl()
    scs.write(SYST_RVR, 4, 99)
    scs.write(SYST_CVR, 4, 1234)  # any write clears it
    assert scs.read(SYST_CVR, 4) == 0
    scs.write(SYST_CSR, 4, 0b101)
    scs.advance(50)  # from 0: the first cycle reloads 99, then 49 more
    assert scs.read(SYST_CVR, 4) == 50
    assert not scs.read(SYST_CSR, 4) & CSR_COUNTFLAG
    scs.advance(50 + 100 * 2 + 7)  # reaches 0 three times, then 7 cycles on
    assert scs.wraps == 3
    assert scs.read(SYST_CVR, 4) == 100 - 7
    assert scs.read(SYST_CSR, 4) & CSR_COUNTFLAG
    assert not scs.read(SYST_CSR, 4) & CSR_COUNTFLAG  # cleared by the read


def test_byte_write_to_systick_csr_keeps_countflag() -> None:
    scs = SystemControl()
    scs.write(SYST_RVR, 4, 9)
    scs.write(SYST_CSR, 4, 0b101)
    scs.advance(10)
    scs.write(SYST_CSR, 1, 0b111)  # set TICKINT with a byte store
    assert scs.read(SYST_CSR, 4) == CSR_COUNTFLAG | 0b111


def test_systick_disabled_does_not_move_and_cpuid_names_the_core() -> None:
    scs = SystemControl("cortex-m33")
    scs.write(SYST_RVR, 4, 10)
    scs.advance(1000)
    assert scs.wraps == 0
    assert scs.read(0xD00, 4) == 0x411FD210
    assert SystemControl().read(0xD00, 4) == 0x410FC241
    with pytest.raises(ValueError, match="cpu 'cortex-a7' unknown"):
        SystemControl("cortex-a7")


# -- mapping plan -------------------------------------------------------------------


def _mem(*regions: tuple[str, int, int, str]) -> DeviceMemory:
    return DeviceMemory(
        [RegionSpec(n, da, da, size, acc) for n, da, size, acc in regions]
    )


def test_aligned_regions_map_directly_and_whole() -> None:
    plan = plan_mapping(
        _mem(("a", 0, 0x10000, "rwx"), ("b", 0x10000000, 0x800, "rw")), 0x400
    )
    assert plan.direct == (
        DirectMap(0, 0x10000, 0, 0, "rwx"),
        DirectMap(0x10000000, 0x800, 1, 0, "rw"),
    )
    assert plan.mmio == ()


def test_unaligned_region_edges_go_through_mmio_pages() -> None:
    plan = plan_mapping(_mem(("odd", 0x20000100, 0x1000, "rw")), 0x400)
    assert plan.direct == (DirectMap(0x20000400, 0xC00, 0, 0x300, "rw"),)
    assert plan.mmio == (MmioSpan(0x20000000, 0x400), MmioSpan(0x20001000, 0x400))


def test_first_region_owns_overlapping_bytes() -> None:
    plan = plan_mapping(
        _mem(("first", 0x1000, 0x1000, "rw"), ("second", 0, 0x4000, "r")), 0x400
    )
    assert plan.direct == (
        DirectMap(0x1000, 0x1000, 0, 0, "rw"),
        DirectMap(0, 0x1000, 1, 0, "r"),
        DirectMap(0x2000, 0x2000, 1, 0x2000, "r"),
    )
    assert plan.mmio == ()


def test_two_regions_sharing_a_page_share_one_mmio_page() -> None:
    plan = plan_mapping(_mem(("lo", 0, 0x500, "rw"), ("hi", 0x500, 0x300, "rw")), 0x400)
    assert plan.direct == (DirectMap(0, 0x400, 0, 0, "rw"),)
    assert plan.mmio == (MmioSpan(0x400, 0x400),)


# -- crash types and notes -------------------------------------------------------------


def test_fault_kinds_map_to_rproc_crash_types() -> None:
    assert FaultKind.BUS_FAULT.crash_type is CrashType.MMUFAULT
    assert FaultKind.WATCHDOG.crash_type is CrashType.WATCHDOG
    for kind in (
        FaultKind.UNDEFINED_INSTRUCTION,
        FaultKind.HARD_FAULT,
        FaultKind.LOCKUP,
    ):
        assert kind.crash_type is CrashType.FATAL_ERROR


def _regs() -> Registers:
    values = {name: 0x1000 + i for i, name in enumerate(CORE_REGISTERS)}
    return Registers({**values, "msp": 0, "psp": 0, "primask": 0, "control": 0})


def test_prstatus_desc_layout() -> None:
    desc = prstatus_desc(_regs(), signal=7, pid=3)
    assert len(desc) == PRSTATUS_SIZE == 148
    assert struct.unpack_from("<i", desc, 0)[0] == 7  # si_signo
    assert struct.unpack_from("<h", desc, 12)[0] == 7  # pr_cursig
    assert struct.unpack_from("<i", desc, 24)[0] == 3  # pr_pid
    words = struct.unpack_from("<18I", desc, PR_REG_OFFSET)
    assert words[15] == 0x100F  # pc
    assert words[16] == 0x1010  # cpsr slot = xPSR
    assert words[17] == words[0]  # orig_r0


def test_add_note_keeps_segments_and_moves_their_data() -> None:
    core = build_elf_core([(0x0, b"\x11" * 8), (0x10000000, b"\x22" * 4)], machine=0)
    out = core_with_registers(core, _regs(), 7)
    assert struct.unpack_from("<H", out, 18)[0] == 40  # EM_NONE became EM_ARM
    assert struct.unpack_from("<H", out, 44)[0] == 3
    kinds = [struct.unpack_from("<I", out, 52 + 32 * i)[0] for i in range(3)]
    assert kinds == [4, 1, 1]  # PT_NOTE first
    for i, data in ((1, b"\x11" * 8), (2, b"\x22" * 4)):
        off, _, _, filesz = struct.unpack_from("<4I", out, 52 + 32 * i + 4)
        assert out[off : off + filesz] == data


def test_add_note_refuses_what_is_not_an_elf32_core() -> None:
    with pytest.raises(ValueError, match="not an ELF file"):
        add_note(b"MZ" + bytes(60), b"")
    exe = bytearray(build_elf_core([(0, b"x")]))
    exe[16] = 2  # ET_EXEC
    with pytest.raises(ValueError, match="e_type 2 is not ET_CORE"):
        add_note(bytes(exe), b"")


@pytest.mark.parametrize(
    ("compatible", "cpu"),
    [
        ("st,stm32mp2-m33", "cortex-m33"),
        ("st,stm32mp2-m0", "cortex-m0"),
        ("fsl,imx8mp-cm7", "cortex-m7"),
        ("fsl,imx93-cm33", "cortex-m33"),
        ("st,stm32mp1-m4", "cortex-m4"),
    ],
)
def test_cpu_for_platform_reads_the_compatible(compatible: str, cpu: str) -> None:
    spec = PlatformSpec(
        "b", (), notes=(f"remote processor /x (compatible {compatible})",)
    )
    assert cpu_for_platform(spec) == cpu


def test_cpu_for_platform_defaults_and_refusals() -> None:
    assert cpu_for_platform(PlatformSpec("stm32mp15-dk2", ())) == "cortex-m4"
    r5f = PlatformSpec(
        "b", (), notes=("remote processor /r5f (compatible ti,j721e-r5f)",)
    )
    with pytest.raises(ValueError, match="ti,j721e-r5f is not a Cortex-M core"):
        cpu_for_platform(r5f)


def test_emulated_firmware_for_platform() -> None:
    from rproctee.emu import EmulatedFirmware

    mp2 = PlatformSpec(
        "m",
        (RegionSpec("fw", 0x80000000, 0, 0x1000),),
        notes=("remote processor /m33@0 (compatible st,stm32mp2-m33)",),
    )
    fw = EmulatedFirmware.for_platform(mp2, budget=10)
    assert (fw.cpu, fw.vector_base, fw.budget) == ("cortex-m33", 0x80000000, 10)
    assert EmulatedFirmware.for_platform(mp2, cpu="cortex-m4").cpu == "cortex-m4"


def test_vector_base_for_platform() -> None:
    dk2 = PlatformSpec("d", (RegionSpec("retram", 0, 0x38000000, 0x10000),))
    assert vector_base_for_platform(dk2) == 0
    mp2 = PlatformSpec(
        "m",
        (
            RegionSpec("data", 0x80800000, 0, 0x1000),
            RegionSpec("fw", 0x80000000, 0, 0x1000),
        ),
    )
    assert vector_base_for_platform(mp2) == 0x80000000


# -- NVIC ----------------------------------------------------------------------------


def test_nvic_enable_pend_and_priority_registers() -> None:
    scs = SystemControl()
    scs.write(0x10C, 4, 1 << 7)  # ISER3 bit 7: IRQ 103
    assert scs.enabled == {103} and scs.read(0x10C, 4) == 1 << 7
    scs.write(0x200, 4, 1 << 5)  # ISPR0: IRQ 5 pending
    assert 16 + 5 in scs.pending and scs.read(0x280, 4) == 1 << 5
    scs.write(0x280, 4, 1 << 5)  # ICPR0 clears it
    assert not scs.pending
    scs.write(0x400 + 103, 1, 0x80)  # IPR byte of IRQ 103
    assert scs.priority[16 + 103] == 0x80 and scs.read(0x464, 4) == 0x80 << 24
    scs.write(0xD20, 4, 0x40 << 24)  # SHPR3: SysTick priority 0x40
    assert scs.priority[15] == 0x40
    scs.write(0xF00, 4, 103)  # STIR
    scs.write(0xD04, 4, 1 << 26)  # ICSR PENDSTSET
    assert scs.pending == {15, 16 + 103}
    assert scs.read(0xD04, 4) >> 26 & 1
    scs.write(0x180 + 12, 4, 1 << 7)  # ICER3
    assert scs.enabled == set()


def test_nvic_picks_by_priority_then_number_and_respects_masks() -> None:
    scs = SystemControl()
    scs.enabled = {3, 4}
    scs.priority[16 + 3] = 0x20
    scs.priority[16 + 4] = 0x10
    scs.pend(16 + 3)
    scs.pend(16 + 4)
    scs.pend(16 + 9)  # not enabled: waits
    assert scs.next_exception(None) == 16 + 4
    assert scs.next_exception(0) is None  # PRIMASK
    assert scs.next_exception(0x10) is None  # BASEPRI 0x10 masks 0x10 and up
    scs.activate(16 + 4)
    assert scs.execution_priority() == 0x10
    assert scs.next_exception(None) is None  # 0x20 does not preempt 0x10
    assert scs.deactivate() == 16 + 4
    assert scs.next_exception(None) == 16 + 3
    with pytest.raises(ValueError, match="no exception active"):
        scs.deactivate()
    with pytest.raises(ValueError, match="exception 1 out of range"):
        scs.pend(1)


def test_systick_interrupt_pends_exception_15() -> None:
    scs = SystemControl()
    scs.write(SYST_RVR, 4, 9)
    scs.write(SYST_CSR, 4, 0b111)
    assert scs.cycles_to_event() == 10  # from 0: a reload, then 9 down to 0
    scs.advance(5)
    assert 15 not in scs.pending and scs.cycles_to_event() == 5
    scs.advance(5)
    assert 15 in scs.pending and scs.cycles_to_event() == 10
    scs.write(SYST_CSR, 4, 0b101)  # TICKINT off: no event to wait for
    assert scs.cycles_to_event() is None


def test_ipcc_tx_free_interrupt_follows_its_mask() -> None:
    ipcc = Ipcc()
    ipcc.write(0x10, 4, 1 << 16)  # TXFIE
    assert not ipcc.tx_interrupt()  # every channel's free mask set at reset
    ipcc.write(0x14, 4, 0x3F003F & ~(1 << 17))  # unmask channel 1 free
    assert ipcc.tx_interrupt()
    ipcc.write(0x14, 4, 0x3F003F)
    assert not ipcc.tx_interrupt()


def test_ipcc_rx_interrupt_needs_enable_and_unmasked_channel() -> None:
    ipcc = Ipcc()
    ipcc.host_ring(1)
    assert not ipcc.rx_interrupt()  # RXOIE clear
    ipcc.write(0x10, 4, 1)
    assert not ipcc.rx_interrupt()  # channel 1 masked at reset
    ipcc.write(0x14, 4, 0x3F003F & ~0b10)
    assert ipcc.rx_interrupt()
    ipcc.write(IPCC_C2SCR, 4, 0b10)
    assert not ipcc.rx_interrupt()


def test_register_file_reads_back_and_checks_its_size() -> None:
    rcc = RegisterFile("rcc", 0x50000000, 0x1000)
    rcc.write(0xA08, 4, 0x1234)
    rcc.write(0xA08, 1, 0xFF)
    assert rcc.read(0xA08, 4) == 0x12FF
    with pytest.raises(PeripheralFault, match=r"rcc \+0x1000 \(4 bytes\): beyond"):
        rcc.read(0x1000, 4)
    with pytest.raises(ValueError, match="size 6 is not a multiple of 4"):
        RegisterFile("x", 0, 6)


def test_access_beyond_a_peripheral_block_faults() -> None:
    with pytest.raises(PeripheralFault, match="beyond its 0x400 bytes"):
        Watchdog().read(0x400, 4)


@pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None,
    reason="gcc-arm-none-eabi not installed: the committed ELFs are not rebuilt",
)
def test_committed_firmware_is_what_its_sources_build(tmp_path: Path) -> None:
    fw = Path(__file__).resolve().parent / "fw"
    built_with = (fw / "toolchain.txt").read_text().strip()
    here = subprocess.run(
        ["arm-none-eabi-gcc", "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    if here != built_with:
        pytest.skip(
            f"the ELFs were built with {built_with!r}, this machine has {here!r}"
        )
    subprocess.run(
        ["bash", str(fw / "build.sh")], env={**os.environ, "OUT": str(tmp_path)},
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    built = sorted(p.name for p in tmp_path.glob("*.elf"))
    assert built == sorted(p.name for p in fw.glob("*.elf"))
    for name in built:
        assert (tmp_path / name).read_bytes() == (fw / name).read_bytes(), name


def test_importing_the_package_does_not_import_unicorn() -> None:
    code = "import sys, rproctee.emu; print('unicorn' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_missing_unicorn_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from rproctee.emu import EmulatedCore, EmulatorUnavailable, unicorn_available

    monkeypatch.setitem(sys.modules, "unicorn", None)  # import fails
    assert not unicorn_available()
    with pytest.raises(EmulatorUnavailable, match=r"pip install 'rproctee\[emu\]'"):
        EmulatedCore(DeviceMemory([RegionSpec("ram", 0, 0, 0x1000)]))
