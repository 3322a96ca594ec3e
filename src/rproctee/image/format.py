"""Constants and fixed layouts of OP-TEE's signed remoteproc image.

Layout (all integers little-endian, ``r8(x)`` = ``x`` rounded up to 8)::

    0                       header: magic, version, tlv_len, sign_len, img_len
    20                      TLV area, tlv_len bytes
    20 + r8(tlv_len)        signature, sign_len bytes, zero-padded to 8
    ... + r8(sign_len)      images, each zero-padded to 8; img_len = their sum

The signed message is ``header || TLV area``; images are bound to it through
the per-program-header SHA-256 entries of the HASHTABLE TLV.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from rproctee.elf import Phdr

MAGIC = 0x3543A468
VERSION = 1
HEADER_SIZE = 20
TLV_HEAD_SIZE = 8
HASH_ENTRY_SIZE = 64
DIGEST_SIZE = 32
ECDSA_P256_SIG_SIZE = 64
U32_MAX = 0xFFFFFFFF

GENERIC_TLV_MAX = 0x0000FFFF
PLATFORM_TLV_MIN = 0x00010000
PLATFORM_TLV_MAX = 0x0001FFFF

EM_ARM = 40
PT_LOAD = 1

_HEADER = struct.Struct("<5I")
_TLV_HEAD = struct.Struct("<2I")
_PHDR_WORDS = struct.Struct("<8I")


class TlvType(IntEnum):
    """Generic TLV types (0x0000-0xFFFF) defined by the format."""

    SIGNTYPE = 0x01
    HASHTYPE = 0x02
    NUM_IMG = 0x03
    IMGTYPE = 0x04
    IMGSIZE = 0x05
    HASHTABLE = 0x10
    PKEYINFO = 0x11


class SignType(IntEnum):
    """Value of the SIGNTYPE TLV."""

    RSA = 1  # RSASSA-PKCS1-v1_5 with SHA-256, signature = modulus bytes
    ECC = 2  # ECDSA P-256 with SHA-256, raw r || s (64 bytes)


class HashType(IntEnum):
    """Value of the HASHTYPE TLV (written by the script, ignored by the TA)."""

    SHA256 = 1


class ImgType(IntEnum):
    """One byte per image in the IMGTYPE TLV."""

    ELF = 1


def r8(x: int) -> int:
    """Round a non-negative integer up to a multiple of 8 (no width limit).

    Parameters
    ----------
    x : int
        Value to round.

    Returns
    -------
    int
        The smallest multiple of 8 that is ``>= x``.
    """
    return (x + 7) & ~7


def pad8(data: bytes) -> bytes:
    """Return ``data`` followed by zero bytes up to a multiple of 8.

    Parameters
    ----------
    data : bytes
        Bytes to pad.

    Returns
    -------
    bytes
        The padded copy.
    """
    return bytes(data) + bytes(r8(len(data)) - len(data))


def tlv_name(tlv_type: int) -> str:
    """Name a TLV type: the generic name, ``PLATFORM`` or ``UNKNOWN``.

    Parameters
    ----------
    tlv_type : int
        Numeric TLV type.

    Returns
    -------
    str
        Human-readable name.
    """
    if tlv_type in TlvType._value2member_map_:
        return TlvType(tlv_type).name
    if PLATFORM_TLV_MIN <= tlv_type <= PLATFORM_TLV_MAX:
        return "PLATFORM"
    return "UNKNOWN"


@dataclass(frozen=True)
class ImageHeader:
    """The 20-byte image header (field order as actually written)."""

    magic: int
    version: int
    tlv_len: int
    sign_len: int
    img_len: int

    def pack(self) -> bytes:
        """Serialise the header.

        Returns
        -------
        bytes
            20 little-endian bytes.
        """
        return _HEADER.pack(
            self.magic, self.version, self.tlv_len, self.sign_len, self.img_len
        )

    @classmethod
    def unpack(cls, buf: memoryview) -> ImageHeader:
        """Read a header from the first 20 bytes of ``buf`` (caller checks size).

        Parameters
        ----------
        buf : memoryview
            At least 20 bytes.

        Returns
        -------
        ImageHeader
            The decoded fields (not validated).
        """
        return cls(*_HEADER.unpack_from(buf, 0))


def encode_tlv(tlv_type: int, value: bytes) -> bytes:
    """Encode one TLV record: type, unpadded length, value, zero padding to 8.

    Parameters
    ----------
    tlv_type : int
        TLV type (u32).
    value : bytes
        Value bytes.

    Returns
    -------
    bytes
        ``8 + r8(len(value))`` bytes.
    """
    return _TLV_HEAD.pack(tlv_type, len(value)) + pad8(value)


def unpack_tlv_head(buf: memoryview, offset: int) -> tuple[int, int]:
    """Read the (type, length) words of a TLV record (caller checks bounds).

    Parameters
    ----------
    buf : memoryview
        Buffer holding the record.
    offset : int
        Offset of the record head.

    Returns
    -------
    tuple of int
        ``(type, length)``.
    """
    tlv_type, length = _TLV_HEAD.unpack_from(buf, offset)
    return int(tlv_type), int(length)


@dataclass(frozen=True)
class HashEntry(Phdr):
    """One 64-byte HASHTABLE record: an ELF32 program header and its SHA-256."""

    digest: bytes

    def pack(self) -> bytes:
        """Serialise the record.

        Returns
        -------
        bytes
            64 bytes: eight u32 words then the 32-byte digest.
        """
        return _PHDR_WORDS.pack(*self.words()) + self.digest

    @classmethod
    def from_record(cls, buf: memoryview, offset: int) -> HashEntry:
        """Read a record at ``offset`` (caller checks that 64 bytes are there).

        Parameters
        ----------
        buf : memoryview
            Buffer holding the record.
        offset : int
            Record offset.

        Returns
        -------
        HashEntry
            The decoded record.
        """
        w = _PHDR_WORDS.unpack_from(buf, offset)
        digest = bytes(buf[offset + 32 : offset + HASH_ENTRY_SIZE])
        return cls(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], digest)
