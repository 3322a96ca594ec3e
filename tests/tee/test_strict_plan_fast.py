"""The strict plan's vectorised checks against its per-segment checks.

:meth:`StrictPlan.build` checks all program headers of an image at once
(numpy) unless a phase hook watches; the per-segment checks stay the
reference. For every image here both run, each in a full LOAD_FW on a fresh
world, and must give the same answer (code and reason), the same plan
(segments, records, resource table) and the same writes. The images: the
crafted corpus of ``tests/security``, hypothesis mutations of its bases,
and images of 4096 and 65,535 segments with faults placed deep inside.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rproctee.platform.memory import RegionSpec
from rproctee.tee import TeeResult, ta_strict
from rproctee.tee.pta_stm32mp import BATCH_RECORD
from rproctee.tee.ta_load import FirmwareLoad
from rproctee.tee.ta_strict import PLAN_RECORD, StrictPlan
from security.crafted import CASES, Case
from security.images import BASES, PLATFORMS
from security.mutations import Parts, assemble, mutated
from security.oracles import new_world, run_load
from tee.factory import (
    DK2,
    Seg,
    default_tlvs,
    load,
    make_elf,
    r8,
    session,
    signed_image,
    world,
)
from tee.fuzz_helpers import check_signed_content

R = TeeResult
PROFILE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: A region for the many-segment images (32 MiB at 0x20000000).
BIG = RegionSpec("big", 0x20000000, 0x20000000, 0x2000000)
#: Enough TA heap for two copies of the hash table of 65,535 segments.
HEAP = 16 << 20


@dataclass
class Outcome:
    """One LOAD_FW with the plan forced down one path."""

    answer: tuple[TeeResult, str]
    plan: StrictPlan | None
    plan_error: str | None  # "<type>: <message>" of what build() raised
    writes: list[tuple[str, int, int, int]]


@contextmanager
def forced_plan(vectorised: bool, plans: list[StrictPlan]) -> Iterator[None]:
    """``FirmwareLoad.plan`` building its plan down one path, kept in ``plans``."""

    def plan(self: FirmwareLoad) -> None:
        self.strict_plan = StrictPlan(self)
        plans.append(self.strict_plan)
        self.strict_plan.build(vectorised=vectorised)

    with mock.patch.object(FirmwareLoad, "plan", plan):
        yield


def outcome(
    image: bytes, vectorised: bool, regions: tuple[RegionSpec, ...] | None = None,
    platform: str = "dk2", **world_kw: object,
) -> Outcome:  # fmt: skip
    """LOAD_FW of ``image`` under strict, the plan built one way."""
    plans: list[StrictPlan] = []
    if regions is None:
        w = new_world("strict", platform, **world_kw)
    else:
        w = world("strict", regions, **world_kw)
    failure: list[str] = []
    real_build = StrictPlan.build

    def build(self: StrictPlan, *, vectorised: bool | None = None) -> None:
        try:
            real_build(self, vectorised=vectorised)
        except Exception as exc:
            failure.append(f"{type(exc).__name__}: {exc}")
            raise

    with (
        forced_plan(vectorised, plans),
        mock.patch.object(StrictPlan, "build", build),
    ):
        # not oracles.run_load: tracemalloc makes 65,535 segments take minutes
        answer = load(session(w), bytearray(image))
    writes = [(x.op, x.da, x.pa, x.len) for x in w.memory.writes]
    return Outcome(
        (answer.result, answer.reason),
        plans[0] if plans else None,
        failure[0] if failure else None,
        writes,
    )


def assert_records_are_segments(plan: StrictPlan) -> None:
    """``records`` row by row is ``BATCH_RECORD`` of ``segments``."""
    assert plan.records.dtype == PLAN_RECORD
    assert PLAN_RECORD.itemsize == BATCH_RECORD.size == 64
    segs = plan.segments
    want = b"".join(
        BATCH_RECORD.pack(
            s.src, s.phdr.p_paddr, s.phdr.p_filesz, s.phdr.p_memsz, s.digest
        )
        for s in segs
    )
    assert plan.records.tobytes() == want
    assert plan.origin.tolist() == [(s.image, s.index) for s in segs]


def assert_same(
    image: bytes, regions: tuple[RegionSpec, ...] | None = None, **kw: object
) -> Outcome:
    """Both paths: same answer, plan, resource table and writes."""
    scalar = outcome(image, vectorised=False, regions=regions, **kw)
    fast = outcome(image, vectorised=True, regions=regions, **kw)
    assert fast.answer == scalar.answer
    assert fast.plan_error == scalar.plan_error
    assert fast.writes == scalar.writes
    if scalar.plan is not None and scalar.plan_error is None:
        assert fast.plan is not None
        assert_records_are_segments(scalar.plan)
        assert_records_are_segments(fast.plan)
        assert fast.plan.segments == scalar.plan.segments
        assert fast.plan.records.tobytes() == scalar.plan.records.tobytes()
        assert fast.plan.rsc == scalar.plan.rsc
    return fast


# -- the crafted corpus and its mutations ------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_crafted_case_same_on_both_paths(case: Case) -> None:
    """Every crafted image (without its buffer change: a watching hook
    takes the per-segment path anyway)."""
    assert_same(case.image(), platform=case.platform, **case.world_kw)


@PROFILE
@given(mutated(BASES), st.sampled_from(sorted(PLATFORMS)))
def test_signed_mutations_same_on_both_paths(parts: Parts, platform: str) -> None:
    assert_same(assemble(parts, signed=True), platform=platform)


@PROFILE
@given(mutated(BASES))
def test_unsigned_mutations_same_on_both_paths(parts: Parts) -> None:
    assert_same(assemble(parts, signed=False))


def test_digest_ending_in_zero_bytes_is_kept_whole() -> None:
    """A signed digest ending in NUL bytes reaches the records whole (numpy
    drops an S32 value's trailing NULs when read as a value)."""
    elf = bytes(BASES[0].elves[0])
    records = default_tlvs([elf])
    table = bytearray(dict(records)[0x10])
    table[96:128] = b"\xab" + bytes(31)  # the second segment (no table)
    records = [(t, bytes(table) if t == 0x10 else v) for t, v in records]
    image = bytes(signed_image([elf], tlvs=records))
    fast = assert_same(image)
    assert fast.answer[0] == R.TEE_ERROR_SECURITY  # the PTA's hash check
    assert fast.plan is not None
    assert fast.plan_error is None
    assert fast.plan.records[1:2].tobytes()[32:] == b"\xab" + bytes(31)
    assert fast.plan.segments[1].digest == b"\xab" + bytes(31)


def test_unwatched_load_takes_the_vectorised_path(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(ta_strict, "VECTOR_MIN_ENTRIES", 0)
    with mock.patch.object(StrictPlan, "_image", side_effect=AssertionError):
        run = run_load("strict", BASES[0].image)
    assert run.answer.ok, run.answer.reason


def test_few_segments_take_the_per_segment_loop() -> None:
    """Under VECTOR_MIN_ENTRIES signed entries numpy costs more than it
    saves: the per-segment loop plans them, hook or not."""
    assert len(BASES[0].image) and ta_strict.VECTOR_MIN_ENTRIES > 2
    with mock.patch.object(StrictPlan, "_image_fast", side_effect=AssertionError):
        run = run_load("strict", BASES[0].image)
    assert run.answer.ok, run.answer.reason


# -- many segments -----------------------------------------------------------------


def many_segments(n: int, filesz: int, stride: int) -> list[Seg]:
    """``n`` segments in BIG, every other one with a zero-filled tail."""
    return [
        Seg(BIG.da + stride * k, bytes([k & 0xFF]) * filesz,
            filesz + 8 if k % 2 else None)
        for k in range(n)
    ]  # fmt: skip


def phdr_at(elf: bytearray, k: int) -> int:
    return 52 + 32 * k


def signed(elf: bytes | bytearray) -> bytes:
    """``factory.signed_image`` of one ELF, its hash table made in linear
    time (``factory.hash_table`` takes minutes for 65,535 headers)."""
    elf = bytes(elf)
    (phnum,) = struct.unpack_from("<H", elf, 44)
    entries = []
    for k in range(phnum):
        ph = elf[52 + 32 * k : 84 + 32 * k]
        off, filesz = (
            struct.unpack_from("<I", ph, 4)[0],
            struct.unpack_from("<I", ph, 16)[0],
        )
        entries.append(ph + hashlib.sha256(elf[off : off + filesz]).digest())
    sizes = struct.pack("<I", r8(len(elf)))
    records = [(1, b"\x01"), (3, b"\x01"), (4, b"\x01"), (5, sizes), (2, b"\x01"),
               (0x10, b"".join(entries))]  # fmt: skip
    return bytes(signed_image([elf], tlvs=records))


def set_word(elf: bytearray, k: int, field: int, value: int) -> None:
    """Program header ``k``'s word ``field`` (1 offset, 3 paddr, 4 filesz...)."""
    struct.pack_into("<I", elf, phdr_at(elf, k) + 4 * field, value)


@pytest.fixture(scope="module")
def elf_4096() -> bytearray:
    """4096 segments of 4 KiB (the issue's case), table in the first."""
    return make_elf(many_segments(4096, 4096, 0x1040)).raw


REGIONS = (*DK2, BIG)


def test_4096_segments_load(elf_4096: bytearray) -> None:
    image = signed(elf_4096)
    fast = assert_same(image, REGIONS, heap_size=HEAP)
    assert fast.answer[0] == R.TEE_SUCCESS, fast.answer
    assert fast.plan is not None and len(fast.plan.records) == 4096
    w = world("strict", REGIONS, heap_size=HEAP)
    run = run_load("strict", image, w=w)
    assert run.answer.ok
    check_signed_content(w, image)


FAULTS = {
    # (program header, word, value): the first wins whatever comes after
    "filesz > memsz": [(3000, 5, 4), (3500, 5, 0xFFFFFFFF)],
    "wraps 32 bits": [(2999, 3, 0xFFFFF000), (3001, 4, 0)],
    "beyond image": [(4000, 1, 0xFFFFFFF0)],
    "overlap": [(2048, 3, BIG.da + 0x1040 * 2047 + 16)],
    "outside every region": [(1000, 3, 0x50000000), (1001, 3, 0x50001000)],
    "zero-fill outside": [(4095, 5, 0x2000000)],
    "not PT_LOAD": [(1234, 0, 6)],
    "empty segments": [(77, 4, 0), (78, 4, 0), (78, 5, 0)],
    "filesz > memsz, empty": [(78, 5, 0)],
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("signer", ["signed", "unsigned"])
def test_4096_segments_fault_deep_inside(
    elf_4096: bytearray, fault: str, signer: str
) -> None:
    """A fault far into the table, signed (a careless signer) or changed
    after signing: the same refusal (or load) from both paths."""
    elf = bytearray(elf_4096)
    for k, word, value in FAULTS[fault]:
        set_word(elf, k, word, value)
    if signer == "signed":
        image = signed(elf)
    else:
        image = bytearray(signed(elf_4096))
        at = len(image) - r8(len(elf))
        image[at : at + len(elf)] = elf
    assert_same(bytes(image), REGIONS, heap_size=HEAP)


def test_4096_segments_a_signed_one_dropped(elf_4096: bytearray) -> None:
    """e_phnum one short after signing: the last signed segment is left over."""
    elf = bytearray(elf_4096)
    image = bytearray(signed(elf))
    at = len(image) - r8(len(elf))
    struct.pack_into("<H", image, at + 44, 4095)
    fast = assert_same(bytes(image), REGIONS, heap_size=HEAP)
    assert "dropped" in fast.answer[1]


def test_65535_tiny_segments() -> None:
    elf = make_elf(many_segments(65535, 8, 64)).raw
    image = signed(elf)
    fast = assert_same(image, REGIONS, heap_size=HEAP)
    assert fast.answer[0] == R.TEE_SUCCESS, fast.answer
    assert fast.plan is not None
    assert len(fast.plan.records) == 65535
    assert fast.plan.records["da"].tolist() == [BIG.da + 64 * k for k in range(65535)]
