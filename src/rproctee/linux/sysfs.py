"""The files users touch: sysfs (``remoteproc_sysfs.c``) and debugfs
(``remoteproc_debugfs.c``) of one rproc, with the kernel's answers.

A write returns the byte count or raises
:class:`~rproctee.linux.errors.RprocErrno` (``-EINVAL``, ``-EBUSY``...), as
the syscall would. sysfs words are matched with ``sysfs_streq`` (one trailing
newline tolerated); debugfs ``recovery`` and ``coredump`` with the kernel's
``strncmp(buf, word, count)`` (a prefix without newline matches), and
debugfs ``crash`` parses as ``kstrtouint``. Linux 6.12's ``state_store`` has
no state checks of its own: ``start`` on a running rproc counts one more user
(the power refcount governs), ``stop``/``detach`` get
``rproc_shutdown``/``rproc_detach``'s checks. debugfs reads are bytes
(:meth:`Debugfs.read_bytes`): ``trace0`` is what the firmware wrote, undecoded;
pointers print as a 64-bit kernel's ``%pK`` and ``%pad`` do, with stable fake
kernel addresses.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence

from rproctee.linux.carveouts import MemEntry
from rproctee.linux.core import Rproc
from rproctee.linux.errors import RprocErrno, ebusy, einval
from rproctee.linux.ops import DeviceTable
from rproctee.linux.state import RPROC_LAST, DumpConf, RprocState
from rproctee.rsctable import (
    CarveoutRsc,
    DevmemRsc,
    RscEntry,
    RscTableError,
    TraceRsc,
    UnknownRsc,
    VdevRsc,
    VendorRsc,
    parse_resource_table,
)

#: Files that become read-only (0444) with ``sysfs_read_only``.
_WRITABLE = ("state", "firmware", "recovery", "coredump")


def sysfs_streq(text: str, word: str) -> bool:
    """``sysfs_streq``: equal, ignoring one trailing newline on either side."""
    return text.removesuffix("\n") == word.removesuffix("\n")


def state_word(value: int) -> str:
    """``state_show``: the state's word, "invalid" past ``RPROC_LAST``."""
    if 0 <= value < RPROC_LAST:
        return RprocState(value).word
    return "invalid"


class Sysfs:
    """``/sys/class/remoteproc/remoteprocN/`` of one rproc."""

    def __init__(self, rproc: Rproc) -> None:
        self.rproc = rproc

    def read(self, name: str) -> str:
        """Read one attribute (with its trailing newline)."""
        r = self.rproc
        readers: dict[str, Callable[[], str]] = {
            "state": lambda: state_word(int(r.state)),
            "firmware": lambda: (
                "unknown" if r.state == RprocState.ATTACHED else r.firmware
            ),
            "recovery": lambda: "disabled" if r.recovery_disabled else "enabled",
            "coredump": lambda: r.dump_conf.word,
            "name": lambda: r.name,
        }
        if name not in readers:
            raise RprocErrno(2, f"no sysfs attribute {name!r}")
        return readers[name]() + "\n"

    def write(self, name: str, text: str) -> int:
        """Write one attribute; returns ``len(text)`` like ``count``.

        Raises
        ------
        RprocErrno
            The store function's error (``-EACCES`` for a read-only file).
        """
        if name == "name" or (self.rproc.sysfs_read_only and name in _WRITABLE):
            raise RprocErrno(13, f"sysfs {name} is read-only")
        stores: dict[str, Callable[[str], None]] = {
            "state": self._state,
            "firmware": self.rproc.set_firmware,
            "recovery": self._recovery,
            "coredump": self._coredump,
        }
        if name not in stores:
            raise RprocErrno(2, f"no sysfs attribute {name!r}")
        stores[name](text)
        return len(text)

    def _state(self, text: str) -> None:
        r = self.rproc
        if sysfs_streq(text, "start"):
            try:
                r.boot()
            except RprocErrno as exc:
                r.log_msg("err", f"Boot failed: {exc.ret}")
                raise
        elif sysfs_streq(text, "stop"):
            r.shutdown()
        elif sysfs_streq(text, "detach"):
            r.detach()
        else:
            r.log_msg("err", f"Unrecognised option: {text}")
            raise einval(f"Unrecognised option: {text!r}")

    def _recovery(self, text: str) -> None:
        r = self.rproc
        if sysfs_streq(text, "enabled"):
            r.recovery_disabled = False
            r.recover_logged()
        elif sysfs_streq(text, "disabled"):
            r.recovery_disabled = True
        elif sysfs_streq(text, "recover"):
            r.recover_logged()
        else:
            raise einval(f"recovery: {text!r} is not enabled, disabled or recover")

    def _coredump(self, text: str) -> None:
        r = self.rproc
        if r.state == RprocState.CRASHED:
            r.log_msg("err", "can't change coredump configuration")
            raise ebusy("can't change coredump configuration while crashed")
        for conf in DumpConf:
            if sysfs_streq(text, conf.word):
                r.dump_conf = conf
                return
        r.log_msg("err", "Invalid coredump configuration")
        raise einval(f"Invalid coredump configuration {text!r}")


