"""Suite-wide fixtures: kernel backends, hypothesis profiles, shared/ location."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from rproctee import kernels

REPO = Path(__file__).resolve().parents[1]
#: The project's reference material; CI lays it beside the clone.
SHARED = REPO.parent / "shared"

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
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
def shared_dir() -> Path:
    """The shared/ reference folder (vectors, device trees, keys)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared reference material not found at {SHARED}")
    return SHARED
