"""The mounted ABI driven by a shell: layout, bytes, errnos, and what a
write did to the model (state, device memory, TEE calls)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from fuse_helpers import FIRMWARE, Served, serve_boards, signed

from rproctee.elf import scan_elf
from rproctee.fuse.boards import BoardOptions, build_boards
from rproctee.fuse.server import MountFailed, mounted
from rproctee.fuse.tree import SysfsTree
from rproctee.linux.state import RprocState
from rproctee.linux.sysfs import Debugfs, Sysfs

CLASS = "class/remoteproc/remoteproc0"
DEV = "devices/platform/ahb/10000000.m4/remoteproc/remoteproc0"
DBG = "kernel/debug/remoteproc/remoteproc0"


def _ls(served: Served, rel: str) -> list[str]:
    return sorted(os.listdir(served.path(rel)))


def test_layout_is_the_kernels(served_two: Served) -> None:
    s = served_two
    assert _ls(s, "class/remoteproc") == ["remoteproc0", "remoteproc1"]
    for k, bus in ((0, "ahb"), (1, "ahb.1")):
        link = s.path(f"class/remoteproc/remoteproc{k}")
        assert stat.S_ISLNK(os.lstat(link).st_mode)
        assert os.readlink(link) == (
            f"../../devices/platform/{bus}/10000000.m4/remoteproc/remoteproc{k}"
        )
    assert _ls(s, CLASS) == ["coredump", "device", "firmware", "name", "recovery",
                             "state", "subsystem", "uevent"]  # fmt: skip
    assert os.path.samefile(s.path(f"{CLASS}/subsystem"), s.path("class/remoteproc"))
    assert os.path.samefile(s.path(f"{CLASS}/device"),
                            s.path("devices/platform/ahb/10000000.m4"))  # fmt: skip
    assert _ls(s, DBG) == ["carveout_memories", "coredump", "crash", "name",
                           "recovery", "resource_table"]  # fmt: skip
    # tools list the class with find -maxdepth 1: the links, not their files
    found = s.sh("find class/remoteproc/remoteproc* -maxdepth 1")
    assert found.stdout.split() == ["class/remoteproc/remoteproc0",
                                    "class/remoteproc/remoteproc1"]  # fmt: skip


def test_modes_are_the_kernels(served: Served) -> None:
    def mode(rel: str) -> int:
        return stat.S_IMODE(os.stat(served.path(rel)).st_mode)

    assert {n: mode(f"{DEV}/{n}") for n in ("state", "firmware", "recovery",
                                            "coredump", "name", "uevent")} == {
        "state": 0o644, "firmware": 0o644, "recovery": 0o644, "coredump": 0o644,
        "name": 0o444, "uevent": 0o644}  # fmt: skip
    assert {n: mode(f"{DBG}/{n}") for n in _ls(served, DBG)} == {
        "name": 0o400, "recovery": 0o600, "crash": 0o200, "resource_table": 0o400,
        "carveout_memories": 0o400, "coredump": 0o600}  # fmt: skip
    assert os.stat(served.path(f"{DEV}/state")).st_size == 4096  # a sysfs page
    assert os.stat(served.path(f"{DBG}/name")).st_size == 0


def test_reads_are_byte_for_byte_the_models(served: Served) -> None:
    rproc = served.boards.systems[0].rproc
    expected = {"state": b"offline\n", "firmware": FIRMWARE.encode() + b"\n",
                "recovery": b"enabled\n", "coredump": b"disabled\n", "name": b"m4\n",
                "uevent": b"DEVTYPE=remoteproc\n"}  # fmt: skip
    for name, content in expected.items():
        assert served.path(f"{CLASS}/{name}").read_bytes() == content
    assert served.path(f"{DBG}/resource_table").read_bytes() == (
        b"No resource table found\n"
    )
    assert served.path(f"{DBG}/carveout_memories").read_bytes() == b""
    # the same answers as the normal world's own views, file by file
    sysfs, debugfs = Sysfs(rproc), Debugfs(rproc)
    for name in ("state", "firmware", "recovery", "coredump", "name"):
        assert served.path(f"{DEV}/{name}").read_text() == sysfs.read(name)
    for name in ("name", "recovery", "coredump", "resource_table"):
        assert served.path(f"{DBG}/{name}").read_text() == debugfs.read(name)


def test_echo_start_boots_through_the_ta(served: Served, demo_elf: bytes) -> None:
    system = served.boards.systems[0]
    done = served.sh(f"echo start > {CLASS}/state && cat {CLASS}/state")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "running\n"
    assert system.rproc.state == RprocState.RUNNING
    tee = [(c["cmd"], c["result"]) for c in system.log.tee_calls()]
    assert ("LOAD_FW", "TEE_SUCCESS") in tee and tee[-1] == ("START", "TEE_SUCCESS")
    # what the TA copied: every PT_LOAD's file bytes sit at its address, but
    # the resource table, where the firmware has since set the vdev status
    elf = scan_elf(demo_elf)
    sh = elf.shdrs[elf.find_section(".resource_table")]
    table_da, table_len = int(sh["sh_addr"]), int(sh["sh_size"])
    for i, ph in enumerate(elf.phdrs):
        da, size = int(ph["p_paddr"]), int(ph["p_filesz"])
        loaded = bytearray(system.memory.read_da(da, size))
        image = bytearray(elf.segment_bytes(i))
        if da <= table_da < da + size:
            cut = slice(table_da - da, table_da - da + table_len)
            assert loaded[cut] == system.rproc.table_bytes()
            loaded[cut] = image[cut] = b""
        assert loaded == image
    # the firmware's trace buffer, through debugfs, and the table in effect
    assert _ls(served, DBG)[-1] == "trace0"
    trace = served.sh(f"cat {DBG}/trace0")
    assert trace.stdout == "cm4: firmware up (boot #1), rpmsg ready\n"
    table = served.path(f"{DBG}/resource_table").read_text()
    assert table == Debugfs(system.rproc).resource_table()
    assert "Entry 0 is of type trace\n" in table
    assert (
        "\tName: vdev0vring0\n" in served.path(f"{DBG}/carveout_memories").read_text()
    )


def test_echo_stop_shuts_down_and_releases(served: Served) -> None:
    system = served.boards.systems[0]
    assert served.sh(f"echo start > {CLASS}/state").returncode == 0
    code = system.memory.read_da(0x30000000, 0x1000)
    assert any(code)
    done = served.sh(f"echo stop > {CLASS}/state; cat {CLASS}/state")
    assert done.stdout == "offline\n" and done.stderr == ""
    assert [c["cmd"] for c in system.log.tee_calls()][-2:] == ["STOP", "RELEASE_FW"]
    assert "trace0" not in _ls(served, DBG)
    assert not system.remote.running


def test_refused_writes_give_the_kernels_errno(served: Served) -> None:
    def bash(script: str) -> str:
        return served.sh(script, shell="bash").stderr

    assert "echo: write error: Invalid argument" in bash(f"echo stop > {CLASS}/state")
    assert "echo: write error: Invalid argument" in bash(f"echo go > {CLASS}/state")
    assert "echo: write error: Invalid argument" in bash(
        f"echo maybe > {CLASS}/recovery"
    )
    assert "write error: Invalid argument" in bash(f"echo > {CLASS}/firmware")
    assert "Permission denied" in bash(f"echo x > {CLASS}/name")  # no store: EACCES
    assert served.sh(f"echo start > {CLASS}/state").returncode == 0
    busy = "echo: write error: Device or resource busy"
    assert busy in bash(f"echo other-fw > {CLASS}/firmware")
    # Linux 6.12's state_store counts a second start as one more user
    assert bash(f"echo start > {CLASS}/state") == ""
    assert served.boards.systems[0].rproc.power == 2
    assert served.path(f"{CLASS}/firmware").read_text() == FIRMWARE + "\n"


def test_crash_and_recovery_through_debugfs(served: Served) -> None:
    rproc = served.boards.systems[0].rproc
    assert served.sh(f"echo start > {CLASS}/state").returncode == 0
    assert served.sh(f"echo disabled > {CLASS}/recovery").returncode == 0
    assert served.sh(f"echo 1 > {DBG}/crash").returncode == 0
    assert served.path(f"{CLASS}/state").read_text() == "crashed\n"
    busy = served.sh(f"echo inline > {CLASS}/coredump", shell="bash")
    assert "write error: Device or resource busy" in busy.stderr
    assert served.sh(f"echo recover > {CLASS}/recovery").returncode == 0
    assert served.path(f"{CLASS}/state").read_text() == "running\n"
    assert rproc.crash_cnt == 1
    assert served.path(f"{DBG}/trace0").read_text() == (
        "cm4: firmware up (boot #2), rpmsg ready\n"
    )
    bad = served.sh(f"echo watchdog > {DBG}/crash", shell="bash")
    assert "write error: Invalid argument" in bad.stderr
    unreadable = served.sh(f"cat {DBG}/crash")
    assert unreadable.returncode != 0 and "Invalid argument" in unreadable.stderr


def test_firmware_names_a_file_under_the_firmware_path(
    served: Served, firmware_dir: os.PathLike[str]
) -> None:
    rproc = served.boards.systems[0].rproc
    assert served.sh(f"echo missing-fw > {CLASS}/firmware").returncode == 0
    assert rproc.firmware == "missing-fw"
    gone = served.sh(f"echo start > {CLASS}/state", shell="bash")
    assert "write error: No such file or directory" in gone.stderr
    assert rproc.state == RprocState.OFFLINE and rproc.power == 0
    # request_firmware reads the directory at boot time: the file appears now
    (firmware_dir / "missing-fw").write_bytes((firmware_dir / FIRMWARE).read_bytes())  # type: ignore[operator]
    assert served.sh(f"echo start > {CLASS}/state").returncode == 0
    assert rproc.state == RprocState.RUNNING
    # a name climbing out of /lib/firmware is not found
    assert served.sh(f"echo stop > {CLASS}/state").returncode == 0
    assert served.sh(f"echo ../../etc/passwd > {CLASS}/firmware").returncode == 0
    escaped = served.sh(f"echo start > {CLASS}/state", shell="bash")
    assert "No such file or directory" in escaped.stderr


def test_partial_reads_see_one_snapshot(served: Served) -> None:
    fd = os.open(served.path(f"{DBG}/resource_table"), os.O_RDONLY)
    try:
        first = os.read(fd, 5)
        rest = os.read(fd, 4096)
    finally:
        os.close(fd)
    assert first + rest == b"No resource table found\n"


def test_a_directory_cannot_be_written(served: Served) -> None:
    try:
        os.open(served.path(DEV), os.O_WRONLY)
    except OSError as exc:
        assert exc.errno == errno.EISDIR
    else:  # pragma: no cover - the assertion is the point
        raise AssertionError("opened a directory for writing")


@pytest.mark.parametrize(
    "options",
    [{"series": "v15"}, {"policy": "optee"}, {"tee": False}],
    ids=["v15", "optee", "elf-ops"],
)
def test_start_stop_under_every_series_policy_and_ops(
    tmp_path: Path, firmware_dir: Path, demo_elf: bytes, fuse_ok: None,
    options: dict[str, object],
) -> None:  # fmt: skip
    if options.get("tee") is False:  # plain ELF ops load the ELF itself
        (firmware_dir / FIRMWARE).write_bytes(demo_elf)
    code = bytes(scan_elf(demo_elf).segment_bytes(1))  # lands at 0x30000000
    for served in serve_boards(tmp_path / "mnt", firmware_dir, **options):
        system = served.boards.systems[0]
        up = served.sh(f"echo start > {CLASS}/state && cat {CLASS}/state {DBG}/trace0")
        assert up.stdout == "running\ncm4: firmware up (boot #1), rpmsg ready\n", (
            up.stderr
        )
        assert system.memory.read_da(0x30000000, len(code)) == code
        down = served.sh(f"echo stop > {CLASS}/state && cat {CLASS}/state")
        assert down.stdout == "offline\n", down.stderr
        assert system.rproc.power == 0 and not system.remote.running


def test_a_failed_mount_is_named_and_leaves_nothing(
    tmp_path: Path, firmware_dir: Path, fuse_ok: None
) -> None:
    opts = BoardOptions(firmware_path=firmware_dir)
    boards = build_boards(opts, firmware_dir, key_pem=signed()[1])
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(MountFailed, match=f"cannot mount on {not_a_dir}: not a dir"):
        with mounted(SysfsTree(boards.instances), not_a_dir):
            raise AssertionError("mounted on a file")  # pragma: no cover
    assert not os.path.ismount(not_a_dir)


def test_trace_open_across_a_stop_answers_eio(served: Served) -> None:
    assert served.sh(f"echo start > {CLASS}/state").returncode == 0
    fd = os.open(served.path(f"{DBG}/trace0"), os.O_RDONLY)
    try:
        first = os.read(fd, 5)
        # not a seq_file: each read copies from the buffer as it is now
        assert first + os.read(fd, 4096) == b"cm4: firmware up (boot #1), rpmsg ready\n"
        assert served.sh(f"echo stop > {CLASS}/state").returncode == 0
        with pytest.raises(OSError) as exc:
            os.pread(fd, 100, 0)
        assert exc.value.errno == errno.EIO  # debugfs_file_get on a removed file
    finally:
        os.close(fd)
