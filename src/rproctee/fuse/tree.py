"""The file tree the FUSE layer serves, without FUSE: paths, modes, bytes.

Layout, as on a booted stm32mp15 (``m4@10000000`` under the ``ahb`` simple
bus), for instance ``K`` of the mount::

    class/remoteproc/remoteprocK -> ../../devices/platform/ahb[.K]/10000000.m4/
                                    remoteproc/remoteprocK
    devices/platform/ahb[.K]/10000000.m4/remoteproc/remoteprocK/
        coredump firmware name recovery state uevent
        device -> ../../../10000000.m4   subsystem -> .../class/remoteproc
    kernel/debug/remoteproc/remoteprocK/
        name recovery crash resource_table carveout_memories coredump trace0..

Instance 0 sits at the real board's path (``ahb``); further instances are
further boards, ``ahb.1``, ``ahb.2``... Every answer comes from the normal
world's :class:`~rproctee.linux.sysfs.Sysfs` and
:class:`~rproctee.linux.sysfs.Debugfs`; this module adds what the VFS does
around them: modes, the ``-EACCES`` kernfs gives when a file without a
``store`` is opened for writing, the ``-EINVAL`` debugfs gives for a missing
``read``/``write``, sysfs's one-page write limit and its C-string view of
the buffer.
"""

from __future__ import annotations

import errno
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rproctee.linux.errors import RprocErrno
from rproctee.linux.sysfs import Debugfs, Sysfs

#: ``PAGE_SIZE``: what a sysfs attribute reports as its size and the most a
#: ``store`` sees of one write.
PAGE_SIZE = 4096
#: ``enum kobject_action``: the words a write to ``uevent`` accepts.
UEVENT_ACTIONS = ("add", "remove", "change", "move", "online", "offline",
                  "bind", "unbind")  # fmt: skip
#: The sysfs attributes of a remoteproc device and their modes
#: (``DEVICE_ATTR_RW``/``_RO``; ``sysfs_read_only`` makes them 0444).
SYSFS_ATTRS = {"coredump": 0o644, "firmware": 0o644, "name": 0o444,
               "recovery": 0o644, "state": 0o644}  # fmt: skip
#: debugfs files and modes (``rproc_create_debug_dir``; traces are 0400).
DEBUGFS_MODES = {"name": 0o400, "recovery": 0o600, "crash": 0o200,
                 "resource_table": 0o400, "carveout_memories": 0o400,
                 "coredump": 0o600}  # fmt: skip
#: The stm32mp15 device of the remote processor and its bus.
BUS = "ahb"
DEVICE = "10000000.m4"


class FsError(OSError):
    """An errno for the VFS, with what the kernel would have logged."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(code, message or errno.errorcode.get(code, str(code)))


@dataclass
class Instance:
    """One served processor: its number, views and the hook run before a
    write that may load firmware (``request_firmware`` reads the disk then).

    Attributes
    ----------
    index : int
        ``K`` of ``remoteprocK``.
    sysfs, debugfs :
        The normal world's views of its rproc.
    before_write : callable(name) or None
        Called with the file name before any write reaches the model.
    after_write : callable() or None
        Called after every write (the event log is flushed there).
    """

    index: int
    sysfs: Sysfs
    debugfs: Debugfs
    before_write: Callable[[str], None] | None = None
    after_write: Callable[[], None] | None = None

    @property
    def dev_name(self) -> str:
        """``remoteprocK``."""
        return f"remoteproc{self.index}"

    @property
    def bus(self) -> str:
        """The bus directory of this board under ``devices/platform``."""
        return BUS if self.index == 0 else f"{BUS}.{self.index}"


@dataclass
class Node:
    """One entry: a directory, a symlink or a file.

    Attributes
    ----------
    kind : str
        ``"dir"``, ``"link"`` or ``"file"``.
    mode : int
        Permission bits.
    target : str
        Symlink target (links only).
    size : int
        ``st_size`` (sysfs attributes: ``PAGE_SIZE``; debugfs: 0).
    read : callable() -> bytes, or None
        The whole content (None: the file has no read operation).
    write : callable(bytes) -> int, or None
        One ``write(2)``; returns the count (None: no write operation).
    children : callable() -> list of str, or None
        A directory's entries, computed when listed.
    kernfs : bool
        A sysfs file (kernfs rules at open) rather than a debugfs one.
    seq : bool
        Read through ``seq_file`` (sysfs attributes, debugfs
        ``resource_table`` and ``carveout_memories``): the read at offset 0
        makes the text the following reads continue; other debugfs files
        are ``simple_read_from_buffer`` over the current content.
    """

    kind: str
    mode: int = 0o755
    target: str = ""
    size: int = 0
    read: Callable[[], bytes] | None = None
    write: Callable[[bytes], int] | None = None
    children: Callable[[], list[str]] | None = None
    kernfs: bool = False
    seq: bool = False

    @property
    def st_mode(self) -> int:
        """``st_mode`` with the file type."""
        kind = {"dir": stat.S_IFDIR, "link": stat.S_IFLNK, "file": stat.S_IFREG}
        return kind[self.kind] | self.mode


def _errno_of(exc: RprocErrno) -> FsError:
    return FsError(exc.errno, exc.message)


def _c_string(data: bytes) -> bytes:
    """What a ``store`` sees: the kernel's copy is a C string, cut at NUL."""
    return data.split(b"\0", 1)[0]


