"""Base images of the hostile-input suite: valid, signed, with a consistent
resource table.

The TA tests' factory (:mod:`tee.factory`) builds every ELF and signed image
used here; this module only chooses the content. Its one addition is a
resource table that Linux's own checks accept (a trace buffer and a vdev with
two vrings, spec 3.3 of ``linux-remoteproc.md``): under ``strict`` the TA
validates the table with the normal world's parser, so a base image must
carry a table that parser accepts, or every mutation would be judged against
an image that is already rejected.
"""

from __future__ import annotations

import struct

from rproctee.platform.memory import RegionSpec
from tee.factory import DK2, Elf, Seg, make_elf, signed_image
from tee.fuzz_helpers import Base

RSC_TRACE, RSC_VDEV = 2, 3
VIRTIO_ID_RPMSG = 7


def trace_entry(da: int, length: int, name: bytes = b"trace0") -> bytes:
    """``fw_rsc_trace`` with its type word (48 bytes)."""
    return struct.pack("<4I32s", RSC_TRACE, da, length, 0, name)


def vdev_entry(
    vrings: list[tuple[int, int, int]],
    *,
    config: bytes = b"",
    num_of_vrings: int | None = None,
    config_len: int | None = None,
) -> bytes:
    """``fw_rsc_vdev`` with its type word, vrings (da, align, num) and config.

    ``num_of_vrings`` and ``config_len`` override the declared counts (to
    declare more than the table holds).
    """
    nv = len(vrings) if num_of_vrings is None else num_of_vrings
    cl = len(config) if config_len is None else config_len
    head = struct.pack("<6I2B2s", RSC_VDEV, VIRTIO_ID_RPMSG, 0, 1, 0, cl, 0, nv,
                       b"\0\0")  # fmt: skip
    rings = b"".join(
        struct.pack("<5I", da, align, num, k, 0)
        for k, (da, align, num) in enumerate(vrings)
    )
    return head + rings + config


def resource_table(entries: list[bytes], *, offsets: list[int] | None = None) -> bytes:
    """``struct resource_table``: header, offsets, entries (each 4-aligned)."""
    first = 16 + 4 * len(entries)
    offs, body = [], b""
    for e in entries:
        offs.append(first + len(body))
        body += e + bytes(-len(e) % 4)
    offs = offs if offsets is None else offsets
    head = struct.pack("<4I", 1, len(offs), 0, 0) + struct.pack(f"<{len(offs)}I", *offs)
    return head + body


#: A table Linux accepts: a trace buffer and an rpmsg vdev with two vrings.
TABLE = resource_table(
    [
        trace_entry(0x10048000, 0x1000),
        vdev_entry([(0x10040000, 16, 8), (0x10041000, 16, 8)]),
    ]
)


def make_elf_with_table(
    segs: list[Seg],
    table: bytes | bytearray = TABLE,
    *,
    rsc_in: int | None = 0,
    **kw: object,
) -> Elf:
    """:func:`tee.factory.make_elf` with ``table`` as the resource table."""
    return make_elf(segs, rsc_in=rsc_in, table=table, **kw)  # type: ignore[arg-type]


def default_segs() -> list[Seg]:
    """fw1-like: code + table in RETRAM, data + .bss in MCUSRAM2."""
    return [Seg(0x0, bytes(range(64)) * 2), Seg(0x10000000, b"\x11" * 8, 0x208)]


def base(name: str, elves: list[Elf]) -> Base:
    """A :class:`tee.fuzz_helpers.Base` signed with the factory's key."""
    raws = [bytes(e.raw) for e in elves]
    return Base(name, bytes(signed_image(raws)), tuple(raws), elves[0])


DEFAULT_ELF = make_elf_with_table(default_segs())
RAW = bytes(DEFAULT_ELF.raw)

BASES: tuple[Base, ...] = (
    base("default", [DEFAULT_ELF]),
    # a non-PT_LOAD entry (ARM_EXIDX), an empty PT_LOAD, p_paddr != p_vaddr
    base(
        "exidx",
        [
            make_elf_with_table(
                [
                    Seg(0x30000000, b"\x5a" * 48, 0x80, vaddr=0x8000),
                    Seg(0x30000100, b"\x77" * 8, p_type=0x70000001),
                    Seg(0x10000000, b"", 0x40),
                    Seg(0x10000100, bytes(range(256)) * 2),
                ],
                rsc_in=3,
            )
        ],
    ),
    # two images, the second without a resource table
    base(
        "two-images",
        [DEFAULT_ELF, make_elf([Seg(0x30000000, b"\xc3" * 40, 0x60)], rsc_in=None)],
    ),
)
GOOD = BASES[0].image

#: A platform with a read-only region (``access = "rx"``: code in ROM the
#: remote processor executes in place) between writable ones, so that a
#: clean-up walking the regions in order meets it before the last ones.
ROM = RegionSpec("rom", 0x08000000, 0x08000000, 0x1000, "rx")
RX = (DK2[0], ROM, *DK2[1:])
#: DK2 plus a region ending at the top of the 32-bit device space (so that
#: a segment whose p_paddr + p_memsz wraps 32 bits starts inside a region).
TOP = (*DK2, RegionSpec("top", 0xFFFF0000, 0x0FFF0000, 0x10000))

PLATFORMS: dict[str, tuple[RegionSpec, ...]] = {"dk2": DK2, "rx": RX, "top": TOP}
