"""The one import point for kernels: native (Cython) or pure-Python reference.

``RPROCTEE_PURE_PYTHON=1`` selects the reference twins.  Otherwise the
compiled extensions are required: a missing extension is an error, never a
silent fallback, because a broken build would otherwise hide behind a 10x
slower path.  ``BACKEND`` says which path is in use.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

KERNEL_MODULES = (
    "segcopy",
    "streamhash",
    "regions",
    "elfscan",
    "fusedhash",
    "taloop",
)


def _wants_reference() -> bool:
    return os.environ.get("RPROCTEE_PURE_PYTHON", "") not in ("", "0")


def load_backend(name: str) -> dict[str, ModuleType]:
    """Import every kernel module of backend ``name`` ("native" or "reference").

    Raises
    ------
    ImportError
        The native extensions are not built (install the package, or set
        ``RPROCTEE_PURE_PYTHON=1`` to use the reference kernels on purpose).
    """
    package = "_native" if name == "native" else "_reference"
    try:
        return {
            m: importlib.import_module(f"rproctee.{package}.{m}")
            for m in KERNEL_MODULES
        }
    except ImportError as exc:
        if name != "native":
            raise
        raise ImportError(
            "rproctee's compiled kernels are missing (rebuild with "
            "`pip install .`), or set RPROCTEE_PURE_PYTHON=1 to use the "
            f"pure-Python reference kernels: {exc}"
        ) from exc


def available_backends() -> list[str]:
    """The backends that import here: ``["native", "reference"]``, or just
    ``["reference"]`` when the extensions are not built."""
    try:
        load_backend("native")
    except ImportError:
        return ["reference"]
    return ["native", "reference"]


BACKEND = "reference" if _wants_reference() else "native"
_mods = load_backend(BACKEND)

copy_segment = _mods["segcopy"].copy_segment
zero_fill = _mods["segcopy"].zero_fill
load_segment = _mods["segcopy"].load_segment
copy_and_hash = _mods["streamhash"].copy_and_hash
sha256_chunked = _mods["streamhash"].sha256_chunked
sha256_staged = _mods["streamhash"].sha256_staged
copy_and_hash_fused = _mods["fusedhash"].copy_and_hash_fused
copy_and_hash_many = _mods["fusedhash"].copy_and_hash_many
fused_impls = _mods["fusedhash"].fused_impls
touch_pages = _mods["fusedhash"].touch_pages
#: The fused kernel's instruction set here ("x86-sha", "arm-sha2", "chunked").
FUSED_IMPL: str = _mods["fusedhash"].FUSED_IMPL
DEFAULT_CHUNK: int = _mods["streamhash"].DEFAULT_CHUNK
locate = _mods["regions"].locate
locate_intervals = _mods["regions"].locate_intervals
find_overlap = _mods["regions"].find_overlap
first_unwritable = _mods["regions"].first_unwritable
segment_ranges = _mods["regions"].segment_ranges
LOC_OUTSIDE: int = _mods["regions"].LOC_OUTSIDE
LOC_STRADDLE: int = _mods["regions"].LOC_STRADDLE
LOC_ZERO_SIZE: int = _mods["regions"].LOC_ZERO_SIZE
scan_headers = _mods["elfscan"].scan_headers
#: The TA's per-segment loop and the PTA's segment commands (``taloop``).
PtaLane = _mods["taloop"].PtaLane
optee_segment_loop = _mods["taloop"].optee_segment_loop
planned_segment_loop = _mods["taloop"].planned_segment_loop
STAGE_SEGMENT: int = _mods["taloop"].STAGE_SEGMENT
STAGE_FILL: int = _mods["taloop"].STAGE_FILL
STAGE_DONE: int = _mods["taloop"].STAGE_DONE

__all__ = [
    "BACKEND",
    "available_backends",
    "DEFAULT_CHUNK",
    "LOC_OUTSIDE",
    "LOC_STRADDLE",
    "LOC_ZERO_SIZE",
    "FUSED_IMPL",
    "copy_and_hash",
    "copy_and_hash_fused",
    "copy_and_hash_many",
    "copy_segment",
    "find_overlap",
    "first_unwritable",
    "fused_impls",
    "load_backend",
    "load_segment",
    "optee_segment_loop",
    "planned_segment_loop",
    "PtaLane",
    "STAGE_DONE",
    "STAGE_FILL",
    "STAGE_SEGMENT",
    "locate",
    "locate_intervals",
    "scan_headers",
    "segment_ranges",
    "sha256_chunked",
    "sha256_staged",
    "touch_pages",
    "zero_fill",
]
