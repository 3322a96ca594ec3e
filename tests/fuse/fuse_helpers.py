"""Shared pieces of the FUSE tests: why FUSE is missing, the signed demo
firmware, and boards mounted in a background thread (always unmounted)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rproctee.fuse.boards import BoardOptions, Boards, build_boards
from rproctee.fuse.tree import SysfsTree

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
FIRMWARE = "rproc-m4-fw"


@functools.cache
def fuse_missing() -> str | None:
    """Why FUSE cannot be used here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist (no FUSE in this kernel/container)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not readable and writable by this user"
    if os.geteuid() != 0 and shutil.which("fusermount3") is None:
        return "not root and no fusermount3 (apt-get install fuse3)"
    from rproctee.fuse.server import FuseUnavailable, load_binding

    try:
        load_binding()
    except FuseUnavailable as exc:
        return str(exc)
    return None


@functools.cache
def signed() -> tuple[bytes, bytes, bytes]:
    """(signed image, its key's public PEM, the ELF inside), made once."""
    from rproctee.firmware import demo_firmware
    from rproctee.image import KeySigner, build_image, generate_key, public_key_pem

    key = generate_key("rsa2048")
    elf = demo_firmware(4)
    return build_image([elf], KeySigner(key)), public_key_pem(key), elf


@dataclass
class Served:
    """A live mount: where it is and the boards behind it."""

    root: Path
    boards: Boards

    def path(self, rel: str) -> Path:
        """``root / rel``."""
        return self.root / rel

    def sh(self, script: str, shell: str = "sh") -> subprocess.CompletedProcess[str]:
        """Run ``script`` with its working directory at the mount."""
        return subprocess.run(
            [shell, "-c", script], cwd=self.root, capture_output=True, text=True,
            timeout=30,
        )  # fmt: skip


def serve_boards(
    mountpoint: Path, firmware_dir: Path, **options: object
) -> Iterator[Served]:
    """Mount boards built from ``options`` for a ``with``/fixture body."""
    from rproctee.fuse.server import mounted

    opts = BoardOptions(firmware_path=firmware_dir, **options)  # type: ignore[arg-type]
    boards = build_boards(opts, firmware_dir, key_pem=signed()[1])
    mountpoint.mkdir(exist_ok=True)
    try:
        with mounted(SysfsTree(boards.instances), mountpoint):
            yield Served(mountpoint, boards)
    finally:
        boards.shutdown()
