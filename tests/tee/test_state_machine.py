"""Every cell of the state-machine table (spec 2.4), both policies."""

from __future__ import annotations

import pytest

from rproctee.tee import RprocState, TeeResult
from rproctee.tee.params import memref_out, value_in, value_out
from rproctee.tee.ta_remoteproc import TaCommand

from .factory import default_elf, load, session, signed_image, world

R = TeeResult
OK = R.TEE_SUCCESS
IMAGE = signed_image([bytes(default_elf().raw)])


def _in_state(policy: str, state: RprocState):  # type: ignore[no-untyped-def]
    w = world(policy)
    s = session(w)
    if state >= RprocState.LOADED:
        assert load(s, IMAGE).ok
    if state == RprocState.STARTED:
        assert s.invoke_command(TaCommand.START_FW, [value_in(0)]).ok
    if state == RprocState.OFF:
        # a context exists once a LOAD_FW with the right types named the id
        assert load(s, b"\0" * 8).result == R.TEE_ERROR_BAD_PARAMETERS
    return w, s


def _send(s, cmd: TaCommand):  # type: ignore[no-untyped-def]
    if cmd == TaCommand.LOAD_FW:
        return load(s, b"garbage, never looked at when LOADED")
    if cmd == TaCommand.GET_RSC_TABLE:
        return s.invoke_command(cmd, [value_in(0), value_out(), value_out()])
    if cmd == TaCommand.GET_COREDUMP:
        return s.invoke_command(cmd, [value_in(0), memref_out(bytearray(1 << 21))])
    return s.invoke_command(cmd, [value_in(0)])


ST = RprocState
TABLE = {
    # command: (OFF, LOADED, STARTED) -> (result, state after)
    TaCommand.LOAD_FW: (
        (R.TEE_ERROR_BAD_PARAMETERS, ST.OFF), (OK, ST.LOADED),
        (R.TEE_ERROR_BAD_STATE, ST.STARTED)),
    TaCommand.START_FW: (
        (R.TEE_ERROR_BAD_STATE, ST.OFF), (OK, ST.STARTED), (OK, ST.STARTED)),
    TaCommand.STOP_FW: (
        (OK, ST.OFF), (R.TEE_ERROR_BAD_STATE, ST.LOADED), (OK, ST.OFF)),
    TaCommand.GET_RSC_TABLE: (
        (R.TEE_ERROR_BAD_STATE, ST.OFF), (OK, ST.LOADED), (OK, ST.STARTED)),
    TaCommand.RELEASE_FW: (
        (OK, ST.OFF), (OK, ST.OFF), (R.TEE_ERROR_BAD_STATE, ST.STARTED)),
}  # fmt: skip


@pytest.mark.parametrize("policy", ["optee", "strict"])
@pytest.mark.parametrize("state", list(RprocState))
@pytest.mark.parametrize("cmd", list(TABLE))
def test_cell(policy: str, state: RprocState, cmd: TaCommand) -> None:
    w, s = _in_state(policy, state)
    want, after = TABLE[cmd][state]
    assert _send(s, cmd).result == want
    ta = w.ta()
    assert ta is not None and ta.contexts[0].state == after


@pytest.mark.parametrize("state", list(RprocState))
def test_coredump_optee_not_implemented(state: RprocState) -> None:
    _w, s = _in_state("optee", state)
    assert _send(s, TaCommand.GET_COREDUMP).result == R.TEE_ERROR_NOT_IMPLEMENTED
    bogus = s.invoke_command(TaCommand.GET_COREDUMP, [], ptypes=0x7777)
    assert bogus.result == R.TEE_ERROR_NOT_IMPLEMENTED


@pytest.mark.parametrize("cmd", [c for c in TaCommand if c != TaCommand.LOAD_FW])
def test_no_context_is_bad_parameters(cmd: TaCommand) -> None:
    s = session(world("strict"))
    assert _send(s, cmd).result == R.TEE_ERROR_BAD_PARAMETERS


def test_rsc_table_after_stop_is_bad_state() -> None:
    _w, s = _in_state("optee", ST.STARTED)
    assert s.invoke_command(TaCommand.STOP_FW, [value_in(0)]).ok
    assert _send(s, TaCommand.GET_RSC_TABLE).result == R.TEE_ERROR_BAD_STATE
    assert s.invoke_command(TaCommand.START_FW, [value_in(0)]).result == (
        R.TEE_ERROR_BAD_STATE
    )


def test_release_wipes_every_region() -> None:
    w, s = _in_state("optee", ST.LOADED)
    n = len(w.memory.writes)
    assert s.invoke_command(TaCommand.RELEASE_FW, [value_in(0)]).ok
    wiped = w.memory.writes[n:]
    assert [x.op for x in wiped] == ["scrub"] * len(w.memory.regions)
    assert w.memory.read_da(0, 0x80) == bytes(0x80)


@pytest.mark.parametrize(
    ("cmd", "wrong"),
    [(TaCommand.LOAD_FW, 0x0001), (TaCommand.START_FW, 0x0051),
     (TaCommand.STOP_FW, 0x0011), (TaCommand.GET_RSC_TABLE, 0x0021),
     (TaCommand.RELEASE_FW, 0x0000), (0x42, 0x0001), (0, 0x0001)],
)  # fmt: skip
def test_wrong_param_types_and_unknown_commands(cmd: int, wrong: int) -> None:
    _w, s = _in_state("optee", ST.LOADED)
    ans = s.invoke_command(cmd, [value_in(0)], ptypes=wrong)
    assert ans.result == R.TEE_ERROR_BAD_PARAMETERS
