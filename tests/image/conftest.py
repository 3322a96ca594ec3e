"""Shared fixtures for the signed-image tests: vectors, keys, crafted ELF files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from image_helpers import VECTORS, Seg, make_elf, vector_bytes

from rproctee.image import PrivateKey, generate_key, load_private_key


@pytest.fixture(scope="session")
def vectors() -> Path:
    """Folder of OP-TEE's reference vectors (``tests/data/vectors/optee``)."""
    return VECTORS


@pytest.fixture(scope="session")
def fw1(vectors: Path) -> bytes:
    """Cortex-M4 firmware with two PT_LOAD and a resource table (9256 bytes)."""
    return (vectors / "inputs" / "fw1.elf").read_bytes()


@pytest.fixture(scope="session")
def fw2(vectors: Path) -> bytes:
    """Firmware with PT_ARM_EXIDX then PT_LOAD, size 4 mod 8 (4684 bytes)."""
    return (vectors / "inputs" / "fw2.elf").read_bytes()


@pytest.fixture(scope="session")
def rsa2048_pem(vectors: Path) -> bytes:
    """The vectors' RSA-2048 private key (PKCS#8 or PKCS#1 PEM)."""
    return (vectors / "keys" / "rsa2048.pem").read_bytes()


@pytest.fixture(scope="session")
def ecp256_pem(vectors: Path) -> bytes:
    """The vectors' P-256 private key."""
    return (vectors / "keys" / "ecp256.pem").read_bytes()


_KEY_CACHE: dict[str, PrivateKey] = {}


def _make_key(kind: str) -> PrivateKey:
    if kind == "rsa2052":  # odd modulus size: signature of 257 bytes
        return rsa.generate_private_key(public_exponent=65537, key_size=2052)
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "rsa2048":
        return load_private_key(vector_bytes("keys/rsa2048.pem"))
    if kind == "p256-vector":
        return load_private_key(vector_bytes("keys/ecp256.pem"))
    return generate_key(kind)


@pytest.fixture(scope="session")
def key_of() -> Callable[[str], PrivateKey]:
    """Return a session-cached key by kind (RSA keys are generated only once)."""

    def get(kind: str) -> PrivateKey:
        if kind not in _KEY_CACHE:
            _KEY_CACHE[kind] = _make_key(kind)
        return _KEY_CACHE[kind]

    return get


@pytest.fixture
def simple_elf() -> bytes:
    """One PT_LOAD of 24 bytes plus a zero-fill tail; size a multiple of 4."""
    return make_elf([Seg(0x10000000, bytes(range(24)), memsz=0x100)])
