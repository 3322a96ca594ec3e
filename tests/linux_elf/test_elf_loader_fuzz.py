"""Hostile ELFs: the ELF ops answer with a verdict, never another exception."""

from __future__ import annotations

from elf_factory import Sec, Seg, build
from hypothesis import given
from hypothesis import strategies as st

from rproctee.linux.elf_loader import (
    LinuxElfError,
    ParseFwPolicy,
    device_memory_da_to_va,
    elf_boot_verdict,
    rproc_elf_load_segments,
    rproc_elf_sanity_check,
)
from rproctee.platform.board import load_platform
from rproctee.platform.memory import DeviceMemory
from rproctee.rsctable import TraceRsc, build_resource_table

DK2 = load_platform("stm32mp15-dk2")
CARVEOUTS = DK2.linux_carveouts()
TABLE = build_resource_table([TraceRsc(0, 0x10000000, 256, 0, "cm4_log")])
SEEDS = {
    cls: build(
        [Seg(0x0, b"\xaa" * 64), Seg(0x10000000, b"\xbb" * 8, memsz=0x100)],
        [Sec(".resource_table", 0x10000000, TABLE)],
        elf_class=cls,
    )[0]
    for cls in (32, 64)
}
WORDS = st.sampled_from([0, 1, 2, 0x10, 0x7F, 0xFF, 0x7FFF_FFFF, 0xFFFF_FFFF])


@st.composite
def hostile_elfs(draw: st.DrawFn) -> bytes:
    """A seed ELF with header bytes and words overwritten, maybe cut short."""
    data = bytearray(SEEDS[draw(st.sampled_from([32, 64]))])
    for _ in range(draw(st.integers(1, 6))):
        # mostly the headers: ELF header, program headers, section headers
        at = draw(st.one_of(st.integers(0, 200), st.integers(0, len(data) - 1)))
        word = draw(st.one_of(WORDS, st.integers(0, 0xFFFF_FFFF)))
        raw = word.to_bytes(4, "little")[: len(data) - at]
        data[at : at + len(raw)] = raw
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@given(hostile_elfs(), st.sampled_from(list(ParseFwPolicy)))
def test_boot_verdict_never_raises(elf: bytes, policy: ParseFwPolicy) -> None:
    verdict = elf_boot_verdict(elf, CARVEOUTS, policy=policy)
    if not verdict.loads:
        assert verdict.function and verdict.errno and verdict.message


@given(hostile_elfs())
def test_real_load_writes_only_inside_carveouts(elf: bytes) -> None:
    memory = DeviceMemory(CARVEOUTS)
    try:
        rproc_elf_sanity_check(elf)
        segs = rproc_elf_load_segments(elf, device_memory_da_to_va(memory))
    except LinuxElfError:
        return
    assert len(memory.writes) >= len([s for s in segs if s.filesz])
    for write in memory.writes:
        assert any(c.da <= write.da and write.da + write.len <= c.da + c.size
                   for c in CARVEOUTS)  # fmt: skip
