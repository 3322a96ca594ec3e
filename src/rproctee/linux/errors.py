"""Kernel error numbers as exceptions: what the rproc core returns, by name.

The model raises :class:`RprocErrno` where the kernel returns ``-Exxx``;
``errno`` is the positive value and ``name`` its symbol (``EINVAL``), which
is what sysfs writers and the tests compare.
"""

from __future__ import annotations

import errno as _errno

from rproctee.errors import RprocError


class RprocErrno(RprocError):
    """``-errno`` from a kernel function, with the message it logged.

    Parameters
    ----------
    code : int
        Positive errno value (``errno.EINVAL``...).
    message : str
        What the kernel would log (``dev_err``), naming the field and value.
    """

    def __init__(self, code: int, message: str = "") -> None:
        self.errno = code
        self.name = _errno.errorcode.get(code, f"E{code}")
        self.message = message
        super().__init__(f"-{self.name}: {message}" if message else f"-{self.name}")

    @property
    def ret(self) -> int:
        """The kernel return value (negative)."""
        return -self.errno


def einval(message: str) -> RprocErrno:
    """``-EINVAL`` with ``message``."""
    return RprocErrno(_errno.EINVAL, message)


def enodev(message: str) -> RprocErrno:
    """``-ENODEV`` with ``message``."""
    return RprocErrno(_errno.ENODEV, message)


def ebusy(message: str) -> RprocErrno:
    """``-EBUSY`` with ``message``."""
    return RprocErrno(_errno.EBUSY, message)


def enomem(message: str) -> RprocErrno:
    """``-ENOMEM`` with ``message``."""
    return RprocErrno(_errno.ENOMEM, message)


def eio(message: str) -> RprocErrno:
    """``-EIO`` with ``message``."""
    return RprocErrno(_errno.EIO, message)


def enoent(message: str) -> RprocErrno:
    """``-ENOENT`` with ``message`` (``request_firmware`` of a missing file)."""
    return RprocErrno(_errno.ENOENT, message)
