"""Shared helpers for the emulated-core tests: firmware, signed loads, symbols."""

from __future__ import annotations

import functools
import struct
from pathlib import Path

from elftools.elf.elffile import ELFFile

from rproctee.image import KeySigner, build_image, load_private_key, public_key_pem
from rproctee.platform.board import PlatformSpec, load_platform
from rproctee.rsctable import ResourceTable, parse_resource_table
from rproctee.tee import TA_UUID, TeeContext, build_secure_world, memref_in, value_in
from rproctee.tee.results import TeeResult
from rproctee.tee.ta_remoteproc import TaCommand
from rproctee.tee.world import SecureWorld

FW = Path(__file__).resolve().parent / "fw"
KEYS = Path(__file__).resolve().parents[1] / "data" / "vectors" / "optee" / "keys"


@functools.cache
def signing_key() -> object:
    """The OP-TEE vectors' RSA-2048 test key (no key generation per test)."""
    return load_private_key((KEYS / "rsa2048.pem").read_bytes())


def dk2() -> PlatformSpec:
    """The built-in stm32mp15-dk2 board."""
    return load_platform("stm32mp15-dk2")


@functools.cache
def firmware(name: str) -> bytes:
    """A committed test firmware ELF (``tests/emu/fw/<name>.elf``)."""
    return (FW / f"{name}.elf").read_bytes()


@functools.cache
def signed(name: str) -> bytes:
    """The firmware ``name`` signed in OP-TEE's format with :func:`signing_key`."""
    return bytes(build_image([firmware(name)], KeySigner(signing_key())))  # type: ignore[arg-type]


def key_pem() -> bytes:
    """Public half of :func:`signing_key`, PEM."""
    return public_key_pem(signing_key())  # type: ignore[arg-type]


def loaded_world(name: str, policy: str = "strict", **kw: object) -> SecureWorld:
    """A DK2 secure world whose TA loaded firmware ``name`` (LOAD_FW)."""
    world = build_secure_world(dk2(), policy=policy, key_pem=key_pem(), **kw)  # type: ignore[arg-type]
    session = TeeContext(world.core).open_session(TA_UUID, [value_in(0)])
    answer = session.invoke_command(
        TaCommand.LOAD_FW, [value_in(0), memref_in(signed(name))]
    )
    assert answer.result == TeeResult.TEE_SUCCESS, answer.reason
    return world


@functools.cache
def symbols(name: str) -> dict[str, int]:
    """Symbol name -> value of a firmware ELF (Thumb bit cleared)."""
    with (FW / f"{name}.elf").open("rb") as f:
        elf = ELFFile(f)
        table = elf.get_section_by_name(".symtab")
        return {s.name: s["st_value"] & ~1 for s in table.iter_symbols() if s.name}


@functools.cache
def rsc_location(name: str) -> tuple[int, int]:
    """``(da, size)`` of the firmware's ``.resource_table`` section."""
    with (FW / f"{name}.elf").open("rb") as f:
        sec = ELFFile(f).get_section_by_name(".resource_table")
        return sec["sh_addr"], sec["sh_size"]


def table_in_memory(world_memory: object, name: str) -> ResourceTable:
    """The firmware's resource table as device memory holds it now."""
    da, size = rsc_location(name)
    raw = world_memory.read_da(da, size)  # type: ignore[attr-defined]
    return parse_resource_table(raw, has_iommu=False)


def trace_text(memory: object, name: str) -> str:
    """Trace buffer 0 of firmware ``name`` up to its first NUL."""
    trace = table_in_memory(memory, name).traces()[0]
    raw = memory.read_da(trace.da, trace.len)  # type: ignore[attr-defined]
    return raw.split(b"\0", 1)[0].decode()


def u32(data: bytes, offset: int) -> int:
    """Little-endian word."""
    return int(struct.unpack_from("<I", data, offset)[0])
