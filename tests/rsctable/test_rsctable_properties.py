"""Properties of the resource-table parser on generated and hostile input."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rproctee.rsctable import (
    CarveoutRsc,
    DevmemRsc,
    RscEntry,
    RscTableError,
    TraceRsc,
    UnknownRsc,
    VdevRsc,
    VendorRsc,
    VringRsc,
    build_resource_table,
    parse_resource_table,
    relocate,
)

u32 = st.integers(0, 0xFFFFFFFF)
u8 = st.integers(0, 0xFF)
names = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=0, max_size=32
)
vrings = st.builds(VringRsc, u32, u32, u32, u32, u32)


@st.composite
def vdevs(draw: st.DrawFn) -> VdevRsc:
    rings = tuple(draw(st.lists(vrings, max_size=2)))
    config = draw(st.binary(max_size=24))
    words = [draw(u32) for _ in range(4)]
    return VdevRsc(0, *words, len(config), draw(u8), len(rings), (0, 0), rings, config)


entries = st.one_of(
    st.builds(CarveoutRsc, st.just(0), u32, u32, u32, u32, st.just(0), names),
    st.builds(DevmemRsc, st.just(0), u32, u32, u32, u32, st.just(0), names),
    st.builds(TraceRsc, st.just(0), u32, u32, st.just(0), names),
    vdevs(),
    st.builds(VendorRsc, st.just(0), st.integers(128, 512)),
    st.builds(
        UnknownRsc,
        st.just(0),
        st.one_of(st.integers(4, 127), st.integers(513, 0xFFFFFFFF)),
    ),
)


@given(st.lists(entries, max_size=8))
def test_parse_of_build_gives_the_entries_back(items: list[RscEntry]) -> None:
    data = build_resource_table(items)
    table = parse_resource_table(data)
    assert table.entries == relocate(items)
    assert table.num == len(items) and table.size == len(data)
    assert parse_resource_table(table.encode()) == table


@st.composite
def mutated_tables(draw: st.DrawFn) -> bytes:
    """A valid table with some words and bytes overwritten, maybe cut."""
    data = bytearray(build_resource_table(draw(st.lists(entries, max_size=5))))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, max(0, len(data) - 4)))
        value = draw(st.one_of(u32, st.sampled_from([0, 1, 16, 0x7FFFFFFF])))
        data[at : at + 4] = value.to_bytes(4, "little")[: len(data) - at]
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(u8)
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data)


@given(mutated_tables())
def test_hostile_tables_raise_only_rsc_table_errors(data: bytes) -> None:
    try:
        table = parse_resource_table(data)
    except RscTableError as exc:
        assert exc.errno == "EINVAL" and exc.message
        return
    # Whatever was accepted lies wholly inside the table.
    for entry in table.entries:
        assert 16 <= entry.offset and entry.offset + 4 <= len(data)
        if isinstance(entry, VdevRsc):
            assert entry.config_offset + entry.config_len <= len(data)


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_rsc_table_errors(data: bytes) -> None:
    try:
        parse_resource_table(data)
    except RscTableError:
        pass


@given(mutated_tables())
def test_never_reads_outside_the_buffer(data: bytes) -> None:
    # Surround the table with poison and parse only the window: a read past
    # the window would have to go through the slice, which cannot happen; the
    # verdict must be the same as on the table alone.
    poison = b"\x5a" * 64
    array = np.frombuffer(poison + data + poison, dtype=np.uint8)
    window = array[64 : 64 + len(data)]
    assert _verdict(window) == _verdict(data)


def _verdict(buf: object) -> object:
    try:
        return parse_resource_table(buf)
    except RscTableError as exc:
        return (exc.message, exc.offset)


@given(st.integers(0, 0xFFFFFFFF), st.integers(16, 4096))
def test_any_num_is_bounded_by_the_size(num: int, size: int) -> None:
    data = struct.pack("<4I", 1, num, 0, 0) + bytes(size - 16)
    try:
        table = parse_resource_table(data)
    except RscTableError as exc:
        assert exc.message in ("resource table incomplete", "rsc table is truncated")
    else:
        assert table.num == num == 0


def test_a_table_rewritten_while_it_is_parsed_gives_consistent_answers() -> None:
    # The remote processor may rewrite the table at any time.  A writer
    # thread flips num_of_vrings between 0 and 2 and config_len between 0 and
    # a size that only fits with 0 vrings; every parse must come from one
    # consistent state (never a vdev whose vrings + config run past the
    # table, never an exception other than RscTableError).
    import threading

    vdev = VdevRsc(0, 7, 0, 0, 0, 0, 0, 2, (0, 0), (VringRsc(0, 16, 8, 0, 0),) * 2, b"")
    array = np.frombuffer(build_resource_table([vdev]), dtype=np.uint8).copy()
    body = 20 + 4
    stop = threading.Event()

    def writer() -> None:
        flip = 0
        while not stop.is_set():
            flip ^= 1
            array[body + 21] = 0 if flip else 2  # num_of_vrings
            array[body + 16] = 40 if flip else 0  # config_len

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(3000):
            try:
                table = parse_resource_table(array)
            except RscTableError as exc:
                assert exc.message == "vdev rsc is truncated"
                continue
            (got,) = table.vdevs()
            assert got.num_of_vrings == len(got.vrings)
            assert got.config_offset + got.config_len <= table.size
    finally:
        stop.set()
        thread.join()
