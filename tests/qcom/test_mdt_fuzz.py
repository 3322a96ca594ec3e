"""Hypothesis over mutated images: only the package's error type, no stray write."""

from __future__ import annotations

import functools
import struct

from hypothesis import given
from hypothesis import strategies as st
from qcom_helpers import (
    CARVEOUT_PA,
    CARVEOUT_SIZE,
    PAS_ID,
    dict_fetch,
    segments,
    service,
)

from rproctee.qcom import (
    MdtError,
    build_image,
    make_test_signer,
    parse_image,
    split_image,
)
from rproctee.qcom import mdt_loader as ml
from rproctee.qcom.hashseg import parse_hash_segment
from rproctee.qcom.verify import verify_image


@functools.cache
def _bases() -> tuple[bytes, ...]:
    signer = make_test_signer("p384", name="fuzz")
    return tuple(
        build_image(segments(), version=v, signer=signer, relocatable=v == 5)
        for v in (3, 5, 6, 7)
    )


#: A mutation: (offset, kind, value); offsets favour the headers and hash segment.
_MUTATION = st.tuples(
    st.one_of(
        st.integers(0, 0x300), st.integers(0x1000, 0x1800), st.integers(0, 0x8000)
    ),
    st.sampled_from(["byte", "u32", "u16"]),
    st.one_of(
        st.integers(0, 0xFF),
        st.sampled_from([0, 1, 2, 0x7FFFFFFF, 0xFFFFFFFF]),
        st.integers(0, 0xFFFFFFFF),
    ),
)


def _mutate(
    data: bytes, mutations: list[tuple[int, str, int]], cut: int | None
) -> bytes:
    out = bytearray(data)
    for off, kind, value in mutations:
        size = {"byte": 1, "u16": 2, "u32": 4}[kind]
        if off + size > len(out):
            continue
        fmt = {"byte": "<B", "u16": "<H", "u32": "<I"}[kind]
        struct.pack_into(fmt, out, off, value & ((1 << (8 * size)) - 1))
    return bytes(out[:cut] if cut is not None else out)


#: (base image index, mutations, cut): small to show; the bytes are built in
#: the test (a 48 kB repr of each example would make hypothesis warn).
_CASES = st.tuples(
    st.integers(0, 3),
    st.lists(_MUTATION, min_size=1, max_size=4),
    st.one_of(st.none(), st.integers(0, 0x8000)),
)


def _image(case: tuple[int, list[tuple[int, str, int]], int | None]) -> bytes:
    index, mutations, cut = case
    return _mutate(_bases()[index], mutations, cut)


@given(_CASES)
def test_reader_raises_only_its_own_errors(case: tuple) -> None:  # type: ignore[type-arg]
    data = _image(case)
    try:
        image = parse_image(data, "fuzz.mdt", dict_fetch({}))
    except MdtError:
        return
    verify_image(image)  # never raises: verdicts only


@given(_CASES)
def test_split_join_raise_only_their_own_errors(case: tuple) -> None:  # type: ignore[type-arg]
    data = _image(case)
    try:
        files = split_image(data, "fuzz.mdt")
    except MdtError:
        return
    from rproctee.qcom import join_image

    assert join_image(files["fuzz.mdt"], "fuzz.mdt", dict_fetch(files)) == data


@given(st.binary(max_size=200), st.integers(1, 64))
def test_hash_segment_parser_on_noise(blob: bytes, phnum: int) -> None:
    try:
        parse_hash_segment(blob, phnum)
    except MdtError:
        pass


@given(_CASES)
def test_linux_and_secure_side_never_stray(case: tuple) -> None:  # type: ignore[type-arg]
    data = _image(case)
    tz = service(None)
    log: list[str] = []
    size = ml.qcom_mdt_get_size(data)
    assert isinstance(size, int)
    meta = ml.qcom_mdt_read_metadata(data, "fuzz.mdt", dict_fetch({}), log)
    ret = ml.qcom_mdt_pas_init(
        data, "fuzz.mdt", PAS_ID, CARVEOUT_PA, tz, dict_fetch({}), log
    )
    assert ret <= 0
    if isinstance(meta, bytes):
        tz.init_image(PAS_ID, meta)
    ret, _ = ml.qcom_mdt_load_no_init(
        data,
        "fuzz.mdt",
        tz.normal_world(),
        CARVEOUT_PA,
        CARVEOUT_SIZE,
        dict_fetch({}),
        log,
    )
    assert ret <= 0
    tz.auth_and_reset(PAS_ID)
    for write in tz.memory.writes:
        assert (
            CARVEOUT_PA <= write.pa
            and write.pa + write.len <= CARVEOUT_PA + CARVEOUT_SIZE
        )
    if ret == 0 and tz.calls[-1].ret == 0:
        # Booted: the metadata really describes what is in the carveout.
        assert tz.xpu.locked


_U32 = st.one_of(
    st.sampled_from([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFF000]),
    st.sampled_from([CARVEOUT_PA, CARVEOUT_PA + CARVEOUT_SIZE, CARVEOUT_SIZE]),
    st.integers(0, 0x3000),
    st.integers(0, 0xFFFFFFFF),
)
_FIELDS = st.sampled_from(["p_offset", "p_paddr", "p_filesz", "p_memsz", "p_flags"])


@given(
    st.lists(st.tuples(st.integers(2, 4), _FIELDS, _U32), min_size=1, max_size=5),
    st.booleans(),
)
def test_linux_loader_writes_only_inside_the_carveout(
    patches: list[tuple[int, str, int]], split: bool
) -> None:
    from qcom_helpers import patch_u32, phdr_offset

    data = _bases()[2]
    for index, name, value in patches:
        data = patch_u32(data, phdr_offset(index, name), value)
    files = {"fuzz.mdt": data}
    if split:
        files = {f"fuzz.b{i:02d}": bytes(0x3000) for i in range(5)}
        data = data[: 52 + 5 * 32]
    tz = service(None)
    ret, _ = ml.qcom_mdt_load_no_init(
        data,
        "fuzz.mdt",
        tz.normal_world(),
        CARVEOUT_PA,
        CARVEOUT_SIZE,
        dict_fetch(files),
        [],
    )
    assert ret <= 0
    for write in tz.memory.writes:
        assert (
            CARVEOUT_PA <= write.pa
            and write.pa + write.len <= CARVEOUT_PA + CARVEOUT_SIZE
        )


@given(
    st.integers(0, 3),
    st.lists(
        st.tuples(st.integers(0, 0x7FF), st.integers(0, 0xFF)), min_size=1, max_size=3
    ),
)
def test_certificate_chain_mutations(index: int, edits: list[tuple[int, int]]) -> None:
    """cryptography parses lazily: a broken field must still end as our error."""
    from rproctee.qcom.certs import describe_chain, verify_chain

    base = _bases()[index]
    image = parse_image(base, "fuzz.mbn")
    hash_ph = image.phdrs[image.hash_index]
    chain_len = len(image.hash_segment.parts["cert_chain"])
    start = hash_ph.p_offset + hash_ph.p_filesz - chain_len
    data = bytearray(base)
    for rel, value in edits:
        data[start + rel % chain_len] = value
    chain = bytes(data[start : start + chain_len])
    for check in (describe_chain, lambda c: verify_chain(c, None)):
        try:
            check(chain)
        except MdtError:
            pass
    verify_image(parse_image(bytes(data), "fuzz.mbn"))
