"""Strict-plan workloads of ``rproctee bench``: images of thousands of tiny
segments, and the timing of the plan's region checks on them.

The issue's goal: region checks of 65,535 segments (the (da, size) ranges
built from the plan's records, then PTA RANGES_WRITABLE over all of them)
under 5 ms. Imported only when a benchmark runs (numpy at module level).
"""

from __future__ import annotations

import statistics
import struct
import time
from typing import Any

import numpy as np

PLAN_BASE = 0x20000000
PLAN_SEGMENTS = {4096: (4096, 0x1040), 65535: (8, 64)}  # count: (filesz, stride)


def plan_elf(count: int) -> bytes:
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


def plan_image(count: int) -> tuple[bytes, Any]:
    """A signed image of :func:`plan_elf` and the key that verifies it."""
    from rproctee.image import KeySigner, build_image, generate_key

    key = generate_key("rsa2048")
    return build_image([plan_elf(count)], KeySigner(key)), key


def plan_load(image: bytes, key: Any) -> Any:
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
    assert ta is not None  # the session above made the instance
    load = FirmwareLoad(
        ta, ta.add_context(0), Memref(image, kind=ParamType.MEMREF_INPUT)
    )
    load.capabilities()
    load.save_header()
    load.verify_signature()
    return load


def time_region_checks(count: int, rounds: int) -> dict[str, Any]:
    """Median and min of the strict plan's region checks, and of the whole
    plan, for an image of ``count`` tiny segments (``count`` a key of
    :data:`PLAN_SEGMENTS`).

    Returns
    -------
    dict
        ``segments``, ``region_checks_ms`` and ``plan_ms`` (each
        ``{"median", "min"}``).
    """
    from rproctee.tee.ta_strict import StrictPlan

    image, key = plan_image(count)
    plans, checks = [], []
    for _ in range(max(1, rounds)):
        plan = StrictPlan(plan_load(image, key))
        t0 = time.perf_counter()
        plan.build(vectorised=True)
        plans.append(time.perf_counter() - t0)
        # the plan times its own region checks (its "region checks" mark)
        checks += [s for what, _n, s in plan.load.marks if what == "region checks"]

    def ms(xs: list[float]) -> dict[str, float]:
        return {"median": statistics.median(xs) * 1e3, "min": min(xs) * 1e3}

    return {"segments": count, "region_checks_ms": ms(checks), "plan_ms": ms(plans)}
