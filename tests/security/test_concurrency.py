"""Concurrency: callers racing on one TA instance see some serial order.

OP-TEE runs one call at a time in a TA instance (the core marks it busy and
other callers wait), so whatever the interleaving of the callers' threads,
every answer must be the answer of *some* serial order of the calls that is
consistent with real time (linearizability), and device memory must end as
that order leaves it: no lost and no mixed writes.

Each test records (thread, start, end, call, answer) for every call, then
searches for such an order against a small model of the TA's per-processor
state machine and the PTA's one global running flag (spec 2.4, 3.2). The
GIL switch interval is cut to a microsecond for the run, so threads really
interleave inside the TA.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rproctee.platform.profile import load_profile
from rproctee.tee import TeeResult, TeeSession, build_secure_world
from rproctee.tee.params import value_in
from rproctee.tee.ta_remoteproc import TaCommand
from rproctee.tee.world import SecureWorld
from tee.factory import PUB_PEM, Seg, load, rsc, session, signed_image

from .crafted import other_signed_image
from .images import GOOD, make_elf_with_table
from .oracles import check_exact_content, new_world

R = TeeResult
POLICIES = ("optee", "strict")
SLOW = bool(os.environ.get("RPROCTEE_SLOW_TESTS"))
ROUNDS = 40 if SLOW else 12


@dataclass(frozen=True)
class Call:
    """One completed call: who, when, what, and the answer."""

    thread: int
    t0: int
    t1: int
    op: tuple[object, ...]
    result: object


@contextmanager
def fine_grained_switching() -> Iterator[None]:
    """Let the interpreter switch threads every microsecond."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_threads(jobs: list[Callable[[Callable[..., object]], None]]) -> list[Call]:
    """Run each job in its own thread; jobs record calls with ``record``."""
    calls: list[Call] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def worker(k: int, job: Callable[[Callable[..., object]], None]) -> None:
        def record(op: tuple[object, ...], fn: Callable[[], object]) -> object:
            t0 = time.perf_counter_ns()
            result = fn()
            t1 = time.perf_counter_ns()
            with lock:
                calls.append(Call(k, t0, t1, op, result))
            return result

        try:
            start.wait()
            job(record)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k, job))
               for k, job in enumerate(jobs)]  # fmt: skip
    with fine_grained_switching():
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors  # nothing but answers crosses the client API
    assert not any(t.is_alive() for t in threads), "a caller never returned"
    return calls


Model = Callable[[object, tuple[object, ...]], tuple[object, object]]


def linearizable(
    calls: list[Call], model: Model, state: object
) -> tuple[object] | None:
    """``(final model state,)`` of a serial order consistent with real time
    in which every call gets its recorded answer (None: there is none).

    Depth-first over the next call of each thread, memoised on (progress,
    state): a call may go next only if no other thread's next call ended
    before it started.
    """
    per_thread: dict[int, list[Call]] = {}
    for c in sorted(calls, key=lambda c: c.t0):
        per_thread.setdefault(c.thread, []).append(c)
    threads = sorted(per_thread)
    seqs = [per_thread[t] for t in threads]
    seen: set[tuple[tuple[int, ...], object]] = set()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(calls) + 100))

    def search(pos: tuple[int, ...], st: object) -> tuple[object] | None:
        if all(p == len(s) for p, s in zip(pos, seqs, strict=True)):
            return (st,)
        if (pos, st) in seen:
            return None
        seen.add((pos, st))
        heads = [s[p] for p, s in zip(pos, seqs, strict=True) if p < len(s)]
        deadline = min(c.t1 for c in heads)
        for i, (p, s) in enumerate(zip(pos, seqs, strict=True)):
            if p == len(s) or s[p].t0 > deadline:
                continue
            want, after = model(st, s[p].op)
            if want != s[p].result:
                continue
            found = search(pos[:i] + (p + 1,) + pos[i + 1 :], after)
            if found is not None:
                return found
        return None

    return search(tuple(0 for _ in seqs), state)


# -- one session, several threads: LOAD_FW / RELEASE_FW ----------------------------

OTHER = other_signed_image()
IMAGES = {"good": GOOD, "other": OTHER}


