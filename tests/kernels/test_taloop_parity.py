"""taloop: the compiled TA segment loop and PTA lane against their twin.

Random program-header tables, hash tables, regions and PTA states (many of
them broken on purpose): both backends stop at the same place, leave the
same bytes in device memory and log the same writes; and a clean table is
loaded whole, with the digests checked.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

PHDR = struct.Struct("<8I")
RECORD = struct.Struct("<4Q32s")
REGIONS = ((0x1000, 0x9000, 0x4000, True), (0x8000, 0x7000, 0x2000, True),
           (0x20000, 0xA0000, 0x1000, False))  # fmt: skip
ADDR = 0x40000000


@dataclass
class Pta:
    running: bool = False


def _lane(mod, pta, memories, rproc_id=0, known=True, fill_nonzero=False):
    return mod.PtaLane(
        pta, [r[0] for r in REGIONS], [r[2] for r in REGIONS],
        [r[1] for r in REGIONS], [r[3] for r in REGIONS], memories, rproc_id,
        known, fill_nonzero=fill_nonzero, capacity=2,
    )  # fmt: skip


def _memories():
    return [np.full(r[2], 0xA5, np.uint8) for r in REGIONS]


segment = st.tuples(
    st.sampled_from([1, 1, 1, 0, 6]),  # p_type
    st.sampled_from(
        [0x1000, 0x1100, 0x1FF0, 0x3F00, 0x8000, 0x9F00, 0x20000, 0x5000, 0xFFFFFFF0]
    ),  # p_paddr  # fmt: skip
    st.integers(0, 0x180),  # p_filesz
    st.integers(0, 0x200),  # extra p_memsz
)


def _image(segs, corrupt, drop_hash, bad_offset):
    """An ELF-ish image: header, program headers, file bytes; hash table."""
    phoff, n = 52, len(segs)
    data_at = phoff + 32 * n
    body, phdrs, hashes = bytearray(), bytearray(), bytearray()
    rng = np.random.default_rng(len(segs))
    for k, (ptype, paddr, filesz, extra) in enumerate(segs):
        data = rng.integers(0, 256, filesz, dtype=np.uint8).tobytes()
        off = data_at + len(body) + (0x7000 if k == bad_offset else 0)
        memsz = filesz + extra
        ph = PHDR.pack(ptype, off, paddr, paddr, filesz, memsz, 5, 4)
        phdrs += ph
        digest = hashlib.sha256(data).digest()
        if k == corrupt:
            digest = bytes(32)
        if k != drop_hash:
            hashes += ph + digest
        body += data
    ehdr = bytearray(52)
    ehdr[:4] = b"\x7fELF"
    struct.pack_into("<I", ehdr, 28, phoff)
    struct.pack_into("<H", ehdr, 44, n)
    image = bytes(ehdr + phdrs + body)
    return image, bytes(hashes)


def _keys(hashes):
    words = np.frombuffer(hashes, "<u4").reshape(-1, 16)
    keys, first = np.unique(words[:, 3], return_index=True)
    return keys.astype(np.uint32), first.astype(np.int64)


def _run_optee(mod, image, hashes, pta, known, start):
    memories = _memories()
    lane = _lane(mod, pta, memories, known=known, fill_nonzero=True)
    keys, first = _keys(hashes)
    out = mod.optee_segment_loop(
        lane, image, ADDR, 0, len(image), 52, start, hashes, keys, first, 0,
        len(image),
    )  # fmt: skip
    log = lane.take_log()
    return out, [m.tobytes() for m in memories], [a.tolist() for a in log[:4]]


@given(
    segs=st.lists(segment, min_size=1, max_size=8),
    corrupt=st.integers(-1, 8),
    drop_hash=st.integers(-1, 8),
    bad_offset=st.integers(-1, 8),
    running=st.booleans(),
    known=st.booleans(),
    start=st.integers(0, 2),
)
def test_optee_loop_twins_agree(
    both_backends, segs, corrupt, drop_hash, bad_offset, running, known, start
):
    native, reference = (b["taloop"] for b in both_backends)
    image, hashes = _image(segs, corrupt, drop_hash, bad_offset)
    got = [
        _run_optee(mod, image, hashes, Pta(running), known, start)
        for mod in (native, reference)
    ]
    assert got[0] == got[1]


def test_clean_table_loads_whole_and_checks_every_digest(backend):
    mod = backend["taloop"]
    # (a header with no file bytes may not sit at the image's very end:
    # upstream refuses p_offset >= image size, so it is not the last one)
    segs = [(1, 0x1000, 0x100, 0x40), (1, 0x1200, 0, 0x20), (1, 0x8000, 0x80, 0)]
    image, hashes = _image(segs, -1, -1, -1)
    out, memories, log = _run_optee(mod, image, hashes, Pta(), True, 0)
    assert out[:2] == (3, mod.STAGE_DONE) and out[5] == 2
    ops, das, pas, lens = log
    assert ops == [mod.OP_COPY, mod.OP_ZERO, mod.OP_ZERO, mod.OP_COPY]
    assert das == [0x1000, 0x1100, 0x1200, 0x8000]
    assert pas == [0x9000, 0x9100, 0x9200, 0x7000]
    assert lens == [0x100, 0x40, 0x20, 0x80]
    region0 = memories[0]
    assert region0[0x100:0x140] == bytes(0x40)  # the zero-filled tail
    assert region0[0x140:0x200] == b"\xa5" * 0xC0  # untouched


def test_stops_before_a_bad_digest_and_keeps_no_log_of_it(backend):
    mod = backend["taloop"]
    segs = [(1, 0x1000, 0x100, 0), (1, 0x8000, 0x80, 0)]
    image, hashes = _image(segs, 1, -1, -1)
    out, _mem, log = _run_optee(mod, image, hashes, Pta(), True, 0)
    assert out[:2] == (1, mod.STAGE_SEGMENT) and out[5] == 1
    assert log[1] == [0x1000]


def test_stops_at_the_fill_when_its_tail_has_no_region(backend):
    mod = backend["taloop"]
    # the file bytes end the first region (0x1000 + 0x4000); the tail is
    # past it, in no region
    segs = [(1, 0x4F00, 0x100, 0x10)]
    image, hashes = _image(segs, -1, -1, -1)
    out, _mem, log = _run_optee(mod, image, hashes, Pta(), True, 0)
    assert out == (0, mod.STAGE_FILL, 0x4F00, 0x100, 0x110, 1)
    assert log[0] == [mod.OP_COPY]


def test_read_only_region_is_never_written(backend):
    mod = backend["taloop"]
    image, hashes = _image([(1, 0x20000, 0x10, 0)], -1, -1, -1)
    out, memories, log = _run_optee(mod, image, hashes, Pta(), True, 0)
    assert out[:2] == (0, mod.STAGE_SEGMENT)
    assert memories[2] == b"\xa5" * 0x1000 and log[0] == []


@given(
    segs=st.lists(segment, min_size=1, max_size=8),
    corrupt=st.integers(-1, 8),
    start=st.integers(0, 3),
    running=st.booleans(),
)
def test_planned_loop_twins_agree(both_backends, segs, corrupt, start, running):
    image, hashes = _image(segs, corrupt, -1, -1)
    records = b"".join(
        RECORD.pack(off, paddr, filesz, memsz, hashes[64 * k + 32 : 64 * k + 64])
        for k, (_t, off, _v, paddr, filesz, memsz, _f, _a) in enumerate(
            PHDR.iter_unpack(image[52 : 52 + 32 * len(segs)])
        )
    )
    got = []
    for mod in (b["taloop"] for b in both_backends):
        memories = _memories()
        lane = _lane(mod, Pta(running), memories)
        out = mod.planned_segment_loop(lane, image, records, start)
        log = [a.tolist() for a in lane.take_log()[:4]]
        got.append((out, [m.tobytes() for m in memories], log))
    assert got[0] == got[1]


def test_lane_refuses_inconsistent_regions(backend):
    mod = backend["taloop"]
    try:
        mod.PtaLane(Pta(), [0], [16], [0], [True], [np.zeros(8, np.uint8)], 0, True)
    except ValueError as exc:
        assert "region 0" in str(exc)
    else:  # pragma: no cover - the assertion that matters
        raise AssertionError("a region shorter than its size was accepted")


def test_log_grows_past_its_capacity(backend):
    mod = backend["taloop"]
    segs = [(1, 0x1000 + 0x40 * k, 0x20, 0x20) for k in range(40)]
    segs.append((6, 0, 0, 0))  # not PT_LOAD: passed by (and ends the image)
    image, hashes = _image(segs, -1, -1, -1)
    out, _mem, log = _run_optee(mod, image, hashes, Pta(), True, 0)
    assert out[:2] == (41, mod.STAGE_DONE) and len(log[0]) == 80
