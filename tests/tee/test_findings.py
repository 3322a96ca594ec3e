"""Regression tests for the findings of the independent fuzz campaign (issue 7).

1. duplicate PT_LOAD headers made strict's overlap check raise TypeError;
2. any exception escaping the TA reached the client;
3. read-only regions: refused late, clean-up stopped on them, RELEASE failed;
4. strict re-read the ELF header (and section headers) from the caller buffer;
5. concurrent calls interleaved inside the single-instance TA.
"""

from __future__ import annotations

import struct
import threading

import pytest

from rproctee.platform.memory import RegionSpec
from rproctee.tee import TA_UUID, TeeContext, TeeResult, ta_elf
from rproctee.tee.params import value_in
from rproctee.tee.ta_remoteproc import TaCommand

from .factory import (
    DK2,
    Seg,
    default_elf,
    default_tlvs,
    load,
    make_elf,
    session,
    signed_image,
    world,
)
from .fuzz_helpers import check_signed_content, check_writes, memory_is_zero

R = TeeResult
POLICIES = ("optee", "strict")


def _release(s: object, rproc_id: int = 0) -> object:
    return s.invoke_command(TaCommand.RELEASE_FW, [value_in(rproc_id)])  # type: ignore[attr-defined]


def _start(s: object, rproc_id: int = 0) -> object:
    return s.invoke_command(TaCommand.START_FW, [value_in(rproc_id)])  # type: ignore[attr-defined]


# -- 1. duplicate PT_LOAD -------------------------------------------------------


def _duplicate_ptload_image() -> bytearray:
    """Program header 0 copied over program header 1, hash table rebuilt, re-signed."""
    code = bytes(range(64)) * 2
    elf = make_elf([Seg(0x0, code), Seg(0x0, code)], rsc_in=None)
    return signed_image([bytes(elf.raw)])


@pytest.mark.parametrize("policy", POLICIES)
def test_duplicate_pt_load_gets_an_answer(policy: str) -> None:
    w = world(policy)
    ans = load(session(w), _duplicate_ptload_image())
    check_writes(w)
    if policy == "optee":
        assert ans.ok, ans  # upstream loads the same bytes twice
    else:
        assert ans.result == R.TEE_ERROR_BAD_FORMAT, ans
        assert "overlap" in ans.reason
        assert not w.memory.writes  # refused by the plan, before any write


# -- 2. any exception in the TA: TARGET_DEAD, instance gone ---------------------


class _ModelDefect(Exception):
    pass


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("phase", ["authenticated", "segment_copy_after"])
def test_unexpected_exception_in_the_ta_is_target_dead(policy: str, phase: str) -> None:
    w = world(policy)
    s = session(w)

    def hook(name: str, info: dict[str, object]) -> None:
        if name == phase:
            raise _ModelDefect("boom")

    w.on_phase = hook
    ans = load(s, signed_image([bytes(default_elf().raw)]))
    assert ans.result == R.TEE_ERROR_TARGET_DEAD, ans
    assert "_ModelDefect: boom" in ans.reason
    assert "Traceback" in ans.traceback and "_ModelDefect" in ans.traceback
    assert w.ta() is None  # the instance is gone with its state
    assert load(s, b"x" * 64).result == R.TEE_ERROR_TARGET_DEAD  # session dead
    check_writes(w)
    if policy == "strict":
        assert memory_is_zero(w)  # the dying TA wiped what it wrote
    s.close()
    w.on_phase = None
    fresh = session(w)  # a new instance, state OFF
    assert _start(fresh).result == R.TEE_ERROR_BAD_PARAMETERS  # no context
    assert load(fresh, signed_image([bytes(default_elf().raw)])).ok


def test_cli_load_report_keeps_the_traceback() -> None:
    from rproctee.cli.tee_cmds import _answer_dict
    from rproctee.tee.core import Answer

    answer = Answer(R.TEE_ERROR_TARGET_DEAD, reason="TA aborted", traceback="Tb")
    assert _answer_dict(answer)["traceback"] == "Tb"
    assert "traceback" not in _answer_dict(Answer(R.TEE_SUCCESS))


# -- 3. read-only regions -------------------------------------------------------

#: DK2 with RETRAM (da 0) read-only: code executed in place, never loaded.
RO_DK2 = tuple(
    RegionSpec(r.name, r.da, r.pa, r.size, "rx" if r.name == "retram" else "rwx")
    for r in DK2
)


def _into_read_only_second() -> bytearray:
    """Segment 0 in MCUSRAM2 (writable), segment 1 in RETRAM (read-only)."""
    elf = make_elf(
        [Seg(0x10000000, b"\x11" * 64, 0x100), Seg(0x0, b"\x22" * 64)], rsc_in=0
    )
    return signed_image([bytes(elf.raw)])


