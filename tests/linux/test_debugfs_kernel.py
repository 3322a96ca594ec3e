"""debugfs answers byte for byte as Linux 6.12's ``remoteproc_debugfs.c``
(read, not copied): the ``strncmp`` word match of ``recovery`` and
``coredump``, ``kstrtouint`` for ``crash``, raw ``trace0`` bytes, and the
``%pK``/``%pad`` lines of ``carveout_memories`` and ``resource_table``."""

from __future__ import annotations

import errno

import pytest
from linux_helpers import TABLE_DA, demo_table, fake_rproc

from rproctee.linux.errors import RprocErrno
from rproctee.linux.state import DumpConf, RprocState
from rproctee.linux.sysfs import (
    FAKE_IOREMAP_BASE,
    FAKE_KMALLOC_VA,
    Debugfs,
    Sysfs,
    kstrtouint_from_user,
    strncmp,
)
from rproctee.rsctable import (
    TraceRsc,
    UnknownRsc,
    VendorRsc,
    build_resource_table,
    parse_resource_table,
)


def _refused(fn, *args) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(RprocErrno) as exc:
        fn(*args)
    return exc.value.errno


def test_strncmp_is_c_strncmp() -> None:
    assert strncmp(b"d", b"disabled", 1) == 0
    assert strncmp(b"e\0", b"enabled", 2) != 0  # NUL against 'n'
    assert strncmp(b"enabled\0", b"enabled", 8) == 0  # the literal's NUL
    assert strncmp(b"dis\0abled", b"dis", 9) == 0  # both end at index 3
    assert strncmp(b"\xff", b"a", 1) > 0  # unsigned char


# what rproc_recovery_write does with each write: (flag after, recovered?)
RECOVERY = {
    b"enabled": "enabled", b"enabled\n": "enabled", b"e": "enabled",
    b"enab": "enabled", b"d": "disabled", b"disabled\n": "disabled",
    b"disabled\0x": "disabled",  # strncmp stops at the NULs
    b"r": "recover", b"recover\n": "recover",
}  # fmt: skip
RECOVERY_EINVAL = [
    b"", b"\n", b"\0", b"whatever", b"e\n", b"d\n", b"enabledx", b"Enabled",
    b"disabled\n\n", b"recovery", b"recover\n\0\0\0",  # 11 bytes
    b" enabled",
]  # fmt: skip


@pytest.mark.parametrize("data", list(RECOVERY), ids=repr)
def test_recovery_write_matches_prefixes_in_kernel_order(data: bytes) -> None:
    rproc, _ = fake_rproc()
    debugfs = Debugfs(rproc)
    rproc.recovery_disabled = RECOVERY[data] != "disabled"
    before = rproc.recovery_disabled
    assert debugfs.write("recovery", data) == len(data)
    want = {"enabled": False, "disabled": True, "recover": before}[RECOVERY[data]]
    assert rproc.recovery_disabled is want


@pytest.mark.parametrize("data", RECOVERY_EINVAL, ids=repr)
def test_recovery_write_refuses_what_no_word_matches(data: bytes) -> None:
    rproc, _ = fake_rproc()
    debugfs = Debugfs(rproc)
    for flag in (False, True):
        rproc.recovery_disabled = flag
        assert _refused(debugfs.write, "recovery", data) == errno.EINVAL
        assert rproc.recovery_disabled is flag  # nothing changed


def test_recovery_enabled_by_prefix_recovers_a_crashed_rproc() -> None:
    rproc, _ = fake_rproc()
    rproc.boot()
    rproc.recovery_disabled = True
    rproc.report_crash(1)
    assert rproc.state == RprocState.CRASHED
    assert Debugfs(rproc).write("recovery", b"en") == 2
    assert rproc.state == RprocState.RUNNING and not rproc.recovery_disabled


@pytest.mark.parametrize(
    ("data", "conf"),
    [
        (b"d", "disabled"),
        (b"disabled\n", "disabled"),
        (b"en", "enabled"),
        (b"e", "disabled"),  # strncmp("e", "disabled", 1) fails, "enabled" wins
        (b"i", "inline"),
        (b"inline\n", "inline"),
    ],  # fmt: skip
)
def test_coredump_write_matches_prefixes_in_kernel_order(
    data: bytes, conf: str
) -> None:
    rproc, _ = fake_rproc()
    rproc.dump_conf = DumpConf.INLINE if conf != "inline" else DumpConf.DISABLED
    assert Debugfs(rproc).write("coredump", data) == len(data)
    want = "enabled" if data == b"e" else conf
    assert rproc.dump_conf.word == want