def load_release_model(state: object, op: tuple[object, ...]) -> tuple[object, object]:
    """(loaded image or None) -> answers of LOAD_FW and RELEASE_FW (spec 2.4):
    LOAD in LOADED is a no-op success, RELEASE always succeeds when not
    started."""
    kind = op[0]
    if kind == "load":
        return R.TEE_SUCCESS, state if state is not None else op[1]
    return R.TEE_SUCCESS, None


@pytest.mark.parametrize("policy", POLICIES)
def test_threads_sharing_one_session_load_and_release(policy: str) -> None:
    """Four threads share one session (as a kernel driver shares its own),
    two loading one valid image and two another; every answer is success,
    as in any serial order, and memory ends exactly as one order leaves it."""
    w = new_world(policy)
    s = session(w)

    def job(name: str) -> Callable[[Callable[..., object]], None]:
        def run(record: Callable[..., object]) -> None:
            for _ in range(ROUNDS):
                buf = bytearray(IMAGES[name])
                record(("load", name), lambda b=buf: load(s, b).result)
                record(("release",), lambda: s.invoke_command(
                    TaCommand.RELEASE_FW, [value_in(0)]).result)  # fmt: skip

        return run

    calls = run_threads([job("good"), job("other"), job("good"), job("other")])
    bad = [c for c in calls if c.result != R.TEE_SUCCESS]
    assert not bad, [(c.op, R(c.result).name) for c in bad]  # type: ignore[arg-type]
    assert linearizable(calls, load_release_model, None) is not None, (
        "no serial order gives these answers"
    )
    check_final_single(w, s, policy)


def check_final_single(w: SecureWorld, s: TeeSession, policy: str) -> None:
    """Loaded: exactly one of the images (never a mix); else wiped."""
    loaded = rsc(s)[0].ok  # type: ignore[attr-defined]
    if not loaded:
        assert not any(w.memory.array(i).any() for i in range(len(w.memory.regions)))
        return
    matches = []
    for name, image in IMAGES.items():
        try:
            check_exact_content(w, image)
            matches.append(name)
        except AssertionError:
            pass
    if policy == "strict":
        assert len(matches) == 1, "memory is not exactly one signed image"
    else:  # upstream leaves no stray bytes either for these two images
        assert matches, "memory mixes the two images"


# -- several processor ids on one platform, several threads ------------------------


def profile(tmp: Path, ids: list[int]) -> Path:
    """A TOML profile: the DK2 regions and several processor ids."""
    text = f"""
[platform]
name = "multi-core"
processor_ids = {ids}

[[regions]]
name = "retram"
da = 0x00000000
pa = 0x38000000
size = 0x10000

[[regions]]
name = "mcuram"
da = 0x30000000
size = 0x40000

[[regions]]
name = "mcuram2"
da = 0x10000000
size = 0x40000
"""
    path = tmp / "multi.toml"
    path.write_text(text)
    return path


#: Each processor's firmware lives in its own region.
BASES = {0: 0x0, 1: 0x30000000, 2: 0x10000000}


def core_image(k: int) -> bytes:
    base = BASES[k]
    segs = [Seg(base, bytes([0x40 + k]) * 96),
            Seg(base + 0x1000, bytes([k]) * 8, 0x100)]  # fmt: skip
    return bytes(signed_image([bytes(make_elf_with_table(segs).raw)]))


Cores = tuple[tuple[int, str], ...]  # per id: "none", "off", "loaded", "started"


def cores_model(state: object, op: tuple[object, ...]) -> tuple[object, object]:
    """Spec 2.4 per id, plus the PTA's one global running flag (spec 3.2):
    nothing loads or starts while any core runs."""
    cores = dict(state)  # type: ignore[call-overload]
    kind, k = op[0], op[1]
    running = "started" in cores.values()
    now = cores[k]
    if kind == "load":
        if now in ("loaded",):
            return R.TEE_SUCCESS, state
        if now == "started":
            return R.TEE_ERROR_BAD_STATE, state
        if running:
            cores[k] = "off"  # the context exists from now on
            return R.TEE_ERROR_BAD_STATE, tuple(sorted(cores.items()))
        cores[k] = "loaded"
    elif now == "none":
        return R.TEE_ERROR_BAD_PARAMETERS, state
    elif kind == "start":
        if now == "off" or (now == "loaded" and running):
            return R.TEE_ERROR_BAD_STATE, state
        cores[k] = "started"
    else:  # stop
        if now == "loaded":
            return R.TEE_ERROR_BAD_STATE, state
        cores[k] = "off"
    return R.TEE_SUCCESS, tuple(sorted(cores.items()))


