"""Suite-wide fixtures: kernel backends, hypothesis profiles, test data."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from rproctee import kernels

REPO = Path(__file__).resolve().parents[1]
#: Reference material the tests need (OP-TEE vectors, the DK2 device tree,
#: OP-TEE's public development keys), kept in the repository.
TEST_DATA = REPO / "tests" / "data"

# "ci": the same examples on every run (a submission's verdict must not depend
# on the draw); exploration is for "deep" (RPROCTEE_SLOW_TESTS=1) and fuzz/.
settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
settings.register_profile("deep", max_examples=2000, deadline=None)
settings.load_profile("deep" if os.environ.get("RPROCTEE_SLOW_TESTS") else "ci")


BACKENDS = kernels.available_backends()


@pytest.fixture(scope="session", params=["native", "reference"])
def backend(request: pytest.FixtureRequest) -> dict[str, ModuleType]:
    """Every kernel module of one backend (native skipped when not built)."""
    if request.param not in BACKENDS:
        pytest.skip("native kernels are not built")
    return kernels.load_backend(request.param)


@pytest.fixture(scope="session")
def both_backends() -> tuple[dict[str, ModuleType], dict[str, ModuleType]]:
    """(native, reference) kernel modules, for parity tests."""
    if "native" not in BACKENDS:
        pytest.skip("native kernels are not built")
    return kernels.load_backend("native"), kernels.load_backend("reference")


@pytest.fixture(scope="session")
def test_data() -> Path:
    """``tests/data``: OP-TEE vectors (``vectors/optee``), ``dts/``, ``keys/``."""
    return TEST_DATA