def _text(data: bytes) -> str:
    # surrogateescape keeps every byte: a firmware name goes back to the disk
    # with os.fsencode exactly as it was written
    return data.decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class SysfsTree:
    """Every path of the mount, resolved on each call (files come and go).

    Parameters
    ----------
    instances : sequence of Instance
        The served processors, ``index`` 0..N-1.
    """

    def __init__(self, instances: Sequence[Instance]) -> None:
        self.instances = list(instances)
        self._by_name = {i.dev_name: i for i in self.instances}

    # -- lookup ------------------------------------------------------------------
    def lookup(self, path: str) -> Node:
        """The node at ``path`` (``/``-separated, relative to the mount).

        Raises
        ------
        FsError
            ``ENOENT`` when nothing is there.
        """
        parts = [p for p in path.split("/") if p]
        node = self._resolve(parts)
        if node is None:
            raise FsError(errno.ENOENT, f"no such file: /{'/'.join(parts)}")
        return node

    def _dir(self, names: Callable[[], list[str]]) -> Node:
        return Node("dir", 0o755, children=names)

    def _resolve(self, parts: list[str]) -> Node | None:
        fixed: dict[tuple[str, ...], list[str]] = {
            (): ["class", "devices", "kernel"],
            ("class",): ["remoteproc"],
            ("devices",): ["platform"],
            ("devices", "platform"): [i.bus for i in self.instances],
            ("kernel",): ["debug"],
            ("kernel", "debug"): ["remoteproc"],
        }
        key = tuple(parts)
        if key in fixed:
            names = fixed[key]
            return self._dir(lambda: list(names))
        if key == ("class", "remoteproc"):
            return self._dir(lambda: [i.dev_name for i in self.instances])
        if key == ("kernel", "debug", "remoteproc"):
            return self._dir(lambda: [i.dev_name for i in self.instances])
        if len(parts) == 3 and parts[:2] == ["class", "remoteproc"]:
            inst = self._by_name.get(parts[2])
            return None if inst is None else self._class_link(inst)
        if len(parts) >= 4 and parts[:3] == ["kernel", "debug", "remoteproc"]:
            inst = self._by_name.get(parts[3])
            return None if inst is None else self._debugfs(inst, parts[4:])
        if len(parts) >= 3 and parts[:2] == ["devices", "platform"]:
            inst = next((i for i in self.instances if i.bus == parts[2]), None)
            return None if inst is None else self._device(inst, parts[3:])
        return None

    # -- sysfs -------------------------------------------------------------------
    def device_dir(self, inst: Instance) -> str:
        """The device directory of ``inst``, relative to the mount."""
        return f"devices/platform/{inst.bus}/{DEVICE}/remoteproc/{inst.dev_name}"

    def _class_link(self, inst: Instance) -> Node:
        return Node("link", 0o777, target=f"../../{self.device_dir(inst)}")

    def _device(self, inst: Instance, rest: list[str]) -> Node | None:
        walk = [DEVICE, "remoteproc", inst.dev_name]
        if len(rest) < len(walk):
            if rest != walk[: len(rest)]:
                return None
            nxt = walk[len(rest)]
            return self._dir(lambda: [nxt])
        if rest[: len(walk)] != walk:
            return None
        tail = rest[len(walk) :]
        if not tail:
            return self._dir(lambda: self._device_entries(inst))
        if len(tail) != 1:
            return None
        return self._device_entry(inst, tail[0])

    def _device_entries(self, inst: Instance) -> list[str]:
        return sorted([*SYSFS_ATTRS, "uevent", "device", "subsystem"])

    def _device_entry(self, inst: Instance, name: str) -> Node | None:
        if name == "device":
            return Node("link", 0o777, target="../../../" + DEVICE)
        if name == "subsystem":
            return Node("link", 0o777, target="../../../../../../class/remoteproc")
        if name == "uevent":
            return Node("file", 0o644, size=PAGE_SIZE, kernfs=True, seq=True,
                        read=lambda: b"DEVTYPE=remoteproc\n",
                        write=self._uevent_write)  # fmt: skip
        if name not in SYSFS_ATTRS:
            return None
        mode = SYSFS_ATTRS[name]
        writable = bool(mode & 0o200) and not inst.sysfs.rproc.sysfs_read_only
        return Node(
            "file", mode if writable else 0o444, size=PAGE_SIZE, kernfs=True, seq=True,
            read=lambda: _bytes(inst.sysfs.read(name)),
            write=(lambda data: self._sysfs_write(inst, name, data)) if writable
            else None,
        )  # fmt: skip

    @staticmethod
    def _uevent_write(data: bytes) -> int:
        word = _c_string(data).rstrip(b"\n").split(b" ", 1)[0]
        if _text(word) not in UEVENT_ACTIONS:
            raise FsError(errno.EINVAL, f"uevent: unknown action {word!r}")
        return len(data)

    @staticmethod
    def _sysfs_write(inst: Instance, name: str, data: bytes) -> int:
        """``sysfs_kf_write``: one page at most, the store's answer or count."""
        count = min(len(data), PAGE_SIZE)
        text = _text(_c_string(data[:count]))
        _around(inst, name, lambda: inst.sysfs.write(name, text))
        return count

    # -- debugfs -----------------------------------------------------------------
    def _debugfs(self, inst: Instance, rest: list[str]) -> Node | None:
        if not rest:
            return self._dir(lambda: list(inst.debugfs.files()))
        if len(rest) != 1 or rest[0] not in inst.debugfs.files():
            return None
        name = rest[0]
        mode = DEBUGFS_MODES.get(name, 0o400)
        read = (lambda: _bytes(inst.debugfs.read(name))) if mode & 0o400 else None
        write = None
        if mode & 0o200:

            def write(data: bytes) -> int:
                _around(inst, name, lambda: inst.debugfs.write(name, _text(data)))
                return len(data)  # count, in bytes

        seq = name in ("resource_table", "carveout_memories")
        return Node("file", mode, read=read, write=write, seq=seq)

    # -- the VFS -------------------------------------------------------------------
    def check_open(self, path: str, for_write: bool, for_read: bool) -> Node:
        """``open(2)``'s checks for the superuser.

        kernfs refuses to open for writing a file without a ``store``
        (``-EACCES``), whatever the caller's capabilities; debugfs opens
        anything for root and fails the missing operation with ``-EINVAL``.

        Raises
        ------
        FsError
            ``ENOENT``, ``EISDIR`` or ``EACCES``.
        """
        node = self.lookup(path)
        if node.kind == "dir" and for_write:
            raise FsError(errno.EISDIR, f"{path} is a directory")
        if node.kernfs and for_write and node.write is None:
            raise FsError(errno.EACCES, f"{path} has no store (mode {node.mode:o})")
        if node.kernfs and for_read and node.read is None:
            raise FsError(errno.EACCES, f"{path} has no show")
        return node

    def read(self, path: str) -> bytes:
        """The whole content of a file, as one ``read`` from offset 0 sees it.

        Raises
        ------
        FsError
            The model's errno; ``EINVAL`` for a write-only debugfs file.
        """
        node = self.lookup(path)
        if node.kind == "dir":
            raise FsError(errno.EISDIR, f"{path} is a directory")
        if node.read is None:
            raise FsError(errno.EINVAL, f"{path} cannot be read")
        try:
            return node.read()
        except RprocErrno as exc:
            raise _errno_of(exc) from exc

    def write(self, path: str, data: bytes) -> int:
        """One ``write(2)`` of ``data``; returns the count the kernel returns.

        Raises
        ------
        FsError
            The store's errno (``EBUSY``, ``EINVAL``...), ``EACCES``/``EINVAL``
            when the file has no write operation.
        """
        node = self.lookup(path)
        if node.kind == "dir":
            raise FsError(errno.EISDIR, f"{path} is a directory")
        if node.write is None:
            code = errno.EACCES if node.kernfs else errno.EINVAL
            raise FsError(code, f"{path} cannot be written")
        return node.write(data)

    def readlink(self, path: str) -> str:
        """A symlink's target.

        Raises
        ------
        FsError
            ``EINVAL`` when ``path`` is not a link.
        """
        node = self.lookup(path)
        if node.kind != "link":
            raise FsError(errno.EINVAL, f"{path} is not a symlink")
        return node.target

    def listdir(self, path: str) -> list[str]:
        """A directory's entries (without ``.`` and ``..``).

        Raises
        ------
        FsError
            ``ENOTDIR`` when ``path`` is not a directory.
        """
        node = self.lookup(path)
        if node.kind != "dir" or node.children is None:
            raise FsError(errno.ENOTDIR, f"{path} is not a directory")
        return node.children()


def _around(inst: Instance, name: str, call: Callable[[], int]) -> int:
    """Run a model write between the instance's hooks; errno as FsError."""
    if inst.before_write is not None:
        inst.before_write(name)
    try:
        return call()
    except RprocErrno as exc:
        raise _errno_of(exc) from exc
    finally:
        if inst.after_write is not None:
            inst.after_write()
