"""Helpers for the signed-image tests: paths to the vectors, an ELF32 factory."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[1] / "data" / "vectors" / "optee"

# vector name -> (inputs, private key file, password)
RSA_VECTORS = {
    "v01_rsa2048_fw1": (["fw1.elf"], "rsa2048.pem", None),
    "v07_rsa2048enc_fw1": (["fw1.elf"], "rsa2048_enc.pem", "rproc-test-pass"),
    "v10_rsa2048_multi_fw1_fw2": (["fw1.elf", "fw2.elf"], "rsa2048.pem", None),
    "v11_rsa2048_fw2": (["fw2.elf"], "rsa2048.pem", None),
}
VERIFY_KEYS = {
    "v01_rsa2048_fw1": "rsa2048_pub.pem",
    "v06_ecp256_fw1": "ecp256_pub.pem",
    "v07_rsa2048enc_fw1": "rsa2048_enc_pub.pem",
    "v10_rsa2048_multi_fw1_fw2": "rsa2048_pub.pem",
    "v11_rsa2048_fw2": "rsa2048_pub.pem",
}
ENC_PASSWORD = "rproc-test-pass"


def vector_bytes(relative: str) -> bytes:
    """Read a file of ``tests/data/vectors/optee``."""
    return (VECTORS / relative).read_bytes()


@dataclass(frozen=True)
class Seg:
    """A program header for :func:`make_elf` (data placed by the factory)."""

    paddr: int
    data: bytes = b""
    memsz: int | None = None
    p_type: int = 1
    flags: int = 7
    align: int = 4


def _shdrs(
    sections: Sequence[tuple[str, int, bytes]], start: int
) -> tuple[bytes, bytes]:
    """Return (section data + shstrtab, section header table) placed at ``start``."""
    names = (
        b"\0" + b"".join(n.encode() + b"\0" for n, _, _ in sections) + b".shstrtab\0"
    )
    blob, table = b"", struct.pack("<10I", *([0] * 10))
    name_off = 1
    for name, addr, data in sections:
        off = start + len(blob)
        table += struct.pack("<10I", name_off, 1, 2, addr, off, len(data), 0, 0, 4, 0)
        blob += data + bytes(-len(data) % 4)
        name_off += len(name) + 1
    str_off = start + len(blob)
    table += struct.pack("<10I", name_off, 3, 0, 0, str_off, len(names), 0, 0, 1, 0)
    blob += names + bytes(-len(names) % 4)
    return blob, table


def make_elf(
    segments: Sequence[Seg],
    *,
    machine: int = 40,
    sections: Sequence[tuple[str, int, bytes]] = (),
    tail: bytes = b"",
) -> bytes:
    """Build a small little-endian ELF32 executable in memory.

    Segment data follows the program-header table (4-byte aligned); then the
    named sections with a ``.shstrtab``, the section-header table, and ``tail``.
    """
    pos = 52 + 32 * len(segments)
    phdrs, body = b"", b""
    for seg in segments:
        memsz = len(seg.data) if seg.memsz is None else seg.memsz
        words = (seg.p_type, pos, seg.paddr, seg.paddr, len(seg.data), memsz)
        phdrs += struct.pack("<8I", *words, seg.flags, seg.align)
        body += seg.data + bytes(-len(seg.data) % 4)
        pos += len(seg.data) + (-len(seg.data) % 4)
    blob, table = _shdrs(sections, pos)
    shoff = pos + len(blob)
    ident = b"\x7fELF\x01\x01\x01" + bytes(9)
    ehdr = ident + struct.pack(
        "<HHIIIIIHHHHHH", 2, machine, 1, 0x1, 52, shoff, 0x5000000, 52, 32,
        len(segments), 40, len(sections) + 2, len(sections) + 1,
    )  # fmt: skip
    return ehdr + phdrs + body + blob + table + tail
