"""TEE core rules: sessions, BUSY, keep-alive, PTA access, panics, heap."""

from __future__ import annotations

import pytest

from rproctee.tee import PTA_RPROC_UUID, TA_UUID, TeeClientError, TeeContext, TeeResult
from rproctee.tee.params import value_in
from rproctee.tee.ta_remoteproc import TaCommand

from .factory import default_elf, load, rsc, session, signed_image, world

R = TeeResult
IMAGE = signed_image([bytes(default_elf().raw)])


def test_second_session_is_busy_and_state_survives_close() -> None:
    w = world()
    s = session(w)
    with pytest.raises(TeeClientError) as err:
        session(w)
    assert err.value.result == R.TEE_ERROR_BUSY
    assert load(s, IMAGE).ok
    s.close()
    s2 = session(w)  # keep-alive: same instance, same contexts
    assert rsc(s2)[0].ok  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("params", "ptypes", "code"),
    [([value_in(7)], None, R.TEE_ERROR_NOT_SUPPORTED),
     ([], None, R.TEE_ERROR_BAD_PARAMETERS),
     ([value_in(0)], 0x0011, R.TEE_ERROR_BAD_PARAMETERS)],
)  # fmt: skip
def test_open_session_rejections(params: list, ptypes: int | None, code: R) -> None:  # type: ignore[type-arg]
    w = world()
    with pytest.raises(TeeClientError) as err:
        TeeContext(w.core).open_session(TA_UUID, params, ptypes=ptypes)
    assert err.value.result == code
    assert session(w)  # nothing left open


def test_pta_refuses_normal_world() -> None:
    with pytest.raises(TeeClientError) as err:
        TeeContext(world().core).open_session(PTA_RPROC_UUID, [value_in(0)])
    assert err.value.result == R.TEE_ERROR_ACCESS_DENIED


def test_unknown_processor_in_load_is_not_supported_and_creates_context() -> None:
    w = world()
    s = session(w)
    assert load(s, IMAGE, rproc_id=3).result == R.TEE_ERROR_NOT_SUPPORTED
    assert 3 in w.ta().contexts  # type: ignore[union-attr]
    start = s.invoke_command(TaCommand.START_FW, [value_in(3)])
    assert start.result == R.TEE_ERROR_BAD_STATE


@pytest.mark.parametrize("policy", ["optee", "strict"])
def test_w1_sign_len_wrap(policy: str) -> None:
    elf = bytes(default_elf().raw)
    img = signed_image([elf], sign_len=0xFFFFFFFF, signature=b"")
    # header check: 20 + r8(sign_len) (wraps to 0) + r8(img_len) + r8(tlv_len)
    w2 = world(policy)
    s2 = session(w2)
    ans = load(s2, img)
    if policy == "optee":
        assert ans.result == R.TEE_ERROR_TARGET_DEAD
        again = s2.invoke_command(TaCommand.START_FW, [value_in(0)])
        assert again.result == R.TEE_ERROR_TARGET_DEAD
        s2.close()
        fresh = session(w2)  # a new instance: the old state is gone
        assert fresh.invoke_command(TaCommand.START_FW, [value_in(0)]).result == (
            R.TEE_ERROR_BAD_PARAMETERS
        )
    else:
        assert ans.result == R.TEE_ERROR_BAD_PARAMETERS
        assert "wraps" in ans.reason
    assert w2.memory.writes == []


@pytest.mark.parametrize("policy", ["optee", "strict"])
def test_w1_tlv_len_wrap(policy: str) -> None:
    elf = bytes(default_elf().raw)
    img = signed_image([elf], tlv_len=0xFFFFFFFF, tlvs=[])
    ans = load(session(world(policy)), img)
    assert ans.result == R.TEE_ERROR_BAD_PARAMETERS
    assert ("SIGNTYPE" in ans.reason) == (policy == "optee")


def test_heap_out_of_memory_and_bigger_heap() -> None:
    segs = __import__("tests.tee.factory", fromlist=["Seg"])
    many = segs.make_elf(
        [segs.Seg(0x30000000 + 0x100 * i, bytes([i]) * 16) for i in range(40)],
        rsc_in=None,
    )
    img = signed_image([bytes(many.raw)])
    small = load(session(world()), img)
    assert small.result == R.TEE_ERROR_OUT_OF_MEMORY
    assert "heap" in small.reason
    assert load(session(world(heap_size=16384)), img).ok


def test_two_segment_image_peaks_near_900_bytes() -> None:
    w = world()
    assert load(session(w), IMAGE).ok
    assert 700 < w.ta().last_load.heap_peak < 1100  # type: ignore[union-attr]


def test_answer_carries_the_output_parameters() -> None:
    """GET_RSC_TABLE's outputs read from the answer, no value_out() needed."""
    from rproctee.tee.params import Value, value_in

    from .factory import default_elf, load, session, signed_image, world

    w = world("strict")
    s = session(w)
    assert load(s, signed_image([bytes(default_elf().raw)])).ok
    ans = s.invoke_command(
        TaCommand.GET_RSC_TABLE, [value_in(0)], ptypes=0x0221
    )
    assert ans.ok, ans
    addr, size = ans.outputs[1], ans.outputs[2]
    assert isinstance(addr, Value) and isinstance(size, Value)
    assert (addr.b << 32 | addr.a, size.a) == (w.memory.da_to_pa(0x80, 32), 32)
    assert ans.outputs[0] is None and ans.outputs[3] is None
    assert load(s, b"").outputs == ()  # no output slot, nothing carried
