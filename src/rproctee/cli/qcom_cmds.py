"""``rproctee mdt``: inspect, verify, split and join Qualcomm MDT/MBN images.

Exit status (see ``rproctee.cli.exitcodes``): 0 success, 2 usage error,
3 I/O error (file or ``.bNN`` missing, output unwritable), 4 malformed
image, 5 certificate chain or signature not valid, 6 segment hash mismatch.
Results go to stdout (JSON with ``--json``, carrying ``schema_version``);
errors go to stderr in the command line's one style
(:func:`rproctee.cli.output.fail`).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from rproctee.cli import exitcodes
from rproctee.cli.output import emit_json, fail

if TYPE_CHECKING:
    from rproctee.qcom.format import MdtImage
    from rproctee.qcom.verify import VerifyReport

P = ParamSpec("P")
R = TypeVar("R")
_PATH = click.Path(dir_okay=False, path_type=Path)
_KIND = {0: "header", 1: "hash"}
#: Largest carveout ``mdt boot`` models (real ones are tens of MiB).
MAX_CARVEOUT = 1 << 30


def register(group: click.Group) -> None:
    """Add the ``mdt`` group to ``group``."""
    group.add_command(mdt_group)


def _map_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn :mod:`rproctee.qcom` errors into documented exit statuses."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from rproctee.qcom import errors

        table: tuple[tuple[type[BaseException], int], ...] = (
            (errors.MdtFileError, exitcodes.IO_ERROR),
            (errors.MdtFormatError, exitcodes.MALFORMED_IMAGE),
            (errors.MdtSignatureError, exitcodes.BAD_SIGNATURE),
            (errors.MdtHashMismatchError, exitcodes.HASH_MISMATCH),
            (OSError, exitcodes.IO_ERROR),
        )
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except Exception as exc:
            for kind, code in table:
                if isinstance(exc, kind):
                    fail(_describe(exc), code)
            raise

    return wrapper


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


def _root(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        root = bytes.fromhex(value)
    except ValueError:
        root = b""
    if len(root) != 32:
        raise click.BadParameter(f"{value!r} is not 64 hex digits (a SHA-256)")
    return root


@click.group("mdt")
def mdt_group() -> None:
    """Qualcomm MDT/MBN firmware: info, verify, split, join, boot, build.

    FILE is a single .mbn/.mdt, or the .mdt of a split set whose
    NAME.b00, NAME.b01, ... files sit beside it.

    \b
    Example:
      rproctee mdt build --out fw.mbn --version 6     # prints the root SHA-256
      rproctee mdt verify fw.mbn --root SHA256
      rproctee mdt split fw.mbn --out fw --name modem.mdt
      rproctee mdt boot fw/modem.mdt --carveout 0x8c000000:0x100000 --root SHA256
    """


@mdt_group.command("info")
@click.argument("file", type=_PATH)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_map_errors
def info_cmd(file: Path, as_json: bool) -> None:
    """Program headers, hash segment (MBN version, algorithm) and certificates."""
    from rproctee.qcom import certs, open_image
    from rproctee.qcom.errors import MdtError

    image = open_image(file)
    chains: dict[str, Any] = {}
    for auth in image.hash_segment.authorities():
        try:
            chains[auth.name] = [
                i.to_dict() for i in certs.describe_chain(auth.cert_chain)
            ]
        except MdtError as exc:  # show the rest of the image anyway
            chains[auth.name] = {"error": str(exc)}
    if as_json:
        emit_json({**image.to_dict(), "certificates": chains})
        return
    _print_image(image)
    for name, chain in chains.items():
        if isinstance(chain, dict):
            click.echo(f"{name} certificate chain: unreadable: {chain['error']}")
            continue
        click.echo(f"{name} certificate chain ({len(chain)}):")
        for cert in chain:
            click.echo(f"  {cert['subject']}  [{cert['key_type']}]")
            click.echo(f"      issuer {cert['issuer']}")


def _print_image(image: MdtImage) -> None:
    hdr, seg = image.header, image.hash_segment
    layout = "split (.mdt + .bNN)" if image.split else "single file"
    click.echo(
        f"{image.name}: ELF32, e_machine {hdr.e_machine}, entry "
        f"{hdr.e_entry:#x}, {hdr.e_phnum} program headers, {layout}"
    )
    click.echo(f"relocatable: {'yes' if image.relocatable else 'no'}")
    click.echo(
        f"{'#':>3} {'kind':<7}{'p_offset':>11}{'p_paddr':>12}{'p_filesz':>11}"
        f"{'p_memsz':>11}{'p_flags':>12}  source"
    )
    for i, ph in enumerate(image.phdrs):
        kind = _KIND.get(i, "load") if i != image.hash_index else "hash"
        if i not in (0, image.hash_index) and not _loadable(image, i):
            kind = "-"
        click.echo(
            f"{i:>3} {kind:<7}{ph.p_offset:>#11x}{ph.p_paddr:>#12x}"
            f"{ph.p_filesz:>#11x}{ph.p_memsz:>#11x}{ph.p_flags:>#12x}  "
            f"{image.sources.get(i, '-')}"
        )
    click.echo(
        f"hash segment: MBN v{seg.version}, {seg.algorithm}, "
        f"{len(seg.hashes)} digests, {seg.header_size}-byte header"
    )
    for name, value in seg.fields.items():
        click.echo(f"  {name:<28}{value:#x}")


def _loadable(image: MdtImage, index: int) -> bool:
    from rproctee.qcom.format import is_loadable

    return is_loadable(image.phdrs[index])


@mdt_group.command("verify")
@click.argument("file", type=_PATH)
@click.option(
    "--root",
    default=None,
    metavar="SHA256",
    help="SHA-256 (hex) of the root certificate every chain must end in.",
)
@click.option(
    "--hashes-only",
    is_flag=True,
    help="Check segment hashes only (vendor images: their signature "
    "scheme is not the test scheme this tool verifies).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@_map_errors
def verify_cmd(file: Path, root: str | None, hashes_only: bool, as_json: bool) -> None:
    """Every segment hash against the table, then each certificate chain and
    signature (rproctee's test signature scheme, not Qualcomm's).

    Exit status: 0 all pass; 4 malformed; 5 chain or signature not valid;
    6 a segment hash mismatch.
    """
    from rproctee.qcom import open_image, require_valid, verify_image
    from rproctee.qcom.errors import MdtError

    trusted = _root(root)
    image = open_image(file)
    report = verify_image(image, trusted, hashes_only=hashes_only)
    try:
        require_valid(report, hashes_only=hashes_only)
        problem, status = None, exitcodes.OK
    except MdtError as exc:
        problem = str(exc)
        status = _verify_status(exc)
    if as_json:
        # One JSON document: the report says what failed, the status says how.
        emit_json({"file": str(file), "exit": status, **report.to_dict()})
        raise SystemExit(status)
    _print_report(image, report)
    if problem is not None:
        fail(problem, status)


def _verify_status(exc: Exception) -> int:
    from rproctee.qcom.errors import MdtHashMismatchError

    if isinstance(exc, MdtHashMismatchError):
        return exitcodes.HASH_MISMATCH
    return exitcodes.BAD_SIGNATURE


def _print_report(image: MdtImage, report: VerifyReport) -> None:
    algo = image.hash_segment.algorithm
    for seg in report.segments:
        click.echo(f"segment {seg.index:>2}: {seg.status} ({algo})")
    for auth in report.authorities:
        subject = auth.chain[0].subject if auth.chain else "?"
        text = auth.status if auth.reason is None else f"{auth.status}: {auth.reason}"
        click.echo(f"{auth.authority} signature by {subject}: {text}")
        click.echo(f"  scheme: {auth.scheme}")
    if not report.authorities:
        click.echo("signature: none checked")


@mdt_group.command("split")
@click.argument("file", type=_PATH)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for NAME.mdt and NAME.bNN (created if needed).",
)
@click.option("--name", default=None, help="NAME.mdt to write (default: FILE's stem).")
@click.option(
    "--lossy",
    is_flag=True,
    help="Split even if bytes outside every segment would be lost.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_map_errors
def split_cmd(
    file: Path, out_dir: Path, name: str | None, lossy: bool, as_json: bool
) -> None:
    """Split a single-file image into NAME.mdt + NAME.bNN (byte-exact on join)."""
    from rproctee.qcom import split_image

    mdt_name = name or f"{file.stem}.mdt"
    files = split_image(file.read_bytes(), mdt_name, lossy=lossy)
    out_dir.mkdir(parents=True, exist_ok=True)
    for fname, data in files.items():
        _write(out_dir / fname, data)
    if as_json:
        listing = [_file_entry(out_dir / n, d) for n, d in files.items()]
        emit_json({"source": str(file), "lossy": lossy, "files": listing})
        return
    click.echo(f"wrote {len(files)} files to {out_dir}: {', '.join(files)}")


def _file_entry(path: Path, data: bytes) -> dict[str, Any]:
    import hashlib

    return {
        "path": str(path),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


@mdt_group.command("join")
@click.argument("mdt", type=_PATH)
@click.option("--out", required=True, type=_PATH, help="Single-file image to write.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_map_errors
def join_cmd(mdt: Path, out: Path, as_json: bool) -> None:
    """Join NAME.mdt and the NAME.bNN beside it into one file."""
    from rproctee.qcom import directory_fetch, join_image

    data = join_image(mdt.read_bytes(), mdt.name, directory_fetch(mdt.parent))
    _write(out, data)
    if as_json:
        emit_json({"source": str(mdt), "file": _file_entry(out, data)})
        return
    click.echo(f"wrote {out} ({len(data)} bytes)")


@mdt_group.command("build")
@click.option(
    "--out", required=True, type=_PATH, help="Single-file image to write (.mbn)."
)
@click.option(
    "--version",
    "mbn_version",
    type=click.Choice(["3", "5", "6", "7"]),
    default="6",
    show_default=True,
    help="MBN hash-segment header version.",
)
@click.option(
    "--algorithm",
    type=click.Choice(["sha256", "sha384"]),
    default=None,
    help="Digest of the hash table (default: SHA-256 for v3/v5, SHA-384 after).",
)
@click.option(
    "--key-type",
    type=click.Choice(["p384", "rsa2048"]),
    default="p384",
    show_default=True,
    help="Attestation key of the generated chain.",
)
@click.option(
    "--base",
    default="0x8c000000",
    show_default=True,
    help="Load address of the first segment.",
)
@click.option(
    "--code-kib",
    default=64,
    show_default=True,
    type=click.IntRange(1, 1 << 20),
    help="Size of the code segment.",
)
@click.option("--relocatable", is_flag=True, help="Mark the segments relocatable.")
@click.option("--chain-out", type=_PATH, help="Also write the certificate chain (PEM).")
@_map_errors
def build_cmd(
    out: Path,
    mbn_version: str,
    algorithm: str | None,
    key_type: str,
    base: str,
    code_kib: int,
    relocatable: bool,
    chain_out: Path | None,
) -> None:
    """Make a signed test image with a fresh key and self-signed chain.

    The signature uses rproctee's test scheme (not Qualcomm's).  Prints the
    root certificate's SHA-256 to give to ``verify --root`` / ``boot --root``.
    """
    from rproctee.qcom import build_image, make_test_signer
    from rproctee.qcom.build import demo_segments

    try:
        segments = demo_segments(int(base, 0), code_kib)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--base") from exc
    signer = make_test_signer(key_type)
    data = build_image(
        segments,
        version=int(mbn_version),
        algorithm=algorithm,
        signer=signer,
        relocatable=relocatable,
    )
    _write(out, data)
    if chain_out is not None:
        _write(chain_out, _chain_pem(signer.chain))
    click.echo(f"wrote {out} ({len(data)} bytes), MBN v{mbn_version}")
    click.echo(f"root sha256: {signer.root_sha256.hex()}")


def _chain_pem(chain: bytes) -> bytes:
    import base64
    import textwrap

    from rproctee.qcom.certs import split_chain

    out = b""
    for der in split_chain(chain):
        body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
        out += (
            f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode()
        )
    return out


def _carveout(value: str) -> tuple[int, int]:
    base, sep, size = value.partition(":")
    try:
        region = (int(base, 0), int(size, 0))
    except ValueError:
        sep = ""
    if not sep or region[0] < 0 or region[1] <= 0 or sum(region) > 1 << 64:
        raise click.BadParameter(
            f"{value!r} is not BASE:SIZE (e.g. 0x8c000000:0x100000)"
        )
    if region[1] > MAX_CARVEOUT:
        raise click.BadParameter(
            f"size {region[1]:#x} is larger than {MAX_CARVEOUT:#x} (the model holds "
            "the whole carveout in memory)"
        )
    return region


@mdt_group.command("boot")
@click.argument("file", type=_PATH)
@click.option(
    "--carveout",
    required=True,
    metavar="BASE:SIZE",
    help="The remote processor's memory region (physical).",
)
@click.option(
    "--root",
    default=None,
    metavar="SHA256",
    help="Root certificate TrustZone trusts (SHA-256 hex); without it "
    "secure boot is off: chain and signature are not required.",
)
@click.option(
    "--pas-id",
    default=4,
    show_default=True,
    type=click.IntRange(0),
    help="PAS id of the peripheral (adsp 1, modem 4, cdsp 18).",
)
@click.option(
    "--crash",
    type=click.Choice(["watchdog", "fatal"]),
    help="Crash the firmware once it runs; the core recovers it.",
)
@click.option(
    "--sequence",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a Mermaid diagram and the memory-ownership table (Markdown).",
)
@click.option(
    "--beside-tee",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also boot the same segments through OP-TEE's TA; write both paths' "
    "ownership tables (Markdown) and compare the carveouts.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@_map_errors
def boot_cmd(
    file: Path,
    carveout: str,
    root: str | None,
    pas_id: int,
    crash: str | None,
    sequence: Path | None,
    beside_tee: Path | None,
    as_json: bool,
) -> None:
    """Boot FILE the Qualcomm way through the Linux remoteproc core.

    qcom_q6v5_pas's ops: PAS_INIT_IMAGE with the metadata, Linux copies the
    segments into the carveout (from FILE or its NAME.bNN), then
    PAS_AUTH_AND_RESET locks the carveout and checks them; shutdown gives
    the carveout back.  Exit 0 when every step succeeded; 7 when TrustZone
    refused a call; 1 when the core refused otherwise; 2 usage; 3 I/O.
    """
    from rproctee.linux.lifecycle import report_dict, run_life
    from rproctee.linux.state import CrashType
    from rproctee.qcom.pas import Carveout
    from rproctee.qcom.pas_ops import PRIV_KEY, build_pas_system, firmware_folder

    base, size = _carveout(carveout)
    trusted = _root(root)
    files = firmware_folder(file)
    system = build_pas_system(
        files,
        file.name,
        Carveout("carveout", base, size),
        trusted_root=trusted,
        pas_id=pas_id,
    )
    report = run_life(system, crash=CrashType.parse(crash) if crash else None)
    calls = system.rproc.priv[PRIV_KEY].scm.calls
    doc = {**report_dict(system, report), "scm_calls": [c.to_dict() for c in calls]}
    if sequence is not None:
        from rproctee.qcom.sequence import pas_markdown

        _write(
            sequence, pas_markdown(system.log.events, f"{file.name}: PAS boot").encode()
        )
        doc["sequence"] = str(sequence)
    if beside_tee is not None:
        doc["beside_tee"] = _beside_tee(
            files, file.name, base, size, trusted, pas_id, beside_tee
        )
    if as_json:
        emit_json(doc)
    else:
        _print_boot(doc, trusted is not None)
    raise SystemExit(_boot_status(report.ok, calls))


def _beside_tee(
    files: dict[str, bytes],
    name: str,
    base: int,
    size: int,
    trusted: bytes | None,
    pas_id: int,
    out: Path,
) -> dict[str, Any]:
    from rproctee.qcom.pas import Carveout
    from rproctee.qcom.sequence import compare_paths

    cmp = compare_paths(
        files,
        name,
        Carveout("carveout", base, size),
        trusted_root=trusted,
        pas_id=pas_id,
    )
    same = (
        "identical"
        if cmp.identical
        else f"differ from offset {cmp.first_difference:#x}"
    )
    head = f"Carveout contents while the processor runs: {same}.\n\n"
    _write(out, (head + cmp.markdown).encode())
    return {**cmp.to_dict(), "markdown": str(out)}


def _boot_status(ok: bool, calls: list[Any]) -> int:
    if ok:
        return exitcodes.OK
    if any(c.ret for c in calls if c.name != "PAS_SHUTDOWN"):
        return exitcodes.TEE_ERROR
    return exitcodes.WOULD_NOT_LOAD


def _print_boot(doc: dict[str, Any], secure_boot: bool) -> None:
    click.echo(
        f"secure boot: {'on (root given)' if secure_boot else 'off (no --root)'}"
    )
    for call in doc["scm_calls"]:
        args = " ".join(hex(a) for a in call["args"])
        reason = f"  ({call['reason']})" if call["reason"] else ""
        click.echo(f"  {call['command']:<20}{args:<24}ret {call['ret']}{reason}")
    for step in doc["steps"]:
        text = "ok" if step["ok"] else f"FAILED: {step['error']}"
        click.echo(f"{step['step']}: {text}")
    for msg in doc["messages"]:
        if msg["level"] == "err":
            click.echo(f"  kernel: {msg['text']}")
    click.echo(f"states: {' -> '.join(doc['states'])}")
    beside = doc.get("beside_tee")
    if beside is not None:
        same = "identical" if beside["identical"] else "DIFFERENT"
        click.echo(f"beside OP-TEE: carveout {same} ({beside['markdown']})")


def _write(path: Path, data: bytes) -> None:
    """Write atomically: a temporary file in the same folder, renamed."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["register"]