class Debugfs:
    """``/sys/kernel/debug/remoteproc/remoteprocN/`` of one rproc.

    :meth:`read_bytes` answers with the bytes ``read(2)`` returns;
    :meth:`read` is the same bytes as text, decoded with
    ``surrogateescape`` so that encoding it back gives those bytes exactly.
    :meth:`write` takes the bytes ``write(2)`` got (text is encoded back the
    same way).
    """

    def __init__(self, rproc: Rproc) -> None:
        self.rproc = rproc

    def files(self) -> list[str]:
        """The files present now (``trace<N>`` exist while resources do)."""
        base = ["name", "recovery", "crash", "coredump", "resource_table",
                "carveout_memories"]  # fmt: skip
        return base + [f"trace{t.index}" for t in self.rproc.traces]

    def read_bytes(self, name: str) -> bytes:
        """Read one debugfs file: exactly the bytes the kernel returns."""
        if name.startswith("trace") and name[5:].isdigit():
            return self.trace_bytes(int(name[5:]))
        if name == "resource_table":
            text = self.resource_table()
        elif name == "carveout_memories":
            text = self.carveout_memories()
        elif name == "name":
            # rproc_name_read: scnprintf(buf, 100, "%.98s\n", rproc->name)
            return _to_bytes(self.rproc.name)[:98] + b"\n"
        elif name in ("recovery", "coredump"):
            text = Sysfs(self.rproc).read(name)
        else:
            raise RprocErrno(2, f"no debugfs file {name!r}")
        return _to_bytes(text)

    def read(self, name: str) -> str:
        """Read one debugfs file as text (:meth:`read_bytes`, lossless)."""
        return _to_text(self.read_bytes(name))

    def write(self, name: str, data: bytes | str) -> int:
        """Write ``crash``, ``recovery`` or ``coredump``; returns ``count``.

        Parameters
        ----------
        name : str
        data : bytes or str
            What ``write(2)`` passed (``count = len(data)`` bytes); text is
            encoded as UTF-8 with ``surrogateescape``.

        Raises
        ------
        RprocErrno
            ``-EINVAL`` for a bad length, word or number, ``-ERANGE`` for a
            number past ``UINT_MAX``, ``-EBUSY`` changing ``coredump`` while
            crashed, ``-EACCES`` for a read-only file.
        """
        buf = data if isinstance(data, bytes) else _to_bytes(data)
        writers: dict[str, Callable[[bytes], None]] = {
            "crash": self._crash,
            "recovery": self._recovery,
            "coredump": self._coredump,
        }
        if name not in writers:
            raise RprocErrno(13, f"debugfs {name} is not writable")
        writers[name](buf)
        return len(buf)

    def _crash(self, buf: bytes) -> None:
        """``rproc_crash_write``: ``kstrtouint_from_user(buf, count, 0)``."""
        self.rproc.report_crash(kstrtouint_from_user(buf, "crash"))

    def _recovery(self, buf: bytes) -> None:
        """``rproc_recovery_write``: 1..10 bytes, ``strncmp`` in the order
        enabled, disabled, recover; ``-EINVAL`` for anything else."""
        word = debugfs_word(buf, 10, ("enabled", "disabled", "recover"), "recovery")
        r = self.rproc
        if word == "enabled":
            r.recovery_disabled = False
            r.recover_logged()
        elif word == "disabled":
            r.recovery_disabled = True
        elif word == "recover":
            r.recover_logged()
        else:
            raise einval(f"recovery: {buf!r} is not enabled, disabled or recover")

    def _coredump(self, buf: bytes) -> None:
        """``rproc_coredump_write``: 1..20 bytes, ``-EBUSY`` while crashed,
        then ``strncmp`` in the order disabled, enabled, inline."""
        r = self.rproc
        _check_count(buf, 20, "coredump")
        if r.state == RprocState.CRASHED:
            r.log_msg("err", "can't change coredump configuration")
            raise ebusy("coredump: can't change coredump configuration while crashed")
        word = debugfs_word(buf, 20, [c.word for c in DumpConf], "coredump")
        if word is None:
            r.log_msg("err", "Invalid coredump configuration")
            raise einval(f"coredump: {buf!r} is not disabled, enabled or inline")
        r.dump_conf = DumpConf[word.upper()]

    def trace_bytes(self, index: int) -> bytes:
        """``rproc_trace_read``: the buffer's bytes up to its first NUL
        (``strnlen(va, trace->len)``), undecoded."""
        traces = self.rproc.traces
        if not 0 <= index < len(traces):
            raise RprocErrno(2, f"no debugfs file trace{index}")
        t = traces[index]
        hit = self.rproc.da_to_va(t.da, t.len)
        if hit is None:
            return _to_bytes(f"Trace {t.name} not available\n")
        mem, off = hit
        raw = bytes(mem.va[off : off + t.len])
        return raw.split(b"\0", 1)[0]

    def trace(self, index: int) -> str:
        """:meth:`trace_bytes` as text for terminals and JSON (bytes that are
        not UTF-8 become U+FFFD; the file itself is :meth:`trace_bytes`)."""
        return self.trace_bytes(index).decode("utf-8", "replace")

    def resource_table(self) -> str:
        """``rproc_rsc_table_show`` of the table in effect, re-validated."""
        raw = self.rproc.table_bytes()
        if raw is None:
            return "No resource table found\n"
        try:
            table = parse_resource_table(raw, has_iommu=True)
        except RscTableError as exc:
            # the kernel dumps without bounds checks; the model refuses instead
            return f"Resource table does not parse: {exc}\n"
        base = self._table_address()
        out: list[str] = []
        for i, e in enumerate(table.entries):
            out.extend(_entry_lines(i, e, base))
        return "".join(out)

    def carveout_memories(self) -> str:
        """``rproc_carveouts_show``: one block per ``rproc->carveouts`` entry."""
        return "".join(_carveout_text(m) for m in self.rproc.carveouts)

    def _table_address(self) -> int:
        """The fake kernel address of ``table_ptr`` (what ``%pK`` of a
        header pointer is counted from)."""
        ptr = self.rproc.table_ptr
        if isinstance(ptr, DeviceTable):
            return fake_ioremap_va(ptr.pa)  # rproc_da_to_va into a carveout
        return FAKE_KMALLOC_VA  # cached_table: kmemdup


