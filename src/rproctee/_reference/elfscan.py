"""Pure-Python twin of ``rproctee._native.elfscan``."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rproctee._elf_rules import (
    EHDR_FIELDS,
    PHDR_FIELDS,
    SHDR_FIELDS,
    check_ident,
    check_shstrndx,
    check_table,
)
from rproctee._typing import Buffer

U64Table = npt.NDArray[np.uint64]


def _rd(b: memoryview, off: int, width: int, order: str) -> int:
    return int.from_bytes(b[off : off + width], "big" if order == "big" else "little")


def _table(
    b: memoryview,
    off: int,
    num: int,
    entsize: int,
    fields: tuple[tuple[int, int], ...],
    order: str,
) -> U64Table:
    rows = [
        [_rd(b, off + i * entsize + fo, fw, order) for fo, fw in fields]
        for i in range(num)
    ]
    return np.array(rows, dtype=np.uint64).reshape(num, len(fields))


def scan_headers(
    buf: Buffer,
) -> tuple[tuple[int, ...], tuple[int, ...], U64Table, U64Table]:
    """Scan an ELF file's header and header tables (see the native docstring)."""
    b = memoryview(buf).cast("B")
    n = len(b)
    magic = bytes(b[:4]) if n >= 4 else b""
    cls = b[4] if n > 4 else 0
    data = b[5] if n > 5 else 0
    check_ident(n, magic, cls, data)
    order = "big" if data == 2 else "little"
    ident = (cls, data, b[6], b[7])
    ehdr = tuple(_rd(b, o, w, order) for o, w in EHDR_FIELDS[cls])
    phoff, shoff = ehdr[4], ehdr[5]
    phent, phnum, shent, shnum, shstrndx = ehdr[8:13]
    check_table("program", cls, phoff, phnum, phent, n)
    check_table("section", cls, shoff, shnum, shent, n)
    check_shstrndx(shstrndx, shnum)
    phdrs = _table(b, phoff, phnum, phent, PHDR_FIELDS[cls], order)
    shdrs = _table(b, shoff, shnum, shent, SHDR_FIELDS[cls], order)
    return ident, ehdr, phdrs, shdrs
