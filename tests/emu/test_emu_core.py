"""The emulated core running the test firmware out of the loader's arrays.

Each firmware is signed, loaded by the secure world (TEE session, LOAD_FW
through the remoteproc TA and the stm32mp PTA) and booted straight out of
the device memory the PTA filled.
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "unicorn",
    reason="the emulated core needs unicorn 2.x (pip install 'rproctee[emu]')",
)

from elftools.elf.elffile import ELFFile  # noqa: E402
from emu_helpers import (  # noqa: E402
    FW,
    loaded_world,
    rsc_location,
    symbols,
    table_in_memory,
    trace_text,
)

from rproctee.emu import CrashReport, EmulatedCore, FaultKind  # noqa: E402
from rproctee.emu.peripherals import (  # noqa: E402
    CPUID,
    Ipcc,
    RegisterFile,
    SystemControl,
    Uart,
    Watchdog,
)
from rproctee.emu.vring import HostVirtqueue, vring_size  # noqa: E402
from rproctee.linux.state import CrashType  # noqa: E402
from rproctee.platform.memory import DeviceMemory, RegionSpec  # noqa: E402

BUDGET = 20_000


def booted(
    name: str, **kw: object
) -> tuple[EmulatedCore, object, list[int], list[str]]:
    """A core booted on the secure world that loaded ``name``."""
    world = loaded_world(name)
    kicks: list[int] = []
    lines: list[str] = []
    core = EmulatedCore(
        world.memory,
        budget=BUDGET,
        notify=kicks.append,
        on_uart_line=lines.append,
        **kw,  # type: ignore[arg-type]
    )
    assert core.boot() is None
    return core, world, kicks, lines


# -- zero copy -------------------------------------------------------------------------


def test_regions_are_mapped_on_the_loader_arrays() -> None:
    core, world, _, _ = booted("fw_virtio")
    memory = world.memory
    direct = {m.name: m for m in core.mappings if m.kind == "direct"}
    assert set(direct) == {r.name for r in memory.regions}
    for i, region in enumerate(memory.regions):
        m = direct[region.name]
        assert (m.da, m.size) == (region.da, region.size)
        assert m.host == memory.array(i).ctypes.data  # the same buffer, no copy


def test_core_stores_are_at_once_in_device_memory_and_back() -> None:
    core, world, _, _ = booted("fw_virtio")
    # a write through the engine lands in the array, and the reverse
    core.uc.mem_write(0x10030000, b"\xaa\xbb")
    assert world.memory.read_da(0x10030000, 2) == b"\xaa\xbb"
    world.memory.view_da(0x10030004, 2)[:] = [1, 2]
    assert bytes(core.uc.mem_read(0x10030004, 2)) == b"\x01\x02"


def test_memmap_backed_regions_are_mapped_too(tmp_path: Path) -> None:
    world = loaded_world("fw_virtio", backing_dir=tmp_path)
    core = EmulatedCore(world.memory, budget=BUDGET)
    assert core.boot() is None
    core.run(1)
    world.memory.flush()
    da, _ = rsc_location("fw_virtio")
    status_at = da + table_in_memory(world.memory, "fw_virtio").vdevs()[0].status_offset
    # retram (da 0) is the file retram.bin: the core's store is in it
    assert (tmp_path / "retram.bin").read_bytes()[status_at] == 4


# -- firmware behaviour ----------------------------------------------------------------


def test_virtio_firmware_traces_sets_driver_ok_and_kicks() -> None:
    core, world, kicks, _ = booted("fw_virtio")
    before = table_in_memory(world.memory, "fw_virtio").vdevs()[0].status
    assert before == 0
    assert core.run(2) is None
    assert trace_text(world.memory, "fw_virtio") == "cm4: virtio firmware up\n"
    vdev = table_in_memory(world.memory, "fw_virtio").vdevs()[0]
    assert vdev.status == 4  # VIRTIO_CONFIG_S_DRIVER_OK, the real byte in memory
    assert kicks == [0]
    assert core.sleeping  # WFI between polls


def test_virtio_firmware_answers_host_doorbells() -> None:
    core, world, kicks, _ = booted("fw_virtio")
    core.run(1)
    ipcc = core.peripheral("ipcc")
    assert isinstance(ipcc, Ipcc)
    for _ in range(2):
        ipcc.host_ring(1)
        core.tick()
    assert kicks == [0, 0, 0]
    assert ipcc.doorbells[0] == 3
    assert trace_text(world.memory, "fw_virtio").count("cm4: host kick\n") == 2


def test_uart_firmware_prints_lines_and_sees_systick() -> None:
    core, world, _, lines = booted("fw_uart")
    assert core.run(3) is None
    assert lines == ["hello from the M4 uart", "second line, no newline yet... done"]
    uart = core.peripheral("uart")
    assert isinstance(uart, Uart) and uart.lines == lines
    assert trace_text(world.memory, "fw_uart") == "cm4: systick wrapped\n"


def test_hanging_firmware_is_bitten_by_the_watchdog() -> None:
    core, world, _, _ = booted("fw_hang", watchdog_ticks=3)
    crash = core.run(10)
    assert crash is not None
    assert crash.kind is FaultKind.WATCHDOG
    assert crash.crash_type is CrashType.WATCHDOG
    assert crash.tick == 4  # fed in tick 1, then 3 ticks without a feed
    assert crash.registers.pc == symbols("fw_hang")["hang_loop"]
    dog = core.peripheral("iwdg")
    assert isinstance(dog, Watchdog) and dog.feeds == 4  # start + 3 reloads
    assert trace_text(world.memory, "fw_hang") == "cm4: watchdog fed, now hanging\n"
    assert core.tick() is None and not core.running  # a crashed core stays put


@pytest.mark.parametrize(
    ("name", "kind", "rproc_type"),
    [
        ("fw_fault_bus", FaultKind.BUS_FAULT, CrashType.MMUFAULT),
        ("fw_fault_udf", FaultKind.UNDEFINED_INSTRUCTION, CrashType.FATAL_ERROR),
        ("fw_fault_bkpt", FaultKind.HARD_FAULT, CrashType.FATAL_ERROR),
    ],
)
def test_faulting_firmware_stops_at_the_faulting_instruction(
    name: str, kind: FaultKind, rproc_type: CrashType
) -> None:
    core, world, _, _ = booted(name)
    crash = core.run(3)
    assert crash is not None and crash.kind is kind
    assert crash.crash_type is rproc_type
    assert crash.registers.pc == symbols(name)["fault_insn"]
    assert crash.tick == 1
    assert (
        trace_text(world.memory, name) == "cm4: about to fault\n"
    )  # not "still alive"


def test_bus_fault_names_the_address_and_keeps_the_registers() -> None:
    core, _, _, _ = booted("fw_fault_bus")
    crash = core.run(1)
    assert crash is not None
    assert crash.address == 0x60000000
    assert "write of 4 bytes at 0x60000000" in crash.reason
    # the store's operands: base register holds the bad pointer, value is 2
    regs = crash.registers
    assert 0x60000000 in [regs[f"r{i}"] for i in range(13)]
    assert regs["sp"] < 0x10040000 and regs["xpsr"] & (1 << 24)


# -- hand-made programs on a bare memory map ---------------------------------------

RAM = RegionSpec("ram", 0x0, 0x0, 0x4000)


def bare(
    code: bytes, *regions: RegionSpec, sp: int = 0x4000
) -> tuple[EmulatedCore, DeviceMemory]:
    """A core on ``RAM`` (+ ``regions``) whose reset vector runs ``code`` at 0x100."""
    memory = DeviceMemory([RAM, *regions])
    memory.copy_in(0, struct.pack("<2I", sp, 0x101))
    memory.copy_in(0x100, code)
    core = EmulatedCore(memory, budget=1000)
    return core, memory


# Thumb encodings used below
LDR_R0_R1 = b"\x08\x68"  # ldr r0, [r1]
STR_R0_R1 = b"\x08\x60"  # str r0, [r1]
STRB_R0_R1 = b"\x08\x70"  # strb r0, [r1]
B_SELF = b"\xfe\xe7"  # b .
BX_R1 = b"\x08\x47"  # bx r1
SVC_0 = b"\x00\xdf"  # svc #0


def set_regs(core: EmulatedCore, **values: int) -> None:
    for name, value in values.items():
        core.uc.reg_write(core._reg_ids[name], value)


def test_unaligned_region_is_reached_through_the_same_array() -> None:
    odd = RegionSpec("odd", 0x20000100, 0x20000100, 0x300)
    core, memory = bare(STRB_R0_R1 + LDR_R0_R1 + B_SELF, odd)
    kinds = {m.kind for m in core.mappings}
    assert kinds == {"direct", "mmio-memory", "peripheral"}
    assert core.boot() is None
    memory.view_da(0x20000204, 4)[:] = [9, 8, 7, 6]
    set_regs(core, r0=0x5A, r1=0x20000204)
    assert core.tick() is None
    assert memory.read_da(0x20000204, 1) == b"\x5a"  # the store went to the array
    assert core.registers()["r0"] == 0x0607085A  # and the load came from it


def test_hole_inside_a_partially_mapped_page_is_a_bus_fault() -> None:
    odd = RegionSpec("odd", 0x20000100, 0x20000100, 0x300)
    core, _ = bare(LDR_R0_R1 + B_SELF, odd)
    core.boot()
    set_regs(core, r1=0x20000080)  # same 1 KiB page, before the region
    crash = core.tick()
    assert crash is not None and crash.kind is FaultKind.BUS_FAULT
    assert crash.address == 0x20000080 and crash.registers.pc == 0x100


def test_code_cannot_run_from_a_partial_page() -> None:
    odd = RegionSpec("odd", 0x20000100, 0x20000100, 0x300)
    core, memory = bare(BX_R1, odd)
    memory.copy_in(0x20000200, B_SELF)
    core.boot()
    set_regs(core, r1=0x20000201)
    crash = core.tick()
    assert crash is not None and crash.kind is FaultKind.BUS_FAULT
    assert "odd shares this page" in crash.reason
    assert crash.registers.pc == 0x20000200


def test_store_into_read_only_region_is_a_bus_fault() -> None:
    rom = RegionSpec("rom", 0x8000, 0x8000, 0x1000, "rx")
    core, memory = bare(STR_R0_R1 + B_SELF, rom)
    core.boot()
    set_regs(core, r0=1, r1=0x8010)
    crash = core.tick()
    assert crash is not None and crash.kind is FaultKind.BUS_FAULT
    assert "rom does not allow it" in crash.reason
    assert memory.read_da(0x8010, 4) == bytes(4)


def test_branch_to_nowhere_is_a_fetch_bus_fault() -> None:
    core, _ = bare(BX_R1)
    core.boot()
    set_regs(core, r1=0x70000001)
    crash = core.tick()
    assert crash is not None and crash.kind is FaultKind.BUS_FAULT
    assert crash.registers.pc == 0x70000000


def test_branch_to_arm_state_and_svc_are_hard_faults() -> None:
    core, _ = bare(BX_R1)
    core.boot()
    set_regs(core, r1=0x200)  # bit 0 clear: ARM state, which M-profile lacks
    crash = core.tick()
    assert crash is not None and crash.kind is FaultKind.HARD_FAULT
    assert "INVSTATE" in crash.reason
    core, _ = bare(SVC_0)
    core.boot()
    crash = core.tick()
    assert crash is not None and crash.kind is FaultKind.HARD_FAULT
    assert crash.registers.pc == 0x100 and "SVC" in crash.reason


@pytest.mark.parametrize(
    ("vectors", "why"),
    [
        (struct.pack("<2I", 0x4000, 0x100), "bit 0 clear"),
        (struct.pack("<2I", 0x4000, 0x90000001), "outside every device memory"),
    ],
)
def test_unusable_reset_vector_is_a_lockup(vectors: bytes, why: str) -> None:
    core, memory = bare(B_SELF)
    memory.copy_in(0, vectors)
    crash = core.boot()
    assert isinstance(crash, CrashReport) and crash.kind is FaultKind.LOCKUP
    assert crash.crash_type is CrashType.FATAL_ERROR and why in crash.reason
    assert not core.running and core.tick() is None


def test_vector_table_outside_memory_is_a_lockup() -> None:
    memory = DeviceMemory([RegionSpec("ram", 0x1000, 0x1000, 0x1000)])
    crash = EmulatedCore(memory).boot()
    assert crash is not None and crash.kind is FaultKind.LOCKUP
    assert "vector table at 0x0" in crash.reason


@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m7"])
def test_other_cortex_m_cores_boot_and_name_themselves(cpu: str) -> None:
    core, _ = bare(LDR_R0_R1 + B_SELF)
    core = EmulatedCore(core.memory, cpu=cpu, budget=100)
    assert core.boot() is None
    set_regs(core, r1=0xE000ED00)  # CPUID
    assert core.tick() is None
    assert core.registers()["r0"] == CPUID[cpu]


def test_platform_vector_base_and_cortex_m33() -> None:
    memory = DeviceMemory([RAM])
    memory.copy_in(0x2000, struct.pack("<2I", 0x3000, 0x2101))
    memory.copy_in(0x2100, LDR_R0_R1 + B_SELF)
    core = EmulatedCore(memory, cpu="cortex-m33", vector_base=0x2000, budget=100)
    assert core.boot() is None
    set_regs(core, r1=0xE000ED00)  # CPUID
    assert core.tick() is None
    regs = core.registers()
    assert regs["r0"] == 0x411FD210 and regs["sp"] == 0x3000


def test_peripheral_overlapping_memory_is_refused() -> None:
    memory = DeviceMemory([RegionSpec("ram", 0x40018000, 0x40018000, 0x1000)])
    with pytest.raises(ValueError, match="peripheral uart at 0x40018000"):
        EmulatedCore(memory)


def test_stm32mp15_config_blocks_fit_beside_the_default_peripherals() -> None:
    from rproctee.emu.peripherals import stm32mp15_config_blocks

    world = loaded_world("fw_uart")
    blocks = stm32mp15_config_blocks()
    core = EmulatedCore(world.memory, budget=100, extra_peripherals=blocks)
    names = {m.name for m in core.mappings if m.kind == "peripheral"}
    assert {"rcc", "pwr", "gpioa", "gpiok", "exti", "syscfg", "hsem", "ipcc"} <= names
    code = STR_R0_R1 + LDR_R0_R1 + B_SELF
    core, _ = bare(code)
    core = EmulatedCore(core.memory, budget=100, extra_peripherals=blocks)
    core.boot()
    set_regs(core, r0=0x41, r1=0x50000A08)  # RCC_MC_AHB3ENSETR-like write
    assert core.tick() is None and core.registers()["r0"] == 0x41


def test_misplaced_extra_peripherals_are_refused() -> None:
    memory = DeviceMemory([RAM])
    with pytest.raises(ValueError, match="rcc at 0x50000010 is not aligned"):
        EmulatedCore(memory, extra_peripherals=[RegisterFile("rcc", 0x50000010, 16)])
    with pytest.raises(ValueError, match="overlaps peripheral uart at 0x40018000"):
        EmulatedCore(memory, extra_peripherals=[RegisterFile("x", 0x40018000, 16)])


def test_bad_arguments_are_refused() -> None:
    memory = DeviceMemory([RAM])
    with pytest.raises(ValueError, match="cpu 'cortex-a7' unknown"):
        EmulatedCore(memory, cpu="cortex-a7")
    with pytest.raises(ValueError, match="budget 0"):
        EmulatedCore(memory, budget=0)


# -- running in the background ---------------------------------------------------------


def test_background_thread_runs_until_the_watchdog_bites() -> None:
    core, _, _, _ = booted("fw_hang", watchdog_ticks=2)
    done = threading.Event()
    seen: list[CrashReport] = []

    def on_crash(report: CrashReport) -> None:
        seen.append(report)
        done.set()

    core.start_background(on_crash)
    assert done.wait(10)
    core.stop_background()
    assert seen[0].kind is FaultKind.WATCHDOG and not core.running


def test_background_thread_stops_on_request() -> None:
    core, _, _, _ = booted("fw_virtio")
    core.start_background(period=0.001)
    with pytest.raises(RuntimeError, match="already runs"):
        core.start_background()
    core.halt()
    assert not core.running
    ticks = core.ticks
    assert core.tick() is None and core.ticks == ticks


def test_instruction_count_and_rate() -> None:
    core, _, _, _ = booted("fw_hang", watchdog_ticks=50)
    core.run(5)
    assert core.instructions == 5 * BUDGET and core.idle_ticks == 0
    assert core.instructions_per_second > 0
    assert np.isfinite(core.instructions_per_second)
    assert core.seconds >= core.busy_seconds > 0


def test_ticks_ending_in_wfi_are_idle_not_counted() -> None:
    core, _, _, _ = booted("fw_virtio")
    core.run(3)
    assert core.idle_ticks == 3 and core.instructions == 0
    assert core.instructions_per_second == 0.0


def test_rsc_table_section_is_where_the_loader_put_it() -> None:
    da, size = rsc_location("fw_virtio")
    world = loaded_world("fw_virtio")
    with (FW / "fw_virtio.elf").open("rb") as f:
        section = ELFFile(f).get_section_by_name(".resource_table").data()
    assert world.memory.read_da(da, size) == section


# -- vring echo --------------------------------------------------------------------


def test_virtio_firmware_echoes_a_message_through_the_vrings() -> None:
    core, world, kicks, _ = booted("fw_virtio")
    core.run(1)
    memory = world.memory
    rings = table_in_memory(memory, "fw_virtio").vdevs()[0].vrings
    to_host = HostVirtqueue(memory, rings[0].da, rings[0].num, rings[0].align)
    from_host = HostVirtqueue(memory, rings[1].da, rings[1].num, rings[1].align)
    rx_buf, tx_buf = 0x10042000, 0x10042200  # in vdev0buffer
    to_host.offer(rx_buf, 0x100, device_writes=True)
    memory.copy_in(tx_buf, b"ping from linux")
    from_host.offer(tx_buf, 15, device_writes=False)
    ipcc = core.peripheral("ipcc")
    assert isinstance(ipcc, Ipcc)
    ipcc.host_ring(1)
    assert core.tick() is None
    assert to_host.take_used() == [(0, 15)]
    assert memory.read_da(rx_buf, 15) == b"ping from linux"
    assert from_host.take_used() == [(0, 15)]
    assert kicks == [0, 0]
    # a second message, longer than the receive buffer: cut to its size
    to_host.offer(rx_buf + 0x100, 4, device_writes=True)
    memory.copy_in(tx_buf, b"second")
    from_host.offer(tx_buf, 6, device_writes=False)
    ipcc.host_ring(1)
    core.tick()
    assert to_host.take_used() == [(1, 4)]
    assert memory.read_da(rx_buf + 0x100, 4) == b"seco"
    assert from_host.take_used() == [(1, 6)]


def test_vring_layout_matches_linux() -> None:
    from rproctee.linux.virtio import vring_size as linux_vring_size

    for num, align in ((8, 16), (16, 4096), (256, 64)):
        assert vring_size(num, align) == linux_vring_size(num, align)


def test_host_virtqueue_refuses_bad_geometry_and_overflow() -> None:
    memory = DeviceMemory([RAM])
    with pytest.raises(ValueError, match="vring num 6 is not a power of two"):
        HostVirtqueue(memory, 0x1000, 6, 16)
    q = HostVirtqueue(memory, 0x1000, 2, 16)
    q.offer(0x2000, 4, device_writes=True)
    q.offer(0x2004, 4, device_writes=True)
    with pytest.raises(ValueError, match="all 2 descriptors in use"):
        q.offer(0x2008, 4, device_writes=True)
    assert q.buffer(1) == (0x2004, 4)


# -- interrupts ------------------------------------------------------------------------


def test_systick_and_svc_handlers_run_and_return() -> None:
    core, world, _, _ = booted("fw_irq")
    assert core.run(5) is None
    assert trace_text(world.memory, "fw_irq") == "cm4: svc and 3 systick irqs\n"
    scs = core.peripheral("scs")
    assert isinstance(scs, SystemControl) and scs.active == []
    regs = core.registers()
    assert regs["xpsr"] & 0x1FF == 0  # back in thread mode
    # five more ticks, five more SysTick frames pushed and popped: no leak
    core.run(5)
    assert core.registers()["sp"] == regs["sp"] and scs.active == []


def test_systick_interrupts_come_on_time_within_a_tick() -> None:
    core, world, _, _ = booted("fw_irq")  # SysTick period 5000, budget 20000
    counter = symbols("fw_irq")["systicks"]
    seen = []
    for _ in range(4):
        core.tick()
        seen.append(int.from_bytes(world.memory.read_da(counter, 4), "little"))
    # tick 1 enables SysTick (first interrupt due at its end), then 4 a tick
    assert seen == [0, 4, 8, 12]
    assert core.idle_ticks == 4  # asleep in WFI between interrupts


def test_pendsv_switches_tasks_on_the_process_stack() -> None:
    core, world, _, _ = booted("fw_tasks")  # SysTick every 1000 cycles
    sym = symbols("fw_tasks")

    def word(name: str) -> int:
        return int.from_bytes(world.memory.read_da(sym[name], 4), "little")

    core.run(3)
    # SysTick pends PendSV 20 times a tick from tick 2 on; each swaps tasks
    assert word("switches") == 40
    assert word("count_a") > 0 and word("count_b") > 0
    regs = core.registers()
    assert regs["control"] & 2  # the thread runs on the PSP
    stack_a, stack_b = sym["stack_a"], sym["stack_b"]
    # on the stack of one of the tasks (at its top when that task pushed nothing)
    psp = regs["psp"]
    assert stack_a < psp <= stack_a + 512 or stack_b < psp <= stack_b + 512
    scs = core.peripheral("scs")
    assert isinstance(scs, SystemControl) and scs.active == []
    msp = regs["msp"]
    core.run(2)
    assert core.registers()["msp"] == msp  # handlers leave the main stack as found
    assert trace_text(world.memory, "fw_tasks") == "cm4: task b runs\n"


def test_ipcc_interrupt_takes_the_host_doorbell() -> None:
    core, world, kicks, _ = booted("fw_irq")
    core.run(4)
    ipcc = core.peripheral("ipcc")
    assert isinstance(ipcc, Ipcc)
    ipcc.host_ring(1)
    assert core.tick() is None
    assert kicks == [0]
    assert trace_text(world.memory, "fw_irq").endswith("cm4: ipcc irq\n")
    assert ipcc.read(0x0C, 4) == 0  # the handler cleared the channel


MOVS_R0_1 = b"\x01\x20"  # movs r0, #1
MSR_PRIMASK_R0 = b"\x80\xf3\x10\x88"  # msr primask, r0


def vectored(code: bytes, handler: bytes, sp: int = 0x4000) -> EmulatedCore:
    """``bare`` with a SysTick handler at 0x300."""
    core, memory = bare(code, sp=sp)
    memory.copy_in(4 * 15, struct.pack("<I", 0x301))
    memory.copy_in(0x300, handler)
    return core


def test_primask_holds_a_pending_interrupt() -> None:
    core = vectored(MOVS_R0_1 + MSR_PRIMASK_R0 + B_SELF, B_SELF)
    core.boot()
    core.tick()  # PRIMASK set
    scs = core.peripheral("scs")
    assert isinstance(scs, SystemControl)
    scs.pend(15)
    core.tick()
    assert scs.active == [] and core.registers().pc == 0x106


def test_stacking_outside_memory_is_a_hard_fault() -> None:
    core = vectored(B_SELF, B_SELF, sp=0x90000000)
    core.boot()
    scs = core.peripheral("scs")
    assert isinstance(scs, SystemControl)
    scs.pend(15)
    crash = core.tick()
    assert crash is not None and crash.kind is FaultKind.HARD_FAULT
    assert "stacking exception 15" in crash.reason


def test_interrupt_without_a_usable_vector_is_a_hard_fault() -> None:
    core, _ = bare(B_SELF)
    core.boot()
    scs = core.peripheral("scs")
    assert isinstance(scs, SystemControl)
    scs.pend(15)  # vector 15 is 0 in the bare table
    crash = core.tick()
    assert crash is not None and crash.kind is FaultKind.HARD_FAULT
    assert "vector 15 = 0x00000000 is not a Thumb address" in crash.reason


def test_register_file_turns_bus_faults_into_plain_registers() -> None:
    code = STR_R0_R1 + LDR_R0_R1 + B_SELF
    core, _ = bare(code)
    core.boot()
    set_regs(core, r0=7, r1=0x50000A08)
    crash = core.tick()
    assert crash is not None and crash.kind is FaultKind.BUS_FAULT
    memory = DeviceMemory([RAM])
    memory.copy_in(0, struct.pack("<2I", 0x4000, 0x101))
    memory.copy_in(0x100, code)
    rcc = RegisterFile("rcc", 0x50000000, 0x1000)
    core = EmulatedCore(memory, budget=100, extra_peripherals=[rcc])
    core.boot()
    set_regs(core, r0=7, r1=0x50000A08)
    assert core.tick() is None
    assert rcc.values == {0xA08: 7} and core.registers()["r0"] == 7


# -- bench -----------------------------------------------------------------------------


def test_bench_loops_run_what_they_say() -> None:
    from rproctee.emu.bench import MMIO_LOOP, RAM_LOOP, _core, measure_ips

    core = _core(RAM_LOOP, 1000)
    core.tick()
    regs = core.registers()
    assert regs["r0"] == 200  # one increment per five instructions
    assert core.memory.read_da(0x8000, 4) == struct.pack("<I", 200)
    core = _core(MMIO_LOOP, 999)
    core.tick()
    assert core.registers()["r0"] == 333 and core.registers()["r2"] == 0xC0
    out = measure_ips(instructions=20_000, budget=10_000)
    assert out["ram_loop"]["instructions"] == 20_000
    assert out["mmio_poll"]["instructions"] == 10_000  # at least one tick
    assert out["ram_loop"]["instructions_per_second"] > 0
    with pytest.raises(ValueError, match="instructions 0 and budget 5"):
        measure_ips(instructions=0, budget=5)
