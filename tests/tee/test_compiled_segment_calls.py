"""The compiled per-segment calls (``TeeCore.compiled_segment_calls``) answer
exactly as the Python calls: same result and reason, same write log, same
timings, same device memory, same resource table, same scrub, on every
crafted image of the security suite and on many-segment images with every
kind of stop (bad digest, no region, read-only region, zero-fill tail left
over, a running processor) in the middle.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from rproctee.cli.bench_cmds import build_bench_image
from rproctee.platform import RegionSpec
from rproctee.platform.board import PlatformSpec
from rproctee.tee import TA_UUID, TaCommand, TeeContext, build_secure_world, ta_load
from rproctee.tee.params import memref_in, value_in, value_out
from security.crafted import CASES
from security.oracles import new_world, run_load

POLICIES = ("optee", "strict")


def _state(w: Any, answer: Any) -> dict[str, Any]:
    ta = w.ta()
    report = ta.last_load if ta is not None else None
    return {
        "result": answer.result,
        "reason": answer.reason,
        "writes": list(w.memory.writes),
        "timed": [(t.op, t.da, t.len) for t in w.pta.timings],
        "memory": [
            hashlib.sha256(w.memory.array(i)).hexdigest()
            for i in range(len(w.memory.regions))
        ],  # fmt: skip
        "scrubbed": report.scrubbed if report is not None else None,
        "rsc": (ta.contexts[0].rsc_pa, ta.contexts[0].rsc_size)
        if ta is not None and 0 in ta.contexts
        else None,
    }


def _spy_lanes(w: Any) -> list[Any]:
    """Every lane the PTA hands out (to count the calls made through it)."""
    lanes: list[Any] = []
    make = w.pta.segment_lane

    def spy(rproc_id: int) -> Any:
        lane = make(rproc_id)
        lanes.append(lane)
        return lane

    w.pta.segment_lane = spy
    return lanes


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_crafted_case_same_with_and_without_compiled_calls(case, policy):
    got = []
    for compiled in (True, False):
        w = new_world(policy, case.platform, **case.world_kw)
        w.core.compiled_segment_calls = compiled
        w.core.batch_segments = False
        run = run_load(policy, case.image(), w=w, during=case.during)
        got.append(_state(w, run.answer))
    for key in got[0]:
        assert got[0][key] == got[1][key], key


SEGMENTS = 64
IMG = build_bench_image(SEGMENTS * 1024, SEGMENTS, seed=11)


def _flip(image: bytes, segment: int) -> bytes:
    out = bytearray(image)
    out[IMG.segments[segment][0] + 7] ^= 0x11
    return bytes(out)


def _load(image: bytes, policy: str, compiled: bool, platform: Any = None,
          running: bool = False) -> tuple[dict[str, Any], list[Any]]:  # fmt: skip
    w = build_secure_world(platform or IMG.platform, policy=policy, heap_size=65536)
    w.core.compiled_segment_calls = compiled
    w.core.batch_segments = False
    lanes = _spy_lanes(w)
    w.pta.running = running
    s = TeeContext(w.core).open_session(TA_UUID, [value_in(0)])
    answer = s.invoke_command(TaCommand.LOAD_FW, [value_in(0), memref_in(image)])
    state = _state(w, answer)
    if answer.ok:
        addr, size = value_out(), value_out()
        s.invoke_command(TaCommand.GET_RSC_TABLE, [value_in(0), addr, size])
        state["get_rsc"] = (addr.a, size.a)
    return state, lanes


def _compare(image: bytes, policy: str, **kw: Any) -> tuple[dict[str, Any], Any]:
    fast, lanes = _load(image, policy, True, **kw)
    slow, none = _load(image, policy, False, **kw)
    assert not none  # the Python calls made no lane
    for key in slow:
        assert fast[key] == slow[key], key
    return fast, lanes


@pytest.mark.parametrize("policy", POLICIES)
def test_good_image_every_segment_one_call_through_the_lane(policy):
    state, lanes = _compare(IMG.image, policy)
    assert state["result"] == 0
    assert len(lanes) == 1
    # one LOAD_SEGMENT_SHA256 per segment, all through the lane
    assert lanes[0].calls == SEGMENTS
    assert [w.op for w in state["writes"]] == ["copy"] * SEGMENTS


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("bad", [0, 1, 30, SEGMENTS - 1])
def test_bad_digest_mid_way_same_error_log_and_scrub(policy, bad):
    state, lanes = _compare(_flip(IMG.image, bad), policy)
    assert state["result"] != 0
    assert f"{IMG.segments[bad][1]:#x}" in state["reason"]
    if policy == "strict":
        assert state["scrubbed"] and state["writes"][-1].op == "scrub"


@pytest.mark.parametrize("policy", POLICIES)
def test_processor_running_same_answer(policy):
    state, _lanes = _compare(IMG.image, policy, running=True)
    assert state["result"] != 0


def _cut_platform(cut_at: int, access: str = "rwx") -> PlatformSpec:
    """The bench platform with its one region split where segment
    ``cut_at`` starts; the second part with ``access``."""
    region = IMG.platform.regions[0]
    da = IMG.segments[cut_at][1]
    first = RegionSpec("ram0", region.da, region.pa, da - region.da)
    second = RegionSpec("ram1", da, region.pa + (da - region.da),
                        region.size - (da - region.da), access)  # fmt: skip
    return PlatformSpec(
        "cut", (first, second), accept_ecdsa=False, processor_ids=(0,),
        default_key_pem=IMG.key_pem, source="test", notes=(),
    )  # fmt: skip


@pytest.mark.parametrize("policy", POLICIES)
def test_read_only_region_mid_way_same_answer(policy):
    state, _lanes = _compare(IMG.image, policy, platform=_cut_platform(40, "rx"))
    assert state["result"] != 0


@pytest.mark.parametrize("policy", POLICIES)
def test_two_regions_same_log(policy):
    state, lanes = _compare(IMG.image, policy, platform=_cut_platform(20))
    assert state["result"] == 0 and lanes[0].calls == SEGMENTS


# -- several worker threads, one run of records each --------------------------------
BIG = build_bench_image(8 * (80 << 10), 8, seed=12)  # 80 KiB a segment


def _load_big(
    image: bytes, compiled: bool, threads: int
) -> tuple[dict[str, Any], list[Any]]:
    w = build_secure_world(BIG.platform, policy="strict", heap_size=65536)
    w.core.compiled_segment_calls = compiled
    w.core.batch_segments = False
    w.core.threads = threads
    lanes = _spy_lanes(w)
    s = TeeContext(w.core).open_session(TA_UUID, [value_in(0)])
    answer = s.invoke_command(TaCommand.LOAD_FW, [value_in(0), memref_in(image)])
    return _state(w, answer), lanes


def _flip_big(segment: int) -> bytes:
    out = bytearray(BIG.image)
    out[BIG.segments[segment][0] + 99] ^= 0x42
    return bytes(out)


@pytest.mark.parametrize("bad", [None, 1, 3, 5, 7])
def test_parallel_runs_answer_as_one_thread(bad, monkeypatch):
    # a small image, so that it runs fast: workers even so
    monkeypatch.setattr(ta_load, "PARALLEL_MIN_TOTAL", 0)
    image = BIG.image if bad is None else _flip_big(bad)
    two, lanes = _load_big(image, True, 2)
    one, _ = _load_big(image, True, 1)
    slow, _ = _load_big(image, False, 1)
    for key in slow:
        assert two[key] == slow[key] == one[key], key
    assert len(lanes) == 2  # one lane a worker: the records ran in two runs
    if bad is None:
        assert two["result"] == 0
        assert sum(lane.calls for lane in lanes) == len(BIG.segments)
    else:
        assert two["scrubbed"] and two["writes"][-1].op == "scrub"
        assert f"{BIG.segments[bad][1]:#x}" in two["reason"]