def test_strict_refuses_a_read_only_target_before_any_write() -> None:
    w = world("strict", RO_DK2)
    ans = load(session(w), _into_read_only_second())
    assert ans.result == R.TEE_ERROR_ACCESS_DENIED, ans
    assert "read-only" in ans.reason and "retram" in ans.reason
    assert not w.memory.writes


def test_optee_refuses_the_write_and_release_then_succeeds() -> None:
    w = world("optee", RO_DK2)
    s = session(w)
    ans = load(s, _into_read_only_second())
    assert ans.result == R.TEE_ERROR_ACCESS_DENIED, ans
    assert [x.da for x in w.memory.writes if x.op == "copy"] == [0x10000000]
    assert not w.ta().last_load.scrubbed  # type: ignore[union-attr]  # W7 upstream
    assert _release(s).ok  # the clean-up skips the read-only region
    assert memory_is_zero(w)
    assert not [x for x in w.memory.writes if x.op == "scrub" and x.da == 0]


@pytest.mark.parametrize("policy", POLICIES)
def test_release_succeeds_on_a_platform_with_a_read_only_region(policy: str) -> None:
    w = world(policy, RO_DK2)
    s = session(w)
    elf = make_elf([Seg(0x10000000, b"\x11" * 64, 0x100)], rsc_in=0)
    assert load(s, signed_image([bytes(elf.raw)])).ok
    assert _release(s).ok
    assert memory_is_zero(w)


def test_strict_scrubs_everything_written_and_reports_the_first_error() -> None:
    """A hash mismatch after writes, on a platform with a read-only region:
    the answer is the real error (SECURITY), and every written byte is wiped."""
    w = world("strict", RO_DK2)
    a = make_elf([Seg(0x10000000, b"\x11" * 64), Seg(0x30000000, b"\x33" * 64)])
    b = bytearray(a.raw)
    b[a.seg_offsets[1]] ^= 0xFF  # segment 1 differs from what was signed
    ans = load(session(w), signed_image([bytes(b)], signed_elves=[bytes(a.raw)]))
    assert ans.result == R.TEE_ERROR_SECURITY, ans
    assert w.ta().last_load.scrubbed  # type: ignore[union-attr]
    assert memory_is_zero(w)
    check_writes(w)


# -- 4. strict reads every header once ------------------------------------------


def test_strict_reads_the_elf_and_section_headers_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    elf = default_elf()
    image = signed_image([bytes(elf.raw)])
    base = len(image) - len(elf.raw) - (-len(elf.raw) % 8)
    reads: list[tuple[int, int]] = []
    original = ta_elf.SharedReader.read

    def logged(self: ta_elf.SharedReader, off: int, n: int) -> bytes:
        if self.view.obj is image or self.view.nbytes == len(image):
            reads.append((off, n))
        return original(self, off, n)

    monkeypatch.setattr(ta_elf.SharedReader, "read", logged)
    assert load(session(world("strict")), image).ok

    def hits(start: int, size: int) -> list[tuple[int, int]]:
        return [r for r in reads if r[0] < start + size and start < r[0] + r[1]]

    assert hits(base, 52) == [(base, 52)]  # the ELF header: once
    shdrs = base + elf.shoff
    assert hits(shdrs, 3 * 40) == [(shdrs, 3 * 40)]  # the section headers: once


# -- 5. concurrent callers see a serial order -----------------------------------


@pytest.mark.parametrize("policy", POLICIES)
def test_threads_sharing_one_session_see_serial_answers(policy: str) -> None:
    w = world(policy)
    s = session(w)
    image = signed_image([bytes(default_elf().raw)])
    assert load(s, image).ok
    answers: list[object] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(30):
            ans = load(s, image) if (i + k) % 2 else _release(s)
            with lock:
                answers.append(ans)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # LOAD_FW (OFF -> LOADED, or LOADED: success, nothing done) and RELEASE_FW
    # (not STARTED: success) always succeed in any serial order
    bad = [a for a in answers if not a.ok]  # type: ignore[attr-defined]
    assert not bad, bad[:3]
    assert load(s, image).ok
    check_signed_content(w, image)


def test_a_waiting_open_session_gets_a_new_instance_after_a_death() -> None:
    """Opening a session while the instance dies: the caller gets a fresh one."""
    w = world("strict")
    ctx = TeeContext(w.core)
    first = ctx.open_session(TA_UUID, [value_in(0)])

    def hook(name: str, info: dict[str, object]) -> None:
        raise _ModelDefect("die")

    w.on_phase = hook
    assert load(first, signed_image([bytes(default_elf().raw)])).result == (
        R.TEE_ERROR_TARGET_DEAD
    )
    w.on_phase = None
    second = ctx.open_session(TA_UUID, [value_in(0)])  # first is dead, not busy
    assert load(second, signed_image([bytes(default_elf().raw)])).ok


