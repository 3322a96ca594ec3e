"""``remoteproc_coredump.c``: ELF core files of the processor's segments.

``rproc_coredump`` (the default ``ops->coredump``, run by recovery after
``rproc_stop``) writes an ELF core of the registered dump segments:
``ET_CORE``, class ``rproc->elf_class`` (stm32: ELFCLASS32, EM_NONE), one
``PT_LOAD`` per segment with ``p_vaddr = p_paddr = da``, ``p_filesz =
p_memsz = size``, flags RWX, ``p_align = 0``, no section headers.

* ``enabled`` ("default"): headers and data in one buffer, copied at dump
  time, handed to devcoredump;
* ``inline``: the buffer holds the headers only; devcoredump serves reads
  above them straight from device memory (``rproc_coredump_read``) and
  ``rproc_coredump`` blocks until the reader is done. The model's reader is
  the :attr:`~rproctee.linux.core.Rproc.dump_reader` callback, which reads the
  dump through :meth:`CoreDump.read` while the recovery waits.

A segment whose ``da`` no carveout maps is filled with 0xFF ("invalid copy
request").

Beyond the kernel: when the running firmware can say where it died (an
emulated core's ``crash_note()``, the ``NT_PRSTATUS`` record of its last
crash), an ELF32 dump gets a ``PT_NOTE`` segment first, holding that record,
and ``e_machine`` ``EM_ARM``, so gdb and pyelftools read the registers. The
kernel's ``rproc_coredump`` has no registers to give (the remote's own
state is not readable from Linux); a firmware without ``crash_note`` gets
the kernel's file unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rproctee.linux.state import DumpConf

if TYPE_CHECKING:
    from rproctee.linux.core import Rproc

ELFCLASSNONE, ELFCLASS32, ELFCLASS64 = 0, 1, 2
EM_NONE, EM_ARM = 0, 40
ET_CORE, PT_LOAD, PT_NOTE, PF_RWX = 4, 1, 4, 7
_SIZES = {ELFCLASS32: (52, 32), ELFCLASS64: (64, 56)}


@dataclass(frozen=True)
class DumpSegment:
    """``struct rproc_dump_segment`` (no custom dump function in this model)."""

    da: int
    size: int


@dataclass
class CoreDump:
    """One devcoredump: the header buffer and how the rest is served."""

    mode: DumpConf
    header: bytes
    segments: tuple[DumpSegment, ...]
    rproc: Rproc
    data: bytes = b""
    reads: list[tuple[int, int]] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Total size of the core file."""
        return len(self.header) + sum(s.size for s in self.segments)

    def read(self, offset: int, count: int) -> bytes:
        """``rproc_coredump_read`` (inline) or a slice of the buffer (default)."""
        self.reads.append((offset, count))
        if self.mode == DumpConf.ENABLED:
            return (self.header + self.data)[offset : offset + count]
        out = bytearray()
        end = min(offset + count, self.size)
        while offset < end:
            if offset < len(self.header):
                chunk = self.header[offset:end]
            else:
                chunk = self._segment_bytes(offset - len(self.header), end - offset)
            out += chunk
            offset += len(chunk)
        return bytes(out)

    def _segment_bytes(self, offset: int, count: int) -> bytes:
        for seg in self.segments:
            if offset < seg.size:
                n = min(count, seg.size - offset)
                return self.rproc.copy_segment(seg, offset, n)
            offset -= seg.size
        return b""

    def read_all(self, chunk: int = 4096) -> bytes:
        """Read the whole file in ``chunk``-byte reads, as ``cat`` would."""
        out = bytearray()
        while len(out) < self.size:
            out += self.read(len(out), chunk)
        return bytes(out)


