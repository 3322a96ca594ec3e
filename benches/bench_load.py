"""End to end: a large signed firmware through the secure load path, beside
the yardsticks (memcpy, hashlib SHA-256) and the tool users would otherwise
use (pyelftools: parse + ``seg.data()`` + copy, with no verification at all).

The image is 4 PT_LOAD segments of 64 MiB (256 MiB) in four 64 MiB regions.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from rproctee.firmware import PF_R, PF_X, Segment, build_elf
from rproctee.image import (
    KeySigner,
    build_image,
    generate_key,
    public_key_pem,
    verify_image,
)
from rproctee.platform import RegionSpec
from rproctee.platform.board import PlatformSpec
from rproctee.tee import TA_UUID, TaCommand, TeeContext, build_secure_world
from rproctee.tee.params import memref_in, value_in

SEG = 64 << 20
BASES = [0x10000000 * (i + 1) for i in range(4)]
TOTAL = SEG * len(BASES)
GROUP = "load-256MiB"


@pytest.fixture(scope="module")
def firmware():
    rng = np.random.default_rng(5)
    segs = [
        Segment(
            f".text{i}",
            base,
            rng.integers(0, 256, SEG, dtype=np.uint8).tobytes(),
            SEG,
            PF_R | PF_X,
        )
        for i, base in enumerate(BASES)
    ]
    elf = build_elf(segs)
    key = generate_key("rsa2048")
    image = build_image([elf], KeySigner(key))
    return elf, image, key


def _platform(key) -> PlatformSpec:
    regions = tuple(
        RegionSpec(f"ram{i}", base, 0x80000000 + i * SEG, SEG)
        for i, base in enumerate(BASES)
    )
    return PlatformSpec(
        name="bench",
        regions=regions,
        accept_ecdsa=False,
        processor_ids=(0,),
        default_key_pem=public_key_pem(key),
        source="bench",
        notes=(),
    )


def _record(benchmark, name):
    benchmark.group = GROUP
    benchmark.name = name
    benchmark.extra_info["bytes"] = TOTAL


def test_yardstick_memcpy(benchmark, firmware):
    src = np.frombuffer(firmware[0], dtype=np.uint8)
    dst = np.ones_like(src)
    _record(benchmark, "yardstick memcpy (numpy.copyto)")
    benchmark.pedantic(np.copyto, (dst, src), rounds=5, warmup_rounds=1)


def test_yardstick_sha256(benchmark, firmware):
    view = memoryview(firmware[1])
    _record(benchmark, "yardstick sha256 (hashlib)")
    benchmark.pedantic(lambda: hashlib.sha256(view).digest(), rounds=5, warmup_rounds=1)


def test_pyelftools_load_unverified(benchmark, firmware):
    elf = firmware[0]
    dst = np.ones(TOTAL, dtype=np.uint8)

    def load():
        off = 0
        for seg in ELFFile(io.BytesIO(elf)).iter_segments():
            data = np.frombuffer(seg.data(), dtype=np.uint8)
            dst[off : off + data.size] = data
            off += data.size

    _record(benchmark, "pyelftools parse+data()+copy (no verification)")
    benchmark.pedantic(load, rounds=3, warmup_rounds=1)


def test_verify_image(benchmark, firmware):
    _, image, key = firmware
    _record(benchmark, "rproctee verify_image (signature + segment hashes)")
    report = benchmark.pedantic(
        verify_image, (image, key.public_key()), rounds=3, warmup_rounds=1
    )
    assert report.ok


@pytest.mark.parametrize("policy", ["optee", "strict"])
def test_secure_load(benchmark, firmware, policy):
    _, image, key = firmware
    world = build_secure_world(_platform(key), policy=policy)
    session = TeeContext(world.core).open_session(TA_UUID, [value_in(0)])
    view = memoryview(image)

    def release():
        session.invoke_command(TaCommand.RELEASE_FW, [value_in(0)])
        world.memory.writes.clear()
        return (), {}

    def load():
        answer = session.invoke_command(
            TaCommand.LOAD_FW, [value_in(0), memref_in(view)]
        )
        assert answer.ok, answer.reason

    _record(benchmark, f"TA LOAD_FW [{policy}] (copy + SHA-256 of the copy)")
    release()
    load()  # first touch of the device memories, not timed
    benchmark.pedantic(load, setup=release, rounds=3)
