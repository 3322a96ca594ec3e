"""Seed corpora, built from the test suite's own inputs.

Nothing here is stored: every run builds the seeds again from the images the
tests craft (``tests/security``, ``tests/tee``), the OP-TEE vectors and the
device trees under ``tests/``, so the corpus follows the tests.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

#: Seeds larger than this are left out (the fuzzers mutate small inputs well).
MAX_SEED = 64 << 10

PROFILES = (
    """[platform]
name = "my-board"
accept_ecdsa = false
processor_ids = [0]
[[regions]]
name = "retram"
da = 0x00000000
pa = 0x38000000
size = 0x10000
access = "rwx"
""",
    """[platform]
name = "multi-core"
processor_ids = [0, 1, 2]
notes = ["three cores"]
[[regions]]
name = "mcuram"
da = 0x30000000
size = 0x40000
[[regions]]
name = "rom"
da = 0x08000000
size = 0x1000
access = "rx"
""",
    """[platform]
name = "overlap"
[[regions]]
name = "a"
da = 0x10000000
size = 0x1000
[[regions]]
name = "b"
da = 0x10000800
pa = 0xFFFFFFFFFFFFF000
size = 0x1000
""",
)


def _crafted_images() -> Iterator[bytes]:
    from security.crafted import CASES
    from security.images import BASES

    for base in BASES:
        yield base.image
    for case in CASES:
        if case.during is None:
            yield case.image()


def _elves() -> Iterator[bytes]:
    from rproctee.errors import RprocError
    from rproctee.image import parse_image
    from security.images import BASES

    for base in BASES:
        yield from base.elves
    yield from (p.read_bytes() for p in sorted((TESTS / "data").rglob("*.elf")))
    for img in _crafted_images():
        try:
            yield from (bytes(e.data) for e in parse_image(img).images)
        except RprocError:
            continue


def _tables() -> Iterator[bytes]:
    from security import crafted
    from security.images import TABLE, resource_table
    from tee.factory import RSC_TABLE

    yield TABLE
    yield RSC_TABLE
    yield crafted.vdev_table(num_of_vrings=4)
    yield crafted.vdev_table(config_len=0xFFFFFFF0)
    yield crafted.rsc_offsets(24, 0xFFFFFFF0)
    yield resource_table([crafted.carveout_entry(0x20000000, 0x1000)])


def _dtbs() -> Iterator[bytes]:
    from rproctee.platform.devicetree import read_tree, to_dtb

    yield from (p.read_bytes() for p in sorted(TESTS.rglob("*.dtb")))
    for dts in sorted((TESTS / "platform" / "data").glob("*.dts")):
        yield to_dtb(read_tree(dts))


def _profiles() -> Iterator[bytes]:
    yield from (p.encode() for p in PROFILES)


def _images() -> Iterator[bytes]:
    yield from _crafted_images()
    yield from (p.read_bytes() for p in sorted((TESTS / "data").rglob("*.sig")))


SOURCES = {
    "image": _images,
    "elf": _elves,
    "rsctable": _tables,
    "dtb": _dtbs,
    "toml": _profiles,
    "ta": _elves,
}


def seeds(target: str) -> list[bytes]:
    """The distinct seeds of ``target`` (at most :data:`MAX_SEED` bytes each)."""
    out: dict[bytes, None] = {}
    for data in SOURCES[target]():
        if len(data) <= MAX_SEED:
            out.setdefault(bytes(data), None)
    return list(out)


def write_seeds(target: str, directory: Path) -> int:
    """Write the seeds of ``target`` into ``directory``; return how many."""
    directory.mkdir(parents=True, exist_ok=True)
    found = seeds(target)
    for i, data in enumerate(found):
        (directory / f"seed-{i:03d}").write_bytes(data)
    return len(found)
