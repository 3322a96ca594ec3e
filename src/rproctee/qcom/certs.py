"""Certificate chains and signatures of the hash segment.

**Chain layout** (public: msm8916-mainline/qtestsign ``fw/hashseg.py`` and
``cert.py``): DER X.509 certificates concatenated, attestation certificate
first, then the attestation CA, then the root; the whole chain padded with
``0xFF`` to a multiple of 16 bytes.  Certificates are split here by their
outer DER SEQUENCE length and parsed with :mod:`cryptography`.

**Signature scheme: rproctee's own test scheme, NOT Qualcomm's.**  Qualcomm's
scheme (its public "Secure Boot and Image Authentication" overview) mixes
the fuse values HW_ID/SW_ID into the digest; it is not reproduced here.
This package signs ``header || metadata || digest table`` (the bytes a v3
``SW_SIZE`` OU field covers, per qtestsign) with the attestation key:
RSA keys sign with PKCS#1 v1.5, EC keys with ECDSA encoded as fixed-size
``r || s``; both use the digest table's hash (SHA-256 or SHA-384).  Real
vendor images therefore report their chain but not a verified signature.
"""

from __future__ import annotations

import datetime
import hashlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rproctee.qcom.errors import MdtFormatError, MdtSignatureError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

MAX_CERTS = 8
CHAIN_ALIGN = 16
PAD_BYTE = 0xFF
SCHEME = "rproctee-test (not Qualcomm's scheme)"


@dataclass(frozen=True)
class CertInfo:
    """What a user wants to see of one certificate."""

    subject: str
    issuer: str
    key_type: str
    serial: int
    sha256: str
    self_signed: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)


def split_chain(chain: bytes) -> list[bytes]:
    """The DER certificates of a concatenated chain (0xFF padding dropped).

    Raises
    ------
    MdtFormatError
        A certificate is not a DER SEQUENCE, its length runs past the chain,
        bytes after the last certificate are not ``0xFF`` padding, or there
        are more than :data:`MAX_CERTS`.
    """
    certs: list[bytes] = []
    off = 0
    while off < len(chain):
        if all(b == PAD_BYTE for b in chain[off:]):
            break
        if len(certs) == MAX_CERTS:
            raise MdtFormatError(
                "cert_chain", len(certs), f"more than {MAX_CERTS} certificates"
            )
        end = off + _der_length(chain, off)
        certs.append(chain[off:end])
        off = end
    return certs


def _der_length(chain: bytes, off: int) -> int:
    """Total size (tag + length + content) of the DER SEQUENCE at ``off``."""
    where = f"cert_chain[{off:#x}]"
    if off + 2 > len(chain) or chain[off] != 0x30:
        raise MdtFormatError(where, chain[off], "not a DER SEQUENCE (0x30)")
    first = chain[off + 1]
    if first < 0x80:
        head, size = 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or off + 2 + count > len(chain):
            raise MdtFormatError(
                f"{where} length", first, "not a 1- to 4-byte DER length"
            )
        head = 2 + count
        size = int.from_bytes(chain[off + 2 : off + head], "big")
    if size > len(chain) - off - head:
        raise MdtFormatError(
            f"{where} length", size, f"runs past the {len(chain):#x}-byte chain"
        )
    return head + size


def load_chain(chain: bytes) -> list[x509.Certificate]:
    """Parse every certificate of ``chain`` (leaf first).

    :mod:`cryptography` parses fields lazily, so the fields used later
    (names, public key, serial) are read here once: a certificate that
    breaks on any of them is rejected here, with its index.

    Raises
    ------
    MdtFormatError
        Not splittable (see :func:`split_chain`) or a certificate that
        :mod:`cryptography` cannot parse.
    """
    from cryptography import x509

    out = []
    for index, der in enumerate(split_chain(chain)):
        try:
            with warnings.catch_warnings():
                # A certificate cryptography only warns about (a serial that is
                # not positive, say) breaks RFC 5280: refuse it like the others.
                warnings.simplefilter("error")
                cert = x509.load_der_x509_certificate(der)
                cert.subject.rfc4514_string()
                cert.issuer.rfc4514_string()
                cert.public_key()
                _ = cert.serial_number
        # cryptography reports a malformed field with ValueError, TypeError,
        # KeyError or UnsupportedAlgorithm depending on the field: any error
        # while reading these untrusted bytes means "not a usable certificate".
        except Exception as exc:
            raise MdtFormatError(
                f"cert_chain certificate {index}",
                len(der),
                f"not a usable X.509 certificate: {exc}",
            ) from exc
        out.append(cert)
    return out


