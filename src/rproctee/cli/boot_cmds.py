"""``rproctee boot`` and ``rproctee lifecycle-doc``: the Linux side, run.

``boot`` registers a firmware with the Linux remoteproc core of a platform
model (TEE-backed ops of series v15 or v22, or plain ELF ops with
``--no-tee``), boots it, shows the state transitions, the resource table and
carveouts, the trace buffer, optionally crashes and recovers it (coredump
included), then shuts it down; with ``--pas`` the firmware is a Qualcomm
MDT/MBN image booted in two steps through TrustZone's PAS
(``qcom_q6v5_pas``). ``lifecycle-doc`` regenerates ``docs/lifecycle.md``
from real runs of both series.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from click.core import ParameterSource

from rproctee.cli import exitcodes
from rproctee.cli.life_report import (
    coredump_unwritable,
    life_status,
    print_life,
    read_input,
    show_life,
    write_text,
)
from rproctee.cli.output import emit_json

if TYPE_CHECKING:
    from rproctee.linux.state import CrashType, DumpConf

_PLATFORM_HELP = "Preset name, device tree (.dtb/.dts) or TOML profile (.toml)."
_MODES = {"default": "ENABLED", "inline": "INLINE"}


def register(group: click.Group) -> None:
    """Add ``boot`` and ``lifecycle-doc`` to ``group``."""
    group.add_command(boot_cmd)
    group.add_command(lifecycle_doc_cmd)


@click.command("boot")
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--platform", "-p", help=_PLATFORM_HELP + " Required unless --pas.")
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM public key of the platform's PTA (default: its own).")
@click.option("--series", type=click.Choice(["v15", "v22"]), default="v22",
              show_default=True, help="Version of the TEE series to model.")
@click.option("--no-tee", is_flag=True,
              help="Plain ELF ops: IMAGE is an unsigned ELF, Linux loads it.")
@click.option("--policy", type=click.Choice(["optee", "strict"]), default="strict",
              show_default=True, help="TA policy.")
@click.option("--crash", type=click.Choice(["watchdog", "fatal"]),
              help="Crash the firmware once it runs; the core recovers it.")
@click.option("--coredump", "coredump_path",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Enable coredumps and write the crash's ELF core here.")
@click.option("--coredump-mode", type=click.Choice(["default", "inline"]),
              default="default", show_default=True,
              help="sysfs coredump: 'enabled' (default) or 'inline'.")
@click.option("--sequence", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a Mermaid sequence diagram of the run (Markdown).")
@click.option("--pas", is_flag=True,
              help="Qualcomm two-step boot through TrustZone's PAS: IMAGE is an "
              ".mdt/.mbn (NAME.bNN beside it); needs --carveout.")
@click.option("--carveout", metavar="BASE:SIZE",
              callback=lambda _ctx, _param, value: _pas_carveout(value),
              help="With --pas: the remote processor's memory region (physical).")
@click.option("--root", metavar="SHA256|CERT",
              help="With --pas: the root certificate TrustZone trusts, as its "
              "SHA-256 (hex) or a PEM/DER file (a chain file: its last, "
              "self-signed certificate); without it secure boot is off.")
@click.option("--emulate", is_flag=True,
              help="Run the firmware on the emulated Cortex-M core (unicorn: "
              "pip install 'rproctee[emu]'): trace and UART lines as they come, "
              "instructions/s, the fault's registers in the coredump.")
@click.option("--ticks", type=click.IntRange(min=1), metavar="N",
              help="With --emulate: ticks of execution after boot (and after a "
              "--crash recovery) [default: 10].")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
def boot_cmd(
    image: Path, platform: str | None, key: Path | None, series: str, no_tee: bool,
    policy: str, crash: str | None, coredump_path: Path | None, coredump_mode: str,
    sequence: Path | None, pas: bool, carveout: tuple[int, int] | None,
    root: str | None, emulate: bool, ticks: int | None, as_json: bool,
) -> None:  # fmt: skip
    """Boot IMAGE through the Linux remoteproc core; crash, recover, shut down.

    Exit 0 only when every step asked for succeeded; 7 when a TEE call
    (with --pas: an SCM call) failed, 1 when the core refused otherwise;
    2 usage, 3 I/O.
    """
    from rproctee.linux.lifecycle import report_dict, run_life
    from rproctee.linux.state import CrashType, DumpConf

    mode = DumpConf[_MODES[coredump_mode]] if coredump_path else DumpConf.DISABLED
    kind = CrashType.parse(crash) if crash else None
    _check_path_options(click.get_current_context(), pas)
    if emulate or ticks is not None:  # rproctee.cli.emulate: the whole --emulate path
        from rproctee.cli.emulate import boot_emulated, check_boot_options

        count = check_boot_options(pas, emulate, ticks)
        assert platform is not None  # _check_path_options
        boot_emulated(image, platform, key, series, no_tee, policy, kind, mode,
                      coredump_path, sequence, count, as_json)  # fmt: skip
    if pas:
        assert carveout is not None  # _check_path_options
        _boot_pas(image, carveout, root, kind, mode, coredump_path, sequence, as_json)
    assert platform is not None  # _check_path_options
    system = _system(image, platform, key, series, no_tee, policy)
    try:
        report = run_life(system, crash=kind, coredump_mode=mode,
                          coredump_path=coredump_path)  # fmt: skip
    except OSError as exc:
        coredump_unwritable(coredump_path, exc)
    show_life(system, report_dict(system, report), sequence, image.name, as_json)
    raise SystemExit(life_status(report))


def _check_path_options(ctx: click.Context, pas: bool) -> None:
    """Each option belongs to one path: the TEE/ELF one, or ``--pas``."""
    given = [
        p.opts[0] for p in ctx.command.params
        if isinstance(p, click.Option) and p.name is not None
        and ctx.get_parameter_source(p.name) is not ParameterSource.DEFAULT
    ]  # fmt: skip
    if not pas:
        wrong = [o for o in given if o in _PAS_ONLY]
        if wrong:
            raise click.UsageError(f"{wrong[0]} is for --pas only")
        if ctx.params["platform"] is None:
            raise click.UsageError("--platform is required (unless --pas)")
        return
    wrong = [o for o in given if o in _NOT_PAS]
    if wrong:
        raise click.UsageError(
            f"{wrong[0]} does not apply to --pas (TrustZone's PAS, no OP-TEE)"
        )
    if ctx.params["carveout"] is None:
        raise click.UsageError("--pas needs --carveout BASE:SIZE")


def _system(
    image: Path, platform: str, key: Path | None, series: str, no_tee: bool,
    policy: str,
) -> Any:  # fmt: skip
    from rproctee.errors import RprocError
    from rproctee.linux.system import build_system
    from rproctee.platform.board import load_platform

    try:
        spec = load_platform(platform)
    except RprocError as exc:
        raise click.UsageError(f"--platform: {exc}") from exc
    data = read_input(image, "image")
    pem = read_input(key, "key") if key else None
    if no_tee and key:
        raise click.UsageError("--key is for the TEE's PTA; --no-tee verifies nothing")
    try:
        return build_system(spec, data, series=series, tee=not no_tee, key_pem=pem,
                            policy=policy)  # fmt: skip
    except (ValueError, RprocError) as exc:
        raise click.UsageError(str(exc)) from exc


# -- --pas: Qualcomm's two-step boot ---------------------------------------------
#: Options of the TEE/ELF path only, and of the PAS path only.
_NOT_PAS = ("--platform", "--key", "--series", "--no-tee", "--policy")
_PAS_ONLY = ("--carveout", "--root")


def _pas_carveout(value: str | None) -> tuple[int, int] | None:
    """``--carveout``, checked as ``rproctee mdt boot`` checks it."""
    if value is None:
        return None
    from rproctee.cli.qcom_cmds import _carveout

    return _carveout(value)


def _pas_root(value: str | None) -> bytes | None:
    """``--root``: 64 hex digits, or the SHA-256 of a certificate file's root."""
    if value is None:
        return None
    import re

    from rproctee.cli.qcom_cmds import _root

    if re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return _root(value)
    path = Path(value)
    if not path.is_file():
        raise click.BadParameter(
            f"{value!r} is neither 64 hex digits (a SHA-256) nor a certificate file",
            param_hint="--root",
        )
    return _root_of_file(path)


