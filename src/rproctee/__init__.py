"""rproctee: a model of secure remote-processor firmware loading.

The secure world (OP-TEE's remoteproc TA and platform PTA) lives in
``rproctee.tee``; device memories and platforms in ``rproctee.platform``; the
signed-image format in ``rproctee.image``; kernels behind ``rproctee.kernels``.

The one-call API is :func:`rproctee.load` (see :mod:`rproctee.api`).
``import rproctee`` stays light: numpy, cryptography and the kernels are
imported on first use of a name that needs them, so ``rproctee --help``
starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rproctee.errors import AddressError, ElfFormatError, FormatError, RprocError

if TYPE_CHECKING:
    from rproctee import kernels
    from rproctee.api import LoadResult, load, open_session, secure_world
    from rproctee.platform.board import PlatformSpec, load_platform

__version__ = "0.1.0"

#: Public names resolved on first access: name -> (module, attribute or None).
_LAZY: dict[str, tuple[str, str | None]] = {
    "kernels": ("rproctee.kernels", None),
    "load": ("rproctee.api", "load"),
    "open_session": ("rproctee.api", "open_session"),
    "secure_world": ("rproctee.api", "secure_world"),
    "LoadResult": ("rproctee.api", "LoadResult"),
    "load_platform": ("rproctee.platform.board", "load_platform"),
    "PlatformSpec": ("rproctee.platform.board", "PlatformSpec"),
}

__all__ = [
    "AddressError",
    "ElfFormatError",
    "FormatError",
    "LoadResult",
    "PlatformSpec",
    "RprocError",
    "__version__",
    "kernels",
    "load",
    "load_platform",
    "open_session",
    "secure_world",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562)."""
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'rproctee' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
