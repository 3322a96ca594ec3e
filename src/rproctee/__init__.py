"""rproctee: a model of secure remote-processor firmware loading.

The secure world (OP-TEE's remoteproc TA and platform PTA) lives in
``rproctee.tee``; device memories and platforms in ``rproctee.platform``; the
signed-image format in ``rproctee.image``; kernels behind ``rproctee.kernels``.
"""

from rproctee import kernels
from rproctee.errors import AddressError, ElfFormatError, FormatError, RprocError

__version__ = "0.1.0"

__all__ = [
    "AddressError",
    "ElfFormatError",
    "FormatError",
    "RprocError",
    "__version__",
    "kernels",
]
