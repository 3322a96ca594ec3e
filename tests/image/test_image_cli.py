"""CLI: sign (script spellings), stitch, verify, info, keygen, pubkey."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from image_helpers import ENC_PASSWORD, Seg, make_elf, vector_bytes

from rproctee.cli.image_cmds import register
from rproctee.image import PrivateKey, fingerprint, load_public_key, parse_image

COMMANDS = ("sign", "stitch", "verify", "info", "keygen", "pubkey")


@pytest.fixture(scope="module")
def cli() -> click.Group:
    group = click.Group("rproctee")
    register(group)
    return group


def run(cli: click.Group, *args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def files(tmp_path: Path, vectors: Path) -> Path:
    for sub in ("inputs", "keys"):
        for src in (vectors / sub).iterdir():
            (tmp_path / src.name).write_bytes(src.read_bytes())
    return tmp_path


def test_main_help_lists_every_command() -> None:
    from rproctee.cli import main

    out = CliRunner().invoke(main, ["--help"]).output
    assert all(f"  {name} " in out for name in COMMANDS)


def test_script_spellings_reproduce_vector(cli: click.Group, files: Path) -> None:
    out = files / "v07.sig"
    result = run(
        cli,
        "sign",
        "--in",
        files / "fw1.elf",
        "--out",
        out,
        "--key",
        files / "rsa2048_enc.pem",
        "--key_type",
        "RSA",
        "--key_pwd",
        ENC_PASSWORD,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert out.read_bytes() == vector_bytes("signed/v07_rsa2048enc_fw1.sig")


def test_multi_image_with_equals_syntax(cli: click.Group, files: Path) -> None:
    out = files / "v10.sig"
    result = run(
        cli,
        "sign",
        "--in",
        files / "fw1.elf",
        "--in",
        files / "fw2.elf",
        f"--out={out}",
        f"--key={files / 'rsa2048.pem'}",
        "--key_type=RSA",
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == vector_bytes("signed/v10_rsa2048_multi_fw1_fw2.sig")


def test_ecc_key_info_and_platform_tlvs(cli: click.Group, files: Path) -> None:
    (files / "info.bin").write_bytes(b"\x00\x01key-id")
    out = files / "ecc.sig"
    result = run(
        cli,
        "sign",
        "--in",
        files / "fw1.elf",
        "--out",
        out,
        "--key",
        files / "ecp256.pem",
        "--key_type",
        "ECC",
        "--key_info",
        files / "info.bin",
        "--plat-tlv",
        "0x10001",
        "0x10000000",
        "--plat-tlv",
        "0x10002",
        "hello",
    )
    assert result.exit_code == 0, result.output
    verify = run(cli, "verify", out, "--key", files / "ecp256_pub.pem")
    assert verify.exit_code == 0, verify.output
    info = json.loads(run(cli, "info", out, "--json").stdout)
    tlvs = [(t["type"], t["name"], t["value"]) for t in info["tlvs"][6:]]
    assert tlvs == [
        (0x11, "PKEYINFO", "00016b65792d6964"),
        (0x10001, "PLATFORM", "00000010"),
        (0x10002, "PLATFORM", b"hello".hex()),
    ]
    assert info["signature"] == {
        "type": "ECC",
        "sign_type": 2,
        "offset": 20 + 216 + 3 * 16,
        "length": 64,
    }


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (("--plat-tlv", "0x20000", "1"), 2, "not in range"),
        (("--plat-tlv", "0x10000", "0x1ffffffff"), 2, "32 bits"),
        (("--key_type", "DSA"), 2, "Invalid value"),
        (("--key_type", "ECC"), 2, "key type ECC requested but the key is RSA"),
    ],
)
def test_sign_usage_errors(
    cli: click.Group, files: Path, extra: tuple[str, ...], code: int, message: str
) -> None:
    result = run(
        cli,
        "sign",
        "--in",
        files / "fw1.elf",
        "--out",
        files / "x.sig",
        "--key",
        files / "rsa2048.pem",
        *extra,
    )
    assert result.exit_code == code
    assert message in result.stderr
    assert not (files / "x.sig").exists()


def test_sign_io_malformed_and_key_errors(cli: click.Group, files: Path) -> None:
    base = ("sign", "--out", files / "x.sig")
    missing = run(
        cli, *base, "--in", files / "nope.elf", "--key", files / "rsa2048.pem"
    )
    assert missing.exit_code == 3 and "nope.elf" in missing.stderr
    (files / "bad.elf").write_bytes(make_elf([Seg(0, b"x")], machine=62))
    bad = run(cli, *base, "--in", files / "bad.elf", "--key", files / "rsa2048.pem")
    assert bad.exit_code == 4 and "e_machine" in bad.stderr
    pub = run(cli, *base, "--in", files / "fw1.elf", "--key", files / "rsa2048_pub.pem")
    assert pub.exit_code == 2  # a key problem is a usage error
    assert "Provided key cannot be used for signing" in pub.stderr
    nopwd = run(
        cli, *base, "--in", files / "fw1.elf", "--key", files / "rsa2048_enc.pem"
    )
    assert nopwd.exit_code == 2 and "give its passphrase (--key-pwd)" in nopwd.stderr


def test_verify_exit_codes_and_json(cli: click.Group, files: Path) -> None:
    good = files / "v01.sig"
    good.write_bytes(vector_bytes("signed/v01_rsa2048_fw1.sig"))
    result = run(cli, "verify", good, "--key", files / "rsa2048_pub.pem", "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["schema_version"] == 1 and doc["ok"] is True
    assert doc["checks"][0] == {
        "name": "signature",
        "kind": "signature",
        "ok": True,
        "authenticated": True,
        "detail": doc["checks"][0]["detail"],
    }
    wrong = run(cli, "verify", good, "--key", files / "rsa2048_enc_pub.pem")
    assert wrong.exit_code == 5 and "FAIL  signature" in wrong.stdout
    data = bytearray(good.read_bytes())
    data[parse_image(bytes(data)).images[0].offset + 0x1000] ^= 1
    (files / "tampered.sig").write_bytes(bytes(data))
    tampered = run(
        cli, "verify", files / "tampered.sig", "--key", files / "rsa2048_pub.pem"
    )
    assert tampered.exit_code == 6 and "FAIL  image[0] phdr[0]" in tampered.stdout
    (files / "short.sig").write_bytes(bytes(data[:-8]))
    short = run(cli, "verify", files / "short.sig", "--key", files / "rsa2048_pub.pem")
    assert short.exit_code == 4 and "img_len" in short.stderr
    absent = run(cli, "verify", files / "none.sig", "--key", files / "rsa2048_pub.pem")
    assert absent.exit_code == 3


def test_info_text_and_json(cli: click.Group, files: Path) -> None:
    path = files / "v10.sig"
    path.write_bytes(vector_bytes("signed/v10_rsa2048_multi_fw1_fw2.sig"))
    doc = json.loads(
        run(cli, "info", path, "--json", "--key", files / "rsa2048_pub.pem").stdout
    )
    assert doc["schema_version"] == 1
    assert doc["header"] == {
        "magic": 0x3543A468,
        "version": 1,
        "tlv_len": 344,
        "sign_len": 256,
        "img_len": 13944,
    }
    assert [t["name"] for t in doc["tlvs"]] == [
        "SIGNTYPE",
        "NUM_IMG",
        "IMGTYPE",
        "IMGSIZE",
        "HASHTYPE",
        "HASHTABLE",
    ]
    assert len(doc["hash_table"]) == 4
    elf0, elf1 = (img["elf"] for img in doc["images"])
    assert (elf0["class"], elf0["machine"], len(elf0["segments"])) == (32, 40, 2)
    assert elf0["resource_table"]["entries"][0]["type_name"] == "trace"
    assert elf1["resource_table"] is None
    pub = load_public_key(vector_bytes("keys/rsa2048_pub.pem"))
    assert doc["key"] == {
        "type": "RSA",
        "fingerprint_sha256": fingerprint(pub),
        "signature_valid": True,
    }
    text = run(cli, "info", path).stdout
    assert "0x00000010 HASHTABLE" in text and "cm4_log" in text


@pytest.mark.parametrize("kind", ["rsa2048", "p256"])
def test_keygen_pubkey_sign_verify(
    cli: click.Group, tmp_path: Path, fw1: bytes, kind: str
) -> None:
    key, pub = tmp_path / "k.pem", tmp_path / "k_pub.pem"
    made = run(cli, "keygen", "--type", kind, "--out", key, "--key-pwd", "pw")
    assert made.exit_code == 0, made.output
    assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
    assert key.stat().st_mode & 0o077 == 0
    shown = run(cli, "pubkey", key, "--key-pwd", "pw", "--out", pub, "--json")
    doc = json.loads(shown.stdout)
    assert doc["fingerprint_sha256"] == made.stdout.strip()
    assert doc["type"] == ("ECC" if kind == "p256" else "RSA")
    (tmp_path / "fw.elf").write_bytes(fw1)
    signed = run(
        cli,
        "sign",
        "--in",
        tmp_path / "fw.elf",
        "--key",
        key,
        "--key-pwd",
        "pw",
        "--out",
        tmp_path / "fw.sig",
    )
    assert signed.exit_code == 0, signed.output
    assert run(cli, "verify", tmp_path / "fw.sig", "--key", pub).exit_code == 0


def test_pubkey_plain_output(cli: click.Group, files: Path) -> None:
    result = run(cli, "pubkey", files / "ecp256.pem")
    assert result.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    assert "SHA256 fingerprint:" in result.stderr


def _sign_elsewhere(key: PrivateKey, digest: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):  # DER, as HSMs return it
        return key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    from cryptography.hazmat.primitives.asymmetric import padding

    return key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))


@pytest.mark.parametrize(
    ("priv", "pub"),
    [("rsa2048.pem", "rsa2048_pub.pem"), ("ecp256.pem", "ecp256_pub.pem")],
)
def test_digest_out_then_stitch(
    cli: click.Group, files: Path, priv: str, pub: str
) -> None:
    unsigned, digest = files / "u.sig", files / "d.bin"
    result = run(
        cli,
        "sign",
        "--in",
        files / "fw1.elf",
        "--key",
        files / pub,
        "--out",
        unsigned,
        "--digest-out",
        digest,
    )
    assert result.exit_code == 0, result.output
    assert len(digest.read_bytes()) == 32
    key = serialization.load_pem_private_key((files / priv).read_bytes(), None)
    assert isinstance(key, PrivateKey)
    (files / "s.bin").write_bytes(_sign_elsewhere(key, digest.read_bytes()))
    final = files / "final.sig"
    stitched = run(
        cli,
        "stitch",
        unsigned,
        "--signature",
        files / "s.bin",
        "--out",
        final,
        "--key",
        files / pub,
    )
    assert stitched.exit_code == 0, stitched.output
    assert run(cli, "verify", final, "--key", files / pub).exit_code == 0
    if priv.startswith("rsa"):
        assert final.read_bytes() == vector_bytes("signed/v01_rsa2048_fw1.sig")
    (files / "bad.bin").write_bytes(bytes(len((files / "s.bin").read_bytes())))
    refused = run(
        cli,
        "stitch",
        unsigned,
        "--signature",
        files / "bad.bin",
        "--out",
        files / "no.sig",
        "--key",
        files / pub,
    )
    assert refused.exit_code == 5 and not (files / "no.sig").exists()


def test_key_of_fixture_type(key_of: Callable[[str], PrivateKey]) -> None:
    assert fingerprint(key_of("rsa2048")) == fingerprint(key_of("rsa2048").public_key())
