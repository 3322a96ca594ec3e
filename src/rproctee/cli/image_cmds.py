"""Signed-image commands: sign, stitch, verify, info, keygen, pubkey.

``rproctee sign`` accepts OP-TEE ``sign_rproc_fw.py``'s own option spellings
(``--key_type RSA|ECC``, ``--key_pwd``, ``--key_info``, ``--plat-tlv``) so a
build script can swap the tool in unchanged.

Exit status (see ``rproctee.cli.exitcodes``): 0 success, 2 usage error (bad
option, bad platform TLV, unusable key: not a PEM, private where public is
wanted or the reverse, missing or wrong passphrase; an output that exists
without ``--force`` or is also an input), 3 I/O error (missing file, a
directory), 4 malformed image or input ELF, 5 bad signature, 6 hash mismatch.
Results go to stdout (JSON with ``--json``, carrying ``schema_version``);
messages go to stderr in the one error style of :mod:`rproctee.cli.output`.
Outputs are written as :mod:`rproctee.cli.files` says: never over an input,
over an existing file only with ``--force``, atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from rproctee.cli import exitcodes
from rproctee.cli.files import check_outputs, map_file, read_file, write_atomic
from rproctee.cli.output import emit_json, fail, guarded
from rproctee.elf import describe_machine, describe_pflags, describe_ptype
from rproctee.image import (
    KEY_KINDS,
    CheckKind,
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

if TYPE_CHECKING:
    from rproctee.image.keys import PublicKey
    from rproctee.image.verify import Check, VerifyReport

_FORCE_HELP = "Replace an existing output file (never an input)."


def _read(path: Path) -> bytes:
    return read_file(path)


def _key_type(value: str | None) -> SignType | None:
    return None if value is None else SignType[value.upper()]


def _key_failure(option: str, path: Path, exc: KeyFormatError) -> NoReturn:
    """A key problem is a usage error naming the option and the user's file."""
    fail(f"{option} {path}: {exc}", exitcodes.USAGE)


def _public_key(
    option: str,
    path: Path,
    password: str | None = None,
    expected: SignType | None = None,
    *,
    private_ok: bool = False,
) -> PublicKey:
    """The public key in ``path``; a private key only where ``private_ok``."""
    pem = _read(path)
    if not private_ok and b"PRIVATE KEY-----" in pem:
        fail(
            f"{option} {path}: holds a private key where a public key is wanted; "
            f"give the public half (rproctee pubkey {path} --out PUB.pem)",
            exitcodes.USAGE,
        )
    try:
        public = load_public_key(pem, password)
    except KeyFormatError as exc:
        _key_failure(option, path, exc)
    actual = key_sign_type(public)
    if expected is not None and actual is not expected:
        fail(
            f"{option} {path}: key type {expected.name} requested but the key "
            f"is {actual.name}",
            exitcodes.USAGE,
        )
    return public


_PATH = click.Path(path_type=Path)  # a directory is an I/O error (3), not usage
_OUT = click.Path(path_type=Path)  # a directory is refused by check_outputs (3)
_FORCE = click.option("--force", "-f", is_flag=True, help=_FORCE_HELP)


