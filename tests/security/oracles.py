"""The invariants of issue 7, checked after every LOAD_FW of the suite.

One call, :func:`check_run`, holds a LOAD_FW to all of them:

1. nothing but a TEE answer crosses the client API (an exception fails the
   test with the exception named), and the answer is one LOAD_FW can give;
2. every write lies inside one writable region, and every byte outside the
   written ranges is what it was before the call (read-only regions are
   filled with a pattern first, so "unchanged" is not "still zero");
3. ``strict``: nothing is written before the plan passed, everything a
   failed load wrote is scrubbed, and an accepted load leaves exactly the
   signed bytes (file bytes, then zeros up to ``p_memsz``) and nothing else;
4. after a rejection START_FW and GET_RSC_TABLE answer BAD_STATE, a valid
   LOAD_FW then succeeds on the same session, and RELEASE_FW wipes it;
5. the call takes bounded CPU time and bounded memory (``tracemalloc``
   peak).

The building blocks (write masks, hash-table reader, where a TA may die)
come from :mod:`tee.fuzz_helpers`; this module adds the read-only-region
awareness, the phase check and the bounds.
"""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from rproctee.platform.memory import RegionSpec
from rproctee.tee import TeeResult, TeeSession
from rproctee.tee.core import Answer
from rproctee.tee.params import value_in
from rproctee.tee.ta_remoteproc import LoadReport, TaCommand
from rproctee.tee.world import SecureWorld
from tee.factory import load, rsc, session, world
from tee.fuzz_helpers import LOAD_CODES, hash_entries, panic_allowed, written_masks

from .images import GOOD, PLATFORMS

R = TeeResult
#: (phase name, which call of it, change to the caller's buffer)
During = tuple[
    str, Callable[[dict[str, Any]], bool], Callable[[bytearray], None]
]
PT_LOAD = 1
#: Generous correctness bounds for one LOAD_FW of a small image (the point
#: is "answers without blowing up", not a benchmark).
TIME_BOUND_S = 2.0
MEMORY_BOUND = 64 << 20
#: What a read-only region holds before the load (a ROM's content).
ROM_PATTERN = 0xA5
#: Phases of :class:`LoadReport` that run before the strict plan has passed.
BEFORE_WRITES = frozenset({"capabilities", "header", "signature", "plan"})


@dataclass
class Run:
    """One LOAD_FW and everything needed to judge it."""

    policy: str
    image: bytes
    world: SecureWorld
    session: TeeSession
    answer: Answer
    report: LoadReport | None
    before: list[np.ndarray]
    seconds: float
    peak: int
    notes: list[str] = field(default_factory=list)


def new_world(policy: str, platform: str = "dk2", **kw: object) -> SecureWorld:
    """A secure world on one of :data:`images.PLATFORMS`, ROMs filled."""
    w = world(policy, PLATFORMS[platform], **kw)
    for i, region in enumerate(w.memory.regions):
        if "w" not in region.access:
            w.memory.array(i)[:] = ROM_PATTERN
    return w


def writable(region: RegionSpec) -> bool:
    return "w" in region.access


def call_load(
    s: TeeSession, image: bytes | bytearray, rproc_id: int = 0
) -> Answer:
    """LOAD_FW; an exception crossing the client API fails the test (inv. 1)."""
    try:
        return load(s, image, rproc_id)  # type: ignore[no-any-return]
    except Exception as exc:  # noqa: BLE001 - that is the finding
        pytest.fail(f"LOAD_FW raised {type(exc).__name__}: {exc} (invariant 1)")


def measured(fn: Callable[[], Answer]) -> tuple[Answer, float, int]:
    """``fn()`` with its CPU time and tracemalloc peak (bytes).

    CPU time of this process, not wall time: the bound is about the work an
    input can cause, and a 2-core machine shared with other jobs stretches
    wall time by several times.
    """
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.process_time()
    try:
        answer = fn()
    finally:
        seconds = time.process_time() - t0
        peak = tracemalloc.get_traced_memory()[1] - base
        if not tracing:
            tracemalloc.stop()
    return answer, seconds, peak


