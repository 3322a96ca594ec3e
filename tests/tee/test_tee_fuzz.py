"""Property tests: mutated signed images against the checklist's invariants.

Hypothesis mutates validly signed images (header, TLVs, signature, ELF
header, program and section headers, segment bytes; truncation and
extension), optionally re-signing so the mutation gets past the signature,
and :func:`fuzz_helpers.check_load` holds every answer under both policies to
the section-6 oracles (see that module). Bounded-time cases for thousands of
TLVs and program headers close the file.
"""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rproctee.tee import TeeResult

from .factory import (
    DK2,
    Elf,
    Seg,
    default_elf,
    default_tlvs,
    load,
    make_elf,
    session,
    signed_image,
    world,
)
from .fuzz_helpers import (
    BASES,
    Base,
    check_load,
    hash_entries,
    resign,
    resign_elf,
)

R = TeeResult
POLICIES = ("optee", "strict")

#: Values that sit on the edges the loader's arithmetic and checks care about.
EDGES = (
    0, 1, 2, 3, 4, 7, 8, 0x10, 0x14, 0x20, 0x28, 0x34, 0x40, 0x7F, 0xFF, 0x100,
    0x1000, 0xFFFF, 0x10000, 0x10041000, 0x1003FF00, 0x10000000, 0x30000000,
    0x3003FFF0, 0x38000000, 0x7FFFFFFF, 0x80000000, 0xFFFFF000, 0xFFFFFFF8,
    0xFFFFFFF9, 0xFFFFFFFC, 0xFFFFFFFF,
)  # fmt: skip
U32S = st.one_of(st.sampled_from(EDGES), st.integers(0, 0xFFFFFFFF))

# One mutation: (span name, kind, position inside the span, value).
Op = tuple[str, str, int, int]


def ops(spans: list[str]) -> st.SearchStrategy[list[Op]]:
    one = st.one_of(
        st.tuples(st.sampled_from(spans), st.just("flip"), st.integers(0, 1 << 16),
                  st.integers(0, 7)),
        st.tuples(st.sampled_from(spans), st.just("set8"), st.integers(0, 1 << 16),
                  st.integers(0, 255)),
        st.tuples(st.sampled_from(spans), st.just("set32"), st.integers(0, 1 << 16),
                  U32S),
        st.tuples(st.just("*"), st.sampled_from(["truncate", "extend"]),
                  st.integers(1, 600), st.just(0)),
    )  # fmt: skip
    return st.lists(one, min_size=1, max_size=3)


def apply(buf: bytearray, spans: dict[str, tuple[int, int]], op: Op) -> None:
    """Apply one mutation in place (spans are offsets into ``buf``)."""
    name, kind, pos, value = op
    if kind == "truncate":
        del buf[max(len(buf) - pos, 0) :]
        return
    if kind == "extend":
        buf += bytes([0xA5]) * pos
        return
    start, end = spans[name]
    end = min(end, len(buf))
    if end <= start:
        return
    off = start + pos % (end - start)
    if kind == "flip":
        buf[off] ^= 1 << value
    elif kind == "set8":
        buf[off] = value
    else:
        off -= (off - start) % 4
        if off + 4 <= len(buf):
            struct.pack_into("<I", buf, off, value)


def both(image: bytes | bytearray) -> None:
    """Every oracle under both policies; strict accepts only what optee does."""
    results = {p: check_load(p, image).answer for p in POLICIES}
    for p, ans in results.items():
        event(f"{p}: {ans.result.short}")  # --hypothesis-show-statistics
    if results["strict"].ok:
        assert results["optee"].ok, results["optee"]


BASE = st.sampled_from(BASES)
PROFILE = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


# -- signed fields: header and TLVs, re-signed --------------------------------


@PROFILE
@given(BASE, st.data())
def test_signed_fields_resigned(base: Base, data: st.DataObject) -> None:
    """Header/TLV edits that still carry a valid signature (a signer's slip or
    a hostile signer): only the TA's checks stand between them and memory."""
    spans = base.spans()
    buf = bytearray(base.image)
    for op in data.draw(ops(["header", "tlvs"]), label="ops"):
        apply(buf, spans, op)
    both(resign(buf))


@PROFILE
@given(BASE, st.data())
def test_hash_table_entries_resigned(base: Base, data: st.DataObject) -> None:
    """Signed hash-table entries edited field by field (then re-signed)."""
    entries = hash_entries(base.image)
    records = default_tlvs(list(base.elves))
    table = bytearray(records[5][1])
    for _ in range(data.draw(st.integers(1, 3), label="n")):
        k = data.draw(st.integers(0, len(entries) - 1), label="entry")
        word = data.draw(st.integers(0, 7), label="word")
        struct.pack_into("<I", table, 64 * k + 4 * word, data.draw(U32S, "value"))
    records[5] = (0x10, bytes(table))
    both(signed_image(list(base.elves), tlvs=records))


