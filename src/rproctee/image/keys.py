"""Key helpers: load, generate, serialise and fingerprint signing keys.

Supported keys are the ones the image format can use: RSA of any modulus size
(SIGNTYPE 1) and ECDSA over NIST P-256 (SIGNTYPE 2).  Private keys are read
from PEM: PKCS#1 ``RSA PRIVATE KEY``, PKCS#8 ``PRIVATE KEY``, SEC1
``EC PRIVATE KEY``, encrypted PKCS#8 and legacy ``Proc-Type``/``DEK-Info``
encrypted PEM (with a passphrase).
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from rproctee.image.errors import KeyFormatError
from rproctee.image.format import SignType

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

KEY_KINDS = ("rsa2048", "rsa3072", "rsa4096", "p256")


def _check_curve(curve: ec.EllipticCurve) -> None:
    if not isinstance(curve, ec.SECP256R1):
        raise KeyFormatError(f"EC key on curve {curve.name}: only P-256 is supported")


def key_sign_type(key: PrivateKey | PublicKey) -> SignType:
    """Return the SIGNTYPE a key signs or verifies with.

    Parameters
    ----------
    key : RSA or EC key, private or public
        The key.

    Returns
    -------
    SignType
        ``RSA`` for RSA keys, ``ECC`` for P-256 keys.

    Raises
    ------
    KeyFormatError
        For EC keys on another curve.
    """
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return SignType.RSA
    _check_curve(key.curve)
    return SignType.ECC


def signature_size(key: PrivateKey | PublicKey) -> int:
    """Return the signature length in bytes the format uses for ``key``.

    Parameters
    ----------
    key : RSA or EC key
        The key.

    Returns
    -------
    int
        Modulus length in bytes for RSA (257 for RSA-2052), 64 for P-256.
    """
    if key_sign_type(key) is SignType.RSA:
        return (key.key_size + 7) // 8
    return 64


def _password(password: str | bytes | None) -> bytes | None:
    if isinstance(password, str):
        return password.encode()
    return password


def _require_pem(pem: bytes) -> None:
    if b"-----BEGIN" not in pem or b"KEY-----" not in pem:
        raise KeyFormatError("not a PEM key (no '-----BEGIN ... KEY-----' line)")


def _first_sentence(exc: BaseException) -> str:
    text = str(exc).strip().split(". ", 1)[0].rstrip(".")
    return text or type(exc).__name__


def _private_key_problem(
    pem: bytes, password: str | bytes | None, exc: BaseException
) -> str:
    """Say which of the usual private-key mistakes happened, in words."""
    encrypted = b"ENCRYPTED" in pem
    if encrypted and not password:
        return "the private key is encrypted: give its passphrase (--key-pwd)"
    if encrypted:
        return "wrong passphrase for the encrypted private key"
    if password and isinstance(exc, TypeError):
        return "a passphrase was given but the private key is not encrypted"
    return f"not a readable private key: {_first_sentence(exc)}"


def load_private_key(pem: bytes, password: str | bytes | None = None) -> PrivateKey:
    """Load an RSA or P-256 private key from PEM text.

    Parameters
    ----------
    pem : bytes
        PEM data (PKCS#1, PKCS#8, SEC1, encrypted PKCS#8 or legacy encrypted).
    password : str or bytes, optional
        Passphrase of an encrypted key.

    Returns
    -------
    PrivateKey
        The key.

    Raises
    ------
    KeyFormatError
        If the data is not a usable private key (a public key gives "Provided
        key cannot be used for signing", as in OP-TEE's script), the password
        is missing or wrong, or the key type is unsupported.
    """
    if b"PUBLIC KEY-----" in pem and b"PRIVATE KEY-----" not in pem:
        raise KeyFormatError(
            "Provided key cannot be used for signing: it is a public key, "
            "give the private key"
        )
    _require_pem(pem)
    try:
        key = serialization.load_pem_private_key(pem, password=_password(password))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(_private_key_problem(pem, password, exc)) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyFormatError(f"unsupported key type {type(key).__name__}")
    key_sign_type(key)
    return key


def load_public_key(pem: bytes, password: str | bytes | None = None) -> PublicKey:
    """Load a public key from PEM; a private key PEM gives its public half.

    Parameters
    ----------
    pem : bytes
        ``PUBLIC KEY`` / ``RSA PUBLIC KEY`` PEM, or any private key PEM that
        :func:`load_private_key` accepts.
    password : str or bytes, optional
        Passphrase when a private key is encrypted.

    Returns
    -------
    PublicKey
        The RSA or P-256 public key.

    Raises
    ------
    KeyFormatError
        If the data holds no usable key.
    """
    if b"PRIVATE KEY-----" in pem:
        return load_private_key(pem, password).public_key()
    _require_pem(pem)
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(
            f"not a readable public key: {_first_sentence(exc)}"
        ) from exc
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise KeyFormatError(f"unsupported key type {type(key).__name__}")
    key_sign_type(key)
    return key


def generate_key(kind: str) -> PrivateKey:
    """Generate a new signing key.

    Parameters
    ----------
    kind : {"rsa2048", "rsa3072", "rsa4096", "p256"}
        Key type and size.

    Returns
    -------
    PrivateKey
        The new key (RSA keys use public exponent 65537).

    Raises
    ------
    ValueError
        For an unknown ``kind``.
    """
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind not in KEY_KINDS:
        raise ValueError(f"key kind '{kind}': must be one of {', '.join(KEY_KINDS)}")
    return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))


def private_key_pem(key: PrivateKey, password: str | bytes | None = None) -> bytes:
    """Serialise a private key as PKCS#8 PEM, encrypted if a password is given.

    Parameters
    ----------
    key : PrivateKey
        The key.
    password : str or bytes, optional
        Passphrase for an ``ENCRYPTED PRIVATE KEY``.

    Returns
    -------
    bytes
        PEM text.
    """
    secret = _password(password)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(secret)
        if secret
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def public_key_pem(key: PrivateKey | PublicKey) -> bytes:
    """Serialise the public half of a key as ``PUBLIC KEY`` (SPKI) PEM.

    Parameters
    ----------
    key : PrivateKey or PublicKey
        The key.

    Returns
    -------
    bytes
        PEM text.
    """
    public = key.public_key() if isinstance(key, PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key: PrivateKey | PublicKey) -> str:
    """Return the SHA-256 fingerprint of a public key, as lowercase hex.

    The hash covers the DER SubjectPublicKeyInfo, so it equals
    ``openssl pkey -pubin -outform DER | sha256sum``.

    Parameters
    ----------
    key : PrivateKey or PublicKey
        The key (a private key is fingerprinted by its public half).

    Returns
    -------
    str
        64 hex digits.
    """
    public = key.public_key() if isinstance(key, PrivateKey) else key
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()