def describe_chain(chain: bytes) -> list[CertInfo]:
    """Subjects, issuers and key types of the chain (leaf first)."""
    from cryptography.hazmat.primitives import serialization

    infos = []
    for cert in load_chain(chain):
        der = cert.public_bytes(serialization.Encoding.DER)
        infos.append(
            CertInfo(
                subject=cert.subject.rfc4514_string(),
                issuer=cert.issuer.rfc4514_string(),
                key_type=key_type(cert.public_key()),
                serial=cert.serial_number,
                sha256=hashlib.sha256(der).hexdigest(),
                self_signed=cert.subject == cert.issuer,
            )
        )
    return infos


def key_type(key: object) -> str:
    """``"RSA-2048"``, ``"EC-secp384r1"`` or the class name for other keys."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC-{key.curve.name}"
    return type(key).__name__


def root_fingerprint(chain: bytes) -> bytes:
    """SHA-256 of the last (root) certificate's DER: the model's fuse value.

    Raises
    ------
    MdtFormatError
        The chain is empty or malformed.
    """
    certs = split_chain(chain)
    if not certs:
        raise MdtFormatError("cert_chain_size", 0, "no certificate in the chain")
    return hashlib.sha256(certs[-1]).digest()


def verify_chain(chain: bytes, trusted_root: bytes | None) -> list[x509.Certificate]:
    """Check each certificate is issued and signed by the next one.

    Parameters
    ----------
    chain : bytes
        The concatenated chain (leaf first).
    trusted_root : bytes or None
        SHA-256 of the root certificate's DER that must end the chain, or
        None to accept any self-signed root (an unfused device).

    Returns
    -------
    list of Certificate
        Leaf first.

    Raises
    ------
    MdtSignatureError
        Empty chain, a broken link, root not self-signed, or not the
        trusted root.
    MdtFormatError
        The chain cannot be parsed.
    """
    certs = load_chain(chain)
    if not certs:
        raise MdtSignatureError("certificate chain is empty")
    for index, (cert, issuer) in enumerate(
        zip(certs, certs[1:] + certs[-1:], strict=True)
    ):
        _check_link(index, cert, issuer)
    root = split_chain(chain)[-1]
    if trusted_root is not None and hashlib.sha256(root).digest() != trusted_root:
        raise MdtSignatureError(
            f"root certificate sha256 {hashlib.sha256(root).hexdigest()} is not "
            f"the trusted root {trusted_root.hex()}"
        )
    return certs


def _check_link(index: int, cert: x509.Certificate, issuer: x509.Certificate) -> None:
    try:
        cert.verify_directly_issued_by(issuer)
    # InvalidSignature, or whatever cryptography raises on a malformed field
    # it only reads now (signature algorithm, TBS bytes): not issued by it.
    except Exception as exc:
        raise MdtSignatureError(
            f"certificate {index} ({cert.subject.rfc4514_string()}) is not "
            f"issued by {issuer.subject.rfc4514_string()}: {exc or 'bad signature'}"
        ) from exc


# -- the test signature scheme -------------------------------------------------


def _hash_algorithm(name: str) -> Any:
    from cryptography.hazmat.primitives import hashes

    return {"sha256": hashes.SHA256(), "sha384": hashes.SHA384()}[name]


def signature_length(key: PrivateKey) -> int:
    """Bytes a test-scheme signature by ``key`` takes (fixed per key)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    if isinstance(key, rsa.RSAPrivateKey):
        return (key.key_size + 7) // 8
    return 2 * ((key.curve.key_size + 7) // 8)


def sign(key: PrivateKey, data: bytes, algorithm: str) -> bytes:
    """Sign ``data`` under the test scheme (see the module docstring)."""
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    algo = _hash_algorithm(algorithm)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), algo)
    der = key.sign(data, ec.ECDSA(algo))
    r, s = utils.decode_dss_signature(der)
    half = signature_length(key) // 2
    return r.to_bytes(half, "big") + s.to_bytes(half, "big")