@PROFILE
@given(BASE, st.lists(st.tuples(st.sampled_from([1, 2, 3, 4, 5, 0x10, 0x11, 0x7,
                                                 0x10000, 0x1FFFF, 0x20000]),
                                st.binary(max_size=24)), max_size=3),
       st.sampled_from(["append", "prepend", "replace"]))  # fmt: skip
def test_tlv_records_resigned(
    base: Base, extra: list[tuple[int, bytes]], where: str
) -> None:
    """Added, duplicated, replaced and unknown TLVs, validly signed."""
    records = default_tlvs(list(base.elves))
    if where == "append":
        records += extra
    elif where == "prepend":
        records = extra + records
    else:
        kinds = {t for t, _v in extra}
        records = [r for r in records if r[0] not in kinds] + extra
    both(signed_image(list(base.elves), tlvs=records))


# -- unsigned parts: the ELF ------------------------------------------------------


ELF_SPANS = ["ehdr", "phdrs", "shdrs", "seg0", "seg1", "elf"]


@PROFILE
@given(BASE, st.data())
def test_unsigned_elf_edits(base: Base, data: st.DataObject) -> None:
    """ELF edits after signing (nothing re-signed: the hash table is stale)."""
    spans = base.spans()
    names = [n for n in ELF_SPANS if n in spans]
    buf = bytearray(base.image)
    for op in data.draw(ops(names), label="ops"):
        apply(buf, spans, op)
    both(buf)


@PROFILE
@given(BASE, st.data())
def test_hostile_elf_validly_signed(base: Base, data: st.DataObject) -> None:
    """ELF edits with a hash table rebuilt from the edited ELF and re-signed:
    segments anywhere, overlapping, wrapping, huge p_memsz, odd e_phoff..."""
    elf_at = base.img_off
    spans = {n: (a - elf_at, b - elf_at) for n, (a, b) in base.spans().items()}
    names = [n for n in ELF_SPANS if n in spans]
    elf = bytearray(base.elves[0])
    for op in data.draw(ops(names), label="ops"):
        apply(elf, spans, op)
    both(resign_elf(base, bytes(elf)))


@PROFILE
@given(BASE, st.data())
def test_any_byte_no_resign(base: Base, data: st.DataObject) -> None:
    """Random edits anywhere, including the signature, without re-signing."""
    spans = base.spans()
    spans["any"] = (0, len(base.image))
    buf = bytearray(base.image)
    names = ["any", "signature", "header", "tlvs"]
    for op in data.draw(ops(names), label="ops"):
        apply(buf, spans, op)
    both(buf)


# -- structured ELF fields --------------------------------------------------------

#: Region edges of the dk2 map, just inside and just outside.
REGION_EDGES = tuple(
    sorted(
        {
            (x + d) & 0xFFFFFFFF
            for r in DK2
            for x in (r.da, r.da + r.size)
            for d in (-0x40, -0x10, -8, 0, 8)
        }
    )
)
FIELD_VALUES = st.one_of(
    st.sampled_from(REGION_EDGES), st.sampled_from(EDGES), st.integers(0, 0x400)
)
#: ELF header fields: (offset, struct format).
EHDR_FIELDS = ((16, "<H"), (18, "<H"), (24, "<I"), (28, "<I"), (32, "<I"),
               (42, "<H"), (44, "<H"), (46, "<H"), (48, "<H"), (50, "<H"))  # fmt: skip


@st.composite
def elf_field_edits(draw: st.DrawFn, elf: Elf) -> bytes:
    """Set ELF header, program header and section header fields."""
    raw = bytearray(elf.raw)
    phnum = struct.unpack_from("<H", raw, 44)[0]
    shnum = struct.unpack_from("<H", raw, 48)[0]
    for _ in range(draw(st.integers(1, 3), label="n")):
        where = draw(st.sampled_from(["ehdr", "phdr", "phdr", "shdr"]), label="where")
        value = draw(FIELD_VALUES, label="value")
        if where == "ehdr":
            off, fmt = draw(st.sampled_from(EHDR_FIELDS), label="field")
            value &= 0xFFFF if fmt == "<H" else 0xFFFFFFFF
        elif where == "phdr":
            k = draw(st.integers(0, phnum - 1), label="phdr")
            off, fmt = elf.phoff + 32 * k + 4 * draw(st.integers(0, 7)), "<I"
        else:
            k = draw(st.integers(0, shnum - 1), label="shdr")
            off, fmt = elf.shoff + 40 * k + 4 * draw(st.integers(0, 9)), "<I"
        struct.pack_into(fmt, raw, off, value)
    return bytes(raw)


