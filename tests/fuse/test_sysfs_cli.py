"""``rproctee sysfs mount`` and ``rproctee sysfs run`` as users run them: a
foreground mount stopped by Ctrl-C, two shells at once, a KTAP selftest
written for a board run unchanged in the private namespace, and the errors
that name what is missing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fuse_helpers import DATA, Served

from rproctee.cli import main
from rproctee.fuse import server, session

SELFTEST = DATA / "remoteproc_selftest.sh"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from rproctee.cli import main; main()", *args]


def _events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _tee_cmds(events: list[dict[str, object]], instance: int) -> list[str]:
    return [str(e["name"]) for e in events
            if e["instance"] == instance and e["kind"] == "invoke_ret"]  # fmt: skip


def _wait_mounted(path: Path, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.ismount(path):
        if proc.poll() is not None:
            raise AssertionError(f"mount exited {proc.returncode}: {proc.stderr}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never became a mount point")
        time.sleep(0.05)


@pytest.mark.parametrize("end", ["SIGINT", "fusermount3 -u"])
def test_mount_serves_until_ended_then_stops_everything(
    tmp_path: Path, firmware_dir: Path, key_file: Path, fuse_ok: None, end: str
) -> None:
    mnt, events = tmp_path / "mnt", tmp_path / "events.jsonl"
    mnt.mkdir()
    proc = subprocess.Popen(
        _cli("sysfs", "mount", str(mnt), "-p", "stm32mp15-dk2",
             "--firmware-path", str(firmware_dir), "--key", str(key_file),
             "--events", str(events)),
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_mounted(mnt, proc)
        state = mnt / "class/remoteproc/remoteproc0/state"
        start = subprocess.run(["sh", "-c", f"echo start > {state}; cat {state}"],
                               capture_output=True, text=True, timeout=30)  # fmt: skip
        assert start.stdout == "running\n", start.stderr
        if end.startswith("SIG"):
            proc.send_signal(signal.Signals[end])
        else:
            server.unmount(mnt)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            server.unmount(mnt, lazy=True)
    assert proc.returncode == 0, err
    assert not os.path.ismount(mnt)
    assert "serving remoteproc0: TEE ops, series v22; firmware rproc-m4-fw" in err
    assert "unmounted; every processor stopped" in err
    # the shutdown at the end was a real one: STOP and RELEASE_FW through the TA
    log = _events(events)
    calls = _tee_cmds(log, 0)
    assert calls.count("START") == 1 and calls[-2:] == ["STOP", "RELEASE_FW"]
    assert all(e["result"] == "TEE_SUCCESS" for e in log if e["kind"] == "invoke_ret")


def test_two_shells_drive_two_instances_at_once(
    served_two: Served, tmp_path: Path
) -> None:
    # each shell runs its cycles in two halves and waits between them until
    # the other has finished its first half: whatever the scheduler does,
    # both instances are being started and stopped in the same window
    cycles = 4
    script = """
        me=$1 other=$((1 - $1)) marks=$2
        dir=class/remoteproc/remoteproc$me
        cycle() {
            echo start > $dir/state || exit 10
            [ "$(cat $dir/state)" = running ] || exit 11
            cat kernel/debug/remoteproc/remoteproc$me/trace0
            echo stop > $dir/state || exit 12
            [ "$(cat $dir/state)" = offline ] || exit 13
        }
        i=0
        while [ $i -lt {half} ]; do cycle; i=$((i + 1)); done
        touch $marks/half$me
        while [ ! -e $marks/half$other ]; do sleep 0.01; done
        while [ $i -lt {n} ]; do cycle; i=$((i + 1)); done
    """.replace("{n}", str(cycles)).replace("{half}", str(cycles // 2))
    shells = [
        subprocess.Popen(["sh", "-c", script, "sh", str(k), str(tmp_path)],
                         cwd=served_two.root, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for k in (0, 1)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=60) for p in shells]
    assert [p.returncode for p in shells] == [0, 0], outputs
    boots = [f"cm4: firmware up (boot #{n}), rpmsg ready" for n in range(1, 5)]
    assert [out.splitlines() for out, _ in outputs] == [boots, boots]
    for system in served_two.boards.systems:
        calls = [c["cmd"] for c in system.log.tee_calls()]
        assert calls.count("START") == cycles and calls.count("STOP") == cycles
        assert system.rproc.power == 0 and not system.remote.running


def test_selftest_written_for_a_board_runs_unchanged(
    tmp_path: Path, namespace_ok: None
) -> None:
    events = tmp_path / "events.jsonl"
    done = subprocess.run(
        _cli("sysfs", "run", "-p", "stm32mp15-dk2", "--instances", "2",
             "--events", str(events), "--", "sh", str(SELFTEST)),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["KTAP version 1", "1..8"]
    results = [line for line in lines if re.match(r"(not )?ok \d+ ", line)]
    assert results == [
        "ok 1 remoteproc0 (m4) is offline", "ok 2 remoteproc0 start",
        "ok 3 remoteproc0 stop", "ok 4 remoteproc1 (m4) is offline",
        "ok 5 remoteproc1 start", "ok 6 remoteproc1 stop",
        "ok 7 all 2 started together", "ok 8 all 2 stopped together",
    ]  # fmt: skip
    assert lines[-1] == "# Totals: pass:8 fail:0 xfail:0 xpass:0 skip:0 error:0"
    log = _events(events)
    for k in (0, 1):  # one by one, then together: two real boots each
        assert _tee_cmds(log, k).count("START") == 2
        assert _tee_cmds(log, k)[-2:] == ["STOP", "RELEASE_FW"]
    assert not os.path.exists("/sys/class/remoteproc/remoteproc1")  # host untouched


def test_run_returns_the_commands_status_and_paths_resolve(
    namespace_ok: None, capfd: pytest.CaptureFixture[str]
) -> None:
    # in this process (CliRunner), the child's output caught at the fds
    script = (
        "cd /sys/class/remoteproc/remoteproc0 && pwd -P"
        " && cat subsystem/remoteproc0/name && ls /sys/kernel/debug/remoteproc"
        " && exit 7"
    )
    base = ["sysfs", "run", "-p", "stm32mp15-dk2", "--no-tee", "--"]
    done = CliRunner().invoke(main, [*base, "sh", "-c", script])
    out, err = capfd.readouterr()
    assert done.exit_code == 7, err
    assert out.splitlines() == [
        "/sys/devices/platform/ahb/10000000.m4/remoteproc/remoteproc0", "m4",
        "remoteproc0"]  # fmt: skip
    missing = CliRunner().invoke(main, [*base, "no-such-command-here"])
    assert missing.exit_code == 127
    assert "no-such-command-here: No such file or directory" in capfd.readouterr().err
    killed = CliRunner().invoke(main, [*base, "sh", "-c", "kill -KILL $$"])
    assert killed.exit_code == 128 + signal.SIGKILL  # as a shell reports it


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--instances", "0"], "--instances: 0 is not in 1..64"),
        (["--key", "k.pub"], "--key k.pub: needs --firmware-path"),
        (["--firmware-path", "nowhere"], "--firmware-path: nowhere is not a directory"),
        (["--firmware", "a\nb"], "--firmware: 'a\\nb' is not a file name"),
        (["--series", "v9"], "'v9' is not one of 'v15', 'v22'"),
    ],
)
def test_bad_options_are_named(
    tmp_path: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnt").mkdir()
    for command in (["mount", "mnt"], ["run"]):
        tail = ["--", "true"] if command == ["run"] else []
        result = CliRunner().invoke(
            main, ["sysfs", *command, "-p", "stm32mp15-dk2", *args, *tail]
        )
        assert result.exit_code == 2, result.output
        assert message in result.output


def test_missing_fuse_or_namespace_is_said_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fuse() -> None:
        raise server.FuseUnavailable(f"/dev/fuse does not exist; {server.INSTALL_HINT}")

    monkeypatch.setattr(server, "load_binding", no_fuse)
    result = CliRunner().invoke(
        main, ["sysfs", "mount", str(tmp_path), "-p", "stm32mp15-dk2"]
    )
    assert result.exit_code == 3
    assert "apt-get install fuse3" in result.output
    assert "pip install 'rproctee[fuse]'" in result.output
    monkeypatch.setattr(server, "load_binding", lambda: None)
    monkeypatch.setattr(session.shutil, "which", lambda name: None)
    result = CliRunner().invoke(main, ["sysfs", "run", "-p", "stm32mp15-dk2", "--",
                                       "true"])  # fmt: skip
    assert result.exit_code == 3
    assert "'unshare' (util-linux) is not installed" in result.output


def test_run_leaves_ctrl_c_to_the_command_and_tears_down_on_sigterm(
    tmp_path: Path, namespace_ok: None
) -> None:
    events = tmp_path / "events.jsonl"
    state = "/sys/class/remoteproc/remoteproc0/state"
    script = (f"trap 'echo got-int' INT; echo start > {state} && cat {state} &&"
              " while :; do sleep 0.1; done")  # fmt: skip
    proc = subprocess.Popen(
        _cli("sysfs", "run", "-p", "stm32mp15-dk2", "--no-tee", "--events",
             str(events), "--", "sh", "-c", script),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # a process group of its own, as a terminal's job
        env={**os.environ, "TMPDIR": str(tmp_path)},  # its mount point: ours to check
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "running\n"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole job gets it
        assert proc.stdout.readline() == "got-int\n"  # the command chose to live
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    with open("/proc/self/mounts") as mounts:
        assert f" {tmp_path}/rproctee-sysfs-" not in mounts.read()
    assert not list(tmp_path.glob("rproctee-sysfs-*"))  # removed, once unmounted
    log = _events(events)  # shut down at the end: stopped, offline
    assert [e["name"] for e in log if e["kind"] == "op"][-1] == "stop"
    assert [e["to"] for e in log if e["kind"] == "state"] == ["RUNNING", "OFFLINE"]


def test_selftest_reports_a_processor_that_will_not_start(
    tmp_path: Path, namespace_ok: None, capfd: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "no-firmware"  # request_firmware finds nothing
    empty.mkdir()
    quick = CliRunner(env={"TIMEOUT_TENTHS": "3"})  # the script's wait for a state
    result = quick.invoke(main, [
        "sysfs", "run", "-p", "stm32mp15-dk2", "--firmware-path", str(empty),
        "--", "sh", str(SELFTEST)])  # fmt: skip
    out = capfd.readouterr().out.splitlines()
    assert result.exit_code == 1  # KSFT_FAIL
    assert [line for line in out if re.match(r"(not )?ok \d+ ", line)] == [
        "ok 1 remoteproc0 (m4) is offline", "not ok 2 remoteproc0 start",
        "not ok 3 remoteproc0 stop",  # stopping an offline processor: EINVAL
        "not ok 4 all 1 started together", "not ok 5 all 1 stopped together",
    ]  # fmt: skip
    assert "# write of 'start' to /sys/class/remoteproc/remoteproc0/state failed" in out
    assert out[-1] == "# Totals: pass:1 fail:4 xfail:0 xpass:0 skip:0 error:0"
