"""Builders shared by the tests of rproctee.qcom (images, fetchers, memories)."""

from __future__ import annotations

import struct
from collections.abc import Mapping

from rproctee.platform.memory import DeviceMemory, RegionSpec
from rproctee.qcom import MdtFileError, SegmentSpec
from rproctee.qcom.pas import Carveout, PasService

CARVEOUT_PA = 0x8C00_0000
CARVEOUT_SIZE = 0x10_0000
PAS_ID = 4
#: Memory: one DDR region holding the carveout, plus some below and above it.
DDR = RegionSpec("ddr", 0x8BF0_0000, 0x8BF0_0000, 0x0030_0000)


def segments(base: int = CARVEOUT_PA) -> list[SegmentSpec]:
    """Three segments: code with a zero-filled tail, an empty one, data."""
    return [
        SegmentSpec(base, bytes(range(256)) * 8, memsz=0x3000),
        SegmentSpec(base + 0x4000, b"", memsz=0x800, flags=6),
        SegmentSpec(base + 0x5000, b"\xa5" * 0x321, flags=6),
    ]


def dict_fetch(files: Mapping[str, bytes]):  # type: ignore[no-untyped-def]
    """A Fetch over an in-memory set of files (missing -> MdtFileError)."""

    def fetch(name: str, max_size: int) -> bytes:
        if name not in files:
            raise MdtFileError(name, "missing segment file")
        return files[name][: max_size + 1]

    return fetch


def no_files(name: str, max_size: int) -> bytes:
    """A Fetch with no files at all."""
    raise MdtFileError(name, "missing segment file")


def service(trusted_root: bytes | None) -> PasService:
    """A PAS service with one peripheral (PAS_ID) on a fresh memory."""
    memory = DeviceMemory([DDR])
    return PasService(
        memory, {PAS_ID: Carveout("mpss", CARVEOUT_PA, CARVEOUT_SIZE)}, trusted_root
    )


def patch_u32(data: bytes, offset: int, value: int) -> bytes:
    """``data`` with the little-endian u32 at ``offset`` replaced."""
    out = bytearray(data)
    struct.pack_into("<I", out, offset, value & 0xFFFFFFFF)
    return bytes(out)


def patch_u16(data: bytes, offset: int, value: int) -> bytes:
    """``data`` with the little-endian u16 at ``offset`` replaced."""
    out = bytearray(data)
    struct.pack_into("<H", out, offset, value & 0xFFFF)
    return bytes(out)


def phdr_offset(index: int, field: str) -> int:
    """File offset of program header ``index``'s ``field`` (headers at 52)."""
    names = (
        "p_type",
        "p_offset",
        "p_vaddr",
        "p_paddr",
        "p_filesz",
        "p_memsz",
        "p_flags",
        "p_align",
    )
    return 52 + 32 * index + 4 * names.index(field)