@pytest.mark.parametrize("policy", POLICIES)
def test_several_processor_ids_from_several_threads(
    policy: str, tmp_path: Path
) -> None:
    """Three cores of one platform (a TOML profile with three ids), each
    loaded, started and stopped by its own thread over one shared session."""
    ids = sorted(BASES)
    spec = load_profile(profile(tmp_path, ids))
    w = build_secure_world(spec, policy=policy, key_pem=PUB_PEM)
    s = session(w, ids[0])
    images = {k: core_image(k) for k in ids}

    def job(k: int) -> Callable[[Callable[..., object]], None]:
        def cmd(c: TaCommand) -> Callable[[], object]:
            return lambda: s.invoke_command(c, [value_in(k)]).result

        def run(record: Callable[..., object]) -> None:
            for _ in range(ROUNDS):
                buf = bytearray(images[k])
                record(("load", k), lambda b=buf: load(s, b, k).result)
                record(("start", k), cmd(TaCommand.START_FW))
                record(("stop", k), cmd(TaCommand.STOP_FW))

        return run

    calls = run_threads([job(k) for k in ids])
    assert all(isinstance(c.result, TeeResult) for c in calls)
    final = linearizable(calls, cores_model, tuple((k, "none") for k in ids))
    assert final is not None, "no serial order gives these answers"
    check_final_cores(w, s, images, calls)


def check_final_cores(
    w: SecureWorld, s: TeeSession, images: dict[int, bytes], calls: list[Call]
) -> None:
    """No lost or mixed writes: each core's region holds exactly its signed
    image if one of its loads succeeded (nothing wipes memory here), zero
    otherwise; no byte outside the images' segments was written."""
    mem = w.memory
    expected = [np.zeros(r.size, dtype=np.uint8) for r in mem.regions]
    for k, image in images.items():
        if not any(c.op == ("load", k) and c.result == R.TEE_SUCCESS for c in calls):
            continue
        for da, data, memsz in segments(image):
            index = mem.locate_da(da, memsz)
            off = da - mem.regions[index].da
            expected[index][off : off + len(data)] = np.frombuffer(data, np.uint8)
    for index, region in enumerate(mem.regions):
        assert np.array_equal(mem.array(index), expected[index]), region.name


def segments(image: bytes) -> list[tuple[int, bytes, int]]:
    """(p_paddr, file bytes, p_memsz) of each PT_LOAD of the image's ELF."""
    from rproctee.image import parse_image

    parsed = parse_image(image)
    out = []
    for elf in parsed.images:
        data = bytes(elf.data)
        for ph in parsed.hash_table:
            if ph.p_type == 1:
                out.append((ph.p_paddr, data[ph.p_offset : ph.p_offset + ph.p_filesz],
                            ph.p_memsz))  # fmt: skip
    return out


def test_the_order_search_refuses_impossible_histories() -> None:
    """The checker itself: answers no serial order gives are caught."""
    bad_load = [Call(0, 0, 10, ("load", "good"), R.TEE_ERROR_SECURITY)]
    assert linearizable(bad_load, load_release_model, None) is None
    none = tuple((k, "none") for k in (0, 1))
    two_running = [
        Call(0, 0, 10, ("load", 0), R.TEE_SUCCESS),
        Call(1, 0, 10, ("load", 1), R.TEE_SUCCESS),
        Call(0, 20, 30, ("start", 0), R.TEE_SUCCESS),
        Call(1, 20, 30, ("start", 1), R.TEE_SUCCESS),  # the PTA runs one core
    ]
    assert linearizable(two_running, cores_model, none) is None
    # the same answers are fine when the second start waits for a stop
    one_after_other = [*two_running[:3], Call(0, 40, 50, ("stop", 0), R.TEE_SUCCESS),
                       Call(1, 60, 70, ("start", 1), R.TEE_SUCCESS)]  # fmt: skip
    assert linearizable(one_after_other, cores_model, none) is not None
    # real time counts: a call that ended before another began comes first
    stale = [Call(0, 0, 10, ("load", "good"), R.TEE_SUCCESS),
             Call(1, 20, 30, ("release",), R.TEE_SUCCESS),
             Call(0, 40, 50, ("load", "other"), R.TEE_SUCCESS)]  # fmt: skip
    final = linearizable(stale, load_release_model, None)
    assert final == ("other",)
