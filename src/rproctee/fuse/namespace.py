"""``rproctee sysfs run``: a private mount namespace whose ``/sys`` shows the
model's remote processors, then COMMAND in it.

Inside ``unshare --mount --propagation private`` (this module's ``main``
runs there, as root of the namespace) three directories of ``/sys`` are
*shadowed*: a tmpfs goes over the directory and every entry it had comes
back, a directory or file by a bind mount of the original (reached through
a descriptor opened before the tmpfs covered it), a symlink as the same
symlink. The model's entries are then bound beside them:

* ``/sys/class/remoteproc`` <- ``MOUNT/class/remoteproc``;
* ``/sys/devices/platform/ahb[.K]`` <- ``MOUNT/devices/platform/ahb[.K]``, so
  the class links (``../../devices/platform/ahb/...``) resolve as on a board;
* ``/sys/kernel/debug/remoteproc`` <- ``MOUNT/kernel/debug/remoteproc``
  (``/sys/kernel/debug`` gets a tmpfs when debugfs is not mounted there).

Nothing outside the namespace changes; it ends with COMMAND.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

MS_BIND = 4096
MS_REC = 16384
#: What ``unshare`` is asked for (user namespaces when not root).
UNSHARE_ROOT = ["--mount", "--propagation", "private"]
UNSHARE_USER = ["--user", "--map-root-user", *UNSHARE_ROOT]


class NamespaceError(OSError):
    """A mount inside the namespace failed (the message names it)."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def mount(
    source: str, target: str, fstype: str | None, flags: int, data: str = ""
) -> None:
    """``mount(2)``.

    Raises
    ------
    NamespaceError
        With the errno and both paths.
    """
    libc = _libc()
    ret = libc.mount(
        source.encode(), target.encode(),
        fstype.encode() if fstype else None, ctypes.c_ulong(flags),
        data.encode() if data else None,
    )  # fmt: skip
    if ret != 0:
        code = ctypes.get_errno()
        raise NamespaceError(code, f"mount {source} on {target}: {os.strerror(code)}")


def bind(source: str, target: str) -> None:
    """A recursive bind mount."""
    mount(source, target, None, MS_BIND | MS_REC)


def _placeholder(path: str, mode: int) -> None:
    """An empty directory or file to mount the original entry on."""
    if stat.S_ISDIR(mode):
        os.mkdir(path)
    else:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def shadow(directory: str, skip: Sequence[str] = ()) -> None:
    """Make ``directory`` writable with its entries still there (but ``skip``).

    Raises
    ------
    NamespaceError
        A mount failed.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = [n for n in os.listdir(fd) if n not in skip]
        mount("tmpfs", directory, "tmpfs", 0, "mode=0755")
        for name in names:
            original = f"/proc/self/fd/{fd}/{name}"
            st = os.lstat(original)
            target = os.path.join(directory, name)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(original), target)
                continue
            _placeholder(target, st.st_mode)
            bind(original, target)
    finally:
        os.close(fd)


def _writable_dir(directory: str, new_entries: Sequence[str]) -> None:
    """Shadow ``directory``, or give it a bare tmpfs when nothing is mounted
    there and it is empty (``/sys/kernel/debug`` without debugfs)."""
    if not os.listdir(directory) and not os.path.ismount(directory):
        mount("tmpfs", directory, "tmpfs", 0, "mode=0700")
    else:
        shadow(directory, skip=new_entries)


def install(model: Path, sysfs: Path = Path("/sys")) -> list[str]:
    """Put the model's directories into ``sysfs`` (in this mount namespace).

    Parameters
    ----------
    model : Path
        The FUSE mount.
    sysfs : Path
        Where sysfs is (``/sys``).

    Returns
    -------
    list of str
        The paths bound, for the caller's log.
    """
    bound: list[str] = []
    plan = [
        ("class", ["remoteproc"]),
        ("devices/platform", sorted(os.listdir(model / "devices/platform"))),
        ("kernel/debug", ["remoteproc"]),
    ]
    for parent, names in plan:
        _writable_dir(str(sysfs / parent), names)
        for name in names:
            target = sysfs / parent / name
            target.mkdir(exist_ok=True)
            bind(str(model / parent / name), str(target))
            bound.append(str(target))
    return bound


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rproctee.fuse.namespace MOUNT -- COMMAND...`` (in the
    namespace): install, then exec COMMAND. Returns only on failure.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m rproctee.fuse.namespace MOUNT -- COMMAND [ARGS...]",
              file=sys.stderr)  # fmt: skip
        return 2
    model, command = Path(args[0]), args[2:]
    try:
        install(model)
    except OSError as exc:
        print(f"rproctee sysfs run: cannot set up /sys: {exc}", file=sys.stderr)
        return 3
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"rproctee sysfs run: {command[0]}: {exc.strerror}", file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126


if __name__ == "__main__":
    raise SystemExit(main())
