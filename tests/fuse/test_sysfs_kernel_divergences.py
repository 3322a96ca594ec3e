"""Where the normal world's debugfs answers once differed from Linux 6.12's
``remoteproc_debugfs.c`` (read, not copied): the kernel's answer, asserted
through the file tree the mount serves.

* ``rproc_recovery_write``: 1..10 bytes, newline dropped, then
  ``strncmp(buf, word, count)`` in the order enabled, disabled, recover and
  ``-EINVAL`` for anything else (the model used to accept unknown words);
* ``rproc_coredump_write``: 1..20 bytes, same ``strncmp`` matching (the model
  used ``sysfs_streq``);
* ``rproc_crash_write``: ``kstrtouint_from_user(buf, count, 0)``: octal with a
  leading 0, no spaces, no ``_``/``0o``/``0b``, ``-ERANGE`` above UINT_MAX;
* ``rproc_trace_read``: the raw bytes up to the first NUL (the model decoded
  UTF-8, replacing invalid bytes);
* ``rproc_carveouts_show``: ``%pK`` and ``%pad`` (the model printed
  ``mapped`` and a bare hex number).
"""

from __future__ import annotations

import errno
from pathlib import Path

from fuse_helpers import signed

from rproctee.fuse.boards import BoardOptions, Boards, build_boards
from rproctee.fuse.tree import FsError, SysfsTree
from rproctee.linux.state import RprocState

DBG = "kernel/debug/remoteproc/remoteproc0"


def _tree(firmware_dir: Path) -> tuple[SysfsTree, Boards]:
    boards = build_boards(BoardOptions(firmware_path=firmware_dir), firmware_dir,
                          key_pem=signed()[1])  # fmt: skip
    return SysfsTree(boards.instances), boards


def _errno(tree: SysfsTree, name: str, data: bytes) -> int | None:
    try:
        tree.write(f"{DBG}/{name}", data)
    except FsError as exc:
        return exc.errno
    return None


def test_debugfs_recovery_refuses_unknown_words(firmware_dir: Path) -> None:
    tree, _ = _tree(firmware_dir)
    assert _errno(tree, "recovery", b"whatever") == errno.EINVAL


def test_debugfs_recovery_matches_with_strncmp(firmware_dir: Path) -> None:
    tree, boards = _tree(firmware_dir)
    assert _errno(tree, "recovery", b"d") is None  # strncmp("d", "disabled", 1)
    assert boards.systems[0].rproc.recovery_disabled


def test_debugfs_coredump_matches_with_strncmp(firmware_dir: Path) -> None:
    tree, boards = _tree(firmware_dir)
    assert _errno(tree, "coredump", b"en") is None
    assert boards.systems[0].rproc.dump_conf.word == "enabled"


def test_debugfs_crash_parses_as_kstrtouint(firmware_dir: Path) -> None:
    tree, boards = _tree(firmware_dir)
    rproc = boards.systems[0].rproc
    rproc.boot()
    rproc.recovery_disabled = True
    assert _errno(tree, "crash", b" 1") == errno.EINVAL
    assert _errno(tree, "crash", b"1_0") == errno.EINVAL
    assert _errno(tree, "crash", b"4294967296") == errno.ERANGE
    assert rproc.state == RprocState.RUNNING  # none of those crashed it
    assert _errno(tree, "crash", b"010\n") is None  # octal 8: a crash
    assert rproc.state == RprocState.CRASHED


def test_debugfs_trace_reads_raw_bytes(firmware_dir: Path) -> None:
    tree, boards = _tree(firmware_dir)
    system = boards.systems[0]
    system.rproc.boot()
    trace = system.rproc.traces[0]
    system.memory.copy_in(trace.da, b"caf\xe9 \xff\n\0")  # not UTF-8
    assert tree.read(f"{DBG}/trace0") == b"caf\xe9 \xff\n"


def test_debugfs_carveouts_print_pk_and_pad(firmware_dir: Path) -> None:
    tree, boards = _tree(firmware_dir)
    rproc = boards.systems[0].rproc
    rproc.boot()
    text = tree.read(f"{DBG}/carveout_memories")
    blocks = text.split(b"\n\n")[:-1]  # each block ends with an empty line
    assert len(blocks) == len(rproc.carveouts)
    ring = next(b for b in blocks if b"\tName: vdev0vring0\n" in b)
    assert ring == (
        b"Carveout memory entry:\n\tName: vdev0vring0\n"
        b"\tVirtual address: ffff800090040000\n"  # ioremap_wc of pa 0x10040000
        b"\tDMA address: 0x0000000010040000\n"
        b"\tDevice address: 0x10040000\n\tLength: 0x1000 Bytes"
    )
    # reserved memory the core never maps: carveout->va is NULL
    assert b"\tName: vdev0buffer\n\tVirtual address: 0000000000000000\n" in text
