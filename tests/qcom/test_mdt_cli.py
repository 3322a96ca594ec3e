"""``rproctee mdt info|verify|split|join``: output, JSON and exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from qcom_helpers import segments

from rproctee.cli import main
from rproctee.qcom import TestSigner, build_image


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture
def image(tmp_path: Path, signer: TestSigner) -> Path:
    path = tmp_path / "modem.mbn"
    path.write_bytes(build_image(segments(), version=6, signer=signer))
    return path


def test_info(image: Path) -> None:
    code, out = _run("mdt", "info", str(image))
    assert code == 0
    assert "modem.mbn: ELF32, e_machine 164" in out and "single file" in out
    assert "hash segment: MBN v6, sha384, 5 digests, 48-byte header" in out
    assert "CN=rproctee test attestation  [EC-secp384r1]" in out


def test_info_json(image: Path) -> None:
    code, out = _run("mdt", "info", str(image), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["schema_version"] == 1
    assert doc["hash_segment"]["version"] == 6 and doc["hash_index"] == 1
    assert doc["certificates"]["oem"][2]["subject"] == "CN=rproctee test root"


def test_verify(image: Path, signer: TestSigner, other_signer: TestSigner) -> None:
    code, out = _run("mdt", "verify", str(image), "--root", signer.root_sha256.hex())
    assert (
        code == 0 and "oem signature by CN=rproctee test attestation: verified" in out
    )
    code, out = _run(
        "mdt", "verify", str(image), "--root", other_signer.root_sha256.hex()
    )
    assert code == 5 and "is not the trusted root" in out
    code, out = _run("mdt", "verify", str(image), "--root", "abcd")
    assert code == 2 and "not 64 hex digits" in out


def test_verify_hash_mismatch(image: Path) -> None:
    data = bytearray(image.read_bytes())
    data[0x2000] ^= 1  # first byte of segment 2
    image.write_bytes(bytes(data))
    code, out = _run("mdt", "verify", str(image))
    assert code == 6 and "segment  2: mismatch" in out
    assert "error: segment 2: hash" in out
    code, out = _run("mdt", "verify", str(image), "--json")
    doc = json.loads(out)
    assert code == 6 and doc["exit"] == 6 and doc["hashes_ok"] is False
    assert [s["status"] for s in doc["segments"]][2] == "mismatch"


def test_verify_hashes_only(tmp_path: Path) -> None:
    path = tmp_path / "unsigned.mbn"
    path.write_bytes(build_image(segments(), version=5))
    assert _run("mdt", "verify", str(path))[0] == 5
    code, out = _run("mdt", "verify", str(path), "--hashes-only")
    assert code == 0 and "signature: none checked" in out


def test_split_and_join(image: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "split"
    code, out = _run("mdt", "split", str(image), "--out", str(out_dir))
    assert code == 0 and "modem.mdt, modem.b00, modem.b01, modem.b02, modem.b04" in out
    assert _run("mdt", "verify", str(out_dir / "modem.mdt"))[0] == 0
    joined = tmp_path / "joined.mbn"
    code, out = _run("mdt", "join", str(out_dir / "modem.mdt"), "--out", str(joined))
    assert code == 0 and joined.read_bytes() == image.read_bytes()
    (out_dir / "modem.b02").unlink()
    code, out = _run("mdt", "join", str(out_dir / "modem.mdt"), "--out", str(joined))
    assert code == 3 and "modem.b02: missing segment file" in out


def test_split_name_and_lossy(image: Path, tmp_path: Path) -> None:
    image.write_bytes(image.read_bytes() + bytes(4))
    code, out = _run("mdt", "split", str(image), "--out", str(tmp_path / "a"))
    assert code == 4 and "trailing zero bytes" in out
    code, _ = _run(
        "mdt",
        "split",
        str(image),
        "--out",
        str(tmp_path / "a"),
        "--lossy",
        "--name",
        "adsp.mdt",
    )
    assert code == 0 and (tmp_path / "a" / "adsp.b04").is_file()


def test_malformed_and_missing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mbn"
    bad.write_bytes(b"\x7fELF" + bytes(10))
    code, out = _run("mdt", "info", str(bad))
    assert code == 4 and "file size = 0xe: shorter than the 52-byte ELF32 header" in out
    code, out = _run("mdt", "info", str(tmp_path / "none.mdt"), "--json")
    assert code == 3 and json.loads(out[out.index("{") :])["error"]["kind"] == "io"


def _split_set(image: Path, tmp_path: Path) -> Path:
    out = tmp_path / "fw"
    assert _run("mdt", "split", str(image), "--out", str(out))[0] == 0
    return out / "modem.mdt"


def test_boot(image: Path, tmp_path: Path, signer: TestSigner) -> None:
    mdt = _split_set(image, tmp_path)
    seq = tmp_path / "seq.md"
    code, out = _run(
        "mdt",
        "boot",
        str(mdt),
        "--carveout",
        "0x8c000000:0x100000",
        "--root",
        signer.root_sha256.hex(),
        "--crash",
        "watchdog",
        "--sequence",
        str(seq),
    )
    assert code == 0, out
    assert "secure boot: on" in out and out.count("PAS_AUTH_AND_RESET") == 2
    assert "states: RUNNING -> CRASHED -> OFFLINE -> RUNNING -> OFFLINE" in out
    text = seq.read_text()
    assert "L->>Z: PAS_INIT_IMAGE" in text and "XPU lock of the carveout" in text


def test_boot_json_and_failures(
    image: Path, tmp_path: Path, other_signer: TestSigner
) -> None:
    mdt = _split_set(image, tmp_path)
    code, out = _run(
        "mdt", "boot", str(mdt), "--carveout", "0x8c000000:0x100000", "--json"
    )
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["tee"] is False
    assert [c["command"] for c in doc["scm_calls"]] == [
        "PAS_INIT_IMAGE",
        "PAS_AUTH_AND_RESET",
        "PAS_SHUTDOWN",
    ]
    # TrustZone refuses: the image is not under the trusted root.
    code, out = _run(
        "mdt",
        "boot",
        str(mdt),
        "--carveout",
        "0x8c000000:0x100000",
        "--root",
        other_signer.root_sha256.hex(),
    )
    assert code == 7 and "error -5 initializing firmware modem.mdt" in out
    # Linux refuses on its own: a segment file is missing.
    (mdt.parent / "modem.b04").unlink()
    code, out = _run("mdt", "boot", str(mdt), "--carveout", "0x8c000000:0x100000")
    assert code == 1 and "error -2 loading modem.b04" in out
    for bad in ("0x8c000000", "x:1", "0x10:0", "0:0x40000001"):
        code, out = _run("mdt", "boot", str(mdt), "--carveout", bad)
        assert code == 2 and (
            "is not BASE:SIZE" in out or "is larger than 0x40000000" in out
        )
    code, out = _run(
        "mdt", "boot", str(tmp_path / "none.mdt"), "--carveout", "0x0:0x1000"
    )
    assert code == 3 and "none.mdt" in out


def test_info_survives_a_broken_chain(image: Path) -> None:
    from rproctee.qcom import parse_image

    data = bytearray(image.read_bytes())
    parsed = parse_image(bytes(data), "modem.mbn")
    hash_ph = parsed.phdrs[1]
    chain_len = len(parsed.hash_segment.parts["cert_chain"])
    data[hash_ph.p_offset + hash_ph.p_filesz - chain_len] = 0x31
    image.write_bytes(bytes(data))
    code, out = _run("mdt", "info", str(image))
    assert (
        code == 0 and "oem certificate chain: unreadable: cert_chain[0x0] = 0x31" in out
    )
    doc = json.loads(_run("mdt", "info", str(image), "--json")[1])
    assert "not a DER SEQUENCE" in doc["certificates"]["oem"]["error"]


@pytest.mark.parametrize("version", ["3", "7"])
def test_build_then_verify_and_boot(tmp_path: Path, version: str) -> None:
    out = tmp_path / "demo.mbn"
    code, text = _run(
        "mdt",
        "build",
        "--out",
        str(out),
        "--version",
        version,
        "--code-kib",
        "4",
        "--chain-out",
        str(tmp_path / "chain.pem"),
    )
    assert code == 0 and f"MBN v{version}" in text
    root = text.split("root sha256: ")[1].split()[0]
    assert _run("mdt", "verify", str(out), "--root", root)[0] == 0
    assert (tmp_path / "chain.pem").read_text().count("BEGIN CERTIFICATE") == 3
    code, text = _run(
        "mdt", "boot", str(out), "--carveout", "0x8c000000:0x100000", "--root", root
    )
    assert code == 0, text
    code, text = _run("mdt", "build", "--out", str(out), "--base", "0x8c000010")
    assert code == 2 and "base = 0x8c000010: not a 4 KiB-aligned" in text


def test_split_and_join_json(image: Path, tmp_path: Path) -> None:
    import hashlib

    code, out = _run("mdt", "split", str(image), "--out", str(tmp_path / "s"), "--json")
    doc = json.loads(out)
    assert code == 0 and [Path(f["path"]).name for f in doc["files"]][:2] == [
        "modem.mdt",
        "modem.b00",
    ]
    mdt = doc["files"][0]
    assert mdt["sha256"] == hashlib.sha256(Path(mdt["path"]).read_bytes()).hexdigest()
    code, out = _run(
        "mdt", "join", mdt["path"], "--out", str(tmp_path / "j.mbn"), "--json"
    )
    joined = json.loads(out)["file"]
    assert (
        code == 0 and joined["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    )
    code, out = _run("mdt", "join", str(tmp_path / "none.mdt"), "--out", "x", "--json")
    assert code == 3 and json.loads(out[out.index("{") :])["error"]["exit"] == 3


def test_boot_beside_tee(image: Path, tmp_path: Path, signer: TestSigner) -> None:
    md = tmp_path / "both.md"
    code, out = _run(
        "mdt",
        "boot",
        str(image),
        "--carveout",
        "0x8c000000:0x100000",
        "--root",
        signer.root_sha256.hex(),
        "--beside-tee",
        str(md),
    )
    assert code == 0, out
    assert f"beside OP-TEE: carveout identical ({md})" in out
    text = md.read_text()
    assert text.startswith("Carveout contents while the processor runs: identical.")
    assert "## PAS" in text and "TA command LOAD_FW" in text
