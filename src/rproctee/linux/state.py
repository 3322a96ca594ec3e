"""Kernel enumerations of the rproc core, with their kernel values and words.

``enum rproc_state``, ``enum rproc_crash_type`` and ``enum
rproc_dump_mechanism`` of ``include/linux/remoteproc.h`` (current numbering,
``linux-remoteproc.md`` section 1.1).
"""

from __future__ import annotations

from enum import IntEnum


class RprocState(IntEnum):
    """``enum rproc_state``; :attr:`word` is what sysfs ``state`` shows."""

    OFFLINE = 0
    SUSPENDED = 1
    RUNNING = 2
    CRASHED = 3
    DELETED = 4
    ATTACHED = 5
    DETACHED = 6

    @property
    def word(self) -> str:
        """The sysfs string (``rproc_state_string``)."""
        return self.name.lower()


#: sysfs shows "invalid" for any value >= RPROC_LAST.
RPROC_LAST = 7


class CrashType(IntEnum):
    """``enum rproc_crash_type``; :attr:`word` is the kernel's log word."""

    MMUFAULT = 0
    WATCHDOG = 1
    FATAL_ERROR = 2

    @property
    def word(self) -> str:
        """``rproc_crash_to_string``: "mmufault", "watchdog", "fatal error"."""
        return self.name.lower().replace("_", " ")

    @classmethod
    def parse(cls, text: str) -> CrashType:
        """A crash type from its word (``watchdog``, ``fatal``/``fatal error``...).

        Raises
        ------
        ValueError
            Unknown word (the message lists the known ones).
        """
        key = text.strip().lower().replace("-", " ").replace("_", " ")
        for kind in cls:
            if key in (kind.word, kind.word.split()[0]):
                return kind
        known = ", ".join(k.word for k in cls)
        raise ValueError(f"unknown crash type {text!r} (known: {known})")


def crash_word(value: int) -> str:
    """The kernel's word for any crash value ("unknown" out of range)."""
    try:
        return CrashType(value).word
    except ValueError:
        return "unknown"


class DumpConf(IntEnum):
    """``enum rproc_dump_mechanism`` (current numbering: DISABLED is 0)."""

    DISABLED = 0
    ENABLED = 1
    INLINE = 2

    @property
    def word(self) -> str:
        """The sysfs word: "disabled", "enabled" or "inline"."""
        return self.name.lower()
