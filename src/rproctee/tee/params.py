"""TEE parameters: types, the parameter-type word, value and memref slots.

An invoke carries four parameter slots and one 16-bit *parameter-type word*
``t0 | t1 << 4 | t2 << 8 | t3 << 12`` (GlobalPlatform ``TEE_PARAM_TYPES``).
The word, not the Python object in a slot, decides how the receiver reads the
slot, exactly as with the C union ``TEE_Param``: a slot typed as a value is
read as a value even if the caller put a buffer there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

#: Number of parameter slots of every TEE call.
NUM_PARAMS = 4
#: Model address of the first byte of client shared memory (page aligned), so
#: that alignment checks on memrefs mean what they mean in OP-TEE.
SHM_BASE = 0x4000_0000


class ParamType(IntEnum):
    """Type of one parameter slot (``TEE_PARAM_TYPE_*``)."""

    #: Slot unused.
    NONE = 0
    #: In: ``a``/``b`` read by the callee.
    VALUE_INPUT = 1
    #: Out: ``a``/``b`` written by the callee.
    VALUE_OUTPUT = 2
    #: In and out.
    VALUE_INOUT = 3
    #: In: a buffer the callee reads (shared memory, not a copy).
    MEMREF_INPUT = 5
    #: Out: a buffer the callee writes; ``size`` updated to what was written.
    MEMREF_OUTPUT = 6
    #: In and out.
    MEMREF_INOUT = 7


VALUE_TYPES = frozenset(
    {ParamType.VALUE_INPUT, ParamType.VALUE_OUTPUT, ParamType.VALUE_INOUT}
)
MEMREF_TYPES = frozenset(
    {ParamType.MEMREF_INPUT, ParamType.MEMREF_OUTPUT, ParamType.MEMREF_INOUT}
)
OUTPUT_TYPES = frozenset(
    {
        ParamType.VALUE_OUTPUT,
        ParamType.VALUE_INOUT,
        ParamType.MEMREF_OUTPUT,
        ParamType.MEMREF_INOUT,
    }
)


def param_types(
    t0: int = ParamType.NONE,
    t1: int = ParamType.NONE,
    t2: int = ParamType.NONE,
    t3: int = ParamType.NONE,
) -> int:
    """Build a parameter-type word, like ``TEE_PARAM_TYPES(t0, t1, t2, t3)``.

    Parameters
    ----------
    t0, t1, t2, t3 : int
        :class:`ParamType` of each slot.

    Returns
    -------
    int
        The 16-bit word, e.g. ``0x0051`` for (VALUE_INPUT, MEMREF_INPUT).
    """
    return (t0 & 0xF) | (t1 & 0xF) << 4 | (t2 & 0xF) << 8 | (t3 & 0xF) << 12


def param_type_at(word: int, index: int) -> int:
    """Type nibble of slot ``index`` in a parameter-type word."""
    return (word >> (4 * index)) & 0xF


@dataclass
class Value:
    """A value slot: two 32-bit words ``a`` and ``b``.

    ``kind`` only matters on the client side, to build the parameter-type
    word when none is given explicitly.
    """

    a: int = 0
    b: int = 0
    kind: ParamType = ParamType.VALUE_INPUT


@dataclass
class Memref:
    """A memory-reference slot over a buffer.

    Parameters
    ----------
    buffer : bytes, bytearray, memoryview or None
        The caller's memory. The callee sees the *same* bytes (shared memory,
        no copy), so a caller can change them while the callee runs.
    size : int or None
        Bytes referenced; ``None`` means the rest of the buffer after
        ``offset``. May exceed the buffer: the TEE core refuses such a memref
        at the boundary (that is how W1 ends in a TA panic).
    offset : int
        Start inside ``buffer``; also decides the model address used for
        alignment checks.
    kind : ParamType
        Direction, for building the parameter-type word on the client side.
    """

    buffer: bytes | bytearray | memoryview | None = None
    size: int | None = None
    offset: int = 0
    kind: ParamType = ParamType.MEMREF_INPUT
    #: Model address of the first referenced byte (set by the core).
    addr: int = field(default=0)

    @property
    def length(self) -> int:
        """Referenced size in bytes (``size`` or the rest of the buffer)."""
        if self.size is not None:
            return self.size
        if self.buffer is None:
            return 0
        return max(len(memoryview(self.buffer)) - self.offset, 0)

    def view(self) -> memoryview:
        """Byte view of the referenced bytes (empty for a NULL memref)."""
        if self.buffer is None:
            return memoryview(b"")
        mv = memoryview(self.buffer).cast("B")
        return mv[self.offset : self.offset + self.length]


Param = Value | Memref | None


def word_for(params: Sequence[Param]) -> int:
    """Parameter-type word that matches the Python objects in ``params``."""
    kinds = [p.kind if p is not None else ParamType.NONE for p in params]
    kinds += [ParamType.NONE] * (NUM_PARAMS - len(kinds))
    return param_types(*kinds[:NUM_PARAMS])


def value_in(a: int = 0, b: int = 0) -> Value:
    """A VALUE_INPUT slot."""
    return Value(a, b, ParamType.VALUE_INPUT)


def value_out() -> Value:
    """A VALUE_OUTPUT slot (the callee fills ``a`` and ``b``)."""
    return Value(0, 0, ParamType.VALUE_OUTPUT)


def memref_in(buffer: bytes | bytearray | memoryview | None) -> Memref:
    """A MEMREF_INPUT slot over the whole ``buffer``."""
    return Memref(buffer, kind=ParamType.MEMREF_INPUT)


def memref_out(buffer: bytearray | memoryview | None) -> Memref:
    """A MEMREF_OUTPUT slot over the whole ``buffer``."""
    return Memref(buffer, kind=ParamType.MEMREF_OUTPUT)


def pad_params(params: Sequence[Param]) -> list[Param]:
    """Return exactly four slots (missing ones are ``None``)."""
    if len(params) > NUM_PARAMS:
        raise ValueError(f"at most {NUM_PARAMS} parameters, got {len(params)}")
    return list(params) + [None] * (NUM_PARAMS - len(params))