def test_coredump_write_refusals_and_their_order() -> None:
    rproc, _ = fake_rproc()
    debugfs = Debugfs(rproc)
    for data in (b"", b"default", b"en\n", b"x" * 20, b"disabled" + b"\n" * 13):
        assert _refused(debugfs.write, "coredump", data) == errno.EINVAL
    assert rproc.dump_conf == DumpConf.DISABLED
    rproc.sysfs_read_only = True  # debugfs files stay 0600
    assert debugfs.write("coredump", b"inline") == 6
    rproc.sysfs_read_only = False
    rproc.boot()
    rproc.recovery_disabled = True
    rproc.report_crash(1)
    # the length check comes first, the crashed check before the word
    assert _refused(debugfs.write, "coredump", b"e" * 21) == errno.EINVAL
    assert _refused(debugfs.write, "coredump", b"nonsense") == errno.EBUSY
    assert _refused(debugfs.write, "coredump", b"en") == errno.EBUSY
    assert rproc.dump_conf == DumpConf.INLINE


def test_sysfs_coredump_keeps_sysfs_streq() -> None:
    rproc, _ = fake_rproc()
    sysfs = Sysfs(rproc)
    assert _refused(sysfs.write, "coredump", "en") == errno.EINVAL
    assert sysfs.write("coredump", "enabled\n") == 8
    assert rproc.dump_conf == DumpConf.ENABLED


KSTRTOUINT = {
    b"1": 1, b"+1": 1, b"1\n": 1, b"010\n": 8, b"0": 0, b"00": 0, b"0x1F": 31,
    b"0X1f\n": 31, b"+0x10": 16, b"4294967295": 0xFFFFFFFF,
    b"0xffffffff\n": 0xFFFFFFFF, b"037777777777": 0xFFFFFFFF,
    b"1\0garbage": 1,  # a C string ends at its NUL
    b"0" * 33 + b"7": 7,  # 34 bytes: all read
    b"0" * 34 + b"7": 0,  # 35 bytes: the 7 is past sizeof(buf) - 1
}  # fmt: skip
KSTRTOUINT_EINVAL = [
    b"", b"\n", b" 1", b"1 ", b"1_0", b"-1", b"++1", b"1\n\n", b"08", b"0x",
    b"0xg", b"0o7", b"0b1", b"1.0", b"watchdog", b"\x001", b"\xd9\xa1",
    b"4294967296x",  # no 64-bit overflow: the garbage decides
]  # fmt: skip
KSTRTOUINT_ERANGE = [
    b"4294967296",
    b"0x100000000",
    b"18446744073709551615",
    b"18446744073709551616x",  # past ULLONG_MAX: -ERANGE before the garbage
]


@pytest.mark.parametrize("data", list(KSTRTOUINT), ids=repr)
def test_kstrtouint_values(data: bytes) -> None:
    assert kstrtouint_from_user(data, "crash") == KSTRTOUINT[data]


@pytest.mark.parametrize(
    ("data", "code"),
    [(d, errno.EINVAL) for d in KSTRTOUINT_EINVAL]
    + [(d, errno.ERANGE) for d in KSTRTOUINT_ERANGE],
    ids=repr,
)
def test_kstrtouint_refusals_name_the_field(data: bytes, code: int) -> None:
    with pytest.raises(RprocErrno) as exc:
        kstrtouint_from_user(data, "crash")
    assert exc.value.errno == code and "crash" in exc.value.message


def test_crash_write_reports_the_parsed_type_or_nothing() -> None:
    rproc, _ = fake_rproc()
    rproc.boot()
    rproc.recovery_disabled = True
    debugfs = Debugfs(rproc)
    for data in (b" 1", b"1_0", b"watchdog"):
        assert _refused(debugfs.write, "crash", data) == errno.EINVAL
    assert _refused(debugfs.write, "crash", b"4294967296") == errno.ERANGE
    assert rproc.state == RprocState.RUNNING and rproc.crash_cnt == 0
    assert debugfs.write("crash", b"0x2\n") == 4
    assert rproc.state == RprocState.CRASHED
    assert ("err", "crash detected in m4: type fatal error") in rproc.messages


