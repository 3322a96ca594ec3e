"""Signed-image commands: sign, stitch, verify, info, keygen, pubkey.

``rproctee sign`` accepts OP-TEE ``sign_rproc_fw.py``'s own option spellings
(``--key_type RSA|ECC``, ``--key_pwd``, ``--key_info``, ``--plat-tlv``) so a
build script can swap the tool in unchanged.

Exit status (see ``rproctee.cli.exitcodes``): 0 success, 2 usage error (bad
option, bad platform TLV), 3 I/O error, 4 malformed image or input ELF, 5 bad
signature or unusable key (public key given for signing, wrong passphrase,
key type not the one asked for), 6 hash mismatch.  Results go to stdout (JSON with
``--json``, carrying ``schema_version``); messages and logs go to stderr.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

from rproctee.cli import exitcodes
from rproctee.cli.files import map_file
from rproctee.cli.output import emit_json
from rproctee.errors import FormatError
from rproctee.image import (
    KEY_KINDS,
    CheckKind,
    HashMismatchError,
    KeyFormatError,
    SignatureError,
    SignType,
    build_image,
    describe_image,
    fingerprint,
    generate_key,
    key_sign_type,
    load_public_key,
    parse_image,
    parse_plat_tlv_args,
    prepare_image,
    private_key_pem,
    public_key_pem,
    signature_size,
    signer_from_pem,
    stitch_signature,
    verify_digest,
    verify_image,
)
from rproctee.image.keys import PublicKey
from rproctee.image.verify import VerifyReport

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def _fail(message: str, status: int) -> NoReturn:
    """Print ``Error: message`` on stderr and exit with a documented status.

    (Not a ClickException: click declares its ``exit_code`` a class variable,
    and each failure here carries its own status.)
    """
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(status)


_ERROR_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (KeyFormatError, exitcodes.BAD_SIGNATURE),
    (FormatError, exitcodes.MALFORMED_IMAGE),
    (SignatureError, exitcodes.BAD_SIGNATURE),
    (HashMismatchError, exitcodes.HASH_MISMATCH),
    (OSError, exitcodes.IO_ERROR),
    (ValueError, exitcodes.USAGE),
)


def _map_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn library exceptions into their documented exit statuses."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except Exception as exc:
            for kind, code in _ERROR_CODES:
                if isinstance(exc, kind):
                    _fail(_describe(exc), code)
            raise

    return wrapper


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` atomically: a temporary file in the same folder, renamed."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("wrote %s (%d bytes)", path, len(data))


def _key_type(value: str | None) -> SignType | None:
    return None if value is None else SignType[value.upper()]


_PATH = click.Path(dir_okay=False, path_type=Path)


@click.command("sign")
@click.option(
    "--in",
    "inputs",
    multiple=True,
    required=True,
    type=_PATH,
    help="ELF input; repeat for a multi-image file (kept in order).",
)
@click.option(
    "--key",
    required=True,
    type=_PATH,
    help="Private key PEM (public key PEM with --digest-out).",
)
@click.option("--out", required=True, type=_PATH, help="Signed image to write.")
@click.option(
    "--key-type",
    "--key_type",
    "key_type",
    type=click.Choice(["rsa", "ecc"], case_sensitive=False),
    help="Expected key algorithm (default: taken from the key).",
)
@click.option("--key-pwd", "--key_pwd", "key_pwd", help="Passphrase of the key.")
@click.option(
    "--key-info",
    "--key_info",
    "key_info",
    type=_PATH,
    help="File whose bytes go into the PKEYINFO TLV.",
)
@click.option(
    "--plat-tlv",
    "plat_tlvs",
    nargs=2,
    multiple=True,
    metavar="ID VALUE",
    help="Platform TLV: ID in 0x10000..0x1FFFF, VALUE 0x... (u32) or text.",
)
@click.option(
    "--digest-out",
    type=_PATH,
    help="Write the 32-byte digest here and a zero signature in --out; "
    "sign it elsewhere and use 'rproctee stitch'.",
)
@_map_errors
def sign_cmd(
    inputs: tuple[Path, ...],
    key: Path,
    out: Path,
    key_type: str | None,
    key_pwd: str | None,
    key_info: Path | None,
    plat_tlvs: tuple[tuple[str, str], ...],
    digest_out: Path | None,
) -> None:
    """Build and sign a firmware image (drop-in for OP-TEE's sign_rproc_fw.py)."""
    elfs = [_read(p) for p in inputs]
    info = _read(key_info) if key_info is not None else None
    plat = parse_plat_tlv_args(plat_tlvs)
    pem = _read(key)
    if digest_out is not None:
        public = _public_key(pem, key_pwd, _key_type(key_type))
        unsigned = prepare_image(
            elfs, key_sign_type(public), signature_size(public), info, plat
        )
        _write(digest_out, unsigned.digest)
        _write(out, unsigned.assemble(bytes(unsigned.signature_size)))
        return
    signer = signer_from_pem(pem, key_pwd, _key_type(key_type))
    _write(out, build_image(elfs, signer, info, plat))


def _public_key(
    pem: bytes, password: str | None, expected: SignType | None = None
) -> PublicKey:
    public = load_public_key(pem, password)
    actual = key_sign_type(public)
    if expected is not None and actual is not expected:
        raise KeyFormatError(
            f"key type {expected.name} requested but the key is {actual.name}"
        )
    return public


@click.command("stitch")
@click.argument("image", type=_PATH)
@click.option(
    "--signature",
    "sig_path",
    required=True,
    type=_PATH,
    help="Signature of the digest: raw (sign_len bytes) or DER (ECDSA).",
)
@click.option("--out", required=True, type=_PATH, help="Signed image to write.")
@click.option("--key", type=_PATH, help="Public key: check the signature first.")
@_map_errors
def stitch_cmd(image: Path, sig_path: Path, out: Path, key: Path | None) -> None:
    """Put an externally made signature into an image from 'sign --digest-out'."""
    signed = stitch_signature(_read(image), _read(sig_path))
    if key is not None:
        parsed = parse_image(signed)
        public = _public_key(_read(key), None)
        good = verify_digest(
            public, parsed.sign_type, parsed.digest(), bytes(parsed.signature)
        )
        if not good:
            raise SignatureError("stitched signature does not verify with --key")
    _write(out, signed)


def _report_json(image: Path, report: VerifyReport) -> dict[str, Any]:
    checks = [
        {"name": c.name, "kind": c.kind.value, "ok": c.ok, "detail": c.detail}
        for c in report.checks
    ]
    return {"image": str(image), "ok": report.ok, "checks": checks}


def _verify_exit(report: VerifyReport) -> int:
    for kind, code in (
        (CheckKind.SIGNATURE, exitcodes.BAD_SIGNATURE),
        (CheckKind.FORMAT, exitcodes.MALFORMED_IMAGE),
        (CheckKind.HASH, exitcodes.HASH_MISMATCH),
    ):
        if report.failed(kind):
            return code
    return exitcodes.OK


@click.command("verify")
@click.argument("image", type=_PATH)
@click.option("--key", required=True, type=_PATH, help="Public key PEM.")
@click.option("--json", "as_json", is_flag=True, help="JSON report on stdout.")
@click.pass_context
@_map_errors
def verify_cmd(ctx: click.Context, image: Path, key: Path, as_json: bool) -> None:
    """Check the signature and every segment hash; exit 0 only if all pass."""
    public = _public_key(_read(key), None)
    report = verify_image(map_file(image), public)
    if as_json:
        emit_json(_report_json(image, report))
    else:
        for c in report.checks:
            click.echo(f"{'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}")
        click.echo(f"{image}: {'OK' if report.ok else 'FAILED'}")
    ctx.exit(_verify_exit(report))


@click.command("info")
@click.argument("image", type=_PATH)
@click.option(
    "--key",
    type=_PATH,
    help="Public key: show its fingerprint and whether it verifies the image.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@_map_errors
def info_cmd(image: Path, key: Path | None, as_json: bool) -> None:
    """Show header, TLVs, hash table, signature and embedded ELF files."""
    public = _public_key(_read(key), None) if key is not None else None
    model = describe_image(map_file(image), public)
    if as_json:
        emit_json(model)
    else:
        for line in format_info(model):
            click.echo(line)


@click.command("keygen")
@click.option(
    "--type",
    "kind",
    required=True,
    type=click.Choice(KEY_KINDS),
    help="Key algorithm and size.",
)
@click.option("--out", required=True, type=_PATH, help="Private key PEM to write.")
@click.option("--key-pwd", "--key_pwd", "key_pwd", help="Encrypt with this passphrase.")
@click.option("--pub-out", type=_PATH, help="Also write the public key PEM here.")
@_map_errors
def keygen_cmd(kind: str, out: Path, key_pwd: str | None, pub_out: Path | None) -> None:
    """Generate a signing key (PKCS#8 PEM); prints its SHA-256 fingerprint."""
    key = generate_key(kind)
    _write(out, private_key_pem(key, key_pwd), mode=0o600)
    if pub_out is not None:
        _write(pub_out, public_key_pem(key))
    click.echo(fingerprint(key))


@click.command("pubkey")
@click.argument("key", type=_PATH)
@click.option("--out", type=_PATH, help="Write the public key PEM here.")
@click.option("--key-pwd", "--key_pwd", "key_pwd", help="Passphrase of the key.")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@_map_errors
def pubkey_cmd(key: Path, out: Path | None, key_pwd: str | None, as_json: bool) -> None:
    """Show a key's public half and its SHA-256 fingerprint."""
    public = _public_key(_read(key), key_pwd)
    pem = public_key_pem(public)
    if out is not None:
        _write(out, pem)
    if as_json:
        emit_json(
            {
                "type": key_sign_type(public).name,
                "bits": public.key_size,
                "fingerprint_sha256": fingerprint(public),
                "pem": pem.decode(),
            }
        )
        return
    if out is None:
        click.echo(pem.decode(), nl=False)
    click.echo(f"SHA256 fingerprint: {fingerprint(public)}", err=out is None)


def _fields(values: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:#x}" if isinstance(v, int) else f"{k}={v}" for k, v in values.items()
    )


def _info_images(model: dict[str, Any]) -> list[str]:
    lines = ["images:"]
    for img in model["images"]:
        elf = img["elf"]
        head = f"  [{img['index']}] offset {img['offset']:#x} size {img['size']}"
        if "error" in elf:
            lines.append(f"{head}: unreadable ELF: {elf['error']}")
            continue
        lines.append(
            f"{head}: ELF{elf['class']} {elf['data']}-endian machine {elf['machine']}"
            f" entry {elf['entry']:#x}, {len(elf['segments'])} segments"
        )
        lines.extend(f"      segment {_fields(seg)}" for seg in elf["segments"])
        lines.extend(_info_rsc(elf["resource_table"]))
    return lines


def _info_rsc(rsc: dict[str, Any] | None) -> list[str]:
    if rsc is None:
        return ["      .resource_table: none"]
    where = _fields({k: rsc[k] for k in ("sh_addr", "sh_offset", "sh_size")})
    if "error" in rsc:
        return [f"      .resource_table: {where}: invalid: {rsc['error']}"]
    lines = [f"      .resource_table: {where} ver {rsc['version']} num {rsc['num']}"]
    for e in rsc["entries"]:
        fields = _fields({k: v for k, v in e["fields"].items() if k != "vrings"})
        lines.append(
            f"        {e['type_name']} (type {e['type']}) @{e['offset']:#x} {fields}"
        )
        lines.extend(
            f"          vring {_fields(r)}" for r in e["fields"].get("vrings", [])
        )
    return lines


def format_info(model: dict[str, Any]) -> list[str]:
    """Render the :func:`~rproctee.image.describe_image` model as text lines.

    Parameters
    ----------
    model : dict
        The info model.

    Returns
    -------
    list of str
        Lines for stdout.
    """
    sig = model["signature"]
    lines = [
        f"image: {model['size']} bytes, {_fields(model['header'])}",
        f"signature: {sig['type']} (SIGNTYPE {sig['sign_type']}), "
        f"{sig['length']} bytes at {sig['offset']:#x}",
        "TLVs:",
    ]
    for t in model["tlvs"]:
        lines.append(
            f"  {t['type']:#010x} {t['name']:<10} len {t['length']:<5} {t['value']}"
        )
    lines.append(f"hash table: {len(model['hash_table'])} entries")
    lines.extend(f"  {_fields(e)}" for e in model["hash_table"])
    lines.extend(_info_images(model))
    if "key" in model:
        key = model["key"]
        verdict = "verifies" if key["signature_valid"] else "does NOT verify"
        lines.append(f"key: {key['type']} sha256 {key['fingerprint_sha256']} {verdict}")
    return lines


def register(group: click.Group) -> None:
    """Add the signed-image commands to the ``rproctee`` click group.

    Parameters
    ----------
    group : click.Group
        The top-level group.
    """
    for command in (sign_cmd, stitch_cmd, verify_cmd, info_cmd, keygen_cmd, pubkey_cmd):
        group.add_command(command)
