"""Files of the command line: reading inputs without copies, writing outputs
safely.

Outputs (``keygen``, ``sign``, ``stitch``, ``pubkey``) follow three rules:

* an existing file is replaced only with ``--force``;
* an output is never one of the command's inputs (not even with ``--force``:
  the input would be gone before it is read), nor another output;
* each file is written atomically: a temporary file beside the target, then
  renamed over it, so a failure never leaves a half-written file; errors name
  the user's path, never the temporary one.

All outputs of a command are checked before the first is written.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from rproctee.cli import exitcodes
from rproctee.cli.output import fail

log = logging.getLogger(__name__)


def map_file(path: Path) -> mmap.mmap | bytes:
    """Map ``path`` read-only (page cache, no copy); an empty file gives ``b""``.

    Raises
    ------
    OSError
        The file cannot be opened or mapped (``IsADirectoryError`` for a
        directory, also where ``open`` itself would accept one).
    """
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    with open(path, "rb") as handle:
        if handle.seek(0, 2) == 0:
            return b""  # mmap refuses empty files
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def read_file(path: Path) -> bytes:
    """The bytes of an input file (``OSError`` names ``path``)."""
    return Path(path).read_bytes()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _same_path(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve() or _same_file(a, b)


def check_outputs(
    outputs: Iterable[tuple[str, Path]],
    inputs: Iterable[tuple[str, Path]] = (),
    *,
    force: bool = False,
) -> None:
    """Refuse outputs that would overwrite an input, each other, or a file.

    Parameters
    ----------
    outputs : iterable of (option, path)
        Each output with the option that named it (``"--out"``).
    inputs : iterable of (option, path)
        Every file the command reads.
    force : bool
        Allow replacing existing files (never inputs).

    Raises
    ------
    rproctee.cli.output.CliFailure
        Usage error (exit 2) naming the option and the path; an output that is
        a directory is an I/O error (exit 3), as for inputs.
    """
    outs, ins = list(outputs), list(inputs)
    for index, (option, path) in enumerate(outs):
        for in_option, in_path in ins:
            if _same_path(path, in_path):
                fail(
                    f"{option} {path} is also the input {in_option} {in_path}: "
                    "write the output elsewhere",
                    exitcodes.USAGE,
                )
        for other_option, other in outs[:index]:
            if _same_path(path, other):
                fail(
                    f"{option} {path} is also {other_option}: give two paths",
                    exitcodes.USAGE,
                )
        if path.is_dir():
            fail(f"{option} {path}: is a directory, not a file", exitcodes.IO_ERROR)
        if path.exists() and not force:
            fail(
                f"{option} {path} exists; pass --force to overwrite it",
                exitcodes.USAGE,
            )


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed over it.

    Parameters
    ----------
    path : Path
        The target (its folder must exist).
    data : bytes
        The whole content.
    mode : int
        Permission bits of the new file (``0o600`` for private keys).

    Raises
    ------
    OSError
        With ``filename`` set to ``path`` (never to the temporary file).
    """
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    log.info("wrote %s (%d bytes)", path, len(data))
