"""Small builders for the platform tests: ELF32 files and DTS trees on disk."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
TEST_DATA = HERE.parent / "data"
DK2_DTS = TEST_DATA / "dts" / "stm32mp157c-dk2.preprocessed.dts"
DK2_DTB = TEST_DATA / "dts" / "stm32mp157c-dk2.dtb"


@dataclass
class Seg:
    """One program header: p_paddr, file bytes, p_memsz (None: len(data))."""

    paddr: int
    data: bytes = b"\0" * 16
    memsz: int | None = None
    p_type: int = 1


def rsc_table(num: int = 0, ver: int = 1, reserved: int = 0) -> bytes:
    """A resource-table header with ``num`` zero offsets."""
    return struct.pack("<4I", ver, num, reserved, 0) + bytes(4 * num)


def make_elf(segs: list[Seg], rsc: tuple[int, bytes] | None = None) -> bytes:
    """ELF32 LE with ``segs`` and, optionally, a ``.resource_table`` (addr, bytes)."""
    pos = 52 + 32 * len(segs)
    phdrs, body = b"", b""
    for seg in segs:
        memsz = len(seg.data) if seg.memsz is None else seg.memsz
        phdrs += struct.pack(
            "<8I", seg.p_type, pos, seg.paddr, seg.paddr, len(seg.data), memsz, 7, 4
        )
        body += seg.data + bytes(-len(seg.data) % 4)
        pos += len(seg.data) + (-len(seg.data) % 4)
    names = b"\0.resource_table\0.shstrtab\0"
    shdrs = struct.pack("<10I", *([0] * 10))
    extra = b""
    if rsc is not None:
        addr, blob = rsc
        shdrs += struct.pack("<10I", 1, 1, 2, addr, pos, len(blob), 0, 0, 4, 0)
        extra += blob + bytes(-len(blob) % 4)
    str_off = pos + len(extra)
    shdrs += struct.pack("<10I", 17, 3, 0, 0, str_off, len(names), 0, 0, 1, 0)
    extra += names + bytes(-len(names) % 4)
    shoff = pos + len(extra)
    shnum = 3 if rsc is not None else 2
    ehdr = b"\x7fELF\x01\x01\x01" + bytes(9) + struct.pack(
        "<HHIIIIIHHHHHH", 2, 40, 1, 0, 52, shoff, 0, 52, 32, len(segs), 40,
        shnum, shnum - 1,
    )  # fmt: skip
    return ehdr + phdrs + body + extra + shdrs


def write_dts(tmp: Path, body: str, name: str = "t.dts") -> Path:
    """Write ``/dts-v1/; / { body };`` to ``tmp/name``."""
    path = tmp / name
    path.write_text("/dts-v1/;\n/ {\n" + body + "\n};\n", encoding="utf-8")
    return path


def _have_dts_parser() -> bool:
    import importlib.util
    import shutil

    return importlib.util.find_spec("devicetree") is not None or bool(
        shutil.which("dtc")
    )


#: DTS sources need Zephyr's dtlib (PyPI ``devicetree``) or ``dtc``.
HAVE_DTS = _have_dts_parser()
