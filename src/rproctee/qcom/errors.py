"""The errors of :mod:`rproctee.qcom`: one base class, :class:`MdtError`.

Everything this package raises on purpose derives from :class:`MdtError`
(itself an :class:`rproctee.errors.RprocError`), so a caller handling
untrusted firmware catches one type.  Format errors also derive from
:class:`rproctee.errors.FormatError` and carry ``field``, ``value`` and
``rule``.
"""

from __future__ import annotations

from rproctee.errors import FormatError, RprocError


class MdtError(RprocError):
    """Base class of every error :mod:`rproctee.qcom` raises on purpose."""


class MdtFormatError(MdtError, FormatError):
    """An MDT/MBN structure read from untrusted bytes breaks a rule.

    The message names the field, its value and the rule it broke.
    """


class MdtFileError(MdtError):
    """A file of a split image (``name.bNN``) is missing or unreadable.

    Attributes
    ----------
    path : str
        The file that was looked for.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class MdtHashMismatchError(MdtError):
    """A segment's bytes do not hash to its entry in the hash table."""

    def __init__(self, segment: int, expected: bytes, actual: bytes) -> None:
        self.segment = segment
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"segment {segment}: hash {actual.hex()} does not match the table "
            f"entry {expected.hex()}"
        )


class MdtSignatureError(MdtError):
    """The certificate chain or the signature over the hash table is not valid."""


class PasAccessError(MdtError):
    """The normal world touched memory the secure world has locked (an XPU
    violation: on hardware the access faults).

    Attributes
    ----------
    pa, size : int
        The physical range touched.
    pas_id : int
        The peripheral whose carveout is locked.
    """

    def __init__(self, op: str, pa: int, size: int, pas_id: int) -> None:
        self.op = op
        self.pa = pa
        self.size = size
        self.pas_id = pas_id
        super().__init__(
            f"XPU violation: normal-world {op} of [{pa:#x}, +{size:#x}) inside "
            f"the carveout locked for PAS id {pas_id}"
        )