def _root_of_file(path: Path) -> bytes:
    """SHA-256 of the DER of the last certificate in ``path``, if self-signed."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    data = read_input(path, "certificate")
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            cert = x509.load_pem_x509_certificates(data)[-1]
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise click.BadParameter(
            f"{path}: not a PEM or DER certificate ({exc})", param_hint="--root"
        ) from exc
    if cert.issuer != cert.subject:
        raise click.BadParameter(
            f"{path}: the last certificate ({cert.subject.rfc4514_string()}) is "
            "not self-signed, so not a root",
            param_hint="--root",
        )
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()


def _boot_pas(
    image: Path, carveout: tuple[int, int], root: str | None,
    crash: CrashType | None, mode: DumpConf, coredump_path: Path | None,
    sequence: Path | None, as_json: bool,
) -> NoReturn:  # fmt: skip
    """``boot --pas``: the same life and JSON keys, SCM calls as ``tee_calls``."""
    from rproctee.cli.output import fail
    from rproctee.linux.lifecycle import report_dict, run_life
    from rproctee.qcom.errors import MdtFileError
    from rproctee.qcom.pas import Carveout
    from rproctee.qcom.pas_ops import PRIV_KEY, build_pas_system, firmware_folder

    trusted = _pas_root(root)
    try:
        files = firmware_folder(image)
    except MdtFileError as exc:
        fail(str(exc), exitcodes.IO_ERROR)
    region = Carveout("carveout", *carveout)
    system = build_pas_system(files, image.name, region, trusted_root=trusted)
    try:
        report = run_life(system, crash=crash, coredump_mode=mode,
                          coredump_path=coredump_path)  # fmt: skip
    except OSError as exc:
        coredump_unwritable(coredump_path, exc)
    pas = system.rproc.priv[PRIV_KEY]
    doc = report_dict(system, report)
    doc["tee_calls"] = [_scm_call(call) for call in pas.scm.calls]
    if report.steps[0].ok and not doc["carveouts"]:
        # qcom_q6v5_pas registers no rproc carveout: show the region it loaded
        doc["carveouts"] = [{"name": region.name, "da": pas.mem_reloc,
                             "pa": region.pa, "len": region.size}]  # fmt: skip
    doc["pas"] = {"rproc": system.rproc.name, "pas_id": pas.pas_id,
                  "secure_boot": trusted is not None}  # fmt: skip
    if sequence is not None:
        from rproctee.qcom.sequence import pas_markdown

        title = f"{image.name}: PAS boot"
        write_text(sequence, pas_markdown(system.log.events, title))
        doc["sequence"] = str(sequence)
    if as_json:
        emit_json(doc)
    else:
        print_life(doc)
    if any(_scm_failed(call) for call in doc["tee_calls"]):
        raise SystemExit(exitcodes.TEE_ERROR)
    raise SystemExit(life_status(report))


def _scm_failed(call: dict[str, Any]) -> bool:
    """TrustZone refused: an SCM error status, or a non-zero answer where
    the caller of ``qcom_scm_pas_*`` takes one as failure (all but
    ``PAS_IS_SUPPORTED``, whose 1 means yes)."""
    if call["result"] != "QCOM_SCM_SUCCESS":
        return True
    return bool(call["ret"]) and call["cmd"] != "PAS_IS_SUPPORTED"


def _scm_call(call: Any) -> dict[str, Any]:
    """One SCM call in ``tee_calls``' shape (``cmd``, ``id``, ``result``) and more."""
    row = call.to_dict()
    return {"cmd": row.pop("command"), "id": row.pop("pas_id"),
            "result": row.pop("status"), **row}  # fmt: skip


# -- terminal output -----------------------------------------------------------
# -- docs/lifecycle.md -----------------------------------------------------------
@click.command("lifecycle-doc")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("docs/lifecycle.md"), show_default=True)
def lifecycle_doc_cmd(out: Path) -> None:
    """Regenerate docs/lifecycle.md from real runs of series v15 and v22."""
    from rproctee.linux.lifecycle_doc import lifecycle_markdown

    try:
        out.write_text(lifecycle_markdown(), encoding="utf-8")
    except OSError as exc:
        click.echo(f"error: cannot write {out}: {exc.strerror}", err=True)
        raise SystemExit(exitcodes.IO_ERROR) from exc
    click.echo(f"wrote {out}")
