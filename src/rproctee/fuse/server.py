"""The FUSE adapter: :class:`~rproctee.fuse.tree.SysfsTree` served through
libfuse 3 with ``mfusepy`` (imported when a mount starts, never before).

Mount options and why:

* ``direct_io``: every ``read`` reaches the model, whatever ``st_size`` says
  (sysfs attributes say 4096, debugfs files 0, as the kernel's do); nothing
  is served from the page cache;
* ``attr_timeout=0,entry_timeout=0,negative_timeout=0``: ``trace0`` appears
  and disappears with the resources, modes follow ``sysfs_read_only``;
* ``default_permissions``: the kernel checks the mode bits (a non-root
  caller gets ``EACCES`` opening ``state`` for writing, as on sysfs);
* ``allow_other`` when served by root: other users see it, as they see
  ``/sys``.

Each open file keeps what its first read at offset 0 produced, as a
``seq_file`` does, so a reader that reads in pieces sees one snapshot.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import errno
import importlib
import itertools
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from rproctee.fuse.tree import FsError, Node, SysfsTree

T = TypeVar("T")

#: What a missing binding or library means, and what to install.
INSTALL_HINT = (
    "FUSE needs libfuse 3 (Debian/Ubuntu: apt-get install fuse3) and the "
    "binding (pip install 'rproctee[fuse]', i.e. mfusepy)"
)


class FuseUnavailable(RuntimeError):
    """libfuse, the binding or ``/dev/fuse`` is missing (the message says which)."""


def load_binding() -> ModuleType:
    """Import ``mfusepy`` over libfuse 3.

    Raises
    ------
    FuseUnavailable
        No ``/dev/fuse``, no libfuse, or no ``mfusepy``.
    """
    if not os.path.exists("/dev/fuse"):
        raise FuseUnavailable(
            f"/dev/fuse does not exist (no FUSE here); {INSTALL_HINT}"
        )
    if "FUSE_LIBRARY_PATH" not in os.environ and "FUSE_LIBRARY_NAME" not in os.environ:
        # mfusepy picks libfuse 2 first when both are installed; the ABI we
        # test is 3's
        if ctypes.util.find_library("fuse3"):
            os.environ["FUSE_LIBRARY_NAME"] = "fuse3"
    try:
        return importlib.import_module("mfusepy")
    except ImportError as exc:
        raise FuseUnavailable(f"mfusepy is not installed; {INSTALL_HINT}") from exc
    except (OSError, AttributeError) as exc:
        raise FuseUnavailable(
            f"libfuse could not be loaded ({exc}); {INSTALL_HINT}"
        ) from exc


class MountFailed(RuntimeError):
    """libfuse refused the mount (bad mount point, permissions...)."""


class _Handle:
    """One open file: its path, how it reads, the text its reads come from."""

    def __init__(self, path: str, node: Node) -> None:
        self.path = path
        self.seq = node.seq
        self.kernfs = node.kernfs
        self.snapshot: bytes | None = None


class SysfsOperations:
    """The libfuse callbacks over a tree (mfusepy's ``Operations`` protocol).

    Parameters
    ----------
    tree : SysfsTree
    on_ready : callable, optional
        Called once libfuse has the kernel connection (``init``).
    """

    use_ns = True  # nanosecond timestamps (mfusepy's current protocol)

    def __init__(self, tree: SysfsTree, on_ready: Callable[[], None] | None = None):
        self.tree = tree
        self.on_ready = on_ready
        self._handles: dict[int, _Handle] = {}
        self._next = itertools.count(1)
        self._lock = threading.Lock()
        self._now = time.time_ns()
        self._uid = os.getuid()
        self._gid = os.getgid()

    # -- set-up ------------------------------------------------------------------
    def init(self, path: str) -> None:
        """The kernel answered ``FUSE_INIT``: the mount is usable."""
        if self.on_ready is not None:
            self.on_ready()

    # -- metadata ----------------------------------------------------------------
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        """``stat(2)``: type, mode, size; owner root (or the server's user)."""
        node = _guard(lambda: self.tree.lookup(path))
        return {
            "st_mode": node.st_mode,
            "st_nlink": 2 if node.kind == "dir" else 1,
            "st_size": len(node.target) if node.kind == "link" else node.size,
            "st_uid": self._uid, "st_gid": self._gid,
            "st_atime": self._now, "st_mtime": self._now, "st_ctime": self._now,
        }  # fmt: skip

    def readlink(self, path: str) -> str:
        """A symlink's target (relative, inside the mount)."""
        return _guard(lambda: self.tree.readlink(path))

    def readdir(self, path: str, fh: int) -> list[str]:
        """A directory's entries."""
        return [".", "..", *_guard(lambda: self.tree.listdir(path))]

    def statfs(self, path: str) -> dict[str, int]:
        """``statfs(2)``: an empty file system, like sysfs's."""
        return {"f_bsize": 4096, "f_namemax": 255}

    # -- files ---------------------------------------------------------------------
    def open(self, path: str, flags: int) -> int:
        """``open(2)``: kernfs's refusals, then a handle."""
        access = flags & os.O_ACCMODE
        for_write = access in (os.O_WRONLY, os.O_RDWR)
        for_read = access in (os.O_RDONLY, os.O_RDWR)
        node = _guard(lambda: self.tree.check_open(path, for_write, for_read))
        with self._lock:
            fh = next(self._next)
            self._handles[fh] = _Handle(path, node)
        return fh

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        """``seq_file``: bytes of the text the read at offset 0 made; other
        debugfs files: bytes of the current content."""
        handle = self._handle(fh, path)
        if not handle.seq or offset == 0 or handle.snapshot is None:
            handle.snapshot = self._stale_guard(handle, self.tree.read)
        return handle.snapshot[offset : offset + size]

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        """One store call per ``write(2)``; the offset is ignored, as sysfs does."""
        handle = self._handle(fh, path)
        return self._stale_guard(handle, lambda p: self.tree.write(p, data))

    def _stale_guard(self, handle: _Handle, call: Callable[[str], T]) -> T:
        """A file removed while open (``trace0`` after a stop) answers as the
        kernel does: ``-ENODEV`` from kernfs, ``-EIO`` from debugfs (looked
        up first: the model's own ``-ENOENT``, a missing firmware, passes)."""
        try:
            self.tree.lookup(handle.path)
        except FsError as exc:
            code = errno.ENODEV if handle.kernfs else errno.EIO
            raise FsError(code, f"{handle.path} was removed while open") from exc
        return _guard(lambda: call(handle.path))

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        """``O_TRUNC``/``truncate``: accepted and ignored, as sysfs does."""
        _guard(lambda: self.tree.lookup(path))
        return 0

    def release(self, path: str, fh: int) -> int:
        """Forget a handle."""
        with self._lock:
            self._handles.pop(fh, None)
        return 0

    def _handle(self, fh: int, path: str) -> _Handle:
        with self._lock:
            handle = self._handles.get(fh)
        if handle is None:
            raise FsError(errno.EBADF, f"no open file {fh} ({path})")
        return handle


def _guard(call: Callable[[], T]) -> T:
    """Run a tree call; a bug in the model becomes ``EIO`` and a traceback on
    stderr instead of mfusepy's silent ``EINVAL``."""
    try:
        return call()
    except OSError:
        raise
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        raise FsError(errno.EIO, f"internal error: {exc}") from exc


def mount_options() -> dict[str, Any]:
    """The libfuse options of every mount (see the module docstring)."""
    # max_idle_threads: libfuse 3.14.0 warns about its own default (UINT_MAX)
    opts: dict[str, Any] = {
        "foreground": True, "fsname": "rproctee", "subtype": "rproctee",
        "direct_io": True, "default_permissions": True, "attr_timeout": 0,
        "entry_timeout": 0, "negative_timeout": 0, "max_idle_threads": 8,
    }  # fmt: skip
    if os.geteuid() == 0:
        opts["allow_other"] = True
    return opts


def serve(
    tree: SysfsTree,
    mountpoint: Path,
    on_ready: Callable[[], None] | None = None,
    *,
    debug: bool = False,
) -> None:
    """Serve ``tree`` at ``mountpoint`` until it is unmounted or interrupted.

    Blocks. libfuse installs handlers for SIGINT (main thread only), SIGTERM
    and SIGHUP that end the loop and unmount.

    Raises
    ------
    FuseUnavailable
        No FUSE here.
    MountFailed
        libfuse could not mount (its own message is on stderr).
    """
    binding = load_binding()
    if not mountpoint.is_dir():
        # libfuse would mount over a file (rootmode follows the mount point)
        # and the kernel would then refuse our directory root
        raise MountFailed(f"cannot mount on {mountpoint}: not a directory")
    served = threading.Event()

    def ready() -> None:
        served.set()
        if on_ready is not None:
            on_ready()

    opts = mount_options()
    if debug:
        opts["debug"] = True
    try:
        binding.FUSE(SysfsOperations(tree, ready), str(mountpoint), **opts)
    except RuntimeError as exc:
        # fuse_main() answers 8 when a signal ended the loop: a normal end
        # once the mount was up; any answer before that is a failed mount
        if not served.is_set():
            raise MountFailed(
                f"libfuse could not mount {mountpoint} (fuse_main returned {exc})"
            ) from exc


def unmount(mountpoint: Path, *, lazy: bool = False) -> None:
    """Unmount a FUSE mount (``fusermount3 -u``, else ``umount``).

    Raises
    ------
    subprocess.CalledProcessError
        Neither could unmount it.
    """
    tool = shutil.which("fusermount3")
    if tool is not None:
        cmd = [tool, "-u", *(["-z"] if lazy else []), str(mountpoint)]
    else:
        cmd = ["umount", *(["-l"] if lazy else []), str(mountpoint)]
    subprocess.run(cmd, check=True, capture_output=True)


class MountThread:
    """A mount served from a background thread (tests, ``sysfs run``).

    Parameters
    ----------
    tree : SysfsTree
    mountpoint : Path
    """

    def __init__(self, tree: SysfsTree, mountpoint: Path) -> None:
        self.tree = tree
        self.mountpoint = mountpoint
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rproctee-fuse",
                                        daemon=True)  # fmt: skip

    def _run(self) -> None:
        try:
            serve(self.tree, self.mountpoint, self._ready.set)
        except BaseException as exc:  # reported by start()/stop()
            self._error = exc
        finally:
            self._ready.set()

    def start(self, timeout: float = 10.0) -> None:
        """Mount and wait until the kernel talks to us.

        Raises
        ------
        FuseUnavailable
            No FUSE here.
        MountFailed
            The mount failed (or did not come up within ``timeout``).
        """
        load_binding()  # fail here, in the caller's thread, when absent
        cwd = os.getcwd()
        self._thread.start()
        ready = self._ready.wait(timeout)
        # fuse_daemonize() changes the process's directory to / even in the
        # foreground; it has run by the time init() is called: undo it
        os.chdir(cwd)
        if self._error is not None:
            raise self._error
        if not ready:
            raise MountFailed(f"the mount at {self.mountpoint} timed out")
        deadline = time.monotonic() + timeout
        while not os.path.ismount(self.mountpoint):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise MountFailed(f"{self.mountpoint} did not become a mount point")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Unmount (lazily if busy) and wait for the loop to end."""
        if self._thread.is_alive():
            try:
                unmount(self.mountpoint)
            except subprocess.CalledProcessError:
                with contextlib.suppress(subprocess.CalledProcessError):
                    unmount(self.mountpoint, lazy=True)
        self._thread.join(timeout)


@contextmanager
def mounted(tree: SysfsTree, mountpoint: Path) -> Iterator[Path]:
    """Serve ``tree`` at ``mountpoint`` for the ``with`` block; always unmount."""
    thread = MountThread(tree, mountpoint)
    try:
        thread.start()
        yield mountpoint
    finally:
        thread.stop()
