"""Hostile resource tables (spec 3.3): each refused with the kernel's errno,
and a refused boot leaves nothing behind."""

from __future__ import annotations

import struct

import pytest
from linux_helpers import ANY, demo_table, fake_rproc

from rproctee.linux.errors import RprocErrno
from rproctee.linux.state import RprocState
from rproctee.linux.sysfs import Debugfs
from rproctee.rsctable import (
    DevmemRsc,
    TraceRsc,
    VdevRsc,
    VringRsc,
    build_resource_table,
)


def _patched(offset: int, fmt: str, *values: int) -> bytes:
    raw = bytearray(demo_table())
    struct.pack_into(fmt, raw, offset, *values)
    return bytes(raw)


TRACE_AT = 24  # header 16 + two offsets
CASES = {
    "truncated header": (demo_table()[:12], "header-less resource table"),
    "bad version": (_patched(0, "<I", 2), "unsupported fw ver: 2"),
    "reserved header word": (_patched(8, "<I", 1), "non zero reserved bytes"),
    "offset array past the end": (_patched(4, "<I", 1000), "resource table incomplete"),
    "entry offset past the end": (
        _patched(16, "<I", 0x7FFFFFF0), "rsc table is truncated"),
    "negative int offset": (_patched(16, "<I", 0x80000000), "rsc table is truncated"),
    "trace reserved": (_patched(TRACE_AT + 12, "<I", 5), "trace rsc has non zero"),
    "vdev config past the end": (
        _patched(TRACE_AT + 48 + 4 + 16, "<I", 0x1000), "vdev rsc is truncated"),
    "too many vrings": (_patched(TRACE_AT + 48 + 4 + 21, "<B", 3), "vdev rsc is"),
    "devmem without an IOMMU": (
        build_resource_table([DevmemRsc(0, 0x40000000, 0x40000000, 0x1000, 0, 0, "p")]),
        "devmem rsc without an IOMMU"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_table_refuses_the_boot(case: str) -> None:
    table, message = CASES[case]
    rproc, driver = fake_rproc(table)
    with pytest.raises(RprocErrno) as exc:
        rproc.boot()
    assert exc.value.name == "EINVAL", exc.value
    assert message in exc.value.message
    assert (rproc.state, rproc.power) == (RprocState.OFFLINE, 0)
    assert rproc.carveouts == [] and rproc.cached_table is None
    assert rproc.traces == [] and rproc.rvdevs == [] and rproc.notifyids == {}
    assert ("err", "Failed to process resources: -22") in rproc.messages
    assert "load" not in driver.calls  # segments are loaded after the resources


def test_bad_vring_fails_the_probe_not_the_boot() -> None:
    rings = (VringRsc(0x10040000, 16, 0, ANY, 0), VringRsc(0x10041000, 16, 16, ANY, 0))
    table = build_resource_table(
        [TraceRsc(0, 0x10000100, 256, 0, "log"),
         VdevRsc(0, 7, 0, 1, 0, 0, 0, 2, (0, 0), rings, b"")]
    )  # fmt: skip
    rproc, _ = fake_rproc(table)
    rproc.boot()
    assert rproc.state == RprocState.RUNNING
    assert rproc.rvdevs == [] and rproc.notifyids == {}
    assert any("invalid qsz (0)" in text for _, text in rproc.messages)


def test_vring_too_big_for_its_carveout_fails_the_probe() -> None:
    rproc, _ = fake_rproc(demo_table(vrings=(256, 16)))  # 2 pages > 0x1000
    rproc.boot()
    assert rproc.rvdevs == []
    assert any("doesn't fit len" in text for _, text in rproc.messages)


def test_table_rewritten_by_the_remote_is_revalidated_on_read() -> None:
    rproc, _ = fake_rproc()
    rproc.boot()
    memory = rproc.require_memory()
    assert "Entry 1 is of type vdev" in Debugfs(rproc).read("resource_table")
    memory.copy_in(0x200 + 4, struct.pack("<I", 0xFFFF))  # num: hostile
    text = Debugfs(rproc).read("resource_table")
    assert text.startswith("Resource table does not parse: resource table incomplete")
    rproc.shutdown()  # the host's cached copy is what recovery/shutdown use
    assert rproc.state == RprocState.OFFLINE
