"""PTA MEMORY_EQUALS (strict platforms' model extension): does device memory
at a device address hold exactly the given bytes."""

from __future__ import annotations

import pytest

from rproctee.tee import TeeResult
from rproctee.tee.params import Memref, ParamType, Value, param_types
from rproctee.tee.pta_stm32mp import PtaCommand
from rproctee.tee.results import TeeError
from tee.factory import world

VI, VO, MI = ParamType.VALUE_INPUT, ParamType.VALUE_OUTPUT, ParamType.MEMREF_INPUT
TYPES = param_types(VI, VI, MI, VO)
DA = 0x10000000  # dk2 RETRAM/MCUSRAM: see tests/tee/factory.DK2


def _ask(w, da, expected, ptypes=TYPES, rproc_id=0):
    out = Value(kind=VO)
    params = [Value(rproc_id), Value(da & 0xFFFFFFFF, da >> 32),
              Memref(expected, kind=MI), out]  # fmt: skip
    w.pta.invoke_command(None, PtaCommand.MEMORY_EQUALS, ptypes, params)
    return out.a


def test_equal_and_different_bytes():
    w = world("strict")
    w.memory.view_da(DA, 4)[:] = [1, 2, 3, 4]
    assert _ask(w, DA, b"\x01\x02\x03\x04") == 1
    assert _ask(w, DA, b"\x01\x02\x03\x05") == 0
    assert w.memory.writes == []  # a question, never a write


def test_outside_every_region_is_access_denied():
    w = world("strict")
    with pytest.raises(TeeError) as err:
        _ask(w, 0xF0000000, b"\x00" * 16)
    assert err.value.result == TeeResult.TEE_ERROR_ACCESS_DENIED


def test_wrong_types_and_unknown_processor_are_bad_parameters():
    w = world("strict")
    for kw in ({"ptypes": param_types(VI, VI, MI)}, {"rproc_id": 7}):
        with pytest.raises(TeeError) as err:
            _ask(w, DA, b"\x00", **kw)
        assert err.value.result == TeeResult.TEE_ERROR_BAD_PARAMETERS


def test_not_on_an_upstream_platform():
    with pytest.raises(TeeError) as err:
        _ask(world("optee"), DA, b"\x00")
    assert err.value.result == TeeResult.TEE_ERROR_NOT_IMPLEMENTED
