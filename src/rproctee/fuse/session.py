"""What ``rproctee sysfs mount`` and ``rproctee sysfs run`` do, without click.

:func:`open_session` builds the boards (and, without ``--firmware-path``, a
temporary ``/lib/firmware`` holding the demo firmware signed with a key made
for the run); :func:`mount_foreground` serves them until unmounted or
interrupted; :func:`run_command` serves them from a thread and runs a
command in a private mount namespace (:mod:`rproctee.fuse.namespace`) where
they are ``/sys``'s. Both stop every processor and flush the event log at
the end.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from rproctee.fuse import server
from rproctee.fuse.boards import (
    BoardError,
    BoardOptions,
    Boards,
    build_boards,
    describe,
    write_demo_firmware,
)
from rproctee.fuse.namespace import UNSHARE_ROOT, UNSHARE_USER
from rproctee.fuse.tree import SysfsTree


class NamespaceUnavailable(RuntimeError):
    """No private mount namespace here (not root, no user namespaces)."""


@dataclass
class Session:
    """The boards of one mount and the tree over them.

    Attributes
    ----------
    boards : Boards
    tree : SysfsTree
    demo : bool
        True when the firmware is the demo one (under the TEE, signed with a
        key made for the run).
    problems : list of str
        What the final shutdown reported.
    """

    boards: Boards
    tree: SysfsTree
    demo: bool = False
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the user: what is served, from where."""
        info = describe(self.boards)
        last = info["instances"] - 1
        names = "remoteproc0" + (f"..remoteproc{last}" if last else "")
        ops = f"TEE ops, series {info['series']}" if info["ops"] == "tee" else "ELF ops"
        demo = ""
        if self.demo and info["ops"] == "tee":
            demo = " (the demo, signed with a key made for this run)"
        elif self.demo:
            demo = " (the demo ELF)"
        where = f"{info['firmware']} from {info['firmware_path']}"
        return f"{names}: {ops}; firmware {where}{demo}"


@contextlib.contextmanager
def open_session(
    options: BoardOptions, events: Path | None = None
) -> Iterator[Session]:
    """Build the boards for a ``with`` block; shut them down at its end.

    Raises
    ------
    BoardError
        A bad option (named), before anything is built.
    """
    options.validate()
    with contextlib.ExitStack() as stack:
        stream: IO[str] | None = None
        if events is not None:
            try:
                stream = stack.enter_context(events.open("w", encoding="utf-8"))
            except OSError as exc:
                raise BoardError(f"--events: {events}: {exc.strerror}") from exc
        root, key_pem = options.firmware_path, None
        if root is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="rproctee-firmware-")))  # fmt: skip
            key_pem = write_demo_firmware(root, options.firmware, options.tee)
        boards = build_boards(options, root, key_pem=key_pem, events=stream)
        demo = options.firmware_path is None
        session = Session(boards, SysfsTree(boards.instances), demo)
        try:
            yield session
        finally:
            session.problems = boards.shutdown()


def mount_foreground(
    options: BoardOptions,
    mountpoint: Path,
    *,
    events: Path | None = None,
    announce: Callable[[str], None] = print,
    debug: bool = False,
) -> list[str]:
    """Serve at ``mountpoint`` until unmounted or interrupted (SIGINT, SIGTERM).

    Returns
    -------
    list of str
        Processors that refused to stop at the end (empty when all stopped).

    Raises
    ------
    BoardError
        A bad option or mount point.
    FuseUnavailable
        No FUSE here (checked before the boards are built).
    """
    if not mountpoint.is_dir():
        raise BoardError(f"MOUNTPOINT: {mountpoint} is not a directory")
    options.validate()
    server.load_binding()  # no FUSE: say so before building anything
    with open_session(options, events) as session:

        def ready() -> None:
            announce(
                f"serving {session.summary()} at {mountpoint}; "
                f"unmount with 'fusermount3 -u {mountpoint}' or Ctrl-C"
            )

        server.serve(session.tree, mountpoint, ready, debug=debug)
    return session.problems


def unshare_flags() -> list[str]:
    """``unshare`` options that work here.

    Raises
    ------
    NamespaceUnavailable
        ``unshare`` is missing or refused both ways, with its message.
    """
    tool = shutil.which("unshare")
    if tool is None:
        raise NamespaceUnavailable(
            "'unshare' (util-linux) is not installed: cannot make a mount namespace"
        )
    errors = []
    for flags in (UNSHARE_ROOT, UNSHARE_USER):
        probe = subprocess.run([tool, *flags, "--", "true"], capture_output=True,
                               text=True)  # fmt: skip
        if probe.returncode == 0:
            return flags
        errors.append(f"unshare {' '.join(flags)}: {probe.stderr.strip()}")
    raise NamespaceUnavailable(
        "a private mount namespace needs root (CAP_SYS_ADMIN) or unprivileged "
        "user namespaces, and neither works here: " + "; ".join(errors)
    )


class _Interrupted(Exception):
    """SIGTERM or SIGHUP while the command runs."""


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Catch SIGTERM/SIGHUP in Python while a thread serves the mount (libfuse
    would otherwise take them and unmount under the running command)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {
        s: signal.signal(s, _raise_interrupted) for s in (signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def run_command(
    options: BoardOptions,
    command: Sequence[str],
    *,
    events: Path | None = None,
    announce: Callable[[str], None] | None = None,
) -> int:
    """Run ``command`` where ``/sys/class/remoteproc`` and
    ``/sys/kernel/debug/remoteproc`` are the model's; return its exit status.

    Raises
    ------
    NamespaceUnavailable
        No mount namespace can be made here.
    FuseUnavailable
        No FUSE here.
    BoardError
        A bad option.
    """
    if not command:
        raise BoardError("COMMAND: nothing to run (give it after --)")
    options.validate()
    server.load_binding()
    flags = unshare_flags()
    with (
        _interruptible(),
        open_session(options, events) as session,
        tempfile.TemporaryDirectory(prefix="rproctee-sysfs-") as tmp,
    ):
        mountpoint = Path(tmp)
        thread = server.MountThread(session.tree, mountpoint)
        try:
            thread.start()
            if announce is not None:
                announce(
                    f"serving {session.summary()} as /sys for: {' '.join(command)}"
                )
            helper = [sys.executable, "-m", "rproctee.fuse.namespace", str(mountpoint)]
            argv = ["unshare", *flags, "--", *helper, "--", *command]
            return _wait(subprocess.Popen(argv))
        finally:
            thread.stop()


def _wait(proc: subprocess.Popen[bytes]) -> int:
    """The child's exit status, as a shell reports it (128 + N when signal N
    killed it).

    Ctrl-C reaches the child from the terminal (same process group): the
    child decides (an interactive shell survives it), so this process
    ignores SIGINT while it waits. SIGTERM/SIGHUP to this process stop the
    child first (``_Interrupted``) and give 128 + SIGTERM.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        status = proc.wait()
    except _Interrupted:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return 128 + int(signal.SIGTERM)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return 128 - status if status < 0 else status
