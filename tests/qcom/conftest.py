"""Fixtures of the rproctee.qcom tests: test signers, made once per session."""

from __future__ import annotations

import pytest

from rproctee.qcom import TestSigner, make_test_signer


@pytest.fixture(scope="session")
def signer() -> TestSigner:
    """A P-384 attestation key with a three-certificate chain."""
    return make_test_signer("p384")


@pytest.fixture(scope="session")
def rsa_signer() -> TestSigner:
    """An RSA-2048 attestation key with its chain."""
    return make_test_signer("rsa2048", name="rproctee rsa")


@pytest.fixture(scope="session")
def other_signer() -> TestSigner:
    """A signer whose root nobody trusts."""
    return make_test_signer("p384", name="intruder")
