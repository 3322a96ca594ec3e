"""Issue 9 item 4: keygen, sign, stitch and pubkey never destroy a file by
surprise: no overwrite without --force, never over an input, atomic writes,
errors that name the user's path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cli_helpers import copy_vectors, run

from rproctee.cli import files


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return copy_vectors(tmp_path)


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    assert run("keygen", "--type", "p256", "--out", key).exit_code == 0
    first = key.read_bytes()
    again = run("keygen", "--type", "p256", "--out", key)
    assert again.exit_code == 2
    assert f"error: --out {key} exists; pass --force to overwrite it" in again.stderr
    assert key.read_bytes() == first
    forced = run("keygen", "--type", "p256", "--out", key, "--force")
    assert forced.exit_code == 0 and key.read_bytes() != first
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert _leftovers(tmp_path) == []


def test_keygen_checks_every_output_before_writing_any(tmp_path: Path) -> None:
    pub = tmp_path / "key.pub"
    pub.write_text("keep me")
    result = run("keygen", "--type", "p256", "--out", tmp_path / "k", "--pub-out", pub)
    assert result.exit_code == 2 and not (tmp_path / "k").exists()
    assert pub.read_text() == "keep me"
    same = run("keygen", "--type", "p256", "--out", pub, "--pub-out", pub, "-f")
    assert same.exit_code == 2 and "give two paths" in same.stderr


def test_sign_never_writes_over_its_input(work: Path) -> None:
    elf = work / "fw1.elf"
    before = elf.read_bytes()
    for extra in ((), ("--force",)):
        result = run("sign", "--in", elf, "--key", work / "rsa2048.pem",
                     "--out", elf, *extra)  # fmt: skip
        assert result.exit_code == 2
        assert f"--out {elf} is also the input --in {elf}" in result.stderr
        assert elf.read_bytes() == before
    key = run("sign", "--in", elf, "--key", work / "rsa2048.pem",
              "--out", work / "rsa2048.pem", "-f")  # fmt: skip
    assert key.exit_code == 2 and "is also the input --key" in key.stderr


def test_sign_output_is_a_directory_or_in_a_missing_folder(work: Path) -> None:
    args = ("sign", "--in", work / "fw1.elf", "--key", work / "rsa2048.pem", "--out")
    folder = work / "out.d"
    folder.mkdir()
    result = run(*args, folder)
    assert result.exit_code == 3 and f"{folder}: is a directory" in result.stderr
    missing = work / "no" / "such" / "fw.img"
    result = run(*args, missing)
    assert result.exit_code == 3
    assert f"error: {missing}: No such file or directory" in result.stderr
    assert ".tmp" not in result.stderr


def test_stitch_and_pubkey_refuse_their_inputs(work: Path) -> None:
    image = work / "v01_rsa2048_fw1.sig"
    sig = work / "sig.bin"
    sig.write_bytes(bytes(256))
    result = run("stitch", image, "--signature", sig, "--out", image, "--force")
    assert result.exit_code == 2 and "is also the input IMAGE" in result.stderr
    key = work / "rsa2048.pem"
    result = run("pubkey", key, "--out", key, "--force")
    assert result.exit_code == 2 and "is also the input KEY" in result.stderr
    assert b"PRIVATE KEY" in key.read_bytes()


def test_pubkey_output_needs_force_to_replace(work: Path) -> None:
    out = work / "pub.pem"
    out.write_text("old")
    assert run("pubkey", work / "rsa2048.pem", "--out", out).exit_code == 2
    assert out.read_text() == "old"
    assert run("pubkey", work / "rsa2048.pem", "--out", out, "-f").exit_code == 0
    assert out.read_bytes() == (work / "rsa2048_pub.pem").read_bytes()


def test_write_atomic_keeps_the_old_file_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "fw.img"
    target.write_bytes(b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied", src)

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError) as info:
        files.write_atomic(target, b"new")
    assert info.value.filename == str(target)  # the user's path, not the temp
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []
