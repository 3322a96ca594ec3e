"""DeviceMemory: translation, whole-region containment, the write log, memmaps."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from rproctee.errors import AddressError
from rproctee.platform import DeviceMemory, RegionSpec, WriteRecord

DK2 = [
    RegionSpec("retram", 0x00000000, 0x38000000, 0x10000),
    RegionSpec("mcuram", 0x30000000, 0x30000000, 0x40000),
    RegionSpec("mcuram2", 0x10000000, 0x10000000, 0x40000),
    RegionSpec("vdev0vring0", 0x10040000, 0x10040000, 0x1000),
]


@pytest.fixture
def mem() -> DeviceMemory:
    return DeviceMemory(DK2)


def test_translation_both_ways(mem):
    assert mem.da_to_pa(0x38, 0x44) == 0x38000038
    assert mem.pa_to_da(0x38000038, 0x44) == 0x38
    assert mem.da_to_pa(0x10040000, 0x1000) == 0x10040000


@pytest.mark.parametrize(
    ("da", "size", "reason"),
    [
        (0x20000000, 4, "outside"),
        (0xFFFE, 4, "straddle"),  # runs off the end of retram
        (0x1003FFFC, 8, "straddle"),  # spans mcuram2 and vdev0vring0
        (0x0, 0, "zero-size"),
        (-4, 4, "outside"),
        (0xFFFFFFFF_FFFFFFFF, 2, "outside"),
    ],
)
def test_refused_ranges_write_nothing(mem, da, size, reason):
    with pytest.raises(AddressError) as info:
        mem.copy_in(da, b"\xab" * size)
    assert info.value.reason == reason
    assert mem.writes == []
    assert all(not mem.array(i).any() for i in range(len(DK2)))


def test_write_log_and_bytes(mem):
    digest = mem.copy_in_hashed(0x10000000, b"data", chunk_size=3)
    mem.fill(0x10000004, 0x200)
    mem.copy_in(0x0, b"\x01\x02")
    assert digest == hashlib.sha256(b"data").digest()
    assert mem.writes == [
        WriteRecord("copy", 0x10000000, 0x10000000, 4),
        WriteRecord("zero", 0x10000004, 0x10000004, 0x200),
        WriteRecord("copy", 0x0, 0x38000000, 2),
    ]
    assert mem.read_da(0x10000000, 6) == b"data\0\0"
    assert bytes(mem.view_pa(0x38000000, 2)) == b"\x01\x02"


def test_scrub_is_recorded(mem):
    mem.copy_in(0x30000000, b"secret")
    mem.scrub_region(1)
    assert mem.writes[-1] == WriteRecord("scrub", 0x30000000, 0x30000000, 0x40000)
    assert not mem.array(1).any()


def test_read_only_region(mem):
    ro = DeviceMemory([RegionSpec("rom", 0, 0x1000, 0x100, access="rx")])
    with pytest.raises(AddressError, match="read-only"):
        ro.copy_in(0, b"x")
    assert ro.writes == []


def test_memmap_backing_can_be_read_back(tmp_path):
    mem = DeviceMemory(DK2, backing_dir=tmp_path)
    mem.copy_in(0x4, b"firmware")
    mem.flush()
    on_disk = np.fromfile(tmp_path / "retram.bin", dtype=np.uint8)
    assert on_disk.size == 0x10000
    assert bytes(on_disk[4:12]) == b"firmware"


def test_region_that_ends_at_the_top_of_the_address_space():
    top = DeviceMemory([RegionSpec("top", 2**64 - 0x100, 0x1000, 0x100)])
    assert top.da_to_pa(2**64 - 4, 4) == 0x10FC
    with pytest.raises(AddressError):
        top.da_to_pa(2**64 - 4, 5)


@pytest.mark.parametrize("bad", [dict(size=0), dict(da=-1), dict(pa=2**64 - 1)])
def test_invalid_region_specs(bad):
    fields = dict(name="r", da=0, pa=0, size=16) | bad
    with pytest.raises(ValueError, match="region 'r'"):
        RegionSpec(**fields)
