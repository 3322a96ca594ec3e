"""A generator of well-formed MDT/MBN test images (your key, your chain).

The layout follows what msm8916-mainline/qtestsign writes (public; see
:mod:`rproctee.qcom.hashseg`): program header 0 is a PT_NULL placeholder
(flags ``0x07000000``) whose file bytes are the ELF header + program
headers; program header 1 is the PT_NULL hash segment (flags
``0x02200000``) placed after the highest segment, page-aligned; the
caller's segments follow as PT_LOAD.  The signature uses this package's
test scheme (:mod:`rproctee.qcom.certs`), not Qualcomm's.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from rproctee.qcom import certs
from rproctee.qcom import constants as c
from rproctee.qcom.errors import MdtFormatError
from rproctee.qcom.hashseg import HashSegmentSpec, assemble_hash_segment, layout_header

EM_QDSP6 = 164
ET_EXEC = 2
PF_X, PF_W, PF_R = 1, 2, 4
DEFAULT_ALGORITHM = {3: "sha256", 5: "sha256", 6: "sha384", 7: "sha384"}
#: qtestsign's v6 OEM metadata: 120 zero bytes.
V6_METADATA = bytes(120)


@dataclass(frozen=True)
class SegmentSpec:
    """One program header the caller wants in the image.

    ``memsz`` defaults to ``len(data)``; a larger value adds a zero-filled
    tail.  ``p_type`` other than PT_LOAD gives a segment Linux never loads.
    """

    paddr: int
    data: bytes
    memsz: int | None = None
    flags: int = PF_R | PF_X
    p_type: int = c.PT_LOAD

    @property
    def p_memsz(self) -> int:
        """The memory size (``memsz`` or the data length)."""
        return len(self.data) if self.memsz is None else self.memsz


def align_up(value: int, align: int) -> int:
    """``value`` rounded up to a multiple of ``align`` (a power of two)."""
    return (value + align - 1) & ~(align - 1)


def build_image(
    segments: Sequence[SegmentSpec],
    *,
    version: int = 6,
    algorithm: str | None = None,
    signer: certs.TestSigner | None = None,
    qti_signer: certs.TestSigner | None = None,
    relocatable: bool = False,
    file_align: int = 0x1000,
    software_id: int = 0,
) -> bytes:
    """A single-file (``.mbn``) image with a signed hash segment.

    Parameters
    ----------
    segments : sequence of SegmentSpec
        The firmware's own segments, in program-header order.
    version : int
        MBN hash-segment header version: 3, 5, 6 or 7.
    algorithm : str, optional
        ``"sha256"`` or ``"sha384"``; default SHA-256 for v3/v5 and SHA-384
        for v6/v7, as qtestsign writes them.
    signer : TestSigner, optional
        Signs as OEM; without it the image has no signature or chain.
    qti_signer : TestSigner, optional
        A second (QTI) signature, v5 and later.
    relocatable : bool
        Set ``QCOM_MDT_RELOCATABLE`` on every PT_LOAD.
    file_align : int
        Alignment of each part in the file (a power of two).
    software_id : int
        v7 common-metadata software id.

    Raises
    ------
    MdtFormatError
        An option the chosen version cannot express.
    """
    algorithm = algorithm or DEFAULT_ALGORITHM.get(version, "sha384")
    spec = _hash_spec(
        version, algorithm, len(segments) + 2, signer, qti_signer, software_id
    )
    hash_size = _hash_segment_size(spec)
    phdrs, offsets = _program_headers(segments, hash_size, relocatable, file_align)
    header = _elf_header(segments, len(phdrs)) + b"".join(phdrs)
    spec.hashes = _digests(algorithm, header, segments)
    spec.dest_addr = struct.unpack_from("<I", phdrs[1], 12)[0]
    signed = layout_header(spec)
    hashseg = assemble_hash_segment(
        signed,
        spec,
        certs.sign(signer.key, signed, algorithm) if signer else b"",
        certs.sign(qti_signer.key, signed, algorithm) if qti_signer else b"",
    )
    return _file(header, hashseg, offsets, segments)


def _hash_spec(
    version: int,
    algorithm: str,
    count: int,
    signer: certs.TestSigner | None,
    qti: certs.TestSigner | None,
    software_id: int,
) -> HashSegmentSpec:
    size = hashlib.new(algorithm).digest_size
    return HashSegmentSpec(
        version=version,
        algorithm=algorithm,
        hashes=[bytes(size)] * count,
        signature_size=certs.signature_length(signer.key) if signer else 0,
        cert_chain=signer.chain if signer else b"",
        qti_signature_size=certs.signature_length(qti.key) if qti else 0,
        qti_cert_chain=qti.chain if qti else b"",
        metadata=V6_METADATA if version == 6 else b"",
        software_id=software_id,
    )


def _hash_segment_size(spec: HashSegmentSpec) -> int:
    return (
        len(layout_header(spec))
        + spec.signature_size
        + len(spec.cert_chain)
        + spec.qti_signature_size
        + len(spec.qti_cert_chain)
    )


def _program_headers(
    segments: Sequence[SegmentSpec], hash_size: int, relocatable: bool, align: int
) -> tuple[list[bytes], list[int]]:
    header_size = c.ELF32_EHDR_SIZE + c.ELF32_PHDR_SIZE * (len(segments) + 2)
    hash_off = align_up(header_size, align)
    top = max((s.paddr + s.p_memsz for s in segments), default=0)
    hash_addr = align_up(top, c.SZ_4K)
    if hash_addr + align_up(hash_size, c.SZ_4K) > c.U32_MASK:
        raise MdtFormatError(
            "segment paddr", top, "no room below 4 GiB for the hash segment"
        )
    phdrs = [
        _phdr(c.PT_NULL, 0, 0, header_size, 0, c.QCOM_MDT_TYPE_HEADER, 0),
        _phdr(
            c.PT_NULL,
            hash_off,
            hash_addr,
            hash_size,
            align_up(hash_size, c.SZ_4K),
            c.HASH_SEGMENT_FLAGS,
            c.SZ_4K,
        ),
    ]
    offsets = []
    off = hash_off + hash_size
    for seg in segments:
        off = align_up(off, align) if seg.data else off
        flags = seg.flags | (c.QCOM_MDT_RELOCATABLE if relocatable else 0)
        phdrs.append(
            _phdr(seg.p_type, off, seg.paddr, len(seg.data), seg.p_memsz, flags, align)
        )
        offsets.append(off)
        off += len(seg.data)
    return phdrs, offsets


def _phdr(
    p_type: int, off: int, addr: int, filesz: int, memsz: int, flags: int, align: int
) -> bytes:
    return struct.pack("<8I", p_type, off, addr, addr, filesz, memsz, flags, align)


def _elf_header(segments: Sequence[SegmentSpec], phnum: int) -> bytes:
    ident = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    entry = segments[0].paddr if segments else 0
    return struct.pack(
        "<16sHHIIIIIHHHHHH",
        ident,
        ET_EXEC,
        EM_QDSP6,
        1,
        entry,
        c.ELF32_EHDR_SIZE,
        0,
        0,
        c.ELF32_EHDR_SIZE,
        c.ELF32_PHDR_SIZE,
        phnum,
        0,
        0,
        0,
    )


def _digests(
    algorithm: str, header: bytes, segments: Sequence[SegmentSpec]
) -> list[bytes]:
    size = hashlib.new(algorithm).digest_size
    table = [hashlib.new(algorithm, header).digest(), bytes(size)]
    for seg in segments:
        table.append(
            hashlib.new(algorithm, seg.data).digest() if seg.data else bytes(size)
        )
    return table


def _file(
    header: bytes, hashseg: bytes, offsets: list[int], segments: Sequence[SegmentSpec]
) -> bytes:
    hash_off = struct.unpack_from("<I", header, c.ELF32_EHDR_SIZE + 32 + 4)[0]
    out = bytearray(header)
    out += bytes(hash_off - len(out)) + hashseg
    for off, seg in zip(offsets, segments, strict=True):
        if seg.data:
            out += bytes(off - len(out)) + seg.data
    return bytes(out)


def demo_segments(base: int, code_kib: int = 64, seed: int = 7) -> list[SegmentSpec]:
    """A small DSP-like firmware at ``base``: code, data with a .bss tail, an
    empty segment (memory only), so every mdt_loader case appears.

    Parameters
    ----------
    base : int
        Load address of the first segment (4 KiB aligned).
    code_kib : int
        Size of the code segment.
    seed : int
        Seed of the (reproducible) code bytes.
    """
    import numpy as np

    if base % c.SZ_4K or not 0 <= base < 1 << 32:
        raise ValueError(f"base = {base:#x}: not a 4 KiB-aligned 32-bit address")
    if code_kib <= 0:
        raise ValueError(f"code_kib = {code_kib}: must be positive")
    rng = np.random.default_rng(seed)
    code = rng.integers(0, 256, code_kib * 1024, dtype=np.uint8).tobytes()
    data = rng.integers(0, 256, 0x300, dtype=np.uint8).tobytes()
    data_at = base + align_up(len(code), c.SZ_4K)
    return [
        SegmentSpec(base, code),
        SegmentSpec(data_at, data, memsz=0x1000, flags=PF_R | PF_W),
        SegmentSpec(data_at + 0x1000, b"", memsz=0x2000, flags=PF_R | PF_W),
    ]
