"""Output helpers: JSON on stdout (with a schema version), logs on stderr, and
the one error style of the whole command line.

Errors
------
Every failure a user can meet is shown the same way, by :func:`show_error`:

* one line ``error: MESSAGE`` on stderr (a listing the message carries, such
  as device-tree candidates, follows indented), never a traceback;
* with ``--json`` on the command line, also a JSON object on stdout::

      {"schema_version": 1,
       "error": {"exit": 3, "kind": "io", "message": "fw.img: No such file..."}}

  so scripts never parse text;
* the process exits with the documented status of :mod:`rproctee.cli.exitcodes`.

A command reports a failure with :func:`fail` (``fail("fw.img: ...", IO_ERROR)``)
or simply lets a library exception escape: :func:`guard`, which the top-level
group wraps around every command, maps :data:`ERROR_STATUSES` (key problems
are usage errors, a directory given as a file is an I/O error like a missing
file), click's usage errors, ``MemoryError`` and broken pipes onto the same
style. Anything else is a bug: ``error: internal error ...``, exit 70, and the
traceback only with ``RPROCTEE_TRACEBACK=1``.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

from rproctee.cli import exitcodes
from rproctee.errors import FormatError

SCHEMA_VERSION = 1
T = TypeVar("T")
P = ParamSpec("P")


def emit_json(obj: dict[str, Any]) -> None:
    """Print ``obj`` as JSON on stdout with ``schema_version`` first."""
    doc = {"schema_version": SCHEMA_VERSION, **obj}
    click.echo(json.dumps(doc, indent=2, default=_jsonable))


def _jsonable(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def log(message: str) -> None:
    """A log line on stderr (never mixed into JSON on stdout)."""
    click.echo(message, file=sys.stderr)


# --------------------------------------------------------------------------
# Errors


class CliFailure(Exception):
    """A failure to show in the one error style and exit with ``status``.

    Raised by :func:`fail`; rendered by :func:`guard`.
    """

    def __init__(self, message: str, status: int, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind or exitcodes.KINDS.get(status, "error")


def fail(message: str, status: int, kind: str | None = None) -> NoReturn:
    """Stop the command with ``error: message`` and exit status ``status``.

    Parameters
    ----------
    message : str
        What went wrong, naming the user's file/option/value.
    status : int
        One of :mod:`rproctee.cli.exitcodes`.
    kind : str, optional
        The JSON error ``kind``; default: the status's name in
        :data:`rproctee.cli.exitcodes.KINDS`.

    Raises
    ------
    CliFailure
        Always; the top-level group renders it.
    """
    raise CliFailure(message, status, kind)


def _key_error() -> type[BaseException]:
    # The image layer imports cryptography: only look its error up when an
    # exception is actually being mapped.
    from rproctee.image.errors import KeyFormatError

    return KeyFormatError


def _image_errors() -> tuple[tuple[type[BaseException], int], ...]:
    from rproctee.image.errors import HashMismatchError, SignatureError

    return (
        (SignatureError, exitcodes.BAD_SIGNATURE),
        (HashMismatchError, exitcodes.HASH_MISMATCH),
    )


#: Library exceptions and their exit statuses, most specific first (checked
#: after the key and image errors, which are looked up lazily).
ERROR_STATUSES: tuple[tuple[type[BaseException], int], ...] = (
    (FormatError, exitcodes.MALFORMED_IMAGE),
    (OSError, exitcodes.IO_ERROR),
    (MemoryError, exitcodes.IO_ERROR),
    # Platform, device-tree, profile and API argument errors are ValueErrors:
    # the user gave something unusable. Other RprocErrors escaping a command
    # (an AddressError from device memory...) are bugs: exit 70.
    (ValueError, exitcodes.USAGE),
)


def status_of(exc: BaseException) -> int | None:
    """The exit status of a library exception, or None when it is a bug."""
    # A key or image error can only exist once its module was imported.
    if "rproctee.image.errors" in sys.modules:
        if isinstance(exc, _key_error()):
            return exitcodes.USAGE
        for kind, status in _image_errors():
            if isinstance(exc, kind):
                return status
    for kind, status in ERROR_STATUSES:
        if isinstance(exc, kind):
            return status
    return None


def describe_error(exc: BaseException) -> str:
    """A user-facing message for a library exception (paths named, no repr)."""
    if isinstance(exc, MemoryError):
        detail = str(exc)
        return "out of memory" + (f": {detail}" if detail else "")
    if isinstance(exc, IsADirectoryError) and exc.filename is not None:
        return f"{exc.filename}: is a directory, not a file"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


def show_error(message: str, status: int, kind: str, as_json: bool) -> None:
    """Print an error in the one style (see the module docstring)."""
    first, *rest = message.strip().splitlines() or [""]
    lines = [f"error: {first}"] + [f"  {line.strip()}" for line in rest]
    click.echo("\n".join(lines), err=True)
    if as_json:
        error = {"exit": status, "kind": kind, "message": message.strip()}
        emit_json({"error": error})


def wants_json(argv: Sequence[str]) -> bool:
    """Whether ``--json`` is among the options of a command line."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def guarded(func: Callable[P, T]) -> Callable[P, T]:
    """Decorate a command callback so its failures use the one error style.

    The top-level group already guards every command; this makes a command
    behave the same when it is registered on another group (tests, plugins).
    ``--json`` is read from the callback's ``as_json`` parameter.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        run = functools.partial(func, *args, **kwargs)
        return guard(run, bool(kwargs.get("as_json")))

    return wrapper


def guard(invoke: Callable[[], T], as_json: bool | Sequence[str]) -> T:
    """Run a command, showing every failure in the one error style.

    Parameters
    ----------
    invoke : callable
        Runs the command (the group's own ``invoke``).
    as_json : bool or sequence of str
        Whether ``--json`` was asked for, or the command line to look in.

    Returns
    -------
    Whatever ``invoke`` returns.

    Raises
    ------
    SystemExit
        With the documented status after a failure was shown.
    """
    if not isinstance(as_json, bool):
        as_json = wants_json(as_json)
    try:
        return invoke()
    except (click.exceptions.Exit, click.Abort, SystemExit, KeyboardInterrupt):
        raise
    except CliFailure as exc:
        _exit_with(exc.message, exc.status, exc.kind, as_json)
    except click.UsageError as exc:
        _exit_with(_usage_message(exc), exitcodes.USAGE, "usage", as_json)
    except click.ClickException as exc:
        _exit_with(exc.format_message(), exc.exit_code, "usage", as_json)
    except BrokenPipeError:
        _quiet_broken_pipe()
    except Exception as exc:  # noqa: BLE001 - the one place that maps them all
        _exit_unexpected(exc, as_json)


def _exit_unexpected(exc: Exception, as_json: bool) -> NoReturn:
    status = status_of(exc)
    if status is not None:
        kind = exitcodes.KINDS.get(status, "error")
        _exit_with(describe_error(exc), status, kind, as_json)
    if os.environ.get("RPROCTEE_TRACEBACK"):
        traceback.print_exception(exc)
    message = (
        f"internal error: {type(exc).__name__}: {exc} (a bug in rproctee; "
        "RPROCTEE_TRACEBACK=1 shows the traceback)"
    )
    _exit_with(message, exitcodes.INTERNAL, "internal", as_json)


def _usage_message(exc: click.UsageError) -> str:
    message = exc.format_message()
    ctx = exc.ctx
    if ctx is None:
        return message
    return f"{message} (see '{ctx.command_path} --help')"


def _exit_with(message: str, status: int, kind: str, as_json: bool) -> NoReturn:
    show_error(message, status, kind, as_json)
    raise SystemExit(status)


def _quiet_broken_pipe() -> NoReturn:
    """The reader went away (``rproctee info x | head``): stop, say nothing.

    Python would otherwise complain while flushing stdout at exit, so stdout
    is pointed at /dev/null first.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (CliRunner): nothing will be flushed
    raise SystemExit(exitcodes.IO_ERROR)
