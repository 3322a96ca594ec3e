"""Signed-image header arithmetic and TLV lookup, as the TA does them.

All sizes are 32-bit, as on the 32-bit ARM build of the TA: ``r8_32`` wraps
for 0xFFFFFFF9..0xFFFFFFFF (weakness W1), and :func:`get_tlv` models a walk
whose end pointer wraps to before its start.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from rproctee.tee.results import TeeError, TeeResult

HDR_SIZE = 20
MAGIC = 0x3543A468
VERSION = 1
U32 = 0xFFFFFFFF


class Tlv(IntEnum):
    """Generic TLV types of the signed image (spec 1.3)."""

    #: 1 byte: 1 = RSA PKCS#1 v1.5 SHA-256, 2 = ECDSA P-256 SHA-256.
    SIGNTYPE = 0x01
    #: 1 byte: 1 = SHA-256 (never read upstream).
    HASHTYPE = 0x02
    #: 1 byte: number of images.
    NUM_IMG = 0x03
    #: 1 byte per image: 1 = ELF.
    IMGTYPE = 0x04
    #: u32 per image: padded image size.
    IMGSIZE = 0x05
    #: 64-byte records: program header + SHA-256 of its file bytes.
    HASHTABLE = 0x10
    #: Optional key-info bytes handed to the platform.
    PKEYINFO = 0x11


def r8_32(x: int) -> int:
    """``ROUNDUP(x, 8)`` evaluated in uint32 (wraps to 0 near 2**32: W1)."""
    return (x + 7) & ~7 & U32


def r8(x: int) -> int:
    """Round up to a multiple of 8 without wrapping."""
    return (x + 7) & ~7


def header_words(head: bytes) -> tuple[int, int, int, int, int]:
    """magic, version, tlv_len, sign_len, img_len from 20 header bytes."""
    words = struct.unpack_from("<5I", head, 0)
    return words[0], words[1], words[2], words[3], words[4]


def add32(*terms: int) -> int | None:
    """Sum in uint32 with ``ADD_OVERFLOW`` semantics: None on overflow."""
    total = 0
    for t in terms:
        total += t
        if total > U32:
            return None
    return total


def get_tlv(area: bytes, tlv_size: int, tlv_type: int) -> bytes | None:
    """First TLV of ``tlv_type`` in the area, as ``remoteproc_get_tlv`` finds it.

    Parameters
    ----------
    area : bytes
        The TLV bytes of the TA's private copy.
    tlv_size : int
        ``tlv_len`` from the header (the walk bound, not rounded).
    tlv_type : int
        Type to look for (compared on 16 bits, like upstream's key).

    Returns
    -------
    bytes or None
        The value, or None when absent *or empty* (both are NO_DATA upstream).
    """
    if tlv_size > len(area):
        # Only reachable when r8(tlv_len) wrapped (W1): on the 32-bit TA the
        # end pointer start + tlv_len wraps below start and the walk never runs.
        return None
    pos, end = 0, tlv_size
    key = tlv_type & 0xFFFF
    while pos + 8 <= end:
        t, length = struct.unpack_from("<2I", area, pos)
        pos += 8
        if pos + length > U32 + 1:
            break
        if pos + length <= end and t == key:
            return bytes(area[pos : pos + length]) or None
        pos += r8(length)
    return None


def walk_tlvs(area: bytes, tlv_len: int) -> list[tuple[int, int, bytes]]:
    """Every record (offset, type, value) of an area that must parse exactly.

    Used by the strict policy only.

    Raises
    ------
    TeeError
        BAD_PARAMETERS for a truncated head, a value past the area, or padding
        that runs past ``tlv_len``.
    """
    out: list[tuple[int, int, bytes]] = []
    pos = 0
    while pos < tlv_len:
        if tlv_len - pos < 8:
            raise _bad(f"TLV area: {tlv_len - pos} trailing bytes at {pos:#x}")
        t, length = struct.unpack_from("<2I", area, pos)
        if length > tlv_len - pos - 8:
            raise _bad(
                f"TLV {t:#x} at {pos:#x}: length {length:#x} runs past "
                f"tlv_len {tlv_len:#x}"
            )
        out.append((pos, t, bytes(area[pos + 8 : pos + 8 + length])))
        pos += 8 + r8(length)
    if pos != r8(tlv_len):
        raise _bad(f"TLV area: last record padding ends at {pos:#x} != {tlv_len:#x}")
    return out


def _bad(reason: str) -> TeeError:
    return TeeError(TeeResult.TEE_ERROR_BAD_PARAMETERS, reason)
