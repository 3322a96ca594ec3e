"""TOML profiles: the documented schema and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rproctee.platform.memory import RegionSpec
from rproctee.platform.profile import ProfileError, load_profile

GOOD = """
[platform]
name = "my-board"
accept_ecdsa = false          # optional
[[regions]]
name = "retram"
da = 0x00000000
pa = 0x38000000               # optional, defaults to da
size = 0x10000
[[regions]]
name = "mcuram"
da = 0x30000000
size = 0x40000
access = "rw"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "board.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_documented_example(tmp_path: Path) -> None:
    spec = load_profile(_write(tmp_path, GOOD))
    assert spec.name == "my-board" and spec.accept_ecdsa is False
    assert spec.regions == (
        RegionSpec("retram", 0, 0x38000000, 0x10000),
        RegionSpec("mcuram", 0x30000000, 0x30000000, 0x40000, "rw"),
    )
    assert spec.default_key_pem is None and spec.processor_ids == (0,)


def test_key_file_and_ecdsa(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "k.pem").write_bytes(pem)
    text = GOOD.replace("accept_ecdsa = false", 'accept_ecdsa = true\nkey = "k.pem"')
    spec = load_profile(_write(tmp_path, text))
    assert spec.accept_ecdsa and spec.default_key_pem == pem


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (("my-board", 'my-board"\nnmae = "x'), "unknown key.*nmae"),
        (("accept_ecdsa = false", "accept_ecdsa = 1"), "true or false"),
        (("size = 0x10000", "size = 0"), "'size' must not be 0"),
        (("size = 0x10000", 'size = "big"'), "must be an integer"),
        (('name = "mcuram"', 'name = "retram"'), "duplicate region name"),
        (("da = 0x30000000", "da = 0x7fffffffffffffff"), None),
        (("da = 0x00000000", "da = -1"), "outside 0..2"),
        (('access = "rw"', 'access = "rq"'), "'rwx'"),
        (('name = "my-board"', "name = 3"), "non-empty string"),
        (("[platform]", "[platfrom]"), "unknown key"),
        (("size = 0x40000", "size = 0x40000\nsize = 1"), "not valid TOML"),
        (("accept_ecdsa = false", 'key = "missing.pem"'), "missing.pem"),
    ],
)
def test_errors(tmp_path: Path, edit: tuple[str, str], match: str | None) -> None:
    path = _write(tmp_path, GOOD.replace(*edit))
    if match is None:
        load_profile(path)  # large but valid
        return
    with pytest.raises(ProfileError, match=match):
        load_profile(path)


def test_no_regions(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="at least one"):
        load_profile(_write(tmp_path, '[platform]\nname = "x"\n'))


def test_private_key_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "k.pem").write_bytes(pem)
    text = GOOD.replace("accept_ecdsa = false", 'key = "k.pem"')
    with pytest.raises(ProfileError, match="private key"):
        load_profile(_write(tmp_path, text))


def test_overlap_is_noted(tmp_path: Path) -> None:
    text = GOOD.replace("da = 0x30000000", "da = 0x8000")
    spec = load_profile(_write(tmp_path, text))
    assert any("overlap" in n for n in spec.notes)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "none.toml")


@pytest.mark.parametrize("kind", ["fifo", "device", "huge"])
def test_key_that_is_not_a_small_regular_file_is_refused(
    tmp_path: Path, kind: str
) -> None:
    """A profile's key must not make the reader block (FIFO) or exhaust
    memory (/dev/zero, a huge file): refused before it is read."""
    import os

    if kind == "fifo":
        os.mkfifo(tmp_path / "k.pem")
        ref, match = "k.pem", "not a regular file"
    elif kind == "device":
        ref, match = "/dev/zero", "not a regular file"
    else:
        (tmp_path / "k.pem").write_bytes(b"-" * (1 << 20))
        ref, match = "k.pem", "larger than"
    text = GOOD.replace("accept_ecdsa = false", f'key = "{ref}"')
    with pytest.raises(ProfileError, match=match):
        load_profile(_write(tmp_path, text))
