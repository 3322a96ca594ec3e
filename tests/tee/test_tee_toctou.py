"""TOCTOU (checklist 5.6): the caller changes its shared buffer during LOAD_FW.

The memref is the caller's buffer, not a copy: the TA reads it in place. The
tests use the TA's public phase hook (``SecureWorld.on_phase``: after the
header copy, after the signature check, after the ELF header check, around a
segment copy, i.e. after the strict plan) and mutate the buffer there, as a
concurrent normal-world thread could. Header and TLVs must come from the TA's
private copy; segment bytes are hashed where they landed; strict reads each
program header once and finds the resource table before the first write. Where
the ``optee`` policy reproduces an upstream weakness (W2 through a late
program-header edit, W3: section headers and table bytes re-read from the
caller buffer at the end of the load, W7: no scrub) the upstream behaviour is
asserted under ``optee`` and the fix under ``strict``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

import pytest

from rproctee.tee import TeeResult, ta_elf
from rproctee.tee.core import Answer
from rproctee.tee.world import SecureWorld

from .factory import (
    Seg,
    default_elf,
    load,
    make_elf,
    rsc,
    session,
    signed_image,
    world,
)
from .fuzz_helpers import (
    BASES,
    check_signed_content,
    check_writes,
    hash_entries,
    memory_is_zero,
)

R = TeeResult
POLICIES = ("optee", "strict")
A = BASES[0]  # default: seg0 (code + table) in RETRAM, seg1 (data + bss) in MCUSRAM2
SPANS = A.spans()
ELF_AT = A.img_off
PH0, PH1 = ELF_AT + A.elf.phoff, ELF_AT + A.elf.phoff + 32
RSC_SHDR = ELF_AT + (A.elf.rsc_shdr or 0)
SEG0, SEG1 = SPANS["seg0"], SPANS["seg1"]
RSC_AT = ELF_AT + struct.unpack_from("<I", A.elf.raw, (A.elf.rsc_shdr or 0) + 16)[0]
RSC_DA = struct.unpack_from("<I", A.elf.raw, (A.elf.rsc_shdr or 0) + 12)[0]

Mutation = Callable[[bytearray], None]


def put(off: int, fmt: str, *vals: int) -> Mutation:
    def mutate(buf: bytearray) -> None:
        struct.pack_into(fmt, buf, off, *vals)

    return mutate


def flip(off: int) -> Mutation:
    def mutate(buf: bytearray) -> None:
        buf[off] ^= 0xFF

    return mutate


def write(off: int, data: bytes) -> Mutation:
    def mutate(buf: bytearray) -> None:
        buf[off : off + len(data)] = data

    return mutate


def on_phase(w: SecureWorld, name: str, buf: bytearray, m: Mutation) -> None:
    """Run ``m(buf)`` once, when LOAD_FW reaches phase ``name`` (the TA's
    public phase hook, as a concurrent normal-world thread would act)."""
    done = [False]

    def hook(phase: str, info: dict[str, object]) -> None:
        if phase == name and not done[0]:
            done[0] = True
            m(buf)

    w.on_phase = hook


def after_plan(w: SecureWorld, buf: bytearray, m: Mutation) -> None:
    """Strict: run ``m(buf)`` once the plan passed, before the first write."""
    around_copy(w, buf, index=0, before=m)


def around_copy(
    w: SecureWorld,
    buf: bytearray,
    *,
    index: int,
    before: Mutation | None = None,
    after: Mutation | None = None,
) -> None:
    """Mutate just before and/or just after the ``index``-th segment copy."""

    def hook(phase: str, info: dict[str, object]) -> None:
        if info.get("copy") != index:
            return
        if phase == "segment_copy_before" and before:
            before(buf)
        if phase == "segment_copy_after" and after:
            after(buf)

    w.on_phase = hook


def start(policy: str) -> tuple[SecureWorld, object, bytearray]:
    w = world(policy)
    return w, session(w), bytearray(A.image)


def rsc_da(w: SecureWorld, s: object) -> tuple[int, int]:
    ans, pa, size = rsc(s)  # type: ignore[arg-type]
    assert ans.ok  # type: ignore[attr-defined]
    return (w.memory.pa_to_da(pa, size) if size else 0), size


def seg_digest(k: int) -> bytes:
    return hash_entries(A.image)[k][1]


def memory_hash(w: SecureWorld, da: int, n: int) -> bytes:
    return hashlib.sha256(w.memory.read_da(da, n)).digest()


def failed_cleanly(policy: str, w: SecureWorld, ans: Answer) -> None:
    assert not ans.ok
    check_writes(w)
    if policy == "strict":
        assert memory_is_zero(w)
        assert w.ta().last_load.scrubbed or not w.memory.writes  # type: ignore[union-attr]


# -- header and TLVs: used from the private copy --------------------------------


def _other_signed_image() -> bytes:
    """Same layout as A, other segment content (so other hashes and signature)."""
    seg0 = bytes(range(64, 128)) * 2
    elf = make_elf([Seg(0x0, seg0), Seg(0x10000000, b"\x22" * 8, 0x208)])
    img = bytes(signed_image([bytes(elf.raw)]))
    assert len(img) == len(A.image) and img[:20] == A.image[:20]
    return img


B = _other_signed_image()


@pytest.mark.parametrize("policy", POLICIES)
def test_tlvs_swapped_after_signature_check_have_no_effect(
    policy: str
) -> None:
    """Another validly signed header + TLVs (+ signature) written over the
    authenticated ones: the TA keeps using its private copy."""
    w, s, buf = start(policy)
    on_phase(w, "authenticated", buf,
                 write(0, B[:ELF_AT]))  # fmt: skip
    ans = load(s, buf)  # type: ignore[arg-type]
    assert ans.ok, ans
    assert bytes(buf[:ELF_AT]) == B[:ELF_AT]  # the swap did happen
    check_writes(w)
    check_signed_content(w, A.image)


@pytest.mark.parametrize("policy", POLICIES)
def test_whole_buffer_swapped_after_signature_check_fails(
    policy: str
) -> None:
    """New TLVs *and* new ELF after authentication: the authenticated hash
    table does not describe the new ELF, so nothing of it can load."""
    w, s, buf = start(policy)
    on_phase(w, "authenticated", buf, write(0, B))
    ans = load(s, buf)  # type: ignore[arg-type]
    assert ans.result == R.TEE_ERROR_SECURITY, ans
    failed_cleanly(policy, w, ans)
    assert memory_is_zero(w)  # the first segment failed: nothing of B stays


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(
    "mutation",
    [put(8, "<I", 0xFFFFFFFF), put(12, "<I", 0), put(16, "<I", 0x7FFFFFF8),
     put(0, "<I", 0)],
    ids=["tlv_len", "sign_len", "img_len", "magic"],
)  # fmt: skip
def test_header_fields_changed_after_the_copy_have_no_effect(
    policy: str, mutation: Mutation
) -> None:
    w, s, buf = start(policy)
    on_phase(w, "header_copied", buf, mutation)
    ans = load(s, buf)  # type: ignore[arg-type]
    assert ans.ok, ans
    check_signed_content(w, A.image)


@pytest.mark.parametrize("policy", POLICIES)
def test_hash_table_tlv_changed_after_the_copy_has_no_effect(
    policy: str
) -> None:
    """A HASHTABLE that matches attacker segment bytes, written into the
    buffer after the copy, together with those bytes: SECURITY."""
    w, s, buf = start(policy)
    evil = bytearray(A.image)
    evil[SEG0[0] : SEG0[1]] = b"\xee" * (SEG0[1] - SEG0[0])
    ht = bytes(B[:ELF_AT]).find(bytes(A.image[PH0 : PH0 + 32]))
    assert ht > 0  # entry 0 of B's table sits where A's does
    digest = hashlib.sha256(bytes(evil[SEG0[0] : SEG0[1]])).digest()
    evil[ht + 32 : ht + 64] = digest
    on_phase(w, "header_copied", buf, write(0, evil))
    ans = load(s, buf)  # type: ignore[arg-type]
    # optee: SECURITY at the copy; strict: the table check in its plan reads
    # the attacker bytes (BAD_FORMAT) before anything is written
    want = R.TEE_ERROR_SECURITY if policy == "optee" else R.TEE_ERROR_BAD_FORMAT
    assert ans.result == want, ans
    failed_cleanly(policy, w, ans)
    assert b"\xee" * 16 not in w.memory.array(0).tobytes()


# -- program headers and e_phoff ------------------------------------------------

LATE_PHDR_EDITS = {
    "p_paddr": put(PH1 + 12, "<I", 0x10000100),
    "p_type-null": put(PH1, "<I", 0),
    "p_offset": put(PH0 + 4, "<I", 0x10),
    "p_filesz": put(PH1 + 16, "<I", 4),
    "p_memsz": put(PH1 + 20, "<I", 0x40000),
    "e_phoff": put(ELF_AT + 28, "<I", SEG0[0] - ELF_AT),
    "e_phnum": put(ELF_AT + 44, "<H", 1),
}


@pytest.mark.parametrize("edit", list(LATE_PHDR_EDITS))
def test_strict_program_headers_changed_after_the_plan_have_no_effect(
    edit: str
) -> None:
    """Strict validates from a private list of program headers and writes
    from that list: later edits of the table or of e_phoff change nothing."""
    w, s, buf = start("strict")
    after_plan(w, buf, LATE_PHDR_EDITS[edit])
    ans = load(s, buf)  # type: ignore[arg-type]
    assert ans.ok, ans
    check_writes(w)
    check_signed_content(w, A.image)
    assert rsc_da(w, s) == (RSC_DA, 0x20)


@pytest.mark.parametrize("edit", list(LATE_PHDR_EDITS))
def test_optee_program_headers_changed_after_the_first_copy(
    edit: str
) -> None:
    """Upstream loads as it goes and reads program header 1 only after
    segment 0 is in memory: the edit counts. It can drop the signed segment
    (W2, now by TOCTOU) but never put unsigned bytes in memory."""
    w, s, buf = start("optee")
    around_copy(w, buf, index=0, after=LATE_PHDR_EDITS[edit])
    ans = load(s, buf)  # type: ignore[arg-type]
    check_writes(w)
    assert memory_hash(w, 0x0, 0xA0) == seg_digest(0)  # segment 0 stays (W7)
    tail = w.memory.read_da(0x10000000, 0x208)
    assert tail in (bytes(0x208), b"\x11" * 8 + bytes(0x200))  # signed or nothing
    expected = {
        "p_paddr": R.TEE_ERROR_NO_DATA,  # no hash entry for the new address
        "p_type-null": R.TEE_SUCCESS,  # W2: signed segment 1 silently dropped
        "p_offset": R.TEE_SUCCESS,  # segment 0 was already read
        "p_filesz": R.TEE_ERROR_BAD_PARAMETERS,  # != signed p_filesz
        "p_memsz": R.TEE_ERROR_BAD_PARAMETERS,  # != signed p_memsz
        "e_phoff": R.TEE_SUCCESS,  # table address taken before the loop
        "e_phnum": R.TEE_SUCCESS,  # W2: loop bound re-read, segment 1 dropped
    }[edit]
    assert ans.result == expected, ans
    if edit in ("p_type-null", "e_phnum"):
        assert tail == bytes(0x208)  # the signed segment 1 never loaded
        assert not [x for x in w.memory.writes if x.da >= 0x10000000]
    elif ans.ok:
        check_signed_content(w, A.image)


def test_strict_reads_each_program_header_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """No double fetch: every program-header entry of every image is read
    from the shared buffer exactly once per load."""
    reads: list[tuple[int, int]] = []
    original = ta_elf.SharedReader.read

    def logged(self: ta_elf.SharedReader, off: int, n: int) -> bytes:
        reads.append((off, n))
        return original(self, off, n)

    monkeypatch.setattr(ta_elf.SharedReader, "read", logged)
    for base in BASES:
        reads.clear()
        assert load(session(world("strict")), base.image).ok
        at = base.img_off
        for elf in base.elves:
            phoff = struct.unpack_from("<I", elf, 28)[0]
            for i in range(struct.unpack_from("<H", elf, 44)[0]):
                entry = at + phoff + 32 * i
                hits = [r for r in reads if r[0] < entry + 32 and entry < sum(r)]
                # one read covers the whole entry (the table is read at once)
                assert len(hits) == 1, (base.name, i, hits)
                assert hits[0][0] <= entry and entry + 32 <= sum(hits[0])
            at += len(elf) + (-len(elf) % 8)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(
    "edit",
    [PHNUM_0 := put(ELF_AT + 44, "<H", 0), put(ELF_AT + 28, "<I", 0xFFFFFFF0),
     put(ELF_AT + 44, "<H", 0xFFFF), put(ELF_AT + 42, "<H", 8)],
    ids=["e_phnum-0", "e_phoff-wrap", "e_phnum-max", "e_phentsize"],
)  # fmt: skip
def test_elf_header_changed_between_check_and_use(
    policy: str, edit: Mutation
) -> None:
    """The ELF header is re-read after ``check_ehdr``: whatever it says then
    is checked again where it is used (no write outside, nothing unsigned)."""
    w, s, buf = start(policy)
    on_phase(w, "ehdr_checked", buf, edit)
    ans = load(s, buf)  # type: ignore[arg-type]
    check_writes(w)
    if policy == "optee" and edit is PHNUM_0:
        # W2 upstream: e_phnum != 0 is checked, then re-read as the loop bound:
        # nothing is loaded and LOAD_FW succeeds with the signed segments
        # dropped; strict's 1:1 match refuses (signed segment left over)
        assert ans.ok, ans
        assert not [x for x in w.memory.writes if x.op == "copy"]
    elif ans.ok:
        check_signed_content(w, A.image)
    else:
        failed_cleanly(policy, w, ans)


# -- segment bytes: hashed where they landed ------------------------------------


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("k", [0, 1])
def test_segment_bytes_swapped_before_the_copy_fail(
    policy: str, k: int
) -> None:
    w, s, buf = start(policy)
    seg = (SEG0, SEG1)[k]
    around_copy(w, buf, index=k, before=flip(seg[0] + 3))
    ans = load(s, buf)  # type: ignore[arg-type]
    assert ans.result == R.TEE_ERROR_SECURITY, ans
    failed_cleanly(policy, w, ans)
    paddr, filesz = (0x0, 0xA0) if k == 0 else (0x10000000, 8)
    assert w.memory.read_da(paddr, filesz) == bytes(filesz)  # PTA zeroed it
    if policy == "optee" and k == 1:
        assert memory_hash(w, 0x0, 0xA0) == seg_digest(0)  # W7: left behind


@pytest.mark.parametrize("policy", POLICIES)
def test_segment_bytes_swapped_only_during_the_copy_fail(
    policy: str
) -> None:
    """Unsigned bytes during the copy, signed bytes again right after: a
    loader that hashed the source after copying would accept; the PTA hashes
    the destination."""
    w, s, buf = start(policy)
    evil = b"\xee" * (SEG0[1] - SEG0[0])
    good = bytes(buf[SEG0[0] : SEG0[1]])
    around_copy(w, buf, index=0, before=write(SEG0[0], evil),
                after=write(SEG0[0], good))  # fmt: skip
    ans = load(s, buf)  # type: ignore[arg-type]
    assert ans.result == R.TEE_ERROR_SECURITY, ans
    assert bytes(buf) == A.image
    failed_cleanly(policy, w, ans)
    assert b"\xee" * 16 not in w.memory.array(0).tobytes()


@pytest.mark.parametrize("policy", POLICIES)
def test_segment_bytes_swapped_right_after_their_copy_have_no_effect(
    policy: str
) -> None:
    w, s, buf = start(policy)
    evil = b"\xee" * (SEG0[1] - SEG0[0])
    around_copy(w, buf, index=0, after=write(SEG0[0], evil))
    ans = load(s, buf)  # type: ignore[arg-type]
    if policy == "optee":
        # W3: upstream validates the table at sh_offset in the caller buffer
        # after the load, and those bytes are now 0xee
        assert ans.result == R.TEE_ERROR_BAD_FORMAT, ans
        assert memory_hash(w, 0x0, 0xA0) == seg_digest(0)  # memory is signed
    else:
        assert ans.ok, ans
        check_signed_content(w, A.image)


@pytest.mark.parametrize("policy", POLICIES)
def test_next_segment_swapped_after_a_copy_fails(
    policy: str
) -> None:
    w, s, buf = start(policy)
    around_copy(w, buf, index=0, after=flip(SEG1[0]))
    ans = load(s, buf)  # type: ignore[arg-type]
    assert ans.result == R.TEE_ERROR_SECURITY, ans
    failed_cleanly(policy, w, ans)
    if policy == "optee":
        assert memory_hash(w, 0x0, 0xA0) == seg_digest(0)  # W7: not scrubbed


# -- section headers and the resource table ------------------------------------

LAST_COPY = 1  # A has two segments


@pytest.mark.parametrize("policy", POLICIES)
def test_rsc_sh_addr_changed_at_the_end_of_the_load(
    policy: str
) -> None:
    """W3: upstream reads the section headers again after the segments are
    loaded and reports the new sh_addr; strict found the table in its plan."""
    w, s, buf = start(policy)
    around_copy(w, buf, index=LAST_COPY,
                after=put(RSC_SHDR + 12, "<I", 0x10000000))  # fmt: skip
    ans = load(s, buf)  # type: ignore[arg-type]
    assert ans.ok, ans
    check_signed_content(w, A.image)
    want = 0x10000000 if policy == "optee" else RSC_DA
    assert rsc_da(w, s) == (want, 0x20)


@pytest.mark.parametrize("policy", POLICIES)
def test_rsc_sh_size_zeroed_at_the_end_of_the_load(
    policy: str
) -> None:
    """W3: sh_size 0 read late hides the table upstream (reported 0/0)."""
    w, s, buf = start(policy)
    around_copy(w, buf, index=LAST_COPY,
                after=put(RSC_SHDR + 20, "<I", 0))  # fmt: skip
    ans = load(s, buf)  # type: ignore[arg-type]
    assert ans.ok, ans
    assert rsc_da(w, s) == ((0, 0) if policy == "optee" else (RSC_DA, 0x20))


@pytest.mark.parametrize("policy", POLICIES)
def test_section_table_moved_at_the_end_of_the_load(
    policy: str
) -> None:
    """e_shoff pointed at a forged table whose .resource_table is elsewhere."""
    w, s, buf = start(policy)
    forged_at = SEG0[0]  # inside segment 0's file bytes: 3 forged headers
    names_off = struct.unpack_from("<I", A.elf.raw, A.elf.shoff + 80 + 16)[0]
    forged = bytes(40) + struct.pack("<10I", 1, 1, 3, 0x10000000, RSC_AT - ELF_AT, 0x20,
                                     0, 0, 4, 0) + struct.pack(
        "<10I", 17, 3, 0, 0, names_off, 27, 0, 0, 1, 0)  # fmt: skip

    def mutate(b: bytearray) -> None:
        write(forged_at, forged)(b)
        put(ELF_AT + 32, "<I", forged_at - ELF_AT)(b)

    around_copy(w, buf, index=LAST_COPY, after=mutate)
    ans = load(s, buf)  # type: ignore[arg-type]
    check_writes(w)
    assert ans.ok, ans
    check_signed_content(w, A.image)
    want = 0x10000000 if policy == "optee" else RSC_DA
    assert rsc_da(w, s) == (want, 0x20)


@pytest.mark.parametrize("policy", POLICIES)
def test_rsc_bytes_broken_in_the_buffer_after_the_copy(
    policy: str
) -> None:
    """W3: upstream validates the bytes at sh_offset in the caller buffer
    after they were loaded: a valid loaded table is refused because of the
    caller's copy. Strict validated before writing and keeps its answer."""
    w, s, buf = start(policy)
    around_copy(w, buf, index=0, after=put(RSC_AT, "<I", 2))
    ans = load(s, buf)  # type: ignore[arg-type]
    if policy == "optee":
        assert ans.result == R.TEE_ERROR_BAD_FORMAT, ans
    else:
        assert ans.ok, ans
        check_signed_content(w, A.image)


