"""Shared helpers of the command-line tests: run ``rproctee``, find test data."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner, Result

from rproctee.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
VECTORS = DATA / "vectors" / "optee"
KEYS = VECTORS / "keys"
DEV_KEY_4096 = DATA / "keys" / "optee_default_rsa4096_pub.pem"


def run(*args: str | Path) -> Result:
    """Run ``rproctee ARGS`` through the real top-level group."""
    return CliRunner().invoke(main, [str(a) for a in args])


def copy_vectors(dest: Path) -> Path:
    """Copy the OP-TEE vector inputs, keys and signed images into ``dest``."""
    for sub in ("inputs", "keys", "signed"):
        for src in (VECTORS / sub).iterdir():
            shutil.copyfile(src, dest / src.name)
    return dest