@click.command(
    "sign",
    epilog="\b\nExample:\n  rproctee sign --in fw.elf --key key.pem --out fw.img\n"
    "\b\nExit status: 0 signed; 2 usage (bad option or TLV, unusable key, output "
    "exists without --force or is an input); 3 I/O; 4 malformed input ELF.",
)
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
@click.option("--out", required=True, type=_OUT, help="Signed image to write.")
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
    type=_OUT,
    help="Write the 32-byte digest here and a zero signature in --out; "
    "sign it elsewhere and use 'rproctee stitch'.",
)
@_FORCE
@guarded
def sign_cmd(
    inputs: tuple[Path, ...],
    key: Path,
    out: Path,
    key_type: str | None,
    key_pwd: str | None,
    key_info: Path | None,
    plat_tlvs: tuple[tuple[str, str], ...],
    digest_out: Path | None,
    force: bool,
) -> None:
    """Build and sign a firmware image (drop-in for OP-TEE's sign_rproc_fw.py)."""
    outputs = [("--out", out)] + ([("--digest-out", digest_out)] if digest_out else [])
    read = [("--in", p) for p in inputs] + [("--key", key)]
    read += [("--key-info", key_info)] if key_info is not None else []
    check_outputs(outputs, read, force=force)
    elfs = [_read(p) for p in inputs]
    info = _read(key_info) if key_info is not None else None
    plat = parse_plat_tlv_args(plat_tlvs)
    if digest_out is not None:
        public = _public_key("--key", key, key_pwd, _key_type(key_type),
                             private_ok=True)  # fmt: skip
        unsigned = prepare_image(
            elfs, key_sign_type(public), signature_size(public), info, plat
        )
        write_atomic(digest_out, unsigned.digest)
        write_atomic(out, unsigned.assemble(bytes(unsigned.signature_size)))
        return
    try:
        signer = signer_from_pem(_read(key), key_pwd, _key_type(key_type))
    except KeyFormatError as exc:
        _key_failure("--key", key, exc)
    write_atomic(out, build_image(elfs, signer, info, plat))


@click.command(
    "stitch",
    epilog="\b\nExample:\n  rproctee stitch fw.unsigned --signature fw.sig "
    "--key key.pub --out fw.img\n"
    "\b\nExit status: 0 written; 2 usage (unusable key, output exists without "
    "--force or is an input); 3 I/O; 4 malformed image or signature; 5 the "
    "signature does not verify with --key.",
)
@click.argument("image", type=_PATH)
@click.option(
    "--signature",
    "sig_path",
    required=True,
    type=_PATH,
    help="Signature of the digest: raw (sign_len bytes) or DER (ECDSA).",
)
@click.option("--out", required=True, type=_OUT, help="Signed image to write.")
@click.option("--key", type=_PATH, help="Public key: check the signature first.")
@_FORCE
@guarded
def stitch_cmd(
    image: Path, sig_path: Path, out: Path, key: Path | None, force: bool
) -> None:
    """Put an externally made signature into an image from 'sign --digest-out'."""
    read = [("IMAGE", image), ("--signature", sig_path)]
    read += [("--key", key)] if key is not None else []
    check_outputs([("--out", out)], read, force=force)
    signed = stitch_signature(_read(image), _read(sig_path))
    if key is not None:
        parsed = parse_image(signed)
        public = _public_key("--key", key)
        good = verify_digest(
            public, parsed.sign_type, parsed.digest(), bytes(parsed.signature)
        )
        if not good:
            raise SignatureError(
                f"the signature in {sig_path} does not verify with --key {key}"
            )
    write_atomic(out, signed)


def _authenticated(report: VerifyReport) -> bool:
    """Hash checks mean something only once the signature over them verified."""
    return not report.failed(CheckKind.SIGNATURE)


def _check_word(check: Check, authenticated: bool) -> str:
    if not check.ok:
        return "FAIL"
    if check.kind is CheckKind.HASH and not authenticated:
        return "UNAUTHENTICATED"
    return "PASS"


