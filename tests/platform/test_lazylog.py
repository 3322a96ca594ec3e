"""LazyRecords: rows added as columns read back as the records, in order,
through every list operation."""

from __future__ import annotations

import pickle

import numpy as np

from rproctee._lazylog import LazyRecords
from rproctee.platform.memory import DeviceMemory, RegionSpec, WriteRecord


def _log() -> LazyRecords[WriteRecord]:
    log = LazyRecords(WriteRecord)
    log.append(WriteRecord("copy", 1, 2, 3))
    log.add_columns(np.array(["zero", "copy"], dtype=object),
                    np.array([4, 5], np.uint64), [6, 7], np.array([8, 9]))  # fmt: skip
    return log


EXPECTED = [WriteRecord("copy", 1, 2, 3), WriteRecord("zero", 4, 6, 8),
            WriteRecord("copy", 5, 7, 9)]  # fmt: skip


def test_every_reader_sees_the_records_in_order() -> None:
    assert list(_log()) == EXPECTED
    assert len(_log()) == 3 and bool(_log())
    assert _log() == EXPECTED and EXPECTED == _log()
    assert _log()[1] == EXPECTED[1] and _log()[-1].da == 5
    assert _log()[1:] == EXPECTED[1:]
    assert WriteRecord("zero", 4, 6, 8) in _log()
    assert list(reversed(_log())) == EXPECTED[::-1]
    assert _log().index(EXPECTED[2]) == 2 and _log().count(EXPECTED[0]) == 1
    assert repr(_log()) == repr(EXPECTED)
    assert pickle.loads(pickle.dumps(_log())) == EXPECTED
    assert type(_log()[2].da) is int  # numpy integers become Python ints


def test_changes_keep_the_order() -> None:
    log = _log()
    log.append(WriteRecord("scrub", 0, 0, 1))
    assert log[-1].op == "scrub" and len(log) == 4
    log = _log()
    log.add_columns(["copy"], [10], [11], [12])
    log.extend([WriteRecord("fill", 0, 0, 0)])
    assert [w.da for w in log] == [1, 4, 5, 10, 0]
    log = _log()
    assert log.pop().da == 5 and len(log) == 2


def test_clear_drops_pending_rows() -> None:
    log = _log()
    log.clear()
    assert log == [] and len(log) == 0


def test_device_memory_log_from_columns() -> None:
    mem = DeviceMemory([RegionSpec("ram", 0x1000, 0x9000, 0x1000)])
    mem.copy_in(0x1000, b"\x01\x02")
    mem.add_write_columns(["zero"], [0x1002], [0x9002], [4])
    assert mem.writes == [WriteRecord("copy", 0x1000, 0x9000, 2),
                          WriteRecord("zero", 0x1002, 0x9002, 4)]  # fmt: skip
    # a plain list in its place (as the normal world's recorder puts one)
    # gets one append a record
    seen: list[WriteRecord] = []

    class Recording(list[WriteRecord]):
        def append(self, record: WriteRecord) -> None:
            seen.append(record)
            super().append(record)

    mem.writes = Recording(mem.writes)
    mem.add_write_columns(["zero"], [0x1010], [0x9010], [1])
    assert seen == [WriteRecord("zero", 0x1010, 0x9010, 1)] == mem.writes[-1:]
