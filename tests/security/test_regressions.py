"""Replay the fuzzers' regression inputs, and smoke-test the fuzz harness.

Every file under ``tests/security/regressions/<target>/`` goes through the
fuzz target of that name (``fuzz/targets.py``): it must end with nothing but
the target's documented error. The harness's seed builder and each target
are also run on a few seeds, so a broken harness fails here, not in CI's
fuzzing step.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
REGRESSIONS = Path(__file__).resolve().parent / "regressions"


def _load(name: str) -> ModuleType:
    path = REPO / "fuzz" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"rproctee_fuzz_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


TARGETS = _load("targets").TARGETS
SEEDS = _load("seeds")
FILES = sorted(p for p in REGRESSIONS.rglob("*") if p.is_file()
               and p.parent != REGRESSIONS)  # fmt: skip


def test_regression_directories_name_targets() -> None:
    dirs = {p.name for p in REGRESSIONS.iterdir() if p.is_dir()}
    assert dirs <= set(TARGETS), dirs - set(TARGETS)


@pytest.mark.parametrize(
    "path", FILES, ids=[str(p.relative_to(REGRESSIONS)) for p in FILES]
)
def test_regression_input(path: Path) -> None:
    TARGETS[path.parent.name](path.read_bytes())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_targets_run_on_their_seeds(target: str) -> None:
    seeds = SEEDS.seeds(target)
    assert seeds, f"no seeds for {target}"
    for data in seeds[:: max(len(seeds) // 6, 1)]:
        TARGETS[target](data)