def verify_signature(
    cert: x509.Certificate, signature: bytes, data: bytes, algorithm: str
) -> None:
    """Verify a test-scheme signature with the attestation certificate's key.

    Raises
    ------
    MdtSignatureError
        Wrong length, unsupported key type, or the signature does not verify.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    key = cert.public_key()
    algo = _hash_algorithm(algorithm)
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algo)
            return
        if isinstance(key, ec.EllipticCurvePublicKey):
            half = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * half:
                raise MdtSignatureError(
                    f"signature is {len(signature)} bytes, {key.curve.name} "
                    f"needs {2 * half}"
                )
            r = int.from_bytes(signature[:half], "big")
            s = int.from_bytes(signature[half:], "big")
            key.verify(utils.encode_dss_signature(r, s), data, ec.ECDSA(algo))
            return
    except (InvalidSignature, ValueError) as exc:
        raise MdtSignatureError(
            f"signature does not verify with {cert.subject.rfc4514_string()} ({SCHEME})"
        ) from exc
    raise MdtSignatureError(f"attestation key type {key_type(key)} is not supported")


# -- test keys and chains -------------------------------------------------------


@dataclass(frozen=True)
class TestSigner:
    """A self-made attestation key with its chain (leaf, CA, root), for tests.

    Attributes
    ----------
    key : private key
        The attestation (leaf) key that signs images.
    chain : bytes
        DER leaf + CA + root, 0xFF-padded to 16 bytes.
    root_sha256 : bytes
        SHA-256 of the root certificate's DER (the model's "fuse").
    """

    __test__ = False  # not a pytest test class despite its name

    key: Any
    chain: bytes
    root_sha256: bytes


def make_test_signer(kind: str = "p384", name: str = "rproctee test") -> TestSigner:
    """Generate a key and a three-certificate chain (root self-signed).

    Parameters
    ----------
    kind : str
        ``"p384"`` (fast) or ``"rsa2048"``.
    name : str
        Common-name prefix of the three certificates.
    """
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def new_key() -> Any:
        if kind == "rsa2048":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "p384":
            return ec.generate_private_key(ec.SECP384R1())
        raise ValueError(f"kind = {kind!r}: use 'p384' or 'rsa2048'")

    root_key, ca_key, leaf_key = new_key(), new_key(), new_key()
    root = _certificate(f"{name} root", root_key, f"{name} root", root_key, ca=True)
    ca = _certificate(f"{name} attestation CA", ca_key, f"{name} root", root_key, True)
    leaf = _certificate(
        f"{name} attestation", leaf_key, f"{name} attestation CA", ca_key, ca=False
    )
    chain = pad_chain(b"".join(_der(c) for c in (leaf, ca, root)))
    return TestSigner(leaf_key, chain, hashlib.sha256(_der(root)).digest())


def pad_chain(chain: bytes) -> bytes:
    """Pad a chain with 0xFF to a multiple of 16 bytes (as qtestsign does)."""
    return chain + bytes([PAD_BYTE]) * (-len(chain) % CHAIN_ALIGN)


def _der(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.DER)


def _certificate(
    subject: str, subject_key: Any, issuer: str, issuer_key: Any, ca: bool
) -> x509.Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA384())
    )