def run_load(
    policy: str,
    image: bytes | bytearray,
    *,
    platform: str = "dk2",
    w: SecureWorld | None = None,
    during: During | None = None,
    **world_kw: object,
) -> Run:
    """LOAD_FW ``image`` on a fresh world (or ``w``), measured.

    ``during`` = (phase, which call, change): the change is made to the
    caller's buffer once, at the first call of that phase it selects, through
    the TA's ``on_phase`` hook (a normal-world thread racing the TA).
    """
    w = w if w is not None else new_world(policy, platform, **world_kw)
    s = session(w)
    ta = w.ta()
    before = [w.memory.array(i).copy() for i in range(len(w.memory.regions))]
    buf = bytearray(image)
    if during is not None:
        w.on_phase = change_once(buf, *during)
    answer, seconds, peak = measured(lambda: call_load(s, buf))
    report = ta.last_load if ta is not None else None
    return Run(policy, bytes(image), w, s, answer, report, before, seconds, peak)


# -- the invariants ----------------------------------------------------------------


def change_once(
    buf: bytearray,
    phase: str,
    which: Callable[[dict[str, Any]], bool],
    change: Callable[[bytearray], None],
) -> Callable[[str, dict[str, Any]], None]:
    """An ``on_phase`` hook applying ``change`` to ``buf`` once."""
    done = [False]

    def hook(name: str, info: dict[str, Any]) -> None:
        if not done[0] and name == phase and which(info):
            done[0] = True
            change(buf)

    return hook


def check_answer(run: Run, *, dead_ok: bool = False) -> None:
    """Invariant 1: a LOAD_FW code, a reason for a failure, deaths only where
    the spec has the real TA die (optee's W1 and W6 paths) or the test made
    the TA fault (``dead_ok``)."""
    ans = run.answer
    assert isinstance(ans.result, TeeResult), ans
    assert ans.result in LOAD_CODES, ans
    if not ans.ok:
        assert ans.reason, ans
    if ans.result == R.TEE_ERROR_TARGET_DEAD and not dead_ok:
        assert panic_allowed(run.policy, run.image), (ans.reason, ans)


def check_writes_bounded(run: Run) -> None:
    """Invariant 2: writes inside one writable region; other bytes unchanged."""
    mem = run.world.memory
    for rec in mem.writes:
        index = mem.locate_da(rec.da, rec.len)  # raises if outside every region
        assert writable(mem.regions[index]), f"write {rec} in a read-only region"
        assert rec.len > 0, rec
    for index, mask in enumerate(written_masks(run.world)):
        now, was = mem.array(index), run.before[index]
        assert np.array_equal(now[~mask], was[~mask]), (
            f"region {mem.regions[index].name}: bytes changed outside every write"
        )


def failing_phase(report: LoadReport | None) -> str | None:
    """The phase a failed load stopped in (the last one timed)."""
    if report is None or not report.phases:
        return None
    return report.phases[-1][0]


def check_strict_failure(run: Run) -> None:
    """Invariant 3, failure half: no write before the plan passed; what was
    written is zero again (the memory was zero before)."""
    mem = run.world.memory
    if failing_phase(run.report) in BEFORE_WRITES:
        assert mem.writes == [], f"strict wrote before its plan passed: {mem.writes}"
    for index, region in enumerate(mem.regions):
        if writable(region):
            assert not mem.array(index).any(), (
                f"region {region.name}: a failed strict load left bytes behind"
            )
    if any(w.op != "scrub" for w in mem.writes):
        assert run.report is not None and run.report.scrubbed, run.report


def signed_content_masks(w: SecureWorld, image: bytes) -> list[np.ndarray]:
    """Per region, the bytes the signed PT_LOAD entries of ``image`` cover,
    after checking that they hold exactly the signed content."""
    masks = [np.zeros(r.size, dtype=bool) for r in w.memory.regions]
    for words, digest in hash_entries(image):
        if words[0] != PT_LOAD:
            continue
        paddr, filesz, memsz = words[3], words[4], words[5]
        if filesz:
            got = w.memory.read_da(paddr, filesz)
            assert hashlib.sha256(got).digest() == digest, f"segment {paddr:#x}"
        if memsz > filesz:
            tail = w.memory.read_da(paddr + filesz, memsz - filesz)
            assert tail == bytes(memsz - filesz), f"zero-fill of {paddr:#x}"
        # file part and zero-fill may lie in two adjacent regions (5.4)
        for da, n in ((paddr, filesz), (paddr + filesz, memsz - filesz)):
            if n > 0:
                index = w.memory.locate_da(da, n)
                off = da - w.memory.regions[index].da
                masks[index][off : off + n] = True
    return masks


