"""Verify a signed image: signature first, then every hash-table entry.

The result lists every check with its outcome instead of stopping at the
first failure, so a user sees at once whether the signature, the embedded
ELF files or individual segments are at fault.  Stricter than OP-TEE's TA on
purpose (security checklist 5.2/5.3): the key fixes the algorithm, unknown
TLV types fail, and the hash table must describe every program header of
every image, one to one, in order.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from rproctee import kernels
from rproctee.elf import Phdr, describe_ident
from rproctee.errors import ElfFormatError
from rproctee.image._elf import ELFCLASS32, ELFDATA2LSB, scan_elf_info
from rproctee.image.errors import HashMismatchError, ImageFormatError, SignatureError
from rproctee.image.format import HashEntry, SignType
from rproctee.image.keys import PublicKey, key_sign_type, signature_size
from rproctee.image.parse import EmbeddedImage, SignedImage, parse_image
from rproctee.image.sign import verify_digest

if TYPE_CHECKING:
    from rproctee._typing import Buffer


class CheckKind(Enum):
    """What a failed check means (decides the CLI exit status)."""

    SIGNATURE = "signature"
    FORMAT = "format"
    HASH = "hash"


@dataclass(frozen=True)
class Check:
    """One verification step and its outcome."""

    name: str
    kind: CheckKind
    ok: bool
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    """All checks of one verification, in the order they were made."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """``True`` when every check passed."""
        return all(c.ok for c in self.checks)

    def failed(self, kind: CheckKind) -> tuple[Check, ...]:
        """Return the failed checks of one kind."""
        return tuple(c for c in self.checks if c.kind is kind and not c.ok)

    def raise_for_failure(self) -> None:
        """Raise for the first failing kind: signature, then format, then hash.

        Raises
        ------
        SignatureError
            If the signature check failed.
        ImageFormatError
            If an embedded ELF or a TLV type is unacceptable.
        HashMismatchError
            If a hash-table entry does not match the ELF bytes.
        """
        if bad := self.failed(CheckKind.SIGNATURE):
            raise SignatureError(bad[0].detail)
        if bad := self.failed(CheckKind.FORMAT):
            raise ImageFormatError(
                bad[0].name, None, bad[0].detail, f"{bad[0].name}: {bad[0].detail}"
            )
        if bad := self.failed(CheckKind.HASH):
            raise HashMismatchError(f"{bad[0].name}: {bad[0].detail}")


def _signature_check(image: SignedImage, key: PublicKey) -> Check:
    key_type = key_sign_type(key)
    if key_type is not image.sign_type:
        detail = f"key is {key_type.name} but SIGNTYPE is {image.sign_type.name}"
        return Check("signature", CheckKind.SIGNATURE, False, detail)
    size_problem = _size_mismatch(image, key)
    if size_problem is not None:
        return Check("signature", CheckKind.SIGNATURE, False, size_problem)
    good = verify_digest(key, image.sign_type, image.digest(), bytes(image.signature))
    what = f"{image.sign_type.name} signature over {len(image.signed_message)} bytes"
    detail = f"{what}: {'valid' if good else 'does not verify with this key'}"
    return Check("signature", CheckKind.SIGNATURE, good, detail)


def _size_mismatch(image: SignedImage, key: PublicKey) -> str | None:
    """An RSA key of another size can never verify: name both sizes."""
    if image.sign_type is not SignType.RSA:
        return None
    want = signature_size(key)
    have = len(image.signature)
    if want == have:
        return None
    return (
        f"the image's signature is {have} bytes (RSA-{have * 8}) but the key is "
        f"RSA-{key.key_size} ({want}-byte signatures): verify with the signer's "
        "public key (--key)"
    )


def _tlv_check(image: SignedImage) -> Check:
    unknown = [f"{t.type:#x}" for t in image.unknown_tlvs]
    detail = f"unknown TLV types {', '.join(unknown)}" if unknown else "all known"
    return Check("tlv types", CheckKind.FORMAT, not unknown, detail)


def _elf_phdrs(img: EmbeddedImage) -> tuple[Check, tuple[Phdr, ...]]:
    name = f"image[{img.index}] elf"
    try:
        info = scan_elf_info(img.data)
    except ElfFormatError as exc:
        return Check(name, CheckKind.FORMAT, False, str(exc)), ()
    if (info.elf_class, info.data) != (ELFCLASS32, ELFDATA2LSB):
        ident = describe_ident(info.elf_class, info.data)
        detail = f"{ident}: must be 1 (ELFCLASS32) and 1 (ELFDATA2LSB)"
        return Check(name, CheckKind.FORMAT, False, detail), ()
    detail = f"ELFCLASS32 little-endian, {len(info.phdrs)} program headers"
    return Check(name, CheckKind.FORMAT, True, detail), info.phdrs


def _entry_check(name: str, entry: HashEntry, ph: Phdr, img: EmbeddedImage) -> Check:
    if entry.words() != ph.words():
        detail = "program header differs from the signed hash-table entry"
        return Check(name, CheckKind.HASH, False, detail)
    size = len(img.data)
    if not (ph.p_filesz <= size and ph.p_offset <= size - ph.p_filesz):
        detail = f"segment [{ph.p_offset:#x}, +{ph.p_filesz:#x}) ends past the image"
        return Check(name, CheckKind.HASH, False, detail)
    data = img.data[ph.p_offset : ph.p_offset + ph.p_filesz]
    good = hmac.compare_digest(kernels.sha256_staged(data), entry.digest)
    detail = f"sha256 {'matches' if good else 'mismatch'} ({ph.p_filesz:#x} bytes)"
    return Check(name, CheckKind.HASH, good, detail)


def _hash_checks(image: SignedImage, phdrs: list[tuple[Phdr, ...]]) -> list[Check]:
    pairs = [(img, j, ph) for img, t in zip(image.images, phdrs, strict=True)
             for j, ph in enumerate(t)]  # fmt: skip
    table = image.hash_table
    count_ok = len(pairs) == len(table)
    detail = f"{len(table)} entries for {len(pairs)} program headers"
    checks = [Check("hash table size", CheckKind.HASH, count_ok, detail)]
    for entry, (img, j, ph) in zip(table, pairs, strict=False):
        checks.append(_entry_check(f"image[{img.index}] phdr[{j}]", entry, ph, img))
    return checks


def verify_image(image: Buffer | SignedImage, key: PublicKey) -> VerifyReport:
    """Verify the signature and every segment hash of a signed image.

    Parameters
    ----------
    image : buffer or SignedImage
        The image bytes (parsed here) or an already parsed image.
    key : PublicKey
        RSA or P-256 public key; its type must match SIGNTYPE.

    Returns
    -------
    VerifyReport
        Every check in order; ``report.ok`` is the overall verdict.

    Raises
    ------
    ImageFormatError
        If the container itself is malformed (nothing can be checked).
    """
    parsed = image if isinstance(image, SignedImage) else parse_image(image)
    checks = [_signature_check(parsed, key), _tlv_check(parsed)]
    elf_results = [_elf_phdrs(img) for img in parsed.images]
    checks.extend(check for check, _ in elf_results)
    if all(check.ok for check, _ in elf_results):
        checks.extend(_hash_checks(parsed, [phdrs for _, phdrs in elf_results]))
    else:
        detail = "not checked: an embedded ELF is malformed"
        checks.append(Check("hash table", CheckKind.HASH, False, detail))
    return VerifyReport(tuple(checks))
