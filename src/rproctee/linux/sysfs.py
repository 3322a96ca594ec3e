"""The files users touch: sysfs (``remoteproc_sysfs.c``) and debugfs
(``remoteproc_debugfs.c``) of one rproc, with the kernel's answers.

A write returns the byte count or raises
:class:`~rproctee.linux.errors.RprocErrno` (``-EINVAL``, ``-EBUSY``...), as
the syscall would; words are matched with ``sysfs_streq`` (one trailing
newline tolerated). Linux 6.12's ``state_store`` has no state checks of its
own: ``start`` on a running rproc counts one more user (the power refcount
governs), ``stop``/``detach`` get ``rproc_shutdown``/``rproc_detach``'s checks.
"""

from __future__ import annotations

from collections.abc import Callable

from rproctee.linux.carveouts import MemEntry
from rproctee.linux.core import Rproc
from rproctee.linux.errors import RprocErrno, ebusy, einval
from rproctee.linux.state import RPROC_LAST, DumpConf, RprocState
from rproctee.rsctable import (
    CarveoutRsc,
    DevmemRsc,
    RscTableError,
    TraceRsc,
    VdevRsc,
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
    """``/sys/kernel/debug/remoteproc/remoteprocN/`` of one rproc."""

    def __init__(self, rproc: Rproc) -> None:
        self.rproc = rproc

    def files(self) -> list[str]:
        """The files present now (``trace<N>`` exist while resources do)."""
        base = ["name", "recovery", "crash", "coredump", "resource_table",
                "carveout_memories"]  # fmt: skip
        return base + [f"trace{t.index}" for t in self.rproc.traces]

    def read(self, name: str) -> str:
        """Read one debugfs file."""
        if name.startswith("trace") and name[5:].isdigit():
            return self.trace(int(name[5:]))
        if name == "resource_table":
            return self.resource_table()
        if name == "carveout_memories":
            return "".join(_carveout_text(m) for m in self.rproc.carveouts)
        if name == "name":
            return self.rproc.name + "\n"
        if name in ("recovery", "coredump"):
            return Sysfs(self.rproc).read(name)
        raise RprocErrno(2, f"no debugfs file {name!r}")

    def write(self, name: str, text: str) -> int:
        """Write ``crash``, ``recovery`` or ``coredump``.

        Raises
        ------
        RprocErrno
            ``-EINVAL`` for a bad length or number.
        """
        if name == "crash":
            try:
                kind = int(text.strip(), 0)  # kstrtouint(buf, 0, &type)
            except ValueError as exc:
                raise einval(f"crash: {text!r} is not an unsigned integer") from exc
            if kind < 0:
                raise einval(f"crash: {text!r} is not an unsigned integer")
            self.rproc.report_crash(kind)
            return len(text)
        if name == "recovery":
            return self._recovery(text)
        if name == "coredump":
            return Sysfs(self.rproc).write("coredump", text)
        raise RprocErrno(13, f"debugfs {name} is not writable")

    def _recovery(self, text: str) -> int:
        """``rproc_recovery_write``: 1..10 bytes; unknown words accepted."""
        if not 1 <= len(text) <= 10:
            raise einval(f"recovery: write of {len(text)} bytes (1..10)")
        word = text.removesuffix("\n")
        if word == "enabled":
            self.rproc.recovery_disabled = False
            self.rproc.recover_logged()
        elif word == "disabled":
            self.rproc.recovery_disabled = True
        elif word == "recover":
            self.rproc.recover_logged()
        return len(text)

    def trace(self, index: int) -> str:
        """``rproc_trace_read``: the buffer up to its first NUL."""
        traces = self.rproc.traces
        if not 0 <= index < len(traces):
            raise RprocErrno(2, f"no debugfs file trace{index}")
        t = traces[index]
        hit = self.rproc.da_to_va(t.da, t.len)
        if hit is None:
            return f"Trace {t.name} not available\n"
        mem, off = hit
        raw = bytes(mem.va[off : off + t.len])
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

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
        out: list[str] = []
        for i, e in enumerate(table.entries):
            out.extend(_entry_lines(i, e))
        return "".join(out)


def _entry_lines(i: int, e: object) -> list[str]:
    if isinstance(e, CarveoutRsc | DevmemRsc):
        kind = "carveout" if isinstance(e, CarveoutRsc) else "devmem"
        return [f"Entry {i} is of type {kind}\n", f"  Device Address {e.da:#x}\n",
                f"  Physical Address {e.pa:#x}\n", f"  Length {e.len:#x} Bytes\n",
                f"  Flags {e.flags:#x}\n",
                f"  Reserved (should be zero) [{e.reserved}]\n",
                f"  Name {e.name}\n\n"]  # fmt: skip
    if isinstance(e, TraceRsc):
        return [f"Entry {i} is of type trace\n", f"  Device Address {e.da:#x}\n",
                f"  Length {e.len:#x} Bytes\n",
                f"  Reserved (should be zero) [{e.reserved}]\n",
                f"  Name {e.name}\n\n"]  # fmt: skip
    if isinstance(e, VdevRsc):
        lines = [f"Entry {i} is of type vdev\n", f"  ID {e.id}\n",
                 f"  Notify ID {e.notifyid}\n", f"  Device features {e.dfeatures:#x}\n",
                 f"  Guest features {e.gfeatures:#x}\n",
                 f"  Config length {e.config_len:#x}\n", f"  Status {e.status:#x}\n",
                 f"  Number of vrings {e.num_of_vrings}\n",
                 "  Reserved (should be zero) "
                 f"[{e.reserved[0]}][{e.reserved[1]}]\n\n"]  # fmt: skip
        for j, v in enumerate(e.vrings):
            lines += [f"  Vring {j}\n", f"    Device Address {v.da:#x}\n",
                      f"    Alignment {v.align}\n", f"    Number of buffers {v.num}\n",
                      f"    Notify ID {v.notifyid}\n",
                      f"    Physical Address {v.pa:#x}\n\n"]  # fmt: skip
        return lines
    return [f"Unknown resource type found: {getattr(e, 'type', '?')}\n"]


def _carveout_text(m: MemEntry) -> str:
    return (
        "Carveout memory entry:\n"
        f"\tName: {m.name}\n"
        f"\tVirtual address: {'mapped' if m.va is not None else 'none'}\n"
        f"\tDMA address: {m.dma:#x}\n"
        f"\tDevice address: {m.da:#x}\n"
        f"\tLength: {m.len:#x} Bytes\n\n"
    )