def _report_json(image: Path, report: VerifyReport) -> dict[str, Any]:
    authenticated = _authenticated(report)
    checks = [
        {
            "name": c.name,
            "kind": c.kind.value,
            "ok": c.ok,
            "authenticated": authenticated or c.kind is not CheckKind.HASH,
            "detail": c.detail,
        }
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


@click.command(
    "verify",
    epilog="\b\nExample:\n  rproctee verify fw.img --key key.pub\n"
    "\b\nExit status: 0 all checks pass; 2 unusable key; 3 I/O; 4 malformed "
    "image; 5 bad signature (segment hashes are then shown UNAUTHENTICATED); "
    "6 hash mismatch.",
)
@click.argument("image", type=_PATH)
@click.option("--key", required=True, type=_PATH, help="Public key PEM.")
@click.option("--json", "as_json", is_flag=True, help="JSON report on stdout.")
@click.pass_context
@guarded
def verify_cmd(ctx: click.Context, image: Path, key: Path, as_json: bool) -> None:
    """Check the signature and every segment hash; exit 0 only if all pass."""
    public = _public_key("--key", key)
    report = verify_image(map_file(image), public)
    if as_json:
        emit_json(_report_json(image, report))
    else:
        authenticated = _authenticated(report)
        for c in report.checks:
            click.echo(f"{_check_word(c, authenticated)}  {c.name}: {c.detail}")
        if not authenticated:
            click.echo(
                "note: the signature failed, so the hash table is unauthenticated: "
                "matching hashes prove nothing"
            )
        click.echo(f"{image}: {'OK' if report.ok else 'FAILED'}")
    ctx.exit(_verify_exit(report))


@click.command(
    "info",
    epilog="\b\nExample:\n  rproctee info fw.img --key key.pub\n"
    "\b\nExit status: 0 shown (and, with --key, the signature verifies); 2 "
    "unusable key; 3 I/O; 4 not a signed image (an ELF is named as such) or "
    "malformed; 5 the signature does not verify with --key.",
)
@click.argument("image", type=_PATH)
@click.option(
    "--key",
    type=_PATH,
    help="Public key: show its fingerprint and whether it verifies the image.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@guarded
def info_cmd(image: Path, key: Path | None, as_json: bool) -> None:
    """Show header, TLVs, hash table, signature and embedded ELF files."""
    public = _public_key("--key", key) if key is not None else None
    model = describe_image(map_file(image), public)
    if as_json:
        emit_json(model)
    else:
        for line in format_info(model):
            click.echo(line)
    if "key" in model and not model["key"]["signature_valid"]:
        raise SystemExit(exitcodes.BAD_SIGNATURE)


@click.command(
    "keygen",
    epilog="\b\nExample:\n  rproctee keygen --type rsa4096 --out key.pem "
    "--pub-out key.pub\n"
    "\b\nExit status: 0 written; 2 usage (output exists without --force, both "
    "outputs the same file); 3 I/O.",
)
@click.option(
    "--type",
    "kind",
    required=True,
    type=click.Choice(KEY_KINDS),
    help="Key algorithm and size.",
)
@click.option("--out", required=True, type=_OUT, help="Private key PEM to write.")
@click.option("--key-pwd", "--key_pwd", "key_pwd", help="Encrypt with this passphrase.")
@click.option("--pub-out", type=_OUT, help="Also write the public key PEM here.")
@_FORCE
@guarded
def keygen_cmd(
    kind: str, out: Path, key_pwd: str | None, pub_out: Path | None, force: bool
) -> None:
    """Generate a signing key (PKCS#8 PEM); prints its SHA-256 fingerprint."""
    outputs = [("--out", out)] + ([("--pub-out", pub_out)] if pub_out else [])
    check_outputs(outputs, force=force)
    key = generate_key(kind)
    write_atomic(out, private_key_pem(key, key_pwd), mode=0o600)
    if pub_out is not None:
        write_atomic(pub_out, public_key_pem(key))
    click.echo(fingerprint(key))


@click.command(
    "pubkey",
    epilog="\b\nExample:\n  rproctee pubkey key.pem --out key.pub\n"
    "\b\nExit status: 0 shown or written; 2 usage (unusable key, missing or "
    "wrong passphrase, output exists without --force or is the key); 3 I/O.",
)
@click.argument("key", type=_PATH)
@click.option("--out", type=_OUT, help="Write the public key PEM here.")
@click.option("--key-pwd", "--key_pwd", "key_pwd", help="Passphrase of the key.")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@_FORCE
@guarded
def pubkey_cmd(
    key: Path, out: Path | None, key_pwd: str | None, as_json: bool, force: bool
) -> None:
    """Show a key's public half and its SHA-256 fingerprint."""
    if out is not None:
        check_outputs([("--out", out)], [("KEY", key)], force=force)
    public = _public_key("KEY", key, key_pwd, private_ok=True)
    pem = public_key_pem(public)
    if out is not None:
        write_atomic(out, pem)
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


# --------------------------------------------------------------------------
# info as text: addresses, offsets and sizes in hex, counts in decimal, enum
# values by name with their number.


def _hexes(values: dict[str, Any]) -> str:
    return " ".join(
        f"{k} {v:#x}" if isinstance(v, int) else f"{k} {v}" for k, v in values.items()
    )


def _phdr(seg: dict[str, Any]) -> str:
    rest = {
        k: seg[k]
        for k in ("p_offset", "p_vaddr", "p_paddr", "p_filesz", "p_memsz", "p_align")
    }
    return (
        f"{describe_ptype(seg['p_type'])} {_hexes(rest)} "
        f"p_flags {describe_pflags(seg['p_flags']).strip() or '0'}"
    )


_TLV_ENUMS: dict[str, dict[int, str]] = {
    "SIGNTYPE": {1: "RSA", 2: "ECC"},
    "HASHTYPE": {1: "SHA256"},
    "IMGTYPE": {1: "ELF"},
}


def _tlv_text(tlv: dict[str, Any]) -> str:
    value, names = tlv["value"], _TLV_ENUMS.get(tlv["name"], {})
    if tlv["name"] == "HASHTABLE" and isinstance(value, dict):
        return f"{value['entries']} entries"
    if tlv["name"] == "IMGSIZE" and isinstance(value, list):
        return ", ".join(f"{v:#x}" for v in value)
    if isinstance(value, list):
        return ", ".join(f"{names.get(v, 'unknown')} ({v})" for v in value)
    if isinstance(value, int):
        return f"{names[value]} ({value})" if value in names else str(value)
    return f"0x{value}" if value else "(empty)"


def _info_images(model: dict[str, Any]) -> list[str]:
    lines = ["images:"]
    for img in model["images"]:
        elf = img["elf"]
        head = f"  [{img['index']}] offset {img['offset']:#x} size {img['size']:#x}"
        if "error" in elf:
            lines.append(f"{head}: unreadable ELF: {elf['error']}")
            continue
        lines.append(
            f"{head}: ELFCLASS{elf['class']} {elf['data']}-endian, "
            f"{describe_machine(elf['machine'])}, entry {elf['entry']:#x}, "
            f"{len(elf['segments'])} program headers"
        )
        lines.extend(f"      {_phdr(seg)}" for seg in elf["segments"])
        lines.extend(_info_rsc(elf["resource_table"]))
    return lines


def _info_rsc(rsc: dict[str, Any] | None) -> list[str]:
    if rsc is None:
        return ["      .resource_table: none"]
    where = _hexes({k: rsc[k] for k in ("sh_addr", "sh_offset", "sh_size")})
    if "error" in rsc:
        return [f"      .resource_table: {where}: invalid: {rsc['error']}"]
    lines = [f"      .resource_table: {where}, ver {rsc['version']}, num {rsc['num']}"]
    for e in rsc["entries"]:
        fields = _hexes({k: v for k, v in e["fields"].items() if k != "vrings"})
        lines.append(
            f"        {e['type_name']} (type {e['type']}) at {e['offset']:#x}: {fields}"
        )
        lines.extend(
            f"          vring {_hexes(r)}" for r in e["fields"].get("vrings", [])
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
    sig, header = model["signature"], model["header"]
    lines = [
        f"image: {model['size']:#x} bytes; header {_hexes(header)}",
        f"signature: {sig['type']} (SIGNTYPE {sig['sign_type']}), "
        f"{sig['length']:#x} bytes at offset {sig['offset']:#x}",
        "TLVs:",
    ]
    for t in model["tlvs"]:
        lines.append(
            f"  {t['type']:#010x} {t['name']:<10} len {t['length']:<#7x} {_tlv_text(t)}"
        )
    lines.append(f"hash table: {len(model['hash_table'])} entries")
    for e in model["hash_table"]:
        lines.append(f"  [{e['index']}] {_phdr(e)} sha256 {e['digest']}")
    lines.extend(_info_images(model))
    if "key" in model:
        key = model["key"]
        verdict = "verifies" if key["signature_valid"] else "does NOT verify"
        lines.append(
            f"key: {key['type']} sha256 {key['fingerprint_sha256']}: the signature "
            f"{verdict}"
        )
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
