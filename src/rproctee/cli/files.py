"""Reading large inputs without copying them through Python ``bytes``."""

from __future__ import annotations

import mmap
from pathlib import Path


def map_file(path: Path) -> mmap.mmap | bytes:
    """Map ``path`` read-only (page cache, no copy); an empty file gives ``b""``.

    Raises
    ------
    OSError
        The file cannot be opened or mapped.
    """
    with open(path, "rb") as handle:
        if handle.seek(0, 2) == 0:
            return b""  # mmap refuses empty files
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