# -- strict gaps: inconsistent resource tables, PKEYINFO -------------------------


def _vdev_table(num_of_vrings: int, config_len: int, tail: bytes = b"") -> bytes:
    vdev = struct.pack("<5I2B2x", 7, 0, 0, 0, config_len, 0, num_of_vrings)
    return struct.pack("<4II", 1, 1, 0, 0, 20) + struct.pack("<I", 3) + vdev + tail


INCONSISTENT_TABLES = {
    # a vdev declaring two vrings the table does not hold
    "vdev-vrings-past-table": _vdev_table(2, 0),
    # config_len so large that vrings + config wrap 32 bits
    "vdev-config-len-wraps": _vdev_table(1, 0xFFFFFFF0, bytes(20)),
    # an entry offset pointing into the header
    "entry-offset-in-header": struct.pack("<4II", 1, 1, 0, 0, 8) + bytes(12),
    # a carveout whose reserved word is not zero
    "carveout-reserved": struct.pack("<4II", 1, 1, 0, 0, 20)
    + struct.pack("<I5I", 0, 0x10000000, 0x10000000, 0x1000, 0, 1)
    + b"cma".ljust(32, b"\0"),
}


@pytest.mark.parametrize("name", sorted(INCONSISTENT_TABLES))
@pytest.mark.parametrize("policy", POLICIES)
def test_inconsistent_resource_table(policy: str, name: str) -> None:
    elf = make_elf(
        [Seg(0x0, bytes(range(64)) * 2), Seg(0x10000000, b"\x11" * 8, 0x208)],
        table=INCONSISTENT_TABLES[name],
    )
    w = world(policy)
    ans = load(session(w), signed_image([bytes(elf.raw)]))
    if policy == "optee":
        assert ans.ok, ans  # upstream checks only the header and offsets
    else:
        assert ans.result == R.TEE_ERROR_BAD_FORMAT, ans
        assert "resource table" in ans.reason
        assert not w.memory.writes


@pytest.mark.parametrize("policy", POLICIES)
def test_pkeyinfo_on_a_platform_that_ignores_it(policy: str) -> None:
    elf = bytes(default_elf().raw)
    tlvs = default_tlvs([elf]) + [(0x11, b"key-id:42")]  # PKEYINFO
    w = world(policy)
    ans = load(session(w), signed_image([elf], tlvs=tlvs))
    if policy == "optee":
        assert ans.ok, ans  # upstream: the bytes reach the PTA, which ignores them
    else:
        assert ans.result == R.TEE_ERROR_BAD_PARAMETERS, ans
        assert "PKEYINFO" in ans.reason
        assert not w.memory.writes


def test_strict_coredump_after_stop_until_release() -> None:
    """rproc_boot_recovery dumps after STOP_FW: the image is still in memory."""
    from rproctee.tee.params import memref_out

    w = world("strict")
    s = session(w)
    assert load(s, signed_image([bytes(default_elf().raw)])).ok
    assert _start(s).ok
    assert s.invoke_command(TaCommand.STOP_FW, [value_in(0)]).ok

    def dump() -> object:
        out = memref_out(bytearray(1 << 20))
        return s.invoke_command(TaCommand.GET_COREDUMP, [value_in(0), out])

    ans = dump()
    assert ans.ok, ans  # type: ignore[attr-defined]
    assert _release(s).ok
    assert dump().result == R.TEE_ERROR_BAD_STATE  # type: ignore[attr-defined]


def test_the_core_lists_device_enum_tas() -> None:
    assert world("strict").core.enumerate_devices() == [TA_UUID]


@pytest.mark.parametrize("policy", POLICIES)
def test_name_cut_by_the_end_of_the_name_table(policy: str) -> None:
    """Upstream's bounded strncmp reads a name cut by the end of the name
    table as .resource_table; strict refuses that ambiguity, so it never
    accepts what upstream judges differently (found by hypothesis)."""
    elf = default_elf()
    raw = bytearray(elf.raw)
    strtab = elf.shoff + 2 * 40  # the .shstrtab section header
    struct.pack_into("<I", raw, strtab, 0)  # its own name: ""
    struct.pack_into("<I", raw, strtab + 20, 16)  # ends inside ".resource_table\0"
    w = world(policy)
    ans = load(session(w), signed_image([bytes(raw)]))
    if policy == "optee":
        assert ans.ok, ans
    else:
        assert ans.result == R.TEE_ERROR_BAD_FORMAT, ans
        assert "cut by the end of the name table" in ans.reason
        assert not w.memory.writes
