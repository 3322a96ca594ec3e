"""Integrity and signature checks of a whole MDT/MBN image.

Digest-table rules (see :mod:`rproctee.qcom.hashseg` for their sources):
entry 0 is the digest of the ELF header + program headers (program header
0's bytes); the hash segment's own entry is not checked (it cannot contain
its own digest); a segment with ``p_filesz == 0`` has no file bytes to hash
(mdt_loader only zero-fills it) and its entry must be all-zero or the digest
of nothing; every other segment's entry is the digest of its file bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from rproctee.qcom import certs
from rproctee.qcom.errors import MdtError, MdtHashMismatchError, MdtSignatureError
from rproctee.qcom.format import MdtImage


@dataclass(frozen=True)
class SegmentCheck:
    """The verdict on one digest-table entry."""

    index: int
    status: str  # "ok", "mismatch", "empty", "skipped"
    expected: bytes
    actual: bytes | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "index": self.index,
            "status": self.status,
            "expected": self.expected.hex(),
            "actual": self.actual.hex() if self.actual is not None else None,
        }


@dataclass(frozen=True)
class AuthorityCheck:
    """The verdict on one signer (``"oem"`` or ``"qti"``)."""

    authority: str
    chain: list[certs.CertInfo]
    status: str  # "verified", "failed"
    reason: str | None
    scheme: str = certs.SCHEME

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "authority": self.authority,
            "chain": [c.to_dict() for c in self.chain],
            "status": self.status,
            "reason": self.reason,
            "scheme": self.scheme,
        }


@dataclass
class VerifyReport:
    """What :func:`verify_image` found."""

    segments: list[SegmentCheck] = field(default_factory=list)
    authorities: list[AuthorityCheck] = field(default_factory=list)

    @property
    def hashes_ok(self) -> bool:
        """No digest-table entry mismatched."""
        return all(s.status != "mismatch" for s in self.segments)

    @property
    def signature_ok(self) -> bool:
        """At least one signer, and every signer verified."""
        return bool(self.authorities) and all(
            a.status == "verified" for a in self.authorities
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "hashes_ok": self.hashes_ok,
            "signature_ok": self.signature_ok,
            "segments": [s.to_dict() for s in self.segments],
            "authorities": [a.to_dict() for a in self.authorities],
        }


def digest(algorithm: str, data: bytes) -> bytes:
    """One digest of the table's algorithm."""
    return hashlib.new(algorithm, data).digest()


def check_segments(image: MdtImage) -> list[SegmentCheck]:
    """Every digest-table entry against its segment (see the module rules)."""
    table = image.hash_segment
    out = []
    for i, ph in enumerate(image.phdrs):
        expected = table.hashes[i]
        if i == image.hash_index:
            out.append(SegmentCheck(i, "skipped", expected, None))
        elif not ph.p_filesz:
            ok = expected in (bytes(len(expected)), digest(table.algorithm, b""))
            out.append(SegmentCheck(i, "empty" if ok else "mismatch", expected, None))
        else:
            actual = digest(table.algorithm, image.segments[i])
            status = "ok" if actual == expected else "mismatch"
            out.append(SegmentCheck(i, status, expected, actual))
    return out


def check_authorities(
    image: MdtImage, trusted_root: bytes | None = None
) -> list[AuthorityCheck]:
    """Each signer's chain and its test-scheme signature over the table.

    Parameters
    ----------
    image : MdtImage
    trusted_root : bytes, optional
        SHA-256 of the root certificate that must end every chain.
    """
    table = image.hash_segment
    out = []
    for auth in table.authorities():
        try:
            infos = certs.describe_chain(auth.cert_chain)
        except MdtError as exc:
            out.append(AuthorityCheck(auth.name, [], "failed", str(exc)))
            continue
        try:
            leaf = certs.verify_chain(auth.cert_chain, trusted_root)[0]
            certs.verify_signature(
                leaf, auth.signature, table.signed_bytes, table.algorithm
            )
        except MdtError as exc:
            out.append(AuthorityCheck(auth.name, infos, "failed", str(exc)))
            continue
        out.append(AuthorityCheck(auth.name, infos, "verified", None))
    return out


def verify_image(
    image: MdtImage,
    trusted_root: bytes | None = None,
    *,
    hashes_only: bool = False,
) -> VerifyReport:
    """Check every segment hash, then (unless ``hashes_only``) every signer.

    Returns
    -------
    VerifyReport
        Whatever the outcome; use :func:`require_valid` to raise instead.
    """
    report = VerifyReport(segments=check_segments(image))
    if not hashes_only:
        report.authorities = check_authorities(image, trusted_root)
    return report


def require_valid(report: VerifyReport, *, hashes_only: bool = False) -> None:
    """Raise the first failure of ``report``.

    Raises
    ------
    MdtHashMismatchError
        A segment's digest differs from its table entry.
    MdtSignatureError
        No signer, or a signer that did not verify.
    """
    for seg in report.segments:
        if seg.status == "mismatch":
            raise MdtHashMismatchError(seg.index, seg.expected, seg.actual or b"")
    if hashes_only:
        return
    if not report.authorities:
        raise MdtSignatureError("the hash segment has no signature or chain")
    for auth in report.authorities:
        if auth.status != "verified":
            raise MdtSignatureError(f"{auth.authority}: {auth.reason}")
