"""``rproctee sysfs mount`` and ``rproctee sysfs run``: the remoteproc sysfs
and debugfs ABI of the model, served over FUSE (:mod:`rproctee.fuse`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import click

from rproctee.cli import exitcodes
from rproctee.cli.output import fail, log

_PLATFORM_HELP = (
    "Preset name (stm32mp15-dk2, stm32mp15-ed1, stm32mp15-dhcom), device tree "
    "(.dtb or .dts) or TOML profile (.toml)."
)


def register(group: click.Group) -> None:
    """Add the ``sysfs`` group to ``group``."""
    group.add_command(sysfs_group)


@click.group("sysfs")
def sysfs_group() -> None:
    """Serve the remoteproc sysfs/debugfs ABI of the model over FUSE.

    \b
    Layout (as on a booted stm32mp15):
      class/remoteproc/remoteprocN -> ../../devices/platform/ahb/10000000.m4/...
      devices/platform/ahb/10000000.m4/remoteproc/remoteprocN/
          name state firmware recovery coredump uevent device subsystem
      kernel/debug/remoteproc/remoteprocN/
          name recovery crash coredump resource_table carveout_memories trace0..

    Reads and writes answer as the kernel's remoteproc_sysfs.c and
    remoteproc_debugfs.c do: 'echo start > .../state' is a real rproc_boot
    (LOAD_FW + START_FW through the TA by default). Needs libfuse 3
    (Debian: apt-get install fuse3) and pip install 'rproctee[fuse]'.
    """


def _board_options(f: Any) -> Any:
    opts = [
        click.option("--platform", "-p", required=True, help=_PLATFORM_HELP),
        click.option("--key", type=click.Path(dir_okay=False, path_type=Path),
                     help="PEM public key the PTA verifies with (default: the "
                          "platform's; needs --firmware-path)."),
        click.option("--firmware-path", type=click.Path(file_okay=False,
                     path_type=Path),
                     help="The model's /lib/firmware: 'firmware' names a file "
                          "here (default: a temporary directory holding the "
                          "demo firmware, signed with a key made for the run)."),
        click.option("--firmware", default="rproc-m4-fw", show_default=True,
                     help="Initial firmware name of every processor."),
        click.option("--instances", type=int, default=1, show_default=True,
                     help="Processors remoteproc0..N-1, each its own board."),
        click.option("--series", type=click.Choice(["v15", "v22"]), default="v22",
                     show_default=True, help="TEE-backed remoteproc series."),
        click.option("--no-tee", is_flag=True,
                     help="Plain ELF ops (no secure world; firmware is an ELF)."),
        click.option("--policy", type=click.Choice(["optee", "strict"]),
                     default="strict", show_default=True, help="TA policy."),
        click.option("--events", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write the event log of the run here (JSON lines)."),
    ]  # fmt: skip
    for opt in reversed(opts):
        f = opt(f)
    return f


def _options(kw: dict[str, Any]) -> Any:
    from rproctee.fuse.boards import BoardOptions

    return BoardOptions(
        platform=kw["platform"], firmware_path=kw["firmware_path"],
        firmware=kw["firmware"], key=kw["key"], instances=kw["instances"],
        series=kw["series"], tee=not kw["no_tee"], policy=kw["policy"],
    )  # fmt: skip


def _unavailable(exc: Exception) -> NoReturn:
    """FUSE or a mount namespace is missing here, or the mount failed: say
    which, exit 3."""
    fail(str(exc), exitcodes.IO_ERROR, "unavailable")


@sysfs_group.command("mount")
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
@_board_options
@click.option("--debug", is_flag=True, help="libfuse's debug output.")
def mount_cmd(mountpoint: Path, debug: bool, **kw: Any) -> None:
    """Mount the model at MOUNTPOINT and serve it in the foreground.

    Stays until unmounted (fusermount3 -u MOUNTPOINT) or interrupted (Ctrl-C,
    SIGTERM); then every processor still running is shut down and the event
    log flushed. A bind mount shows it where tools look:

    \b
      rproctee sysfs mount /tmp/rp --platform stm32mp15-dk2 &
      mount --bind /tmp/rp/class/remoteproc /sys/class/remoteproc  # (tmpfs)

    or use 'rproctee sysfs run', which does that in a private namespace.

    Exit status: 0 after a clean shutdown, 2 bad option, 3 no FUSE here or
    the mount failed.
    """
    from rproctee.fuse.server import FuseUnavailable, MountFailed
    from rproctee.fuse.session import mount_foreground

    try:
        problems = mount_foreground(
            _options(kw), mountpoint, events=kw["events"], announce=log, debug=debug
        )
    except (FuseUnavailable, MountFailed) as exc:
        _unavailable(exc)
    for line in problems:
        log(f"warning: {line}")
    log("unmounted; every processor stopped" if not problems else "unmounted")


@sysfs_group.command("run", context_settings={"allow_interspersed_args": False})
@_board_options
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run_cmd(command: tuple[str, ...], **kw: Any) -> None:
    """Run COMMAND where /sys is the model's, then tear it all down.

    COMMAND runs in a private mount namespace in which
    /sys/class/remoteproc, /sys/devices/platform/ahb (where the class links
    lead) and /sys/kernel/debug/remoteproc are the model's; the rest of /sys
    is the host's. Put the options first, then -- and the command:

    \b
      rproctee sysfs run -p stm32mp15-dk2 --instances 2 -- sh ./start-m4.sh

    Ctrl-C is COMMAND's to handle; SIGTERM stops COMMAND and tears down.
    Needs root (or unprivileged user namespaces) and FUSE.

    Exit status: COMMAND's (128+N when signal N killed it); 2 bad option,
    3 no FUSE or no mount namespace here, 126/127 COMMAND not
    executable/not found.
    """
    from rproctee.fuse.server import FuseUnavailable, MountFailed
    from rproctee.fuse.session import NamespaceUnavailable, run_command

    try:
        status = run_command(_options(kw), list(command), events=kw["events"])
    except (FuseUnavailable, MountFailed, NamespaceUnavailable) as exc:
        _unavailable(exc)
    raise SystemExit(status)
