"""Synthetic Cortex-M firmware: a small, well-formed ELF32 built in code.

The demo and the benchmarks need firmware shaped like what a Cortex-M build
produces (vector table and code in the alias-mapped RETRAM, more code in
MCURAM, ``.data`` + ``.bss`` in MCURAM2, a ``.resource_table`` section with
a trace buffer and an rpmsg vdev), without shipping a binary.  Everything is
deterministic so signed images are reproducible.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EM_ARM, ET_EXEC, PT_LOAD = 40, 2, 1
SHT_PROGBITS, SHT_STRTAB, SHT_NOBITS = 1, 3, 8
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
PF_X, PF_W, PF_R = 1, 2, 4
EF_ARM_EABI5 = 0x05000000


@dataclass(frozen=True)
class Segment:
    """One PT_LOAD: its section name, load address, file bytes and memory size."""

    name: str
    addr: int
    data: bytes
    memsz: int
    flags: int


def resource_table(trace_da: int, vring_das: Sequence[int]) -> bytes:
    """A version-1 resource table with a trace buffer and an rpmsg vdev.

    Parameters
    ----------
    trace_da : int
        Device address of the 256-byte trace buffer.
    vring_das : sequence of int
        Device addresses of the vdev's vrings.
    """
    trace = struct.pack("<4I32s", 2, trace_da, 256, 0, b"cm4_log")
    vrings = b"".join(
        struct.pack("<5I", da, 16, 16, i, 0) for i, da in enumerate(vring_das)
    )
    vdev = struct.pack("<6I4B", 3, 7, 0, 1, 0, 0, 0, len(vring_das), 0, 0) + vrings
    header = struct.pack("<6I", 1, 2, 0, 0, 24, 24 + len(trace))
    return header + trace + vdev


def cortex_m_segments(code_kib: int = 64, seed: int = 7) -> tuple[list[Segment], int]:
    """The segments of the demo firmware and the resource table's offset in seg 0.

    Returns
    -------
    (segments, rsc_offset)
    """
    rng = np.random.default_rng(seed)
    vectors = struct.pack("<16I", 0x10040000, 0x401, *([0x403] * 14))
    # the trace buffer is a static array in .bss (zeroed by the load)
    rsc = resource_table(0x10000100, (0x10040000, 0x10041000))
    rsc_offset = 0x200
    boot = _pad(vectors, rsc_offset) + rsc
    boot = _pad(boot, 0x1000)
    code = rng.integers(0, 256, code_kib * 1024, dtype=np.uint8).tobytes()
    data = rng.integers(0, 256, 0x100, dtype=np.uint8).tobytes()
    return [
        Segment(".isr_vector", 0x00000000, boot, len(boot), PF_R | PF_X),
        Segment(".text", 0x30000000, code, len(code), PF_R | PF_X),
        Segment(".data", 0x10000000, data, 0x100 + 0x800, PF_R | PF_W),
    ], rsc_offset


def build_elf(segments: Sequence[Segment], rsc: tuple[int, int] | None = None) -> bytes:
    """Lay out an ELF32 little-endian ARM executable for ``segments``.

    Layout: ELF header, program headers, each segment's bytes (4-aligned),
    the section-name table, then the section headers.

    Parameters
    ----------
    segments : sequence of Segment
    rsc : (offset, size), optional
        A ``.resource_table`` section at that offset inside segment 0.

    Returns
    -------
    bytes
        The ELF file.
    """
    offsets, end = _segment_offsets(segments)
    names, shdrs = _sections(segments, offsets, rsc)
    shdrs.append(_shdr(names.index(b".shstrtab"), SHT_STRTAB, 0, 0, end, len(names)))
    shoff = _align(end + len(names), 4)
    out = bytearray(shoff + 40 * len(shdrs))
    out[:52] = _ehdr(segments, PHOFF, shoff, len(shdrs))
    for i, (seg, off) in enumerate(zip(segments, offsets, strict=True)):
        out[PHOFF + 32 * i : PHOFF + 32 * (i + 1)] = _phdr(seg, off)
        out[off : off + len(seg.data)] = seg.data
    out[end : end + len(names)] = names
    out[shoff:] = b"".join(shdrs)
    return bytes(out)


PHOFF = 52  # program headers right after the ELF header


def _segment_offsets(segments: Sequence[Segment]) -> tuple[list[int], int]:
    """File offset of each segment's bytes, and the end of the last one."""
    cursor = PHOFF + 32 * len(segments)
    offsets = []
    for seg in segments:
        cursor = _align(cursor, 4)
        offsets.append(cursor)
        cursor += len(seg.data)
    return offsets, cursor


def _phdr(seg: Segment, off: int) -> bytes:
    return struct.pack("<8I", PT_LOAD, off, seg.addr, seg.addr, len(seg.data),
                       seg.memsz, seg.flags, 4)  # fmt: skip


def _shdr(name: int, kind: int, flags: int, addr: int, off: int, size: int) -> bytes:
    return struct.pack("<10I", name, kind, flags, addr, off, size, 0, 0, 4, 0)


def _pad(data: bytes, size: int) -> bytes:
    """Pad with Thumb ``b .`` (0xE7FE) instructions up to ``size`` bytes."""
    filler = b"\xfe\xe7" * ((size - len(data) + 1) // 2)
    return data + filler[: size - len(data)]


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def _ehdr(segments: Sequence[Segment], phoff: int, shoff: int, shnum: int) -> bytes:
    ident = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    entry = segments[0].addr + 0x401 if segments else 0
    return ident + struct.pack(
        "<HHIIIIIHHHHHH",
        ET_EXEC,
        EM_ARM,
        1,
        entry,
        phoff,
        shoff,
        EF_ARM_EABI5,
        52,
        32,
        len(segments),
        40,
        shnum,
        shnum - 1,
    )


def _sections(
    segments: Sequence[Segment], offsets: Sequence[int], rsc: tuple[int, int] | None
) -> tuple[bytes, list[bytes]]:
    """Section names and headers: one per segment, ``.bss`` tails, the table."""
    names = bytearray(b"\0")
    shdrs = [bytes(40)]

    def add(name: str, kind: int, flags: int, addr: int, off: int, size: int) -> None:
        shdrs.append(_shdr(len(names), kind, flags, addr, off, size))
        names.extend(name.encode() + b"\0")

    for seg, off in zip(segments, offsets, strict=True):
        flags = SHF_ALLOC | (SHF_WRITE if seg.flags & PF_W else SHF_EXECINSTR)
        end, tail = len(seg.data), seg.memsz - len(seg.data)
        add(seg.name, SHT_PROGBITS, flags, seg.addr, off, end)
        if tail > 0:
            add(
                ".bss",
                SHT_NOBITS,
                SHF_ALLOC | SHF_WRITE,
                seg.addr + end,
                off + end,
                tail,
            )
    if rsc is not None:
        addr, off = segments[0].addr + rsc[0], offsets[0] + rsc[0]
        add(".resource_table", SHT_PROGBITS, SHF_ALLOC, addr, off, rsc[1])
    names.extend(b".shstrtab\0")
    return bytes(names), shdrs


def demo_firmware(code_kib: int = 64) -> bytes:
    """The demo's Cortex-M firmware ELF (stm32mp15 memory map)."""
    segments, rsc_offset = cortex_m_segments(code_kib)
    rsc_size = len(resource_table(0, (0, 0)))
    return build_elf(segments, (rsc_offset, rsc_size))
