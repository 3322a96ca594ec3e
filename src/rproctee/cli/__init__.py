"""The ``rproctee`` command line: a thin click shell over the public API."""

from __future__ import annotations

import importlib

import click

from rproctee import __version__

#: Command modules; each exposes ``register(group)``.
COMMAND_MODULES = ("demo", "image_cmds", "platform_cmds", "tee_cmds", "qcom_cmds")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rproctee")
def main() -> None:
    """Model secure remote-processor firmware loading: OP-TEE's signed-image
    format, its remoteproc TA and platform PTA.  Exit statuses: see
    ``rproctee.cli.exitcodes`` (0 ok, 1 would not load, 2 usage, 3 I/O,
    4 malformed image, 5 bad signature, 6 hash mismatch, 7 TEE error)."""


def _register_all() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"rproctee.cli.{name}")
        module.register(main)


_register_all()
