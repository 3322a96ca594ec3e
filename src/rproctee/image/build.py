"""Build signed images byte-compatible with OP-TEE's ``sign_rproc_fw.py``.

Recipe (spec section 5): hash every program header of every ELF (PT_LOAD or
not, in order), pad each ELF to 8, write the TLVs in the order SIGNTYPE,
NUM_IMG, IMGTYPE, IMGSIZE, HASHTYPE, HASHTABLE, [PKEYINFO], [platform], each
padded to 8, then the header, then sign SHA-256(header || TLV area).

Building is split in two so that the digest can be signed anywhere:
:func:`prepare_image` returns an :class:`UnsignedImage` whose ``digest`` is
what gets signed and whose :meth:`UnsignedImage.assemble` stitches the
signature in.  :func:`build_image` does both with a :class:`Signer`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rproctee import kernels
from rproctee.elf import check_range, describe_ident, describe_machine
from rproctee.errors import ElfFormatError
from rproctee.image._elf import ELFCLASS32, ELFDATA2LSB, scan_elf_info
from rproctee.image.format import (
    EM_ARM,
    MAGIC,
    PLATFORM_TLV_MAX,
    PLATFORM_TLV_MIN,
    U32_MAX,
    VERSION,
    HashEntry,
    HashType,
    ImageHeader,
    ImgType,
    SignType,
    TlvType,
    encode_tlv,
    pad8,
    r8,
)
from rproctee.image.parse import as_byte_view, parse_image
from rproctee.image.sign import Signer, normalise_signature

if TYPE_CHECKING:
    from rproctee._typing import Buffer

PlatValue = bytes | int | str


def hash_entries(elf: Buffer) -> tuple[HashEntry, ...]:
    """Return one hash-table record per program header of an ARM ELF32 file.

    Parameters
    ----------
    elf : buffer
        The whole ELF file.

    Returns
    -------
    tuple of HashEntry
        Program-header words and SHA-256 of ``[p_offset, p_offset + p_filesz)``,
        in program-header order, every type included.

    Raises
    ------
    ElfFormatError
        If the file is not ELF32 little-endian for EM_ARM, a table lies outside
        the file, or a segment's file range ends past the file.
    """
    view = as_byte_view(elf)
    info = scan_elf_info(view)
    if info.elf_class != ELFCLASS32 or info.data != ELFDATA2LSB:
        raise ElfFormatError(
            "e_ident[EI_CLASS]", info.elf_class, "must be ELF32 LE",
            f"{describe_ident(info.elf_class, info.data)}: must be 1 (ELFCLASS32) "
            "and 1 (ELFDATA2LSB)",
        )  # fmt: skip
    if info.machine != EM_ARM:
        raise ElfFormatError(
            "e_machine", info.machine, "must be EM_ARM",
            f"e_machine = {describe_machine(info.machine)}: must be EM_ARM (40)",
        )  # fmt: skip
    entries = []
    for i, ph in enumerate(info.phdrs):
        check_range(f"phdr[{i}].p_offset", ph.p_offset, ph.p_filesz, len(view))
        data = view[ph.p_offset : ph.p_offset + ph.p_filesz]
        digest = kernels.sha256_staged(data)
        entries.append(HashEntry(*ph.words(), digest=digest))
    return tuple(entries)


def plat_tlv_value(value: PlatValue) -> bytes:
    """Encode a platform TLV value the way ``--plat-tlv`` does.

    Parameters
    ----------
    value : bytes, int or str
        ``bytes`` are used as they are; an ``int`` or a ``str`` starting with
        ``0x`` becomes a u32 little-endian; any other ``str`` its UTF-8 bytes
        (no terminating NUL).

    Returns
    -------
    bytes
        The TLV value.

    Raises
    ------
    ValueError
        If an integer is negative or above 0xFFFFFFFF.
    """
    if isinstance(value, str) and value.startswith("0x"):
        value = int(value, 16)
    if isinstance(value, int):
        if not 0 <= value <= U32_MAX:
            raise ValueError(f"platform TLV value {value:#x} does not fit in 32 bits")
        return value.to_bytes(4, "little")
    return value.encode() if isinstance(value, str) else bytes(value)


def parse_plat_tlv_args(pairs: Iterable[tuple[str, str]]) -> dict[int, bytes]:
    """Turn ``--plat-tlv ID VALUE`` pairs into an ordered ``{id: value}`` map.

    IDs are read with ``int(x, 0)``; a repeated ID keeps its first position and
    takes the later value, as in the script.

    Parameters
    ----------
    pairs : iterable of (str, str)
        Command-line pairs.

    Returns
    -------
    dict
        Ordered mapping of TLV id to encoded value.

    Raises
    ------
    ValueError
        For an unparsable ID, an ID outside 0x10000-0x1FFFF or a bad value.
    """
    out: dict[int, bytes] = {}
    for raw_id, raw_value in pairs:
        tlv_id = int(raw_id, 0)
        check_plat_id(tlv_id)
        out[tlv_id] = plat_tlv_value(raw_value)
    return out


def check_plat_id(tlv_id: int) -> None:
    """Raise ``ValueError`` unless ``tlv_id`` is in the platform range.

    Parameters
    ----------
    tlv_id : int
        TLV type.

    Raises
    ------
    ValueError
        If outside 0x10000-0x1FFFF.
    """
    if not PLATFORM_TLV_MIN <= tlv_id <= PLATFORM_TLV_MAX:
        raise ValueError(f"TLV {tlv_id:#x} not in range 0x10000..0x1ffff")


@dataclass(frozen=True)
class UnsignedImage:
    """Everything of an image except its signature."""

    header: bytes
    tlv_area: bytes
    sign_type: SignType
    signature_size: int
    images: tuple[bytes, ...]

    @property
    def digest(self) -> bytes:
        """SHA-256 of ``header || TLV area``: the value to sign."""
        return hashlib.sha256(self.header + self.tlv_area).digest()

    def assemble(self, signature: bytes) -> bytes:
        """Return the complete image with ``signature`` stitched in.

        Parameters
        ----------
        signature : bytes
            Exactly ``signature_size`` bytes (DER is accepted for ECDSA).

        Returns
        -------
        bytes
            The signed image.

        Raises
        ------
        SignatureError
            If the signature has the wrong length.
        """
        sig = normalise_signature(signature, self.sign_type, self.signature_size)
        parts = [self.header, self.tlv_area, pad8(sig)]
        return b"".join(parts + [pad8(img) for img in self.images])


def _tlv_area(
    sign_type: SignType,
    sizes: Sequence[int],
    entries: Sequence[HashEntry],
    key_info: bytes | None,
    plat_tlvs: Mapping[int, PlatValue],
) -> bytes:
    records = [
        encode_tlv(TlvType.SIGNTYPE, bytes([sign_type])),
        encode_tlv(TlvType.NUM_IMG, bytes([len(sizes)])),
        encode_tlv(TlvType.IMGTYPE, bytes([ImgType.ELF]) * len(sizes)),
        encode_tlv(TlvType.IMGSIZE, b"".join(s.to_bytes(4, "little") for s in sizes)),
        encode_tlv(TlvType.HASHTYPE, bytes([HashType.SHA256])),
        encode_tlv(TlvType.HASHTABLE, b"".join(e.pack() for e in entries)),
    ]
    if key_info is not None:
        records.append(encode_tlv(TlvType.PKEYINFO, bytes(key_info)))
    for tlv_id, value in plat_tlvs.items():
        check_plat_id(tlv_id)
        records.append(encode_tlv(tlv_id, plat_tlv_value(value)))
    return b"".join(records)


def _check_sizes(sizes: Sequence[int], area: bytes, signature_size: int) -> None:
    for name, value in (("TLV area", len(area)), ("signature", signature_size),
                        ("images", sum(sizes))):  # fmt: skip
        if not 0 < value <= U32_MAX:
            raise ValueError(f"{name} length {value:#x} does not fit in a u32")


def prepare_image(
    elfs: Sequence[Buffer],
    sign_type: SignType,
    signature_size: int,
    key_info: bytes | None = None,
    plat_tlvs: Mapping[int, PlatValue] | None = None,
) -> UnsignedImage:
    """Lay out an image (header, TLVs, padded ELF files) ready to be signed.

    Parameters
    ----------
    elfs : sequence of buffers
        ELF files, in image order (1 to 255 of them).
    sign_type : SignType
        SIGNTYPE to record.
    signature_size : int
        Signature length to record in ``sign_len``.
    key_info : bytes, optional
        PKEYINFO value.
    plat_tlvs : mapping of int to bytes, int or str, optional
        Platform TLVs in emission order (see :func:`plat_tlv_value`).

    Returns
    -------
    UnsignedImage
        The image without its signature; ``digest`` is what must be signed.

    Raises
    ------
    ElfFormatError
        If an input is not an ARM ELF32 file.
    ValueError
        On a bad platform TLV or sizes that do not fit the format.
    """
    if not 1 <= len(elfs) <= 255:
        raise ValueError(f"{len(elfs)} images: must be 1..255 (NUM_IMG is one byte)")
    images = tuple(bytes(as_byte_view(e)) for e in elfs)
    entries = [entry for img in images for entry in hash_entries(img)]
    sizes = [r8(len(img)) for img in images]
    area = _tlv_area(sign_type, sizes, entries, key_info, plat_tlvs or {})
    _check_sizes(sizes, area, signature_size)
    header = ImageHeader(MAGIC, VERSION, len(area), signature_size, sum(sizes))
    return UnsignedImage(header.pack(), area, sign_type, signature_size, images)


def build_image(
    elfs: Sequence[Buffer],
    signer: Signer,
    key_info: bytes | None = None,
    plat_tlvs: Mapping[int, PlatValue] | None = None,
) -> bytes:
    """Build and sign an image in one step.

    Parameters
    ----------
    elfs : sequence of buffers
        ELF files, in image order.
    signer : Signer
        Provides SIGNTYPE, signature length and the signature of the digest.
    key_info : bytes, optional
        PKEYINFO value.
    plat_tlvs : mapping, optional
        Platform TLVs (see :func:`prepare_image`).

    Returns
    -------
    bytes
        The signed image; for RSA byte-identical to ``sign_rproc_fw.py``.
    """
    unsigned = prepare_image(
        elfs, signer.sign_type, signer.signature_size, key_info, plat_tlvs
    )
    return unsigned.assemble(signer.sign_digest(unsigned.digest))


def stitch_signature(image: Buffer, signature: bytes) -> bytes:
    """Return a copy of ``image`` with its signature field replaced.

    Parameters
    ----------
    image : buffer
        A complete image (for example one whose signature is still zero).
    signature : bytes
        ``sign_len`` bytes (DER is accepted for ECDSA).

    Returns
    -------
    bytes
        The image with the new signature.

    Raises
    ------
    ImageFormatError
        If ``image`` is malformed.
    SignatureError
        If the signature length is not ``sign_len``.
    """
    parsed = parse_image(image)
    sig = normalise_signature(signature, parsed.sign_type, parsed.header.sign_len)
    out = bytearray(parsed.buffer)
    out[parsed.signature_offset : parsed.signature_offset + len(sig)] = sig
    return bytes(out)


__all__ = [
    "UnsignedImage",
    "build_image",
    "check_plat_id",
    "hash_entries",
    "parse_plat_tlv_args",
    "plat_tlv_value",
    "prepare_image",
    "stitch_signature",
]