#: The model's kernel is 64-bit (arm64; ``size_t_bits`` 64 in the ELF
#: loader): pointers and ``dma_addr_t`` print as 16 hex digits.
POINTER_BYTES = 8
#: Where the model pretends ``ioremap_wc`` maps physical address 0 (arm64's
#: vmalloc area): a carveout's ``va`` is this plus its physical address, so
#: the address is stable across boots and differs between carveouts.
FAKE_IOREMAP_BASE = 0xFFFF_8000_8000_0000
#: Where the model pretends ``kmemdup`` put ``cached_table`` (linear map).
FAKE_KMALLOC_VA = 0xFFFF_0000_C1A0_0000


def fake_ioremap_va(pa: int) -> int:
    """The stable fake kernel virtual address of physical address ``pa``."""
    return FAKE_IOREMAP_BASE + pa


def format_pk(address: int | None) -> str:
    """``%pK`` as root reads it with ``kptr_restrict=1`` (the address, as
    ``pointer_string``: zero-padded lowercase hex, no ``0x``); NULL is zeros."""
    return f"{address or 0:0{2 * POINTER_BYTES}x}"


def format_pad(dma: int) -> str:
    """``%pad`` (``special_hex_number`` of a ``dma_addr_t``): ``0x`` and
    zero-padded lowercase hex."""
    return f"0x{dma:0{2 * POINTER_BYTES}x}"


