"""Placeholder until its owner lands the real commands."""

import click


def register(group: click.Group) -> None:
    """Add this module's commands to ``group`` (none yet)."""