def _signed_bad_table() -> tuple[bytes, bytes]:
    """An image whose *signed* resource table is invalid (ver 2), and the
    same image with a valid table in the buffer (so unsigned bytes)."""
    good = bytes(default_elf().raw)
    bad = bytearray(good)
    struct.pack_into("<I", bad, RSC_AT - ELF_AT, 2)
    shown = signed_image([good], signed_elves=[bytes(bad)])
    return bytes(signed_image([bytes(bad)])), bytes(shown)


SIGNED_BAD, SHOWN_GOOD = _signed_bad_table()


@pytest.mark.parametrize("policy", POLICIES)
def test_signed_invalid_table_is_refused(policy: str) -> None:
    ans = load(session(world(policy)), SIGNED_BAD)
    assert ans.result == R.TEE_ERROR_BAD_FORMAT, ans


def test_optee_validates_table_bytes_from_the_buffer_not_from_memory(
) -> None:
    """W3 upstream: the signed (invalid) table is loaded, then a valid one is
    shown in the buffer for the late check: LOAD_FW succeeds."""
    w = world("optee")
    s = session(w)
    buf = bytearray(SIGNED_BAD)
    around_copy(w, buf, index=0, after=put(RSC_AT, "<I", 1))
    ans = load(s, buf)
    assert ans.ok, ans
    assert struct.unpack("<I", w.memory.read_da(RSC_DA, 4))[0] == 2


def test_strict_validates_the_table_that_is_loaded(
) -> None:
    """Checklist 0.5: locate and validate the table from authenticated,
    loaded bytes. A valid table is shown while strict plans, the signed
    (invalid) one is put back before the copy: the load must not succeed."""
    w = world("strict")
    s = session(w)
    buf = bytearray(SHOWN_GOOD)
    after_plan(w, buf, put(RSC_AT, "<I", 2))
    ans = load(s, buf)
    assert not ans.ok, "strict accepted a table it never saw in loaded memory"
    # the loaded (signed) table is not the private copy the plan validated:
    # found once loaded, without hashing the segment twice, and wiped
    assert ans.result == R.TEE_ERROR_SECURITY, ans
    assert "not the copy validated" in ans.reason, ans.reason
    assert w.ta().last_load.scrubbed  # type: ignore[union-attr]
    assert w.memory.writes[-1].op == "scrub"
    failed_cleanly("strict", w, ans)