def strncmp(a: bytes, b: bytes, n: int) -> int:
    """C ``strncmp`` over at most ``n`` bytes; past its end a string reads as
    NUL (``b`` is a C literal with its terminator)."""
    for i in range(n):
        ca = a[i] if i < len(a) else 0
        cb = b[i] if i < len(b) else 0
        if ca != cb:
            return ca - cb
        if ca == 0:
            return 0
    return 0


def _check_count(buf: bytes, size: int, field_name: str) -> None:
    """``if (count < 1 || count > sizeof(buf)) return -EINVAL``."""
    if not 1 <= len(buf) <= size:
        raise einval(f"{field_name}: write of {len(buf)} bytes (1..{size})")


def debugfs_word(
    buf: bytes, size: int, words: Sequence[str], field_name: str
) -> str | None:
    """The debugfs word match of ``rproc_recovery_write`` and
    ``rproc_coredump_write``.

    The trailing newline becomes a NUL, then each word in order is compared
    with ``strncmp(buf, word, count)``: without a newline any prefix of a
    word matches (``d`` is ``disabled``), with one only the whole word.

    Parameters
    ----------
    buf : bytes
        What was written (``count = len(buf)``).
    size : int
        The kernel's ``sizeof(buf)``: longer writes are refused.
    words : sequence of str
        The words, in the kernel's order.
    field_name : str
        For the error message.

    Returns
    -------
    str or None
        The first word that matches, None when none does.

    Raises
    ------
    RprocErrno
        ``-EINVAL`` for an empty write or one longer than ``size``.
    """
    _check_count(buf, size, field_name)
    count = len(buf)
    if buf.endswith(b"\n"):
        buf = buf[:-1] + b"\0"
    for word in words:
        if strncmp(buf, word.encode(), count) == 0:
            return word
    return None


#: ``kstrto_from_user`` for ``unsigned int``: sign, 32 binary digits,
#: newline, terminator; at most ``sizeof(buf) - 1`` bytes are read.
_KSTRTOUINT_BUF = 1 + 32 + 1 + 1
_ULLONG_MAX = (1 << 64) - 1
_UINT_MAX = (1 << 32) - 1
_HEX = b"0123456789abcdefABCDEF"


def kstrtouint_from_user(buf: bytes, field_name: str) -> int:
    """``kstrtouint_from_user(buf, count, 0, &res)`` (``lib/kstrtox.c``).

    The first 34 bytes are read as a C string; an optional ``+``; base
    from the prefix (``0x`` hex when a hex digit follows, ``0`` octal, else
    decimal); digits only (no spaces, no ``_``); one trailing newline.

    Raises
    ------
    RprocErrno
        ``-EINVAL`` when no digit or anything else follows, ``-ERANGE`` past
        ``UINT_MAX`` (and for a number past ``ULLONG_MAX`` whatever follows).
    """
    s = buf[: _KSTRTOUINT_BUF - 1].split(b"\0", 1)[0]
    if s[:1] == b"+":
        s = s[1:]
    base, s = _fixup_radix(s)
    value, used = _parse_integer(s, base)
    if value > _ULLONG_MAX:
        raise RprocErrno(errno.ERANGE, f"{field_name}: {buf!r} overflows 64 bits")
    rest = s[used:]
    if used == 0 or rest not in (b"", b"\n"):
        raise einval(f"{field_name}: {buf!r} is not an unsigned integer")
    if value > _UINT_MAX:
        raise RprocErrno(errno.ERANGE, f"{field_name}: {buf!r} is past UINT_MAX")
    return value


