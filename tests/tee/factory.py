"""Craft ELF32 firmware and signed images for the TA tests (spec 1.x).

Everything is built in code so a test can tamper with any field and re-sign.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rproctee.platform.memory import RegionSpec
from rproctee.tee import TA_UUID, TeeContext, TeeSession, build_secure_world
from rproctee.tee.params import memref_in, value_in, value_out
from rproctee.tee.ta_remoteproc import TaCommand
from rproctee.tee.world import SecureWorld

VECTORS = Path(__file__).resolve().parents[1] / "data" / "vectors" / "optee"
KEY = serialization.load_pem_private_key(
    (VECTORS / "keys" / "rsa2048.pem").read_bytes(), None
)
assert isinstance(KEY, rsa.RSAPrivateKey)
PUB_PEM = (VECTORS / "keys" / "rsa2048_pub.pem").read_bytes()

#: stm32mp15-dk2 regions (spec 3.3).
DK2 = (
    RegionSpec("retram", 0x0, 0x38000000, 0x10000),
    RegionSpec("mcuram", 0x30000000, 0x30000000, 0x40000),
    RegionSpec("mcuram2", 0x10000000, 0x10000000, 0x40000),
    RegionSpec("vdev0vring0", 0x10040000, 0x10040000, 0x1000),
    RegionSpec("vdev0vring1", 0x10041000, 0x10041000, 0x1000),
    RegionSpec("vdev0buffer", 0x10042000, 0x10042000, 0x4000),
    RegionSpec("ipc_shmem", 0x10048000, 0x10048000, 0x8000),
)

#: A 32-byte table the kernel accepts: one vendor entry (type 128, 8 bytes of
#: body) that a driver without ``handle_rsc`` skips.
RSC_TABLE = (
    struct.pack("<4I", 1, 1, 0, 0) + struct.pack("<I", 20) + struct.pack("<I", 128)
    + bytes(8)
)  # fmt: skip


@dataclass
class Seg:
    """One program header to emit."""

    paddr: int
    data: bytes
    memsz: int | None = None
    p_type: int = 1
    vaddr: int | None = None


@dataclass
class Elf:
    """A built ELF and where its pieces are."""

    raw: bytearray
    phoff: int = 52
    shoff: int = 0
    seg_offsets: list[int] = field(default_factory=list)
    rsc_shdr: int | None = None  # offset of the .resource_table shdr


def make_elf(
    segs: list[Seg],
    *,
    rsc_in: int | None = 0,
    machine: int = 40,
    ei_data: int = 1,
    e_type: int = 2,
    table: bytes = RSC_TABLE,
) -> Elf:
    """ELF32 LE with ``segs``; ``table`` appended to segment ``rsc_in``."""
    segs = [Seg(s.paddr, s.data, s.memsz, s.p_type, s.vaddr) for s in segs]
    rsc_at = None
    if rsc_in is not None:
        s = segs[rsc_in]
        rsc_at = (len(s.data) + 3) & ~3
        s.data = s.data.ljust(rsc_at, b"\0") + table
        if s.memsz is not None:
            s.memsz = max(s.memsz, len(s.data))
    out = bytearray(max(0x100, (52 + 32 * len(segs) + 15) & ~15))
    offs = []
    for s in segs:
        offs.append(len(out))
        out += s.data
        out += bytes(-len(out) % 0x10)
    names = b"\0.resource_table\0.shstrtab\0"
    str_off = len(out)
    out += names + bytes(-(len(out) + len(names)) % 4)
    shoff = len(out)
    shdrs = [bytes(40)]
    rsc_shdr = None
    if rsc_at is not None:
        i = rsc_in or 0
        rsc_shdr = shoff + 40
        shdrs.append(
            struct.pack(
                "<10I",
                1,
                1,
                3,
                segs[i].paddr + rsc_at,
                offs[i] + rsc_at,
                len(table),
                0,
                0,
                4,
                0,
            )
        )
    shdrs.append(struct.pack("<10I", 17, 3, 0, 0, str_off, len(names), 0, 0, 1, 0))
    out += b"".join(shdrs)
    ehdr = b"\x7fELF" + bytes([1, ei_data, 1, 0]) + bytes(8) + struct.pack(
        "<HHIIIIIHHHHHH", e_type, machine, 1, segs[0].paddr, 52, shoff, 0x5000200,
        52, 32, len(segs), 40, len(shdrs), len(shdrs) - 1,
    )  # fmt: skip
    out[0:52] = ehdr
    for k, s in enumerate(segs):
        memsz = len(s.data) if s.memsz is None else s.memsz
        vaddr = s.paddr if s.vaddr is None else s.vaddr
        ph = struct.pack("<8I", s.p_type, offs[k], vaddr, s.paddr, len(s.data),
                         memsz, 7, 4)  # fmt: skip
        out[52 + 32 * k : 84 + 32 * k] = ph
    return Elf(out, 52, shoff, offs, rsc_shdr)


def default_elf(**kw: object) -> Elf:
    """Two PT_LOAD like fw1: code+table in retram, data+bss in mcuram2."""
    return make_elf(
        [Seg(0x0, bytes(range(64)) * 2), Seg(0x10000000, b"\x11" * 8, 0x208)],
        **kw,  # type: ignore[arg-type]
    )


def phdrs(elf: bytes) -> list[bytes]:
    """Raw program headers of an ELF."""
    (phoff,) = struct.unpack_from("<I", elf, 28)
    (phnum,) = struct.unpack_from("<H", elf, 44)
    return [bytes(elf[phoff + 32 * i : phoff + 32 * i + 32]) for i in range(phnum)]


def hash_table(elves: list[bytes]) -> bytes:
    """HASHTABLE value: every phdr of every ELF + SHA-256 of its file bytes."""
    out = b""
    for elf in elves:
        for ph in phdrs(elf):
            off, filesz = (
                struct.unpack_from("<I", ph, 4)[0],
                struct.unpack_from("<I", ph, 16)[0],
            )
            out += ph + hashlib.sha256(bytes(elf[off : off + filesz])).digest()
    return out


def r8(x: int) -> int:
    return (x + 7) & ~7


def pad8(b: bytes) -> bytes:
    return bytes(b) + bytes(-len(b) % 8)


def default_tlvs(elves: list[bytes]) -> list[tuple[int, bytes]]:
    """TLVs in the script's order."""
    sizes = b"".join(struct.pack("<I", r8(len(e))) for e in elves)
    return [
        (1, b"\x01"), (3, bytes([len(elves)])), (4, b"\x01" * len(elves)),
        (5, sizes), (2, b"\x01"), (0x10, hash_table(elves)),
    ]  # fmt: skip


