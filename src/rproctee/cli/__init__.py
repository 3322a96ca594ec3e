"""The ``rproctee`` command line: a thin click shell over the public API.

Start-up is lazy (click's "lazy group" pattern): ``rproctee --help`` reads
the command names and one-line helps from :data:`COMMAND_INDEX` and imports
no command module, so numpy, cryptography, rich and pyelftools stay unloaded;
running a command imports only the module that defines it. Every command
runs inside :func:`rproctee.cli.output.guard`, the one error style.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import click

from rproctee import __version__
from rproctee.cli.output import guard

#: Command modules; each exposes ``register(group)``.
COMMAND_MODULES = (
    "demo", "image_cmds", "platform_cmds", "tee_cmds", "qcom_cmds", "boot_cmds",
    "sysfs_cmds",
    "bench_cmds",
)

#: Top-level command name -> (module in COMMAND_MODULES, one-line help for
#: ``rproctee --help``). A module of COMMAND_MODULES with no entry here still
#: works: it is imported whenever the command list is needed (slower start).
COMMAND_INDEX: dict[str, tuple[str, str]] = {
    "bench": ("bench_cmds", "Time LOAD_FW against memcpy, SHA-256 and peer loaders."),
    "boot": ("boot_cmds", "Boot a firmware through the Linux remoteproc core."),
    "check": ("platform_cmds", "Pre-flight an image: would OP-TEE load it, and where?"),
    "demo": ("demo", "Sign and securely load a firmware, then measure the kernels."),
    "info": ("image_cmds", "Show a signed image: header, TLVs, hashes, ELF files."),
    "invoke": ("tee_cmds", "Run TA commands step by step on one TEE session."),
    "keygen": ("image_cmds", "Generate a signing key and print its fingerprint."),
    "lifecycle-doc": ("boot_cmds", "Regenerate docs/lifecycle.md (v15, v22)."),
    "load": ("tee_cmds", "Load a signed image through a TEE session."),
    "mdt": ("qcom_cmds", "Qualcomm MDT/MBN: info, verify, split, join, boot, build."),
    "platform": ("platform_cmds", "List presets, show a platform, profile a tree."),
    "pubkey": ("image_cmds", "Show a key's public half and its fingerprint."),
    "sign": ("image_cmds", "Build and sign an image (like OP-TEE's sign_rproc_fw.py)."),
    "stitch": ("image_cmds", "Put a signature made elsewhere into an image."),
    "sysfs": ("sysfs_cmds", "Serve the remoteproc sysfs/debugfs ABI over FUSE."),
    "verify": ("image_cmds", "Check an image's signature and every segment hash."),
}

_ARGV = "rproctee.argv"


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: set[str] = set()

    def _register(self, module_name: str) -> None:
        if module_name in self._loaded:
            return
        self._loaded.add(module_name)
        module = importlib.import_module(f"rproctee.cli.{module_name}")
        module.register(self)

    def _register_unindexed(self) -> None:
        indexed = {module for module, _ in COMMAND_INDEX.values()}
        for name in COMMAND_MODULES:
            if name not in indexed:
                self._register(name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._register_unindexed()
        return sorted(set(self.commands) | set(COMMAND_INDEX))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            entry = COMMAND_INDEX.get(cmd_name)
            if entry is not None and entry[0] in COMMAND_MODULES:
                self._register(entry[0])
            else:
                self._register_unindexed()
        return self.commands.get(cmd_name)

    def format_commands(
        self, ctx: click.Context, formatter: click.HelpFormatter
    ) -> None:
        limit = formatter.width - 6 - max(map(len, self.list_commands(ctx)))
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is not None:
                rows.append((name, command.get_short_help_str(limit)))
            else:
                rows.append((name, COMMAND_INDEX[name][1]))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_ARGV] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        run = functools.partial(click.Group.invoke, self, ctx)
        return guard(run, ctx.meta.get(_ARGV, ()))


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Run 'rproctee COMMAND --help' for a command's options and examples.",
)
@click.version_option(__version__, prog_name="rproctee")
def main() -> None:
    """Model secure remote-processor firmware loading: OP-TEE's signed-image
    format, its remoteproc TA and platform PTA, the Linux remoteproc core.

    \b
    Example:
      rproctee demo
      rproctee keygen --type rsa4096 --out key.pem --pub-out key.pub
      rproctee sign --in fw.elf --key key.pem --out fw.img
      rproctee load fw.img --platform stm32mp15-dk2 --key key.pub

    \b
    Exit status: 0 ok, 1 would not load, 2 usage error (bad option, unusable
    key), 3 I/O error (missing file, directory), 4 malformed image, 5 bad
    signature, 6 hash mismatch, 7 TEE error, 70 internal error.
    """