def elf_header(
    rproc: Rproc, segments: tuple[DumpSegment, ...], note: bytes = b""
) -> bytes:
    """Ehdr and phdrs of the core file, as ``rproc_coredump`` fills them.

    Parameters
    ----------
    rproc : Rproc
    segments : tuple of DumpSegment
    note : bytes
        Note records for a ``PT_NOTE`` put before the ``PT_LOAD`` entries
        (ELF32 only), returned after the table with the headers; then
        ``e_machine`` is ``EM_ARM`` where the driver left ``EM_NONE``.

    Raises
    ------
    ValueError
        ``note`` given for an ELF64 dump (the ARM ``NT_PRSTATUS`` layout is
        32-bit).
    """
    cls = rproc.elf_class
    if note and cls != ELFCLASS32:
        raise ValueError(
            f"elf_class {cls}: a register note goes in ELFCLASS32 dumps only"
        )
    ehsize, phsize = _SIZES[cls]
    phnum = len(segments) + (1 if note else 0)
    machine = EM_ARM if note and rproc.elf_machine == EM_NONE else rproc.elf_machine
    ident = b"\x7fELF" + bytes([cls, 1, 1, 0]) + bytes(8)
    if cls == ELFCLASS32:
        ehdr = ident + struct.pack(
            "<HHIIIIIHHHHHH", ET_CORE, machine, 1,
            rproc.bootaddr & 0xFFFFFFFF, ehsize, 0, 0, ehsize, phsize, phnum, 0, 0, 0,
        )  # fmt: skip
    else:
        ehdr = ident + struct.pack(
            "<HHIQQQIHHHHHH", ET_CORE, machine, 1,
            rproc.bootaddr, ehsize, 0, 0, ehsize, phsize, phnum, 0, 0, 0,
        )  # fmt: skip
    offset = ehsize + phnum * phsize
    phdrs = []
    if note:
        phdrs.append(struct.pack("<8I", PT_NOTE, offset, 0, 0, len(note), 0, 0, 4))
        offset += len(note)
    for seg in segments:
        if cls == ELFCLASS32:
            phdrs.append(struct.pack("<8I", PT_LOAD, offset, seg.da, seg.da,
                                     seg.size, seg.size, PF_RWX, 0))  # fmt: skip
        else:
            phdrs.append(struct.pack("<IIQQQQQQ", PT_LOAD, PF_RWX, offset, seg.da,
                                     seg.da, seg.size, seg.size, 0))  # fmt: skip
        offset += seg.size
    return ehdr + b"".join(phdrs) + note


def firmware_crash_note(rproc: Rproc) -> bytes:
    """The running firmware's ``crash_note()`` (b"": none to give).

    Only an ELF32 dump carries it (see :func:`elf_header`).
    """
    firmware = rproc.remote.firmware if rproc.remote is not None else None
    crash_note = getattr(firmware, "crash_note", None)
    if not callable(crash_note) or rproc.elf_class != ELFCLASS32:
        return b""
    note = crash_note()
    return bytes(note) if note else b""


def rproc_coredump(rproc: Rproc) -> None:
    """The default ``ops->coredump``: build the dump and hand it to the reader.

    Nothing happens when no segment is registered or dumps are disabled; an
    unset ELF class logs "ELF class is not set" and dumps nothing.
    """
    segments = tuple(rproc.dump_segments)
    if not segments or rproc.dump_conf == DumpConf.DISABLED:
        return
    if rproc.elf_class == ELFCLASSNONE:
        rproc.log_msg("err", "ELF class is not set")
        return
    note = firmware_crash_note(rproc)
    header = elf_header(rproc, segments, note)
    dump = CoreDump(rproc.dump_conf, header, segments, rproc)
    if dump.mode == DumpConf.ENABLED:
        dump.data = b"".join(rproc.copy_segment(s, 0, s.size) for s in segments)
    deliver(rproc, dump)


def deliver(rproc: Rproc, dump: CoreDump) -> None:
    """``dev_coredumpv``/``dev_coredumpm``: give the dump to userspace."""
    reader: Callable[[CoreDump], bytes] = rproc.dump_reader or CoreDump.read_all
    content = reader(dump)
    rproc.coredumps.append(content)
    # dev_coredumpv() prints nothing: an event, not a kernel message
    rproc.log.add(
        "linux", "coredump", "coredump", mode=dump.mode.word, bytes=len(content),
        segments=len(dump.segments),
    )  # fmt: skip
