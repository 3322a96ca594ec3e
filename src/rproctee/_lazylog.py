"""A list of records whose newest rows may still be columns.

The compiled per-segment calls (:mod:`rproctee.kernels` ``PtaLane``) log one
write and one timing per segment in arrays. Turning 4096 rows into 8192
Python tuples costs a quarter of loading 16 MiB in 4 KiB segments, for logs
that a benchmark clears unread. :class:`LazyRecords` is a ``list`` that
keeps such rows as columns and makes the records the first time anything
reads or changes the list, in order, so every reader sees a plain list of
records.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any, TypeVar

T = TypeVar("T", bound=tuple[Any, ...])


class LazyRecords(list[T]):
    """``list`` of named-tuple records, with rows added as columns.

    Parameters
    ----------
    make : named-tuple class
        The record type (made with ``tuple.__new__`` straight from a row).
    """

    def __init__(self, make: type[T], iterable: Sequence[T] = ()) -> None:
        super().__init__(iterable)
        self._make = make
        self._pending: list[tuple[Sequence[Any], ...]] = []
        self._lock = threading.Lock()

    def add_columns(self, *columns: Sequence[Any]) -> None:
        """Append one record per row of ``columns`` (equal lengths; numpy
        arrays or lists), made when the list is next read or changed."""
        with self._lock:
            self._pending.append(columns)

    def settle(self) -> None:
        """Make the pending records now (every reader does this first)."""
        if not self._pending:
            return
        with self._lock:
            pending, self._pending = self._pending, []
            for columns in pending:
                rows = zip(*(_as_list(c) for c in columns), strict=True)
                list.extend(self, map(tuple.__new__, repeat(self._make), rows))

    def clear(self) -> None:
        """Forget every record, pending ones included."""
        with self._lock:
            self._pending = []
            list.clear(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


def append_columns(
    records: list[T], make: type[T], *columns: Sequence[Any]
) -> None:
    """Append one ``make`` record per row of ``columns`` to ``records``: as
    columns when it is a :class:`LazyRecords`, else one ``append`` a record
    (another list in its place, as the normal world's recording log, sees
    each write)."""
    if isinstance(records, LazyRecords):
        records.add_columns(*columns)
        return
    rows = zip(*(_as_list(c) for c in columns), strict=True)
    for record in map(tuple.__new__, repeat(make), rows):
        records.append(record)


def _as_list(column: Sequence[Any]) -> list[Any]:
    tolist = getattr(column, "tolist", None)
    return list(tolist() if tolist is not None else column)


def _settling(name: str) -> Callable[..., Any]:
    base = getattr(list, name)

    def method(self: LazyRecords[Any], *args: Any, **kwargs: Any) -> Any:
        self.settle()
        return base(self, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = base.__doc__
    return method


# every other list operation reads or changes the records: settle first
for _name in (
    "__iter__", "__len__", "__getitem__", "__setitem__", "__delitem__",
    "__contains__", "__reversed__", "__eq__", "__ne__", "__lt__", "__le__",
    "__gt__", "__ge__", "__repr__", "__add__", "__mul__", "__rmul__",
    "__iadd__", "__imul__", "append", "extend", "insert", "pop", "remove",
    "index", "count", "copy", "sort", "reverse",
):  # fmt: skip
    setattr(LazyRecords, _name, _settling(_name))
