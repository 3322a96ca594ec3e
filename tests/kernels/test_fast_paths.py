"""The fast paths answer exactly as the plain ones: parallel segments
(``TeeCore.threads``), the batched PTA call, prefaulted or lazy memory.

Same answer (result and reason), same write log in the same order, same
device-memory bytes, same digests checked, same first error and the same
scrub: only the time may differ.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from rproctee.cli.bench_cmds import build_bench_image
from rproctee.platform.memory import DeviceMemory
from rproctee.tee import TA_UUID, TaCommand, TeeContext, build_secure_world, ta_load
from rproctee.tee.params import memref_in, value_in, value_out
from rproctee.tee.pta_stm32mp import PtaCommand
from rproctee.tee.results import TeeResult
from rproctee.tee.ta_load import load_profile

IMG = build_bench_image(96 * 1024 + 52, 6, seed=3)


@pytest.fixture(autouse=True)
def _workers_even_for_small_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """The image is small so that the suite runs fast; the worker threads
    it would not get in real use are what these tests are about."""
    monkeypatch.setattr(ta_load, "PARALLEL_MIN_TOTAL", 0)


def _flip(image: bytes, segment: int, at: int = 100) -> bytes:
    """The image with one byte of a segment changed (not re-signed)."""
    off = IMG.segments[segment][0] + at
    out = bytearray(image)
    out[off] ^= 0x5A
    return bytes(out)


def _load(
    image: bytes,
    threads: int,
    policy: str = "strict",
    prefault: str | None = None,
    hook: Any = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> dict[str, Any]:
    if prefault is not None and monkeypatch is not None:
        monkeypatch.setenv("RPROCTEE_PREFAULT", prefault)
    w = build_secure_world(IMG.platform, policy=policy)
    w.core.threads = max(threads, 1)
    w.core.batch_segments = threads > 0
    # the per-segment calls counted here are the Python ones; the compiled
    # calls answer as they do (tests/tee/test_compiled_segment_calls.py)
    w.core.compiled_segment_calls = False
    w.on_phase = hook
    seen: list[int] = []
    inner = w.pta.invoke_command

    def spy(session: object, cmd: int, ptypes: int, params: list[Any]) -> None:
        seen.append(cmd)
        inner(session, cmd, ptypes, params)

    w.pta.invoke_command = spy  # type: ignore[method-assign]
    s = TeeContext(w.core).open_session(TA_UUID, [value_in(0)])
    ans = s.invoke_command(TaCommand.LOAD_FW, [value_in(0), memref_in(image)])
    addr, size = value_out(), value_out()
    rsc = s.invoke_command(TaCommand.GET_RSC_TABLE, [value_in(0), addr, size])
    ta = w.ta()
    assert ta is not None and ta.last_load is not None
    return {
        "result": ans.result,
        "reason": ans.reason,
        "writes": list(w.memory.writes),
        "memory": [hashlib.sha256(w.memory.array(i)).hexdigest()
                   for i in range(len(w.memory.regions))],
        "checked": [(t.op, t.da, t.len) for t in w.pta.timings],
        "rsc": (rsc.result, addr.a, size.a),
        "scrubbed": ta.last_load.scrubbed,
        "batched": PtaCommand.LOAD_SEGMENTS_SHA256 in seen,
        "per_segment": seen.count(PtaCommand.LOAD_SEGMENT_SHA256),
        "first_touch": list(w.memory.first_touch),
        "profile": load_profile(ta.last_load, w.pta.timings, w.memory.first_touch),
    }  # fmt: skip


SAME = ("result", "reason", "writes", "memory", "checked", "rsc", "scrubbed")


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    for k in SAME:
        assert a[k] == b[k], k


# threads: 0 = one PTA call per segment; 1, 2 = one batched call, 1 or 2
# worker threads (each hashing two segments at a time)
def test_good_image_batched_and_parallel_equal_per_segment_calls():
    one, two = _load(IMG.image, 0), _load(IMG.image, 2)
    assert one["result"] == 0 and one["rsc"][2] > 0
    assert not one["batched"] and one["per_segment"] == 6
    assert two["batched"] and two["per_segment"] == 0
    _same(one, two)
    _same(one, _load(IMG.image, 1))
    # the copies landed in plan order in the log, as the loop writes them
    das = [w.da for w in two["writes"] if w.op == "copy"]
    assert das == [da for _o, da, _n, _d in IMG.segments]


@pytest.mark.parametrize("bad", [[1], [4], [2, 5], [5]])
def test_bad_segment_same_first_error_log_and_scrub(bad):
    image = IMG.image
    for k in bad:
        image = _flip(image, k)
    one, two = _load(image, 0), _load(image, 2)
    assert two["batched"]
    _same(one, _load(image, 1))
    assert one["result"] != 0 and one["scrubbed"]
    assert f"da {IMG.segments[bad[0]][1]:#x}" in one["reason"]
    _same(one, two)
    assert two["writes"][-1].op == "scrub"


def test_optee_policy_stays_per_segment():
    """Upstream loads as it goes and keeps a failed load's bytes: its
    segments go one PTA call each whatever the thread count."""
    one, two = (
        _load(_flip(IMG.image, 3), 1, "optee"),
        _load(_flip(IMG.image, 3), 2, "optee"),
    )
    assert not two["batched"]
    _same(one, two)


def test_watching_hook_keeps_the_per_segment_calls():
    """A hook may change the buffer between two copies: no batching then."""
    phases: list[list[str]] = [[], []]
    for k, threads in enumerate((0, 2)):
        got = _load(IMG.image, threads, hook=lambda n, i, k=k: phases[k].append(n))
        assert not got["batched"]
    assert phases[0] == phases[1]
    assert phases[0].count("segment_copy_before") == 6


@pytest.mark.parametrize("mode", ["lazy", "touch", "populate", "auto"])
def test_prefault_modes_change_nothing_but_time(mode, monkeypatch):
    base = _load(IMG.image, 0)
    got = _load(IMG.image, 2, prefault=mode, monkeypatch=monkeypatch)
    _same(base, got)
    how = {t.how for t in got["first_touch"]}
    if mode == "lazy":
        assert how == {"lazy"}  # taken during the load, timed apart
        assert any(r["what"] == "first touch" for r in got["profile"])
    else:
        assert how <= {"populate", "touch"} and how


def test_unknown_prefault_mode_names_the_value():
    with pytest.raises(ValueError, match="prefault = 'eager'"):
        DeviceMemory(IMG.platform.regions, prefault="eager")


def test_profile_has_every_cost():
    got = _load(IMG.image, 0)
    rows = {r["what"]: r for r in got["profile"]}
    for what in ("header copy", "signature check", "ELF parse and checks",
                 "region checks", "resource table", "copy+hash"):  # fmt: skip
        assert what in rows, what
    assert rows["copy+hash"]["bytes"] == sum(n for _o, _d, n, _x in IMG.segments)


def test_region_refusal_same_error_with_the_one_pass_check():
    """The plan checks every range in one PTA call; the range it refuses is
    asked again alone, so the error is the range-by-range check's."""
    import dataclasses

    from rproctee.platform import RegionSpec

    region = IMG.platform.regions[0]
    short = RegionSpec(region.name, region.da, region.pa, region.size - 0x2000)
    platform = dataclasses.replace(IMG.platform, regions=(short,))
    answers = []
    for fast in (True, False):
        w = build_secure_world(platform, policy="strict")
        if not fast:  # the platform no longer offers the one-pass check
            table = w.pta._build_handlers()
            table.pop(PtaCommand.RANGES_WRITABLE)
            w.pta._handler_cache = (w.policy, table)
        s = TeeContext(w.core).open_session(TA_UUID, [value_in(0)])
        ans = s.invoke_command(TaCommand.LOAD_FW, [value_in(0), memref_in(IMG.image)])
        answers.append((ans.result, ans.reason, list(w.memory.writes)))
    assert answers[0] == answers[1]
    assert answers[0][0] == TeeResult.TEE_ERROR_ACCESS_DENIED
    last = IMG.segments[-1]
    assert answers[0][1].startswith(f"segment da {last[1]:#x} (+{last[2]:#x})")
    assert answers[0][2] == []  # refused in the plan
