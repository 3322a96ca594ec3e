"""One exception tree for the whole package.

Kernels (native and reference alike) raise only builtin ``IndexError`` /
``ValueError``; the Python layer maps them onto this tree.  The secure world
maps these errors onto TEE result codes through one table of its own
(``rproctee.tee``), so nothing here knows about TEE result values.
"""

from __future__ import annotations


class RprocError(Exception):
    """Base class of every error rproctee raises on purpose."""


class AddressError(RprocError):
    """A (device or physical) address range is not inside exactly one region.

    ``reason`` is one of ``"outside"``, ``"straddle"``, ``"zero-size"``,
    ``"read-only"``.
    """

    def __init__(self, space: str, addr: int, size: int, reason: str) -> None:
        self.space = space
        self.addr = addr
        self.size = size
        self.reason = reason
        super().__init__(
            f"{space} range [{addr:#x}, +{size:#x}) is {_REASON_TEXT[reason]}"
        )


_REASON_TEXT = {
    "outside": "outside every memory region",
    "straddle": "crossing a region boundary (not inside one region whole)",
    "zero-size": "empty (size 0 matches no region)",
    "read-only": "inside a read-only region",
}


class FormatError(RprocError, ValueError):
    """A structure read from untrusted bytes breaks a rule.

    The message names the field, its value and the limit it broke.
    """

    def __init__(
        self, field: str, value: object, rule: str, message: str | None = None
    ) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        shown = f"{value:#x}" if isinstance(value, int) else repr(value)
        super().__init__(message or f"{field} = {shown}: {rule}")


class ElfFormatError(FormatError):
    """An ELF header, program header or section header is malformed."""
