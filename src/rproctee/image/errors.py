"""Errors raised by the signed-image layer (:mod:`rproctee.image`).

All of them derive from :class:`rproctee.errors.RprocError`; the malformed-image
errors also derive from :class:`rproctee.errors.FormatError`, so their message
always reads ``field = value: rule``.
"""

from __future__ import annotations

from rproctee.errors import FormatError, RprocError


class ImageFormatError(FormatError):
    """The signed-image container (header, TLVs, signature, images) is malformed."""


class RscTableFormatError(FormatError):
    """A ``.resource_table`` section breaks a layout rule."""


class KeyFormatError(RprocError, ValueError):
    """A key cannot be read, or cannot be used for the requested operation."""


class SignatureError(RprocError):
    """A signature does not verify, or cannot be produced or stitched in."""


class HashMismatchError(RprocError):
    """A hash-table entry does not match the embedded ELF bytes."""
