"""The private ``/sys`` of ``rproctee sysfs run`` without FUSE: the shadowing
keeps every original entry (directory, file, symlink) and adds the model's,
on a fake sysfs inside a throw-away mount namespace; and the choice of
``unshare`` options, with the message when none works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rproctee.fuse import session
from rproctee.fuse.namespace import UNSHARE_ROOT, UNSHARE_USER

PROBE = """
import json, os, sys
from pathlib import Path
from rproctee.fuse.namespace import install
model, fake = Path(sys.argv[1]), Path(sys.argv[2])
bound = install(model, fake)
print(json.dumps({
    "bound": [str(Path(p).relative_to(fake)) for p in bound],
    "class": sorted(os.listdir(fake / "class")),
    "platform": sorted(os.listdir(fake / "devices/platform")),
    "debug": sorted(os.listdir(fake / "kernel/debug")),
    "link": os.readlink(fake / "class/net"),
    "file": (fake / "devices/platform/uevent").read_text(),
    "in_class": (fake / "class/block/sda").read_text(),
    "model": (fake / "class/remoteproc/remoteproc0").read_text(),
    "bus": (fake / "devices/platform/ahb/dev").read_text(),
    "debugfs": sorted(os.listdir(fake / "kernel/debug/remoteproc")),
}))
"""


def _fake_sysfs(root: Path, debugfs_mounted: bool) -> Path:
    fake = root / "sys"
    (fake / "class/block").mkdir(parents=True)
    (fake / "class/block/sda").write_text("disk\n")
    (fake / "class/net").symlink_to("../devices/virtual/net")
    (fake / "devices/platform/serial8250").mkdir(parents=True)
    (fake / "devices/platform/uevent").write_text("host uevent\n")
    (fake / "kernel/debug").mkdir(parents=True)
    if debugfs_mounted:  # something there already: it must stay
        (fake / "kernel/debug/tracing").mkdir()
    return fake


def _fake_model(root: Path) -> Path:
    model = root / "model"
    (model / "class/remoteproc").mkdir(parents=True)
    (model / "class/remoteproc/remoteproc0").write_text("link stand-in\n")
    (model / "devices/platform/ahb").mkdir(parents=True)
    (model / "devices/platform/ahb/dev").write_text("the model's bus\n")
    (model / "kernel/debug/remoteproc/remoteproc0").mkdir(parents=True)
    return model


@pytest.mark.parametrize("debugfs_mounted", [False, True])
def test_install_keeps_the_hosts_entries_and_adds_the_models(
    tmp_path: Path, debugfs_mounted: bool
) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to make a mount namespace")
    fake, model = _fake_sysfs(tmp_path, debugfs_mounted), _fake_model(tmp_path)
    done = subprocess.run(
        ["unshare", *UNSHARE_ROOT, "--", sys.executable, "-c", PROBE, str(model),
         str(fake)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["bound"] == ["class/remoteproc", "devices/platform/ahb",
                             "kernel/debug/remoteproc"]  # fmt: skip
    assert seen["class"] == ["block", "net", "remoteproc"]
    assert seen["platform"] == ["ahb", "serial8250", "uevent"]
    tracing = ["tracing"] if debugfs_mounted else []
    assert seen["debug"] == ["remoteproc", *tracing]
    assert seen["link"] == "../devices/virtual/net"
    assert seen["file"] == "host uevent\n" and seen["in_class"] == "disk\n"
    assert seen["model"] == "link stand-in\n" and seen["bus"] == "the model's bus\n"
    assert seen["debugfs"] == ["remoteproc0"]
    # outside the namespace nothing changed
    assert sorted(os.listdir(fake / "class")) == ["block", "net"]
    assert not (fake / "devices/platform/ahb").exists()


def test_unshare_options_fall_back_to_user_namespaces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried: list[list[str]] = []

    def probe(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        tried.append(argv[1:-2])
        ok = argv[1:-2] == UNSHARE_USER
        err = "" if ok else "unshare failed: EPERM"
        return subprocess.CompletedProcess(argv, 0 if ok else 1, "", err)

    monkeypatch.setattr(session.shutil, "which", lambda name: "/usr/bin/unshare")
    monkeypatch.setattr(session.subprocess, "run", probe)
    assert session.unshare_flags() == UNSHARE_USER
    assert tried == [UNSHARE_ROOT, UNSHARE_USER]
    monkeypatch.setattr(session.subprocess, "run", lambda argv, **kw: (
        subprocess.CompletedProcess(argv, 1, "", "unshare failed: EPERM")))  # fmt: skip
    with pytest.raises(session.NamespaceUnavailable) as exc:
        session.unshare_flags()
    assert "needs root (CAP_SYS_ADMIN) or unprivileged user namespaces" in str(
        exc.value
    )
    assert "unshare --mount --propagation private: unshare failed: EPERM" in str(
        exc.value
    )