@PROFILE
@given(BASE, st.data())
def test_elf_fields_validly_signed(base: Base, data: st.DataObject) -> None:
    """Header fields set to region edges, wrap values and small numbers; the
    hash table follows the edited program headers (validly signed)."""
    elf = data.draw(elf_field_edits(base.elf), label="elf")
    both(resign_elf(base, elf))


@PROFILE
@given(BASE, st.data())
def test_elf_fields_unsigned(base: Base, data: st.DataObject) -> None:
    """The same edits behind the original (now stale) signed hash table."""
    elf = data.draw(elf_field_edits(base.elf), label="elf")
    both(signed_image([elf, *base.elves[1:]], signed_elves=list(base.elves)))


# -- positive controls and edge cases ---------------------------------------------


@pytest.mark.parametrize("base", BASES, ids=[b.name for b in BASES])
@pytest.mark.parametrize("policy", POLICIES)
def test_bases_load_exactly(base: Base, policy: str) -> None:
    """Positive controls (empty PT_LOAD, non-LOAD entry, p_paddr != p_vaddr,
    two images): accepted, and under strict memory is exactly the content."""
    assert check_load(policy, base.image).answer.ok


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("sign_len", [0xFFFFFFF9, 0xFFFFFFFF])
def test_w1_panic_only_where_the_spec_says(policy: str, sign_len: int) -> None:
    img = signed_image([bytes(default_elf().raw)], sign_len=sign_len, signature=b"")
    out = check_load(policy, img)
    want = R.TEE_ERROR_TARGET_DEAD if policy == "optee" else R.TEE_ERROR_BAD_PARAMETERS
    assert out.answer.result == want


# -- bounded time (checklist 5.8) ---------------------------------------------------

#: Generous: the point is "answers", not a benchmark; quadratic work at these
#: sizes takes minutes.
BOUND_S = 20.0


@pytest.mark.parametrize("policy", POLICIES)
def test_20k_tlvs_answer_in_bounded_time(policy: str) -> None:
    elf = bytes(default_elf().raw)
    noise = [(0x10000 + i % 0x10000, struct.pack("<I", i)) for i in range(20_000)]
    img = signed_image([elf], tlvs=noise + default_tlvs([elf]))  # lookups walk all
    t0 = time.perf_counter()
    assert check_load(policy, img, heap_size=1 << 22).answer.ok
    small = check_load(policy, img).answer  # default 4 KiB heap
    assert small.result == R.TEE_ERROR_OUT_OF_MEMORY
    assert time.perf_counter() - t0 < BOUND_S


@pytest.mark.parametrize("policy", POLICIES)
def test_thousands_of_program_headers_answer_in_bounded_time(policy: str) -> None:
    n = 12_000
    elf = make_elf(
        [Seg(0x30000000 + 0x10 * i, struct.pack("<2I", i, ~i & 0xFFFFFFFF))
         for i in range(n)],
        rsc_in=None,
    )  # fmt: skip
    img = signed_image([bytes(elf.raw)])
    t0 = time.perf_counter()
    out = check_load(policy, img, heap_size=1 << 21)
    assert out.answer.ok, out.answer
    assert len([w for w in out.world.memory.writes if w.op == "copy"]) >= n
    assert time.perf_counter() - t0 < BOUND_S


@pytest.mark.parametrize("policy", POLICIES)
def test_e_phnum_65535(policy: str) -> None:
    """Table past the end: strict fails before any write; upstream loads as it
    goes and stops at the first garbage header that names no hash entry."""
    raw = bytearray(default_elf().raw)
    struct.pack_into("<H", raw, 44, 0xFFFF)
    img = signed_image([bytes(raw)], signed_elves=[bytes(default_elf().raw)])
    out = check_load(policy, img)
    if policy == "strict":
        assert out.answer.result == R.TEE_ERROR_BAD_FORMAT
        w = world(policy)
        assert load(session(w), img).result == R.TEE_ERROR_BAD_FORMAT
        assert w.memory.writes == []  # validated before the first write
    else:
        assert out.answer.result == R.TEE_ERROR_NO_DATA  # garbage p_paddr 0x80
