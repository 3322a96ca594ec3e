"""ELF core files in the layout Linux's ``rproc_coredump`` writes.

ELF32 little-endian, ``ET_CORE``, one ``PT_LOAD`` per segment in order with
``p_vaddr = p_paddr = da``, ``p_filesz = p_memsz = size``, flags RWX,
``p_align = 0``, data concatenated after the headers, no section headers
(``linux-remoteproc.md`` section 6).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from rproctee._typing import Buffer
from rproctee.tee.params import Memref
from rproctee.tee.results import TeeError, TeeResult

EHDR_SIZE = 52
PHDR_SIZE = 32
ET_CORE = 4
EM_ARM = 40
PT_LOAD = 1
PF_RWX = 7


def build_elf_core(
    segments: Sequence[tuple[int, Buffer]], *, machine: int = EM_ARM, entry: int = 0
) -> bytes:
    """Build an ELF32 core of ``segments`` (device address, bytes).

    Parameters
    ----------
    segments : sequence of (int, buffer)
        Device address and contents of each dumped segment, in order.
    machine : int
        ``e_machine`` (EM_ARM by default).
    entry : int
        ``e_entry`` (the boot address).

    Returns
    -------
    bytes
        Headers followed by the segment bytes.
    """
    phnum = len(segments)
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    ehdr = ident + struct.pack(
        "<HHIIIIIHHHHHH",
        ET_CORE, machine, 1, entry, EHDR_SIZE, 0, 0,
        EHDR_SIZE, PHDR_SIZE, phnum, 0, 0, 0,
    )  # fmt: skip
    offset = EHDR_SIZE + phnum * PHDR_SIZE
    phdrs, data = [], []
    for da, contents in segments:
        size = memoryview(contents).nbytes
        phdrs.append(struct.pack("<8I", PT_LOAD, offset, da, da, size, size, PF_RWX, 0))
        data.append(bytes(memoryview(contents).cast("B")))
        offset += size
    return ehdr + b"".join(phdrs) + b"".join(data)


def write_out(out: Memref, payload: bytes) -> None:
    """Write ``payload`` into an output memref, GP style.

    Raises
    ------
    TeeError
        SHORT_BUFFER (with ``out.size`` set to what is needed) when it does
        not fit.
    """
    room = out.length if out.buffer is not None else 0
    out.size = len(payload)
    if len(payload) > room or out.buffer is None:
        raise TeeError(
            TeeResult.TEE_ERROR_SHORT_BUFFER,
            f"coredump needs {len(payload)} bytes, output buffer holds {room}",
        )
    view = memoryview(out.buffer).cast("B")
    view[out.offset : out.offset + len(payload)] = payload
