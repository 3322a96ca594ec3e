"""Fixtures for the FUSE tests: a signed demo firmware directory and boards
mounted at a temporary directory (unmounted whatever happens).

Tests that mount (through ``fuse_ok``) need ``/dev/fuse``, libfuse 3 and
``mfusepy``; they are skipped with the reason when one is missing (CI
installs ``fuse3``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuse_helpers import FIRMWARE, Served, fuse_missing, serve_boards, signed


@pytest.fixture
def fuse_ok() -> None:
    """Skip, saying why, where FUSE cannot be mounted."""
    reason = fuse_missing()
    if reason is not None:
        pytest.skip(f"FUSE unavailable: {reason}")


@pytest.fixture
def namespace_ok(fuse_ok: None) -> None:
    """Skip, saying why, where ``rproctee sysfs run`` cannot make its mount
    namespace (the tests drive it as root; user namespaces are not tried)."""
    from rproctee.fuse.session import NamespaceUnavailable, unshare_flags

    if os.geteuid() != 0:
        pytest.skip("'rproctee sysfs run' is tested as root only")
    try:
        unshare_flags()
    except NamespaceUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def firmware_dir(tmp_path: Path) -> Path:
    """A ``/lib/firmware`` with the signed demo firmware as ``rproc-m4-fw``."""
    root = tmp_path / "firmware"
    root.mkdir()
    (root / FIRMWARE).write_bytes(signed()[0])
    return root


@pytest.fixture
def demo_elf() -> bytes:
    """The ELF inside the signed demo image."""
    return signed()[2]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """The public key the demo image verifies with, as a PEM file."""
    path = tmp_path / "key.pub"
    path.write_bytes(signed()[1])
    return path


@pytest.fixture
def served(tmp_path: Path, firmware_dir: Path, fuse_ok: None) -> Iterator[Served]:
    """One TEE-backed board (v22, strict) mounted at ``tmp_path/mnt``."""
    yield from serve_boards(tmp_path / "mnt", firmware_dir)


@pytest.fixture
def served_two(tmp_path: Path, firmware_dir: Path, fuse_ok: None) -> Iterator[Served]:
    """Two boards (``remoteproc0``, ``remoteproc1``) mounted at ``tmp_path/mnt``."""
    yield from serve_boards(tmp_path / "mnt", firmware_dir, instances=2)
