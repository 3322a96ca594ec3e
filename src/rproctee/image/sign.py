"""Pluggable signers and signature verification.

A signer is anything with a ``sign_type``, a ``signature_size`` and a
``sign_digest(digest) -> signature`` method: the builder hands it the 32-byte
SHA-256 of ``header || TLV area`` and writes back what it returns.  That is
what lets a digest be signed elsewhere (an HSM, another machine) and stitched
back in with :func:`rproctee.image.build.stitch_signature`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from rproctee.image.errors import KeyFormatError, SignatureError
from rproctee.image.format import DIGEST_SIZE, ECDSA_P256_SIG_SIZE, SignType
from rproctee.image.keys import (
    PrivateKey,
    PublicKey,
    key_sign_type,
    load_private_key,
    signature_size,
)

_PREHASHED = utils.Prehashed(hashes.SHA256())


class Signer(Protocol):
    """Turns the 32-byte image digest into a signature."""

    @property
    def sign_type(self) -> SignType:
        """SIGNTYPE written into the image."""
        ...

    @property
    def signature_size(self) -> int:
        """Exact signature length in bytes (header ``sign_len``)."""
        ...

    def sign_digest(self, digest: bytes) -> bytes:
        """Return the signature of a SHA-256 digest."""
        ...


def _check_digest(digest: bytes) -> None:
    if len(digest) != DIGEST_SIZE:
        raise ValueError(f"digest length {len(digest)}: must be {DIGEST_SIZE}")


@dataclass(frozen=True)
class KeySigner:
    """Signs with a local RSA (PKCS#1 v1.5) or P-256 (raw r||s) private key."""

    key: PrivateKey

    @property
    def sign_type(self) -> SignType:
        """SIGNTYPE of the key."""
        return key_sign_type(self.key)

    @property
    def signature_size(self) -> int:
        """Modulus bytes (RSA) or 64 (P-256)."""
        return signature_size(self.key)

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a SHA-256 digest.

        Parameters
        ----------
        digest : bytes
            32 bytes.

        Returns
        -------
        bytes
            PKCS#1 v1.5 signature (deterministic) or raw ``r || s``.
        """
        _check_digest(digest)
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(digest, padding.PKCS1v15(), _PREHASHED)
        der = self.key.sign(digest, ec.ECDSA(_PREHASHED))
        return ecdsa_der_to_raw(der)


@dataclass(frozen=True)
class CallableSigner:
    """Wraps any ``digest -> signature`` function (HSM, remote service)."""

    sign_type: SignType
    signature_size: int
    func: Callable[[bytes], bytes]

    def sign_digest(self, digest: bytes) -> bytes:
        """Call the wrapped function and check the length of what it returns.

        Parameters
        ----------
        digest : bytes
            32 bytes.

        Returns
        -------
        bytes
            The signature (DER ECDSA signatures are converted to raw r||s).

        Raises
        ------
        SignatureError
            If the returned signature does not have ``signature_size`` bytes.
        """
        _check_digest(digest)
        return normalise_signature(
            self.func(digest), self.sign_type, self.signature_size
        )


def ecdsa_der_to_raw(der: bytes) -> bytes:
    """Convert a DER ECDSA-Sig-Value into the 64-byte ``r || s`` form.

    Parameters
    ----------
    der : bytes
        DER-encoded signature.

    Returns
    -------
    bytes
        ``r`` then ``s``, 32 big-endian bytes each.

    Raises
    ------
    SignatureError
        If the DER is malformed or a value does not fit in 32 bytes.
    """
    try:
        r, s = utils.decode_dss_signature(der)
    except ValueError as exc:
        raise SignatureError(f"malformed DER ECDSA signature: {exc}") from exc
    if max(r, s).bit_length() > 256:
        raise SignatureError("ECDSA signature value does not fit in 32 bytes")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def normalise_signature(signature: bytes, sign_type: SignType, size: int) -> bytes:
    """Accept a raw signature of ``size`` bytes, or a DER one for ECDSA.

    Parameters
    ----------
    signature : bytes
        Signature as produced by the external signer.
    sign_type : SignType
        Algorithm of the image.
    size : int
        Expected length (header ``sign_len``).

    Returns
    -------
    bytes
        Exactly ``size`` bytes.

    Raises
    ------
    SignatureError
        If the length is wrong.
    """
    if sign_type is SignType.ECC and len(signature) != size:
        signature = ecdsa_der_to_raw(signature)
    if len(signature) != size:
        raise SignatureError(f"signature length {len(signature)}: must be {size}")
    return bytes(signature)


def signer_from_pem(
    pem: bytes, password: str | bytes | None = None, key_type: SignType | None = None
) -> KeySigner:
    """Load a private key PEM and wrap it in a :class:`KeySigner`.

    Parameters
    ----------
    pem : bytes
        Private key PEM.
    password : str or bytes, optional
        Passphrase of an encrypted key.
    key_type : SignType, optional
        Expected algorithm (the script's ``--key_type``); checked against the key.

    Returns
    -------
    KeySigner
        The signer.

    Raises
    ------
    KeyFormatError
        If the key cannot be loaded or its type differs from ``key_type``.
    """
    signer = KeySigner(load_private_key(pem, password))
    if key_type is not None and signer.sign_type is not key_type:
        raise KeyFormatError(
            f"key type {key_type.name} requested but the key is {signer.sign_type.name}"
        )
    return signer


def verify_digest(
    key: PublicKey, sign_type: SignType, digest: bytes, signature: bytes
) -> bool:
    """Check a signature of a SHA-256 digest; the key type fixes the algorithm.

    Parameters
    ----------
    key : PublicKey
        RSA or P-256 public key.
    sign_type : SignType
        SIGNTYPE read from the image; it must match the key's algorithm.
    digest : bytes
        32-byte SHA-256 digest of the signed message.
    signature : bytes
        Signature bytes (RSA: modulus length; ECC: raw r||s).

    Returns
    -------
    bool
        ``True`` only when the algorithm matches and the signature verifies.
    """
    if key_sign_type(key) is not sign_type or len(signature) != signature_size(key):
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(bytes(signature), digest, padding.PKCS1v15(), _PREHASHED)
        else:
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:ECDSA_P256_SIG_SIZE], "big")
            der = utils.encode_dss_signature(r, s)
            key.verify(der, digest, ec.ECDSA(_PREHASHED))
    except InvalidSignature:
        return False
    return True
