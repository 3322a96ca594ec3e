"""The ``info`` model: a JSON-ready description of a signed image.

Integers stay integers (JSON numbers); byte strings become lowercase hex.
Problems inside an embedded ELF or its resource table are reported in an
``error`` field instead of aborting the whole description: the container
itself must parse, everything below it is shown as far as it is readable.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from rproctee.elf import check_range
from rproctee.errors import FormatError
from rproctee.image._elf import ElfInfo, scan_elf_info
from rproctee.image.format import TlvType
from rproctee.image.keys import PublicKey, fingerprint, key_sign_type
from rproctee.image.parse import EmbeddedImage, SignedImage, Tlv, parse_image
from rproctee.image.rsctable import parse_rsc_table
from rproctee.image.verify import verify_image

if TYPE_CHECKING:
    from rproctee._typing import Buffer

JsonDict = dict[str, Any]
RSC_SECTION = ".resource_table"


def _tlv_value(tlv: Tlv) -> Any:
    raw = bytes(tlv.value)
    if tlv.type in (TlvType.SIGNTYPE, TlvType.HASHTYPE, TlvType.NUM_IMG):
        return raw[0] if len(raw) == 1 else raw.hex()
    if tlv.type == TlvType.IMGTYPE:
        return list(raw)
    if tlv.type == TlvType.IMGSIZE:
        return [int.from_bytes(raw[i : i + 4], "little") for i in range(0, len(raw), 4)]
    if tlv.type == TlvType.HASHTABLE:
        return {"entries": len(raw) // 64}
    return raw.hex()


def _tlv(tlv: Tlv) -> JsonDict:
    return {
        "offset": tlv.offset,
        "type": tlv.type,
        "name": tlv.name,
        "length": len(tlv.value),
        "value": _tlv_value(tlv),
    }


def _hash_table(image: SignedImage) -> list[JsonDict]:
    out = []
    for index, entry in enumerate(image.hash_table):
        row: JsonDict = {"index": index}
        row.update(dataclasses.asdict(entry))
        row["digest"] = entry.digest.hex()
        out.append(row)
    return out


def _rsc_table(img: EmbeddedImage, info: ElfInfo) -> JsonDict | None:
    section = info.find_section(RSC_SECTION)
    if section is None:
        return None
    out: JsonDict = {
        "sh_addr": section.sh_addr,
        "sh_offset": section.sh_offset,
        "sh_size": section.sh_size,
    }
    try:
        check_range("sh_offset", section.sh_offset, section.sh_size, len(img.data))
        end = section.sh_offset + section.sh_size
        table = parse_rsc_table(img.data[section.sh_offset : end])
    except FormatError as exc:
        out["error"] = str(exc)
        return out
    out.update(version=table.version, num=table.num)
    out["entries"] = [dataclasses.asdict(e) for e in table.entries]
    return out


def _elf(img: EmbeddedImage) -> JsonDict:
    try:
        info = scan_elf_info(img.data)
    except FormatError as exc:
        return {"error": str(exc)}
    return {
        "class": info.elf_class,
        "data": "little" if info.data == 1 else "big",
        "machine": info.machine,
        "type": info.type,
        "entry": info.entry,
        "segments": [dataclasses.asdict(ph) for ph in info.phdrs],
        "resource_table": _rsc_table(img, info),
    }


def _key(image: SignedImage, key: PublicKey) -> JsonDict:
    report = verify_image(image, key)
    return {
        "type": key_sign_type(key).name,
        "fingerprint_sha256": fingerprint(key),
        "signature_valid": report.checks[0].ok,
    }


def describe_image(
    image: Buffer | SignedImage, key: PublicKey | None = None
) -> JsonDict:
    """Describe an image: header, TLVs, hash table, signature, embedded ELFs.

    Parameters
    ----------
    image : buffer or SignedImage
        Image bytes or an already parsed image.
    key : PublicKey, optional
        When given, its SHA-256 fingerprint and whether it verifies the
        signature are included under ``key``.

    Returns
    -------
    dict
        JSON-ready description (integers as ints, bytes as hex).

    Raises
    ------
    ImageFormatError
        If the container is malformed.
    """
    parsed = image if isinstance(image, SignedImage) else parse_image(image)
    out: JsonDict = {
        "size": len(parsed.buffer),
        "header": dataclasses.asdict(parsed.header),
        "tlvs": [_tlv(t) for t in parsed.tlvs],
        "hash_table": _hash_table(parsed),
        "signature": {
            "type": parsed.sign_type.name,
            "sign_type": int(parsed.sign_type),
            "offset": parsed.signature_offset,
            "length": len(parsed.signature),
        },
        "images": [
            {"index": i.index, "offset": i.offset, "size": i.size, "elf": _elf(i)}
            for i in parsed.images
        ],
    }
    if key is not None:
        out["key"] = _key(parsed, key)
    return out