def tlv_area(tlvs: list[tuple[int, bytes]]) -> bytes:
    """Encode TLV records, each padded to 8."""
    return b"".join(pad8(struct.pack("<2I", t, len(v)) + v) for t, v in tlvs)


def sign(message: bytes, key: rsa.RSAPrivateKey = KEY) -> bytes:
    """RSASSA-PKCS1-v1_5 SHA-256."""
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def signed_image(
    elves: list[bytes],
    *,
    tlvs: list[tuple[int, bytes]] | None = None,
    signed_elves: list[bytes] | None = None,
    magic: int = 0x3543A468,
    version: int = 1,
    tlv_len: int | None = None,
    sign_len: int | None = None,
    img_len: int | None = None,
    signature: bytes | None = None,
) -> bytearray:
    """A signed image; ``signed_elves`` builds the TLVs from other ELF bytes
    (unsigned tampering), header fields may be overridden (they are signed)."""
    records = tlvs if tlvs is not None else default_tlvs(signed_elves or elves)
    area = tlv_area(records)
    images = b"".join(pad8(e) for e in elves)
    hdr = struct.pack(
        "<5I", magic, version, len(area) if tlv_len is None else tlv_len,
        256 if sign_len is None else sign_len,
        len(images) if img_len is None else img_len,
    )  # fmt: skip
    sig = signature if signature is not None else sign(hdr + area)
    return bytearray(hdr + area + pad8(sig) + images)


def world(
    policy: str = "optee", regions: tuple[RegionSpec, ...] = DK2, **kw: object
) -> SecureWorld:
    """A secure world on the dk2 map verifying with the vectors' RSA-2048 key."""
    from rproctee.platform.board import PlatformSpec

    spec = PlatformSpec("test-dk2", regions, processor_ids=(0,))
    return build_secure_world(spec, policy=policy, key_pem=PUB_PEM, **kw)  # type: ignore[arg-type]


def session(w: SecureWorld, rproc_id: int = 0) -> TeeSession:
    """Open a session on the remoteproc TA."""
    return TeeContext(w.core).open_session(TA_UUID, [value_in(rproc_id)])


def load(s: TeeSession, image: bytes | bytearray, rproc_id: int = 0):  # type: ignore[no-untyped-def]
    """Send LOAD_FW."""
    return s.invoke_command(TaCommand.LOAD_FW, [value_in(rproc_id), memref_in(image)])


def rsc(s: TeeSession, rproc_id: int = 0) -> tuple[object, int, int]:
    """GET_RSC_TABLE: (answer, pa, size)."""
    a, b = value_out(), value_out()
    ans = s.invoke_command(TaCommand.GET_RSC_TABLE, [value_in(rproc_id), a, b])
    return ans, a.b << 32 | a.a, b.b << 32 | b.a


def writes(w: SecureWorld) -> list[tuple[str, int, int, int]]:
    """The write log as tuples."""
    return [(x.op, x.da, x.pa, x.len) for x in w.memory.writes]
