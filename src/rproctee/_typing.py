"""Type aliases shared across the package."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # collections.abc.Buffer exists from 3.12; mypy targets 3.12
    from collections.abc import Buffer as Buffer

    #: A buffer that may be written (the type system cannot say "writable").
    WritableBuffer = Buffer
else:
    Buffer = object
    WritableBuffer = object
