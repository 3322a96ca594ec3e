"""Declares the Cython kernels; everything else lives in pyproject.toml.

Compiler directives live here and only here (never in .pyx headers, which
would override the debug switch).  RPROCTEE_CYTHON_DEBUG=1 rebuilds with
bounds, wraparound and initialisation checks and line tracing on.
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

KERNELS = ["segcopy", "streamhash", "regions", "elfscan", "fusedhash", "taloop"]

DEBUG = os.environ.get("RPROCTEE_CYTHON_DEBUG") == "1"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
    "binding": True,
    "freethreading_compatible": True,
}
if DEBUG:
    DIRECTIVES["linetrace"] = True

MACROS = [("CYTHON_TRACE_NOGIL", "1")] if DEBUG else []

extensions = [
    Extension(
        f"rproctee._native.{name}",
        [f"ext/{name}.pyx"],
        define_macros=MACROS,
        include_dirs=["ext"],
        depends=["ext/fusedsha_impl.h"] if name in ("fusedhash", "taloop") else [],
        extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3"],
    )
    for name in KERNELS
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["ext"],
        compiler_directives=DIRECTIVES,
        force=DEBUG or os.environ.get("CI") == "true",
    )
)
