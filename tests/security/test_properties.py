"""Property tests: structured mutations against the issue-7 invariants.

Hypothesis takes a valid signed image apart (:mod:`security.mutations`),
changes ELF fields, program and section headers, resource-table words,
segment bytes, TLV records, hash-table entries and header words, and builds
the image again, re-signed (so the mutation reaches the deep checks) or not.
Every LOAD_FW, under both policies and on platforms with a read-only region
and with a region at the top of the 32-bit space, is held to every invariant
of :mod:`security.oracles`. A third test changes the caller's buffer at a
phase of the load through the TA's ``on_phase`` hook.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rproctee.tee.ta_remoteproc import PHASES

from .images import BASES, PLATFORMS
from .mutations import U32, Parts, assemble, mutated
from .oracles import check_run, run_load

POLICIES = ("optee", "strict")
PROFILE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def both(image: bytes, platform: str = "dk2") -> None:
    """Every invariant under both policies; strict accepts only what upstream
    accepts (it adds checks, it never drops one)."""
    answers = {}
    for policy in POLICIES:
        run = check_run(run_load(policy, image, platform=platform))
        answers[policy] = run.answer
        event(f"{policy}: {run.answer.result.short}")
    if answers["strict"].ok:
        assert answers["optee"].ok, answers["optee"]


@PROFILE
@given(mutated(BASES), st.sampled_from(sorted(PLATFORMS)))
def test_signed_structured_mutations(parts: Parts, platform: str) -> None:
    """Re-signed after mutation: only the TA's own checks stand in the way."""
    both(assemble(parts, signed=True), platform)


@PROFILE
@given(mutated(BASES))
def test_unsigned_structured_mutations(parts: Parts) -> None:
    """Mutated after signing, by someone without the key."""
    both(assemble(parts, signed=False))


SPANS = ("header", "tlvs", "signature", "ehdr", "phdrs", "shdrs", "seg0", "seg1",
         "elf")  # fmt: skip


@st.composite
def buffer_change(draw: st.DrawFn, spans: dict[str, tuple[int, int]]):  # type: ignore[no-untyped-def]
    """A word set or a bit flipped somewhere in one named part of the image."""
    name = draw(st.sampled_from([n for n in SPANS if n in spans]), label="span")
    start, end = spans[name]
    off = start + draw(st.integers(0, max(end - start - 1, 0)), label="offset")
    if draw(st.booleans(), label="flip"):
        bit = draw(st.integers(0, 7), label="bit")

        def flip(buf: bytearray) -> None:
            buf[off] ^= 1 << bit

        return flip
    value = draw(U32, label="value")
    off -= (off - start) % 4

    def set32(buf: bytearray) -> None:
        if off + 4 <= len(buf):
            struct.pack_into("<I", buf, off, value)

    return set32


@PROFILE
@given(st.sampled_from(BASES), st.sampled_from(PHASES), st.integers(0, 2), st.data())
def test_buffer_changed_during_load(base, phase: str, nth: int, data) -> None:  # type: ignore[no-untyped-def]
    """A racing normal-world thread: the caller's buffer changes at the
    ``nth`` call of ``phase``; the invariants hold whatever the TA answers
    (under strict an accepted load is still exactly the signed content)."""
    change = data.draw(buffer_change(base.spans()), label="change")
    calls = [0]

    def which(_info: dict[str, object]) -> bool:
        calls[0] += 1
        return calls[0] == nth + 1

    for policy in POLICIES:
        calls[0] = 0
        run = run_load(policy, base.image, during=(phase, which, change))
        event(f"{policy} {phase}: {run.answer.result.short}")
        check_run(run)
