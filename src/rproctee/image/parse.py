"""Parse a signed image from any buffer without copying its payload.

Every part of the result that refers to image bytes (TLV values, signature,
embedded ELF files) is a :class:`memoryview` slice of the caller's buffer.
Every length and offset is checked in the ``size <= limit and
off <= limit - size`` form before it is used, and each rule broken raises an
:class:`~rproctee.image.errors.ImageFormatError` naming the field, its value
and the rule.

The parser is strict: it accepts exactly what OP-TEE's signing script can
produce (plus unknown and platform TLVs, which it keeps raw, in order).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rproctee.image.errors import ImageFormatError
from rproctee.image.format import (
    ECDSA_P256_SIG_SIZE,
    HASH_ENTRY_SIZE,
    HEADER_SIZE,
    MAGIC,
    PLATFORM_TLV_MAX,
    PLATFORM_TLV_MIN,
    TLV_HEAD_SIZE,
    VERSION,
    HashEntry,
    HashType,
    ImageHeader,
    ImgType,
    SignType,
    TlvType,
    r8,
    tlv_name,
    unpack_tlv_head,
)

if TYPE_CHECKING:
    from rproctee._typing import Buffer

_REQUIRED = (
    TlvType.SIGNTYPE,
    TlvType.NUM_IMG,
    TlvType.IMGTYPE,
    TlvType.IMGSIZE,
    TlvType.HASHTABLE,
)


@dataclass(frozen=True)
class Tlv:
    """One TLV record: ``offset`` is the file offset of its 8-byte head."""

    type: int
    offset: int
    value: memoryview

    @property
    def name(self) -> str:
        """Generic type name, ``PLATFORM`` or ``UNKNOWN``."""
        return tlv_name(self.type)


@dataclass(frozen=True)
class EmbeddedImage:
    """One embedded ELF file: ``size`` is its padded size from IMGSIZE."""

    index: int
    img_type: int
    offset: int
    size: int
    data: memoryview


@dataclass(frozen=True)
class SignedImage:
    """A parsed signed image; all byte fields are views of ``buffer``."""

    buffer: memoryview
    header: ImageHeader
    tlvs: tuple[Tlv, ...]
    sign_type: SignType
    hash_type: HashType | None
    hash_table: tuple[HashEntry, ...]
    key_info: memoryview | None
    signature_offset: int
    signature: memoryview
    images: tuple[EmbeddedImage, ...]

    @property
    def signed_message(self) -> memoryview:
        """The signed bytes: header and ``r8(tlv_len)`` bytes of TLV area."""
        return self.buffer[: HEADER_SIZE + r8(self.header.tlv_len)]

    def digest(self) -> bytes:
        """Return SHA-256 of :attr:`signed_message`."""
        return hashlib.sha256(self.signed_message).digest()

    @property
    def platform_tlvs(self) -> tuple[Tlv, ...]:
        """TLVs in the platform range 0x10000-0x1FFFF, in file order."""
        return tuple(
            t for t in self.tlvs if PLATFORM_TLV_MIN <= t.type <= PLATFORM_TLV_MAX
        )

    @property
    def unknown_tlvs(self) -> tuple[Tlv, ...]:
        """TLVs that are neither generic-known nor in the platform range."""
        return tuple(t for t in self.tlvs if t.name == "UNKNOWN")


def as_byte_view(buf: Buffer) -> memoryview:
    """Return a flat unsigned-byte view of any C-contiguous buffer, no copy.

    Parameters
    ----------
    buf : bytes, bytearray, mmap, numpy array or any buffer
        The image bytes.

    Returns
    -------
    memoryview
        A 1-D view with format ``B``.

    Raises
    ------
    ValueError
        If the buffer is not C-contiguous.
    """
    view = memoryview(buf)
    if not view.c_contiguous:
        raise ValueError("image buffer must be C-contiguous")
    if view.format == "B" and view.ndim == 1:
        return view
    return view.cast("B")


def _fit(field: str, value: int, size: int, offset: int, limit: int) -> None:
    if not (size <= limit and offset <= limit - size):
        raise ImageFormatError(
            field,
            value,
            f"{size:#x} bytes at offset {offset:#x} end past the {limit:#x}-byte image",
        )


def _magic_hint(view: memoryview) -> str | None:
    """A plain ELF is the usual wrong input: say so instead of quoting magic."""
    if bytes(view[:4]) == b"\x7fELF":
        return (
            "this is an ELF file, not a signed image: sign it first "
            "(rproctee sign --in ELF --key KEY --out IMAGE)"
        )
    return None


def _check_header(view: memoryview) -> ImageHeader:
    if len(view) < HEADER_SIZE:
        raise ImageFormatError(
            "image size", len(view), f"shorter than the {HEADER_SIZE:#x}-byte header"
        )
    hdr = ImageHeader.unpack(view)
    if hdr.magic != MAGIC:
        raise ImageFormatError(
            "magic", hdr.magic, f"must be {MAGIC:#x}", _magic_hint(view)
        )
    if hdr.version != VERSION:
        raise ImageFormatError("version", hdr.version, f"must be {VERSION:#x}")
    for field in ("tlv_len", "sign_len"):
        if getattr(hdr, field) == 0:
            raise ImageFormatError(field, 0, "must be non-zero")
    for field in ("tlv_len", "img_len"):
        if getattr(hdr, field) % 8:
            raise ImageFormatError(
                field, getattr(hdr, field), "must be a multiple of 8"
            )
    _check_sizes(hdr, len(view))
    return hdr


def _check_sizes(hdr: ImageHeader, n: int) -> None:
    offset = HEADER_SIZE
    for field in ("tlv_len", "sign_len", "img_len"):
        value = getattr(hdr, field)
        _fit(field, value, r8(value), offset, n)
        offset += r8(value)
    if offset != n:
        raise ImageFormatError(
            "image size",
            n,
            f"must equal 0x14 + r8(tlv_len) + r8(sign_len) + r8(img_len) = {offset:#x}",
        )


def _walk_tlvs(view: memoryview, tlv_len: int) -> tuple[Tlv, ...]:
    """Split the TLV area into records; it must be filled exactly."""
    area = view[HEADER_SIZE : HEADER_SIZE + tlv_len]
    tlvs: list[Tlv] = []
    pos = 0
    while pos < tlv_len:
        if TLV_HEAD_SIZE > tlv_len - pos:
            raise ImageFormatError(
                f"tlv[{len(tlvs)}] head",
                pos,
                f"8-byte head ends past tlv_len {tlv_len:#x}",
            )
        tlv_type, length = unpack_tlv_head(area, pos)
        body = pos + TLV_HEAD_SIZE
        if r8(length) > tlv_len - body:
            raise ImageFormatError(
                f"tlv[{len(tlvs)}].length",
                length,
                f"padded value ends past tlv_len {tlv_len:#x} (record at {pos:#x})",
            )
        value = area[body : body + length]
        tlvs.append(Tlv(tlv_type, HEADER_SIZE + pos, value))
        pos = body + r8(length)
    return tuple(tlvs)


def _known_tlvs(tlvs: tuple[Tlv, ...]) -> dict[TlvType, memoryview]:
    """Map each generic type to its value; duplicates and empties are errors."""
    found: dict[TlvType, memoryview] = {}
    for index, tlv in enumerate(tlvs):
        if tlv.type not in TlvType._value2member_map_:
            continue
        kind = TlvType(tlv.type)
        if kind in found:
            raise ImageFormatError(
                f"tlv[{index}].type", tlv.type, f"{kind.name} duplicated"
            )
        if len(tlv.value) == 0:
            raise ImageFormatError(f"{kind.name}.length", 0, "must be non-zero")
        found[kind] = tlv.value
    for kind in _REQUIRED:
        if kind not in found:
            raise ImageFormatError(
                f"{kind.name} TLV",
                None,
                "required",
                f"{kind.name} TLV: missing (required)",
            )
    return found


def _byte_tlv(known: dict[TlvType, memoryview], kind: TlvType, allowed: range) -> int:
    value = known[kind]
    if len(value) != 1:
        raise ImageFormatError(f"{kind.name}.length", len(value), "must be 0x1")
    if value[0] not in allowed:
        raise ImageFormatError(
            kind.name, value[0], f"must be in {allowed.start:#x}..{allowed.stop - 1:#x}"
        )
    return int(value[0])


def _sign_type(known: dict[TlvType, memoryview], sign_len: int) -> SignType:
    sign_type = SignType(_byte_tlv(known, TlvType.SIGNTYPE, range(1, 3)))
    if sign_type is SignType.ECC and sign_len != ECDSA_P256_SIG_SIZE:
        raise ImageFormatError("sign_len", sign_len, "must be 0x40 for SIGNTYPE ECC")
    return sign_type


def _hash_type(known: dict[TlvType, memoryview]) -> HashType | None:
    if TlvType.HASHTYPE not in known:
        return None
    return HashType(_byte_tlv(known, TlvType.HASHTYPE, range(1, 2)))


def _image_table(
    known: dict[TlvType, memoryview], img_len: int
) -> list[tuple[int, int]]:
    """Return ``(img_type, padded_size)`` per image from NUM_IMG/IMGTYPE/IMGSIZE."""
    num = _byte_tlv(known, TlvType.NUM_IMG, range(1, 256))
    types, sizes = known[TlvType.IMGTYPE], known[TlvType.IMGSIZE]
    if len(types) != num:
        raise ImageFormatError(
            "IMGTYPE.length", len(types), f"must equal NUM_IMG ({num:#x})"
        )
    if len(sizes) != 4 * num:
        raise ImageFormatError(
            "IMGSIZE.length", len(sizes), f"must equal 4 x NUM_IMG ({4 * num:#x})"
        )
    table = [(int(types[i]), int.from_bytes(sizes[4 * i : 4 * i + 4], "little"))
             for i in range(num)]  # fmt: skip
    for i, (img_type, size) in enumerate(table):
        if img_type != ImgType.ELF:
            raise ImageFormatError(f"IMGTYPE[{i}]", img_type, "must be 0x1 (ELF)")
        if size == 0 or size % 8:
            raise ImageFormatError(
                f"IMGSIZE[{i}]", size, "must be a non-zero multiple of 8"
            )
    total = sum(size for _, size in table)
    if total != img_len:
        raise ImageFormatError("IMGSIZE sum", total, f"must equal img_len {img_len:#x}")
    return table


def _hash_table(known: dict[TlvType, memoryview]) -> tuple[HashEntry, ...]:
    value = known[TlvType.HASHTABLE]
    if len(value) % HASH_ENTRY_SIZE:
        raise ImageFormatError(
            "HASHTABLE.length", len(value), "must be a multiple of 64"
        )
    return tuple(
        HashEntry.from_record(value, off)
        for off in range(0, len(value), HASH_ENTRY_SIZE)
    )


def _images(
    view: memoryview, start: int, table: list[tuple[int, int]]
) -> tuple[EmbeddedImage, ...]:
    out = []
    offset = start
    for index, (img_type, size) in enumerate(table):
        _fit(f"IMGSIZE[{index}]", size, size, offset, len(view))
        data = view[offset : offset + size]
        out.append(EmbeddedImage(index, img_type, offset, size, data))
        offset += size
    return tuple(out)


def parse_image(buf: Buffer) -> SignedImage:
    """Parse a signed image held in ``buf`` (bytes, bytearray, mmap, numpy ...).

    Parameters
    ----------
    buf : buffer
        The whole image file.  It is not copied; the result holds views of it.

    Returns
    -------
    SignedImage
        Header, TLVs in order, decoded known TLVs, hash table, signature view
        and one view per embedded ELF file.

    Raises
    ------
    ImageFormatError
        If any header, size or TLV rule of the format is broken.
    ValueError
        If the buffer is not C-contiguous.
    """
    view = as_byte_view(buf)
    hdr = _check_header(view)
    tlvs = _walk_tlvs(view, hdr.tlv_len)
    known = _known_tlvs(tlvs)
    sig_off = HEADER_SIZE + r8(hdr.tlv_len)
    table = _image_table(known, hdr.img_len)
    return SignedImage(
        buffer=view,
        header=hdr,
        tlvs=tlvs,
        sign_type=_sign_type(known, hdr.sign_len),
        hash_type=_hash_type(known),
        hash_table=_hash_table(known),
        key_info=known.get(TlvType.PKEYINFO),
        signature_offset=sig_off,
        signature=view[sig_off : sig_off + hdr.sign_len],
        images=_images(view, sig_off + r8(hdr.sign_len), table),
    )