def check_exact_content(w: SecureWorld, image: bytes) -> None:
    """Invariant 3, success half: the signed bytes, zeros elsewhere (ROMs as
    they were)."""
    masks = signed_content_masks(w, image)
    for index, region in enumerate(w.memory.regions):
        stray = w.memory.array(index)[~masks[index]]
        if writable(region):
            assert not stray.any(), f"region {region.name}: stray bytes"
        else:
            assert (stray == ROM_PATTERN).all(), f"ROM {region.name} changed"


def check_rsc_loaded(w: SecureWorld, s: TeeSession, image: bytes) -> None:
    """Strict success: the reported table lies in a signed file part."""
    ans, pa, size = rsc(s)
    assert ans.ok, ans  # type: ignore[attr-defined]
    if not size:
        return
    da = w.memory.pa_to_da(pa, size)
    for words, _digest in hash_entries(image):
        paddr, filesz = words[3], words[4]
        if words[0] == PT_LOAD and paddr <= da and da + size <= paddr + filesz:
            return
    raise AssertionError(f"resource table da {da:#x}+{size:#x} not in a segment")


def check_no_executable_state(s: TeeSession) -> None:
    """Invariant 4, first half: nothing to start, no table to hand out."""
    assert rsc(s)[0].result == R.TEE_ERROR_BAD_STATE  # type: ignore[attr-defined]
    start = s.invoke_command(TaCommand.START_FW, [value_in(0)])
    assert start.result == R.TEE_ERROR_BAD_STATE, start


def check_recovers(run: Run) -> None:
    """Invariant 4, second half: a valid LOAD_FW succeeds (on a new session
    if the TA died), exact under strict; RELEASE_FW then wipes it."""
    w, s = run.world, run.session
    if run.answer.result == R.TEE_ERROR_TARGET_DEAD:
        dead = s.invoke_command(TaCommand.START_FW, [value_in(0)])
        assert dead.result == R.TEE_ERROR_TARGET_DEAD, dead
        s.close()
        s = session(w)
    again = call_load(s, GOOD)
    assert again.ok, again
    if run.policy == "strict":
        check_exact_content(w, GOOD)
    release = s.invoke_command(TaCommand.RELEASE_FW, [value_in(0)])
    assert release.ok, release
    check_released(w)


def check_released(w: SecureWorld) -> None:
    """After RELEASE_FW: writable regions zero, ROMs as they were."""
    for index, region in enumerate(w.memory.regions):
        arr = w.memory.array(index)
        if writable(region):
            assert not arr.any(), f"region {region.name} not wiped by RELEASE_FW"
        else:
            assert (arr == ROM_PATTERN).all(), f"ROM {region.name} changed"


def check_bounds(run: Run, seconds: float = TIME_BOUND_S,
                 memory: int = MEMORY_BOUND) -> None:  # fmt: skip
    """Invariant 5: bounded time and memory for this one call."""
    assert run.seconds < seconds, f"LOAD_FW took {run.seconds:.2f} s of CPU"
    assert run.peak < memory, f"LOAD_FW peaked at {run.peak / 2**20:.1f} MiB"


def check_run(
    run: Run,
    *,
    recover: bool = True,
    seconds: float = TIME_BOUND_S,
    dead_ok: bool = False,
) -> Run:
    """Every invariant on one LOAD_FW (see the module docstring)."""
    check_answer(run, dead_ok=dead_ok)
    check_writes_bounded(run)
    check_bounds(run, seconds)
    if run.answer.ok:
        if run.policy == "strict":
            check_exact_content(run.world, run.image)
            check_rsc_loaded(run.world, run.session, run.image)
        release = run.session.invoke_command(TaCommand.RELEASE_FW, [value_in(0)])
        assert release.ok, release
        check_released(run.world)
        return run
    if run.policy == "strict":
        check_strict_failure(run)
    if run.answer.result != R.TEE_ERROR_TARGET_DEAD:
        check_no_executable_state(run.session)
    if recover:
        check_recovers(run)
    return run


def load_and_check(
    policy: str, image: bytes | bytearray, **kw: object
) -> Run:
    """:func:`run_load` then :func:`check_run`."""
    return check_run(run_load(policy, image, **kw))  # type: ignore[arg-type]


__all__ = [
    "MEMORY_BOUND",
    "ROM_PATTERN",
    "TIME_BOUND_S",
    "Run",
    "call_load",
    "check_answer",
    "check_bounds",
    "check_exact_content",
    "check_run",
    "load_and_check",
    "measured",
    "new_world",
    "run_load",
]
