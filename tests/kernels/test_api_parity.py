"""The native modules, their reference twins and the .pyi stubs agree on names
and parameter lists, so either backend can stand in for the other."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from rproctee import kernels

NATIVE_DIR = Path(kernels.__file__).parent / "_native"


def _public(mod):
    """Public functions defined in ``mod`` itself (not imported helpers)."""
    return {
        n
        for n, obj in vars(mod).items()
        if not n.startswith("_")
        and callable(obj)
        and not isinstance(obj, type)
        and getattr(obj, "__module__", None) == mod.__name__
    }


def _stub_functions(name):
    tree = ast.parse((NATIVE_DIR / f"{name}.pyi").read_text())
    return {
        node.name: [a.arg for a in node.args.args]
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


@pytest.mark.parametrize("name", kernels.KERNEL_MODULES)
def test_same_functions_and_signatures(both_backends, name):
    native, reference = both_backends[0][name], both_backends[1][name]
    stub = _stub_functions(name)
    assert _public(native) == _public(reference) == set(stub)
    for fn in stub:
        params_native = list(inspect.signature(getattr(native, fn)).parameters)
        params_ref = list(inspect.signature(getattr(reference, fn)).parameters)
        assert params_native == params_ref == stub[fn], fn


def test_backend_is_reported():
    assert kernels.BACKEND in ("native", "reference")
