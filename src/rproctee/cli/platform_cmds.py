"""``rproctee check`` (will this load?) and ``rproctee platform list|show|profile``.

Every command that takes a platform takes ``--node`` for device trees; errors
use the one style of :mod:`rproctee.cli.output`.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import click

from rproctee.cli import exitcodes
from rproctee.cli.output import emit_json, fail, guarded
from rproctee.errors import FormatError, RprocError
from rproctee.platform.board import PlatformSpec, load_platform
from rproctee.preflight import CheckReport, Placement, check_firmware

_PLATFORM_HELP = (
    "Preset name (stm32mp15-dk2, stm32mp15-ed1, stm32mp15-dhcom), device tree "
    "(.dtb or .dts) or TOML profile (.toml)."
)
_NODE_HELP = (
    "Device trees only: remote-processor node (path, label or node name; a "
    "label needs __symbols__ in a .dtb)."
)


def register(group: click.Group) -> None:
    """Add ``check`` and the ``platform`` group to ``group``."""
    group.add_command(check_cmd)
    group.add_command(platform_group)


def _load(platform: str, node: str | None, what: str = "--platform") -> PlatformSpec:
    if Path(platform).is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), platform)
    try:
        return load_platform(platform, node)
    except RprocError as exc:
        raise click.UsageError(f"{what}: {exc}") from exc


@click.command(
    "check",
    epilog="\b\nExample:\n  rproctee check fw.elf --platform stm32mp15-dk2\n"
    "  rproctee check fw.img -p board.dtb --node m4@10000000 --json",
)
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--platform", "-p", "platform", required=True, help=_PLATFORM_HELP)
@click.option("--node", default=None, metavar="PATH_OR_LABEL", help=_NODE_HELP)
@click.option("--policy", type=click.Choice(["optee", "strict"]), default="strict",
              show_default=True, help="The TA's policy, as for load.")  # fmt: skip
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM public key of the platform, for a signed IMAGE "
              "(default: its own).")  # fmt: skip
@click.option("--accept-ecdsa", is_flag=True,
              help="Let the platform verify ECDSA P-256 (upstream: no).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@guarded
def check_cmd(
    image: Path, platform: str, node: str | None, policy: str, key: Path | None,
    accept_ecdsa: bool, as_json: bool, strict: bool,
) -> None:  # fmt: skip
    """Pre-flight IMAGE (signed image or ELF): would it load, and where?

    The TEE verdict is LOAD_FW itself, as `rproctee load` runs it under the
    same --policy, on a scratch copy of the platform's memories (nothing is
    kept): check and load cannot disagree. A signed IMAGE is verified with
    the platform's key (or --key); a plain ELF is first signed for the check
    with a key made for it, so its verdict is "would load once signed".
    Around the verdict: each PT_LOAD with p_paddr and p_vaddr and the region
    it lands in (or why not), the resource table's location, each problem
    with the TA's result code, and Linux's own verdict (rproc_fw_boot with
    the platform driver's ELF ops) in the kernel's words.

    \b
    Exit status: 0 would load; 1 would not load (or, with --strict, loads
    with warnings); 2 bad option or platform; 3 unreadable file or a
    directory; 4 not a signed image or ELF, or malformed.
    """
    spec = _load(platform, node)
    data = image.read_bytes()  # OSError: exit 3, naming the path (guarded)
    pem = key.read_bytes() if key is not None else None
    try:
        report = check_firmware(
            data, spec, source=str(image), policy=policy, key_pem=pem,
            accept_ecdsa=accept_ecdsa or None,
        )  # fmt: skip
    except FormatError as exc:
        fail(f"{image}: {exc}", exitcodes.MALFORMED_IMAGE)
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_report(report)
    raise SystemExit(_check_status(report, strict))


def _check_status(report: CheckReport, strict: bool) -> int:
    if not report.would_load:
        return exitcodes.WOULD_NOT_LOAD
    if strict and any(f.severity != "error" for f in report.findings):
        return exitcodes.WOULD_NOT_LOAD
    return exitcodes.OK


def _print_report(report: CheckReport) -> None:
    spec = report.platform
    click.echo(f"{report.source}: {report.kind}, {report.images} ELF image(s)")
    click.echo(f"platform {spec.name} ({spec.source}), {len(spec.regions)} regions")
    for note in spec.notes:
        click.echo(f"note: {note}")
    click.echo(
        f"{'segment':<18}{'p_paddr':>12}{'p_vaddr':>12}{'p_filesz':>11}"
        f"{'p_memsz':>11}  lands in"
    )
    for seg in report.segments:
        vaddr = f"{seg.p_vaddr:#x}" + ("*" if seg.p_vaddr != seg.p_paddr else "")
        click.echo(
            f"{seg.where:<18}{seg.p_paddr:>#12x}{vaddr:>12}{seg.p_filesz:>#11x}"
            f"{seg.p_memsz:>#11x}  {_landing(seg.copy, seg.fill, seg.status)}"
        )
    if any(s.p_vaddr != s.p_paddr for s in report.segments):
        click.echo("  * p_vaddr != p_paddr: loaded at p_paddr, runs at p_vaddr")
    _print_rsc(report)
    for finding in report.findings:
        _print_finding(finding.severity, finding.where, finding.ta, finding.message)
        if finding.linux:
            click.echo(f'    Linux: "{finding.linux}"')
    _print_verdict(report)


def _landing(copy: Placement | None, fill: Placement | None, status: str) -> str:
    parts = []
    for label, place in (("file", copy), ("zero-fill", fill)):
        if place is None:
            continue
        if place.reason is None:
            parts.append(f"{label} -> {place.region} (pa {place.pa:#x})")
        else:
            parts.append(f"{label}: {place.reason}")
    text = ", ".join(parts) if parts else "nothing to write"
    return text if status in ("ok", "empty") else f"{text} [{status}]"


def _print_rsc(report: CheckReport) -> None:
    rsc = report.rsc_table
    if rsc is None:
        click.echo("resource table: none")
        return
    where = f"image {rsc.image} section {rsc.section}"
    head = f"resource table: {where}, da {rsc.sh_addr:#x} size {rsc.sh_size:#x}"
    place = rsc.placement
    if place is not None and place.reason is None:
        click.echo(f"{head} -> {place.region}, pa {place.pa:#x}")
    else:
        click.echo(f"{head} -> not translated")


def _print_finding(severity: str, where: str, ta: str | None, message: str) -> None:
    code = f"{ta}: " if ta else ""
    click.echo(f"{severity}: {where}: {code}{message}")


def _print_verdict(report: CheckReport) -> None:
    verdict = "would load" if report.would_load else "would NOT load"
    tee = report.tee
    policy = f" ({tee.policy} policy)" if tee is not None else ""
    click.echo(f"OP-TEE{policy}: {report.ta_result} ({verdict})")
    if tee is not None and tee.reason:
        click.echo(f"  reason: {tee.reason}")
    if tee is not None and tee.signed_for_check:
        click.echo("  (a plain ELF: signed for the check with a key made for it)")
    fn = report.parse_fw.driver_function
    for i, v in enumerate(report.linux):
        head = f"Linux (rproc_fw_boot, ELF ops, parse_fw {fn}), image {i}"
        if v.loads:
            click.echo(f"{head}: would boot")
            if v.table_error:
                click.echo(f'  warning: "{v.table_error}": boots without a table')
        else:
            click.echo(f"{head}: refuses in {v.function}: -{v.errno}")
            click.echo(f'  "{v.message}"')
        if v.kernel_oob:
            click.echo(
                "  note: a real kernel would read or write out of bounds here "
                "(the model refuses instead): this image could oops a kernel"
            )


@click.group("platform")
def platform_group() -> None:
    """Inspect platforms: presets, device trees (.dtb/.dts), TOML profiles.

    \b
    Example:
      rproctee platform list
      rproctee platform show board.dtb --node m4@10000000
      rproctee platform profile board.dtb > board.toml

    \b
    Exit status: 0 ok; 2 the platform cannot be read (unknown preset, no
    processor node, bad profile); 3 a file is missing or a directory.
    """


@platform_group.command(
    "list",
    epilog="\b\nExample:\n  rproctee platform list --json\n\b\nExit status: 0.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def list_cmd(as_json: bool) -> None:
    """List the built-in platforms (presets), the default first."""
    from rproctee.platform import presets

    rows = [
        (name, len(presets.get_preset(name).regions), origin)
        for name, origin in presets.preset_descriptions().items()
    ]
    if as_json:
        emit_json(
            {"presets": [{"name": n, "regions": c, "origin": o} for n, c, o in rows]}
        )
        return
    width = max(len(name) for name, _count, _origin in rows)
    for name, count, origin in rows:
        click.echo(f"{name:<{width}}  {count} regions  {origin}")
    click.echo(
        "\nAlso: a device tree (.dtb/.dts, --node to pick the processor) or a "
        "TOML profile (.toml; 'rproctee platform profile TREE' writes one)."
    )


@platform_group.command(
    "show",
    epilog="\b\nExample:\n  rproctee platform show stm32mp15-dk2\n"
    "  rproctee platform show k3-j721e-sk.dtb --node /bus@100000/dsp@4d80800000\n"
    "\b\nExit status: 0; 2 the platform cannot be read (unknown preset, no "
    "processor node, bad profile); 3 the file cannot be read.",
)
@click.argument("platform")
@click.option("--node", default=None, metavar="PATH_OR_LABEL", help=_NODE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def show_cmd(platform: str, node: str | None, as_json: bool) -> None:
    """Print PLATFORM's memory regions, processor ids, key and notes.

    PLATFORM is a preset name, a .dtb/.dts device tree or a .toml profile.
    """
    spec = _load(platform, node, "PLATFORM")
    if as_json:
        emit_json(spec.to_dict())
        return
    click.echo(f"{spec.name} ({spec.source})")
    if spec.node:
        click.echo(f"node: {spec.node}")
    click.echo(f"{'region':<16}{'da':>12}{'pa':>14}{'size':>10}  access")
    for r in spec.regions:
        click.echo(f"{r.name:<16}{r.da:>#12x}{r.pa:>#14x}{r.size:>#10x}  {r.access}")
    ids = ", ".join(str(i) for i in spec.processor_ids)
    click.echo(f"processor ids: {ids}; ECDSA accepted: {spec.accept_ecdsa}")
    key = "built in" if spec.default_key_pem else "none (give one)"
    click.echo(f"key: {key}")
    for note in spec.notes:
        click.echo(f"note: {note}")


@platform_group.command(
    "profile",
    epilog="\b\nExample:\n  rproctee platform profile stm32mp257f-dk.dtb > board.toml\n"
    "  rproctee platform profile k3-j721e-sk.dtb --node mcu_r5fss0_core0 "
    "> r5f.toml\n"
    "\b\nExit status: 0; 2 the tree has no usable node or no reserved memory "
    "with a fixed address; 3 the file cannot be read.",
)
@click.argument("tree", type=click.Path(path_type=Path))
@click.option("--node", default=None, metavar="PATH_OR_LABEL", help=_NODE_HELP)
@guarded
def profile_cmd(tree: Path, node: str | None) -> None:
    """Write a TOML platform profile for a device tree TREE on stdout.

    Without --node, every /reserved-memory node with a fixed address becomes
    a region (device address = physical address), each commented with where
    it comes from, for you to keep or delete: the way in for a board whose
    tree has no processor node. With --node, the processor's own regions
    (with their device addresses), the other reserved memories commented out.
    """
    from rproctee.platform import devicetree

    if tree.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(tree))
    if not tree.exists():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(tree))
    try:
        text = devicetree.profile_toml(devicetree.read_tree(tree), node)
    except devicetree.DeviceTreeError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(text, nl=False)