def _fixup_radix(s: bytes) -> tuple[int, bytes]:
    """``_parse_integer_fixup_radix`` for base 0."""
    if s[:1] != b"0":
        return 10, s
    if s[1:2].lower() == b"x" and len(s) > 2 and s[2] in _HEX:
        return 16, s[2:]
    return 8, s


def _parse_integer(s: bytes, base: int) -> tuple[int, int]:
    """``_parse_integer``: the value (unbounded: past ``ULLONG_MAX`` is the
    overflow flag) and how many digits were used."""
    value = used = 0
    for c in s:
        digit = int(chr(c), 16) if c in _HEX else base
        if digit >= base:
            break
        value = value * base + digit
        used += 1
    return value, used


def _to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _to_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _d(value: int) -> int:
    """``%d`` of a ``u32``: printed as a signed ``int``."""
    return value - (1 << 32) if value >= 1 << 31 else value


def _entry_lines(i: int, e: RscEntry, table_va: int) -> list[str]:
    if isinstance(e, CarveoutRsc | DevmemRsc):
        kind = "carveout" if isinstance(e, CarveoutRsc) else "devmem"
        return [f"Entry {i} is of type {kind}\n", f"  Device Address {e.da:#x}\n",
                f"  Physical Address {e.pa:#x}\n", f"  Length {e.len:#x} Bytes\n",
                f"  Flags {e.flags:#x}\n",
                f"  Reserved (should be zero) [{_d(e.reserved)}]\n",
                f"  Name {e.name}\n\n"]  # fmt: skip
    if isinstance(e, TraceRsc):
        return [f"Entry {i} is of type trace\n", f"  Device Address {e.da:#x}\n",
                f"  Length {e.len:#x} Bytes\n",
                f"  Reserved (should be zero) [{_d(e.reserved)}]\n",
                f"  Name {e.name}\n\n"]  # fmt: skip
    if isinstance(e, VdevRsc):
        lines = [f"Entry {i} is of type vdev\n", f"  ID {_d(e.id)}\n",
                 f"  Notify ID {_d(e.notifyid)}\n",
                 f"  Device features {e.dfeatures:#x}\n",
                 f"  Guest features {e.gfeatures:#x}\n",
                 f"  Config length {e.config_len:#x}\n", f"  Status {e.status:#x}\n",
                 f"  Number of vrings {e.num_of_vrings}\n",
                 "  Reserved (should be zero) "
                 f"[{e.reserved[0]}][{e.reserved[1]}]\n\n"]  # fmt: skip
        for j, v in enumerate(e.vrings):
            lines += [f"  Vring {j}\n", f"    Device Address {v.da:#x}\n",
                      f"    Alignment {_d(v.align)}\n",
                      f"    Number of buffers {_d(v.num)}\n",
                      f"    Notify ID {_d(v.notifyid)}\n",
                      f"    Physical Address {v.pa:#x}\n\n"]  # fmt: skip
        return lines
    # vendor and unknown types: the header's address, as %pK prints it
    assert isinstance(e, VendorRsc | UnknownRsc)
    return [f"Unknown resource type found: {_d(e.type)} "
            f"[hdr: {format_pk(table_va + e.offset)}]\n"]  # fmt: skip


def _carveout_va(m: MemEntry) -> int | None:
    """``carveout->va``: NULL until allocated, then its fake mapping."""
    return None if m.va is None else fake_ioremap_va(m.dma)


def _carveout_text(m: MemEntry) -> str:
    return (
        "Carveout memory entry:\n"
        f"\tName: {m.name}\n"
        f"\tVirtual address: {format_pk(_carveout_va(m))}\n"
        f"\tDMA address: {format_pad(m.dma)}\n"
        f"\tDevice address: {m.da:#x}\n"
        f"\tLength: {m.len:#x} Bytes\n\n"
    )
