"""Region checks: a realistic call (8 segments x 8 regions) and 10**5 intervals."""

from __future__ import annotations

import struct

import numpy as np
import pytest


def _table(n, seed):
    rng = np.random.default_rng(seed)
    bases = np.sort(rng.integers(0, 2**32, n, dtype=np.uint64))
    sizes = rng.integers(1, 2**20, n, dtype=np.uint64)
    return bases, sizes


@pytest.mark.parametrize("count", [8, 100_000])
def test_locate_intervals(benchmark, kmods, count):
    backend, mods = kmods
    mod = mods["regions"]
    bases, sizes = _table(8, 1)
    addrs, lens = _table(count, 2)
    benchmark.group = "regions"
    benchmark.name = f"locate_intervals[{backend}] n={count}"
    benchmark.extra_info["intervals"] = count
    benchmark(mod.locate_intervals, addrs, lens, bases, sizes)


# -- the strict plan ---------------------------------------------------------------
# LOAD_FW's strict plan for images of many small segments (issue: 4096 segments
# of 4 KiB load at >= 0.5x the throughput of one 16 MiB segment; region checks
# of 65,535 segments under 5 ms). The images are built once per module, without
# a resource table (the region checks can then run again and again on one plan).

PLAN_BASE = 0x20000000
PLAN_SEGMENTS = {4096: (4096, 0x1040), 65535: (8, 64)}  # count: (filesz, stride)


def _plan_elf(count: int) -> bytes:
    """ELF32 of ``count`` PT_LOAD (every other one with a zero-filled tail)
    and only the section-name table: ``firmware.build_elf`` gives each
    segment a section, which 65,535 segments do not leave room for (and
    the strict section lookup, not the plan, would then be timed)."""
    filesz, stride = PLAN_SEGMENTS[count]
    data_off = (52 + 32 * count + 15) & ~15
    names = b"\0.shstrtab\0"
    names_off = data_off + filesz * count
    shoff = (names_off + len(names) + 3) & ~3
    out = bytearray(shoff + 80)
    k = np.arange(count, dtype=np.uint32)
    phdrs = np.zeros((count, 8), dtype="<u4")
    phdrs[:, 0] = 1  # PT_LOAD
    phdrs[:, 1] = data_off + filesz * k
    phdrs[:, 2] = phdrs[:, 3] = PLAN_BASE + stride * k
    phdrs[:, 4] = filesz
    phdrs[:, 5] = filesz + 8 * (k % 2)
    phdrs[:, 6], phdrs[:, 7] = 6, 4  # PF_R | PF_W, align
    out[52 : 52 + 32 * count] = phdrs.tobytes()
    fill = np.repeat((k & 0xFF).astype(np.uint8), filesz)
    out[data_off:names_off] = fill.tobytes()
    out[names_off : names_off + len(names)] = names
    out[shoff + 40 : shoff + 80] = struct.pack(
        "<10I", 1, 3, 0, 0, names_off, len(names), 0, 0, 1, 0
    )
    out[0:52] = b"\x7fELF\x01\x01\x01" + bytes(9) + struct.pack(
        "<HHIIIIIHHHHHH", 2, 40, 1, PLAN_BASE, 52, shoff, 0x5000200, 52, 32,
        count, 40, 2, 1,
    )  # fmt: skip
    return bytes(out)


def _plan_image(count):
    """A signed image of :func:`_plan_elf` and the key that verifies it."""
    from rproctee.image import KeySigner, build_image, generate_key

    key = generate_key("rsa2048")
    return build_image([_plan_elf(count)], KeySigner(key)), key


def _plan_load(image, key):
    """A FirmwareLoad of ``image`` through its signature check: the state
    ``StrictPlan.build`` starts from."""
    from rproctee.image import public_key_pem
    from rproctee.platform import RegionSpec
    from rproctee.platform.board import PlatformSpec
    from rproctee.tee import TeeContext, build_secure_world
    from rproctee.tee.params import Memref, ParamType, value_in
    from rproctee.tee.ta_load import FirmwareLoad
    from rproctee.tee.ta_remoteproc import TA_UUID

    spec = PlatformSpec(
        name="bench-plan",
        regions=(RegionSpec("ram", PLAN_BASE, PLAN_BASE, 0x2000000),),
        accept_ecdsa=False,
        processor_ids=(0,),
        default_key_pem=public_key_pem(key),
        source="bench",
        notes=(),
    )
    world = build_secure_world(spec, policy="strict", heap_size=len(image) * 3)
    TeeContext(world.core).open_session(TA_UUID, [value_in(0)])
    ta = world.ta()
    load = FirmwareLoad(
        ta, ta.add_context(0), Memref(image, kind=ParamType.MEMREF_INPUT)
    )
    load.capabilities()
    load.save_header()
    load.verify_signature()
    return load


@pytest.fixture(scope="module", params=sorted(PLAN_SEGMENTS))
def plan_image(request):
    return request.param, *_plan_image(request.param)


@pytest.mark.parametrize("path", ["vectorised", "per-segment"])
def test_strict_plan_build(benchmark, plan_image, path):
    """``StrictPlan.build()`` (the whole plan: headers, hash table, segment
    checks, overlaps, region checks) on a fresh load each round."""
    from rproctee import kernels
    from rproctee.tee.ta_strict import StrictPlan

    count, image, key = plan_image
    vectorised = path == "vectorised"
    if count > 4096 and not vectorised:
        pytest.skip("seconds per round; measured once in the report instead")

    def setup():
        return (StrictPlan(_plan_load(image, key)),), {}

    benchmark.group = "strict-plan"
    benchmark.name = f"StrictPlan.build [{path}, {kernels.BACKEND}] n={count}"
    benchmark.extra_info["segments"] = count
    benchmark.pedantic(
        lambda plan: plan.build(vectorised=vectorised), setup=setup, rounds=5
    )


def test_strict_plan_region_checks(benchmark, plan_image):
    """The plan's region checks of every segment: the (da, size) ranges
    built from the plan's records and PTA RANGES_WRITABLE on all of them
    (``StrictPlan._regions_fast``), as the ``region checks`` mark times it."""
    from rproctee import kernels
    from rproctee.tee.ta_strict import StrictPlan

    count, image, key = plan_image
    plan = StrictPlan(_plan_load(image, key))
    plan.build(vectorised=True)
    benchmark.group = "strict-plan"
    benchmark.name = f"region checks [{kernels.BACKEND}] n={count}"
    benchmark.extra_info["segments"] = count
    benchmark.pedantic(plan._regions_fast, rounds=20, warmup_rounds=2)
