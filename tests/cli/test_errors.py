"""Issue 9 item 5: one error style, exit statuses that mean one thing, names
instead of numbers and reprs."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from cli_helpers import DEV_KEY_4096, copy_vectors, run
from click.testing import CliRunner

from rproctee.cli import COMMAND_INDEX, main, output

MY_COMMANDS = ("sign", "stitch", "verify", "info", "keygen", "pubkey", "check")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return copy_vectors(tmp_path)


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_missing_file_is_one_line_and_json_under_json(work: Path) -> None:
    missing = work / "none.img"
    text = run("info", missing)
    assert text.exit_code == 3 and text.stdout == ""
    assert (
        _one_error_line(text.stderr) == f"error: {missing}: No such file or directory"
    )
    as_json = run("info", missing, "--json")
    assert as_json.exit_code == 3
    doc = json.loads(as_json.stdout)
    assert doc["error"] == {
        "exit": 3,
        "kind": "io",
        "message": f"{missing}: No such file or directory",
    }


def test_usage_error_under_json_is_a_json_object() -> None:
    result = run("verify", "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "usage" and "IMAGE" in error["message"]
    assert _one_error_line(result.stderr).startswith("error: Missing argument")


def test_a_directory_given_as_a_file_exits_3(work: Path) -> None:
    for args in (
        ("info", work),
        ("verify", work / "v01_rsa2048_fw1.sig", "--key", work),
    ):
        result = run(*args)
        assert result.exit_code == 3
        assert f"error: {work}: is a directory, not a file" in result.stderr


def test_plain_elf_is_recognised(work: Path) -> None:
    result = run("info", work / "fw1.elf")
    assert result.exit_code == 4
    assert "this is an ELF file, not a signed image: sign it first" in result.stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("verify", "IMG", "--key", "fw1.elf"), "not a PEM key"),
        (("verify", "IMG", "--key", "rsa2048.pem"), "a private key where a public"),
        (("sign", "--in", "fw1.elf", "--key", "rsa2048_pub.pem", "--out", "o.img"),
         "it is a public key, give the private key"),
        (("pubkey", "rsa2048_enc.pem"), "encrypted: give its passphrase (--key-pwd)"),
        (("pubkey", "rsa2048_enc.pem", "--key-pwd", "nope"), "wrong passphrase"),
        (("pubkey", "rsa2048.pem", "--key-pwd", "x"), "private key is not encrypted"),
    ],
)  # fmt: skip
def test_key_problems_are_usage_errors(
    work: Path, args: tuple[str, ...], reason: str
) -> None:
    real = [str(work / a) if (work / a).exists() or a == "o.img" else a for a in args]
    real = [str(work / "v01_rsa2048_fw1.sig") if a == "IMG" else a for a in real]
    result = run(*real)
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.stderr)
    assert reason in line and str(work) in line


def test_wrong_key_size_names_both_sizes(work: Path) -> None:
    result = run("verify", work / "v01_rsa2048_fw1.sig", "--key", DEV_KEY_4096)
    assert result.exit_code == 5
    assert "256 bytes (RSA-2048) but the key is RSA-4096 (512-byte" in result.stdout
    assert "(--key)" in result.stdout


def test_failed_signature_never_passes_segment_hashes(work: Path) -> None:
    image = work / "v01_rsa2048_fw1.sig"
    result = run("verify", image, "--key", work / "rsa2048_enc_pub.pem")
    assert result.exit_code == 5
    hash_lines = [line for line in result.stdout.splitlines() if "phdr[" in line]
    assert hash_lines and all(line.startswith("UNAUTHENTICATED") for line in hash_lines)
    assert "PASS  image[0] phdr" not in result.stdout
    doc = json.loads(run("verify", image, "--key", work / "rsa2048_enc_pub.pem",
                         "--json").stdout)  # fmt: skip
    hashes = [c for c in doc["checks"] if c["kind"] == "hash"]
    assert hashes and not any(c["authenticated"] for c in hashes)


def test_info_with_a_failing_key_exits_5(work: Path) -> None:
    image = work / "v01_rsa2048_fw1.sig"
    assert run("info", image, "--key", work / "rsa2048_pub.pem").exit_code == 0
    bad = run("info", image, "--key", work / "rsa2048_enc_pub.pem")
    assert bad.exit_code == 5 and "the signature does NOT verify" in bad.stdout


def test_info_names_things_and_prints_no_reprs(work: Path) -> None:
    result = run("info", work / "v10_rsa2048_multi_fw1_fw2.sig")
    assert result.exit_code == 0
    out = result.stdout
    assert "EM_ARM (40)" in out and "PT_LOAD" in out and "PT_ARM_EXIDX" in out
    assert "p_flags RWX" in out and "p_flags RW\n" in out
    assert "HASHTABLE  len 0x100   4 entries" in out
    for repr_mark in ("{'", "['", "b'", "[1]\n", "[9256]", "machine 40"):
        assert repr_mark not in out
    assert "SIGNTYPE   len 0x1     RSA (1)" in out


def test_internal_errors_are_one_line_with_status_70(
    monkeypatch: pytest.MonkeyPatch, work: Path
) -> None:
    from rproctee.cli import image_cmds

    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("boom")

    monkeypatch.setattr(image_cmds, "describe_image", broken)
    result = run("info", work / "v01_rsa2048_fw1.sig")
    assert result.exit_code == 70
    assert "internal error: TypeError: boom" in _one_error_line(result.stderr)


def test_memory_error_and_broken_pipe_are_quiet() -> None:
    def out_of_memory() -> None:
        raise MemoryError()

    def broken_pipe() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    runner = CliRunner()
    with runner.isolation() as (_, err, *_rest):
        with pytest.raises(SystemExit) as info:
            output.guard(out_of_memory, False)
        assert info.value.code == 3
        assert err.getvalue().decode().strip() == "error: out of memory"
    with runner.isolation() as (out, err, *_rest):
        with pytest.raises(SystemExit) as info:
            output.guard(broken_pipe, ["--json"])
        assert info.value.code == 3
        assert out.getvalue() == b"" and err.getvalue() == b""


def test_fail_renders_the_status_kind() -> None:
    @click.command()
    @click.option("--json", "as_json", is_flag=True)
    @output.guarded
    def cmd(as_json: bool) -> None:
        output.fail("fw.img: cannot read", 3)

    result = CliRunner().invoke(cmd, ["--json"])
    assert result.exit_code == 3
    assert json.loads(result.stdout)["error"]["kind"] == "io"


@pytest.mark.parametrize("name", MY_COMMANDS)
def test_help_has_an_example_and_exit_statuses(name: str) -> None:
    assert name in COMMAND_INDEX
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "rproctee " in result.output
    assert "Exit status" in result.output
    assert "``" not in result.output and ":func:" not in result.output


def test_platform_errors_are_json_objects_under_json() -> None:
    result = run("platform", "show", "no-such-board", "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert (
        error["kind"] == "usage"
        and "unknown platform 'no-such-board'" in (error["message"])
    )
    assert "Traceback" not in result.output


def test_machines_are_named_in_words() -> None:
    from rproctee.elf import describe_ident, describe_machine, describe_pflags

    assert describe_machine(40) == "EM_ARM (40)"
    assert describe_machine(140) == "EM_TI_C6000 (140)"
    assert describe_machine(164) == "EM_QDSP6 (164)"
    assert describe_machine(0x1234) == "e_machine 4660 (unknown)"
    assert describe_pflags(5) == "R X" and describe_pflags(6) == "RW "
    assert (
        describe_ident(64, 1) == "EI_CLASS = 2 (ELFCLASS64), EI_DATA = 1 (ELFDATA2LSB)"
    )
