"""The tree without FUSE: what the VFS adds around the normal world's views
(kernfs's page and C-string view of a write, modes, open refusals), the
boards' options, ``request_firmware`` over a directory, the event lines."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path

import pytest
from fuse_helpers import FIRMWARE, signed

from rproctee.fuse.boards import (
    BoardError,
    BoardOptions,
    Boards,
    EventWriter,
    FirmwareDir,
    build_boards,
)
from rproctee.fuse.tree import PAGE_SIZE, FsError, SysfsTree
from rproctee.linux.errors import RprocErrno
from rproctee.linux.state import RprocState

DEV = "devices/platform/ahb/10000000.m4/remoteproc/remoteproc0"
DBG = "kernel/debug/remoteproc/remoteproc0"


def _tree(firmware_dir: Path, **options: object) -> tuple[SysfsTree, Boards]:
    opts = BoardOptions(firmware_path=firmware_dir, **options)  # type: ignore[arg-type]
    boards = build_boards(opts, firmware_dir, key_pem=signed()[1])
    return SysfsTree(boards.instances), boards


def _errno(call: object, *args: object) -> int:
    with pytest.raises(FsError) as exc:
        call(*args)  # type: ignore[operator]
    return int(exc.value.errno)


def test_a_store_sees_a_c_string_of_at_most_a_page(firmware_dir: Path) -> None:
    tree, boards = _tree(firmware_dir)
    rproc = boards.systems[0].rproc
    # the kernel's copy ends at the first NUL: "start\0junk" is "start"
    assert tree.write(f"{DEV}/state", b"start\0junk") == 10
    assert rproc.state == RprocState.RUNNING
    assert tree.write(f"{DEV}/state", b"stop\n") == 5
    # one write reaches the store with one page at most; the count says so
    long_name = b"f" * (PAGE_SIZE + 100)
    assert tree.write(f"{DEV}/firmware", long_name) == PAGE_SIZE
    assert rproc.firmware == "f" * PAGE_SIZE
    assert _errno(tree.write, f"{DEV}/state", b"\0start") == errno.EINVAL


def test_uevent_takes_kobject_actions(firmware_dir: Path) -> None:
    tree, _ = _tree(firmware_dir)
    assert tree.read(f"{DEV}/uevent") == b"DEVTYPE=remoteproc\n"
    assert tree.write(f"{DEV}/uevent", b"change\n") == 7
    assert _errno(tree.write, f"{DEV}/uevent", b"explode\n") == errno.EINVAL


def test_open_refusals_are_kernfs_and_debugfs_ones(firmware_dir: Path) -> None:
    tree, boards = _tree(firmware_dir)
    # kernfs: no store means no open for writing, root or not
    assert _errno(tree.check_open, f"{DEV}/name", True, False) == errno.EACCES
    # debugfs: root opens anything; the missing op answers EINVAL
    assert tree.check_open(f"{DBG}/name", True, False).kind == "file"
    assert _errno(tree.write, f"{DBG}/name", b"x") == errno.EINVAL
    assert _errno(tree.read, f"{DBG}/crash") == errno.EINVAL
    assert _errno(tree.check_open, DEV, True, False) == errno.EISDIR
    assert _errno(tree.lookup, f"{DBG}/trace0") == errno.ENOENT  # not booted
    assert _errno(tree.readlink, f"{DEV}/state") == errno.EINVAL
    assert _errno(tree.listdir, f"{DEV}/state") == errno.ENOTDIR
    assert _errno(tree.lookup, "devices/platform/ahb.7") == errno.ENOENT


def test_sysfs_read_only_makes_the_files_0444(firmware_dir: Path) -> None:
    tree, boards = _tree(firmware_dir)
    boards.systems[0].rproc.sysfs_read_only = True
    for name in ("state", "firmware", "recovery", "coredump"):
        assert tree.lookup(f"{DEV}/{name}").mode == 0o444
        assert _errno(tree.check_open, f"{DEV}/{name}", True, False) == errno.EACCES
    assert tree.read(f"{DEV}/state") == b"offline\n"


def test_debugfs_write_returns_the_byte_count(firmware_dir: Path) -> None:
    tree, boards = _tree(firmware_dir)
    assert tree.write(f"{DBG}/coredump", b"enabled\n") == 8
    assert tree.read(f"{DBG}/coredump") == b"enabled\n"
    assert tree.read(f"{DEV}/coredump") == b"enabled\n"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("instances", 65, "--instances: 65 is not in 1..64"),
        ("series", "v16", "--series: 'v16' is not v15 or v22"),
        ("policy", "lax", "--policy: 'lax' is not optee or strict"),
        ("firmware", "", "--firmware: '' is not a file name"),
        ("firmware", "a\0b", "--firmware: 'a\\x00b' is not a file name"),
    ],
)
def test_bad_options_name_field_and_value(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(BoardError, match="^" + message.replace("\\", "\\\\")):
        BoardOptions(**{field: value}).validate()  # type: ignore[arg-type]


def test_key_needs_a_firmware_path_and_a_file(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="needs --firmware-path"):
        BoardOptions(key=tmp_path / "k.pub").validate()
    with pytest.raises(BoardError, match="is not a readable file"):
        BoardOptions(key=tmp_path / "k.pub", firmware_path=tmp_path).validate()


def test_firmware_dir_stays_inside_its_root(tmp_path: Path) -> None:
    root = tmp_path / "lib-firmware"
    (root / "st").mkdir(parents=True)
    (root / "st" / "m4.elf").write_bytes(b"fw")
    (tmp_path / "secret").write_bytes(b"no")
    (root / "escape").symlink_to(tmp_path / "secret")
    fw = FirmwareDir(root)
    assert fw.load("st/m4.elf") == b"fw"  # subdirectories, as request_firmware
    assert fw.load("../secret") is None
    assert fw.load("escape") is None  # a link out of the root
    assert fw.load("st") is None  # a directory is no firmware
    assert fw.load("missing") is None


def test_request_firmware_reads_the_current_name_when_asked(
    firmware_dir: Path,
) -> None:
    tree, boards = _tree(firmware_dir, firmware="other-fw")
    system = boards.systems[0]
    assert system.files == {}  # the directory holds the files, not the board
    # missing when the core asks: the write fails with ENOENT, nothing starts
    assert _errno(tree.write, f"{DEV}/state", b"start\n") == errno.ENOENT
    assert system.rproc.state == RprocState.OFFLINE
    (firmware_dir / "other-fw").write_bytes((firmware_dir / FIRMWARE).read_bytes())
    assert tree.write(f"{DEV}/state", b"start\n") == 6  # read at this start
    asked = [e.detail["firmware"] for e in system.log.events
             if e.name == "request_firmware"]  # fmt: skip
    assert asked == ["other-fw"]
    tree.write(f"{DEV}/state", b"stop\n")
    (firmware_dir / "other-fw").unlink()
    assert _errno(tree.write, f"{DEV}/state", b"start\n") == errno.ENOENT
    with pytest.raises(RprocErrno, match="Direct firmware load for other-fw"):
        boards.firmware.request("other-fw")


def test_event_lines_carry_the_instance(firmware_dir: Path) -> None:
    _, boards = _tree(firmware_dir, instances=2)
    stream = io.StringIO()
    writer = EventWriter(stream, boards.systems)
    boards.systems[1].rproc.boot()
    writer.flush()
    first = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {e["instance"] for e in first} == {0, 1}
    assert any(e["instance"] == 1 and e["kind"] == "invoke_ret" for e in first)
    writer.flush()  # nothing new: nothing written twice
    assert len(stream.getvalue().splitlines()) == len(first)
    seqs = [e["seq"] for e in first if e["instance"] == 1]
    assert seqs == list(range(len(boards.systems[1].log.events)))


def test_shutdown_stops_every_user_and_a_crashed_processor(firmware_dir: Path) -> None:
    _, boards = _tree(firmware_dir, instances=2)
    first, second = (s.rproc for s in boards.systems)
    first.boot()
    first.boot()  # two users (6.12 counts a second start)
    second.boot()
    second.recovery_disabled = True
    second.report_crash(1)
    assert second.state == RprocState.CRASHED
    assert boards.shutdown() == []
    assert [r.state for r in (first, second)] == [RprocState.OFFLINE] * 2
    assert first.power == second.power == 0
    assert [c["cmd"] for c in boards.systems[0].log.tee_calls()][-2:] == [
        "STOP", "RELEASE_FW"]  # fmt: skip


def test_a_bad_key_file_is_named_before_anything_runs(
    tmp_path: Path, firmware_dir: Path
) -> None:
    garbage = tmp_path / "key.pem"
    garbage.write_text("not a key\n")
    opts = BoardOptions(firmware_path=firmware_dir, key=garbage)
    with pytest.raises(BoardError, match=f"^--key: {garbage} is not a usable PEM key"):
        build_boards(opts, firmware_dir)