def test_trace_is_raw_bytes_up_to_the_first_nul() -> None:
    rproc, _ = fake_rproc()
    rproc.boot()
    t = rproc.traces[0]
    rproc.require_memory().copy_in(t.da, b"caf\xe9 \xff\n\0tail")
    debugfs = Debugfs(rproc)
    assert debugfs.read_bytes("trace0") == debugfs.trace_bytes(0) == b"caf\xe9 \xff\n"
    # text views: read() is lossless, trace() is for terminals
    assert (
        debugfs.read("trace0").encode("utf-8", "surrogateescape") == b"caf\xe9 \xff\n"
    )
    assert debugfs.trace(0) == "caf\ufffd \ufffd\n"
    rproc.require_memory().copy_in(t.da, b"x" * t.len)  # no NUL: strnlen stops
    assert debugfs.trace_bytes(0) == b"x" * t.len


def test_carveout_memories_prints_pk_and_pad() -> None:
    rproc, _ = fake_rproc()
    rproc.boot()
    text = Debugfs(rproc).read_bytes("carveout_memories")
    ring = rproc.carveouts[[m.name for m in rproc.carveouts].index("vdev0vring0")]
    assert (
        b"Carveout memory entry:\n"
        b"\tName: vdev0vring0\n"
        + f"\tVirtual address: {FAKE_IOREMAP_BASE + ring.dma:016x}\n".encode()
        + b"\tDMA address: 0x0000000010040000\n"
        b"\tDevice address: 0x10040000\n"
        b"\tLength: 0x1000 Bytes\n\n"
    ) in text
    assert text.count(b"Carveout memory entry:\n") == len(rproc.carveouts)
    # an entry without a mapping (reserved memory, no alloc) prints NULL
    buffer = next(m for m in rproc.carveouts if m.name == "vdev0buffer")
    assert buffer.va is None
    assert b"\tName: vdev0buffer\n\tVirtual address: 0000000000000000\n" in text


def test_carveout_addresses_are_stable_across_a_restart() -> None:
    rproc, _ = fake_rproc()
    rproc.boot()
    first = Debugfs(rproc).read_bytes("carveout_memories")
    rproc.shutdown()
    assert Debugfs(rproc).read_bytes("carveout_memories") == b""
    rproc.boot()
    assert Debugfs(rproc).read_bytes("carveout_memories") == first


def _table_with_unknowns() -> bytes:
    return build_resource_table(
        [TraceRsc(0, 0x10000100, 256, 0, "cm4_log"), UnknownRsc(0, 42),
         VendorRsc(0, 128)], tail=8,
    )  # fmt: skip


def test_unknown_resource_lines_carry_the_header_address() -> None:
    table = _table_with_unknowns()
    offsets = [e.offset for e in parse_resource_table(table, has_iommu=True).entries]
    rproc, _ = fake_rproc(table)
    rproc.set_cached_table(table)  # table_ptr = kmemdup(...)
    lines = Debugfs(rproc).read("resource_table").splitlines()
    assert lines[-2:] == [
        f"Unknown resource type found: 42 [hdr: {FAKE_KMALLOC_VA + offsets[1]:016x}]",
        f"Unknown resource type found: 128 [hdr: {FAKE_KMALLOC_VA + offsets[2]:016x}]",
    ]
    rproc.boot()  # table_ptr: the loaded table in retram (pa 0x38000000)
    base = FAKE_IOREMAP_BASE + 0x38000000 + TABLE_DA
    lines = Debugfs(rproc).read("resource_table").splitlines()
    assert (
        lines[-1] == f"Unknown resource type found: 128 [hdr: {base + offsets[2]:016x}]"
    )


def test_resource_table_prints_u32_percent_d_fields_signed() -> None:
    rproc, _ = fake_rproc()
    rproc.set_cached_table(demo_table())
    text = Debugfs(rproc).read("resource_table")
    assert "    Notify ID -1\n" in text  # FW_RSC_ADDR_ANY notifyid as %d


def test_name_is_cut_at_98_bytes() -> None:
    rproc, _ = fake_rproc()
    rproc.name = "m" * 120
    assert Debugfs(rproc).read_bytes("name") == b"m" * 98 + b"\n"
