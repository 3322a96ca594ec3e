"""The MBN hash segment: header versions 3, 5, 6 and 7, parsed and built.

The hash segment of a Qualcomm MDT/MBN image is a header, optional metadata,
one digest per program header, then signature(s) and certificate chain(s).
Where each layout fact comes from (public, open-source descriptions only):

* **v3** (ten little-endian u32: image_id, version, flash_addr, dest_addr,
  total_size, hash_size, signature_addr, signature_size, cert_chain_addr,
  cert_chain_size; body = hashes, signature, chain):
  msm8916-mainline/qtestsign ``fw/hashseg.py`` (``HashSegmentV3``), which
  credits coreboot ``util/qualcomm/mbn_tools.py`` and Linaro's signlk.
* **v5** (ten u32 with the QTI signature and chain sizes in the v3
  flash_addr/dest_addr slots; body = hashes, QTI signature, QTI chain,
  OEM signature, OEM chain): qtestsign ``HashSegmentV5``.
* **v6** (v5 plus two u32, QTI and OEM metadata sizes; body starts with
  the QTI then the OEM metadata): qtestsign ``HashSegmentV6``.
* **v7** (ten u32: reserved image_id, version, common_metadata_size,
  qti_metadata_size, oem_metadata_size, hash_table_size, qti_signature_size,
  qti_certificate_chain_size, oem_signature_size, oem_certificate_chain_size;
  then the common metadata of six u32: major, minor, software_id,
  secondary_software_id, hash_table_algorithm, measurement_register_target):
  coreboot ``util/cbfstool/platform_fixups.c`` (``struct mbnv7_hashtbl_seg``,
  ``struct common_metadata``, algorithm 3 = SHA-384) and qtestsign
  ``HashSegmentV7``.  Algorithm 2 = SHA-256 is taken from an open-source
  Rust MBN tool's defines (HASH_ALGO_SHA256 = 2, SHA384 = 3, SHA512 = 5);
  only 2 and 3 are accepted here.  The two public sources disagree on the
  order of the QTI and OEM metadata blobs after the common metadata
  (coreboot only sums them); this module follows the header's field order
  (QTI first).

The digest table holds one entry per program header in order (qtestsign:
entry 0 = the ELF header + program headers, the hash segment's own entry
all zero, an all-zero entry for a segment without file bytes).  v3, v5 and
v6 headers carry no algorithm field: the digest size is ``hash_size /
e_phnum`` (qtestsign writes SHA-256 for v3/v5, SHA-384 for v6), and 32 or 48
bytes are accepted.  Paged segments (one digest per 4 KiB page) are not
modelled: the table must have exactly ``e_phnum`` entries.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

from rproctee.qcom.errors import MdtFormatError

SUPPORTED_VERSIONS = (3, 5, 6, 7)
DIGEST_ALGORITHMS = {32: "sha256", 48: "sha384"}
#: v7 common-metadata ``hash_table_algorithm`` values (see module docstring).
V7_ALGORITHMS = {2: "sha256", 3: "sha384"}
V7_ALGORITHM_IDS = {name: ident for ident, name in V7_ALGORITHMS.items()}
V7_COMMON_METADATA_SIZE = 24
#: Bound on one hash segment: far above any real one (a few KiB), far below
#: what a hostile u32 size could ask for.
MAX_HASH_SEGMENT = 16 << 20

_FIELDS: dict[int, tuple[str, ...]] = {
    3: ("image_id", "version", "flash_addr", "dest_addr", "total_size",
        "hash_size", "signature_addr", "signature_size", "cert_chain_addr",
        "cert_chain_size"),
    5: ("image_id", "version", "qti_signature_size", "qti_cert_chain_size",
        "total_size", "hash_size", "signature_addr", "signature_size",
        "cert_chain_addr", "cert_chain_size"),
    7: ("image_id", "version", "common_metadata_size", "qti_metadata_size",
        "metadata_size", "hash_size", "qti_signature_size",
        "qti_cert_chain_size", "signature_size", "cert_chain_size"),
}  # fmt: skip
_FIELDS[6] = _FIELDS[5] + ("qti_metadata_size", "metadata_size")

#: Body parts in file order: (part name, header field giving its size).
_BODY: dict[int, tuple[tuple[str, str], ...]] = {
    3: (("hashes", "hash_size"), ("signature", "signature_size"),
        ("cert_chain", "cert_chain_size")),
    5: (("hashes", "hash_size"), ("qti_signature", "qti_signature_size"),
        ("qti_cert_chain", "qti_cert_chain_size"),
        ("signature", "signature_size"), ("cert_chain", "cert_chain_size")),
}  # fmt: skip
_BODY[6] = (
    ("qti_metadata", "qti_metadata_size"),
    ("metadata", "metadata_size"),
) + _BODY[5]
_BODY[7] = (
    ("common_metadata", "common_metadata_size"),
    ("qti_metadata", "qti_metadata_size"),
    ("metadata", "metadata_size"),
) + _BODY[5]
_COMMON_FIELDS = (
    "major",
    "minor",
    "software_id",
    "secondary_software_id",
    "hash_table_algorithm",
    "measurement_register_target",
)


@dataclass(frozen=True)
class Authority:
    """One signer's part of the hash segment: ``"oem"`` or ``"qti"``."""

    name: str
    signature: bytes
    cert_chain: bytes


@dataclass(frozen=True)
class HashSegment:
    """A parsed hash segment.

    Attributes
    ----------
    version : int
        3, 5, 6 or 7.
    fields : dict
        The header words by name (v7: plus the common metadata words).
    header_size : int
        40 (v3, v5, v7) or 48 (v6) bytes.
    algorithm : str
        ``"sha256"`` or ``"sha384"``.
    hashes : tuple of bytes
        One digest per program header.
    parts : dict
        Every body part by name (metadata blobs, signatures, chains).
    signed_length : int
        Bytes from the start of the header to the end of the digest table:
        what the signature covers in this package's test scheme.
    trailing : int
        Bytes after the last part, inside the segment (padding).
    """

    version: int
    fields: dict[str, int]
    header_size: int
    algorithm: str
    hashes: tuple[bytes, ...]
    parts: dict[str, bytes]
    signed_length: int
    trailing: int
    raw: bytes = field(repr=False)

    @property
    def digest_size(self) -> int:
        """Bytes per digest (32 or 48)."""
        return len(self.hashes[0]) if self.hashes else 0

    @property
    def signed_bytes(self) -> bytes:
        """Header, metadata and digest table: what the signatures cover."""
        return self.raw[: self.signed_length]

    def authorities(self) -> tuple[Authority, ...]:
        """The signers present (OEM first), each with signature and chain."""
        found = []
        for name, prefix in (("oem", ""), ("qti", "qti_")):
            sig = self.parts.get(f"{prefix}signature", b"")
            chain = self.parts.get(f"{prefix}cert_chain", b"")
            if sig or chain:
                found.append(Authority(name, sig, chain))
        return tuple(found)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (digests as hex)."""
        return {
            "version": self.version,
            "header_size": self.header_size,
            "fields": dict(self.fields),
            "algorithm": self.algorithm,
            "hashes": [h.hex() for h in self.hashes],
            "part_sizes": {k: len(v) for k, v in self.parts.items()},
            "signed_length": self.signed_length,
            "trailing": self.trailing,
        }


def header_size(version: int) -> int:
    """Size of the fixed header of hash-segment ``version``."""
    return 4 * len(_FIELDS[version])


def parse_hash_segment(data: bytes, e_phnum: int) -> HashSegment:
    """Parse a hash segment of an image with ``e_phnum`` program headers.

    Parameters
    ----------
    data : bytes
        The hash segment's bytes (``p_filesz`` of them).
    e_phnum : int
        Number of program headers: the digest table must have one entry each.

    Returns
    -------
    HashSegment

    Raises
    ------
    MdtFormatError
        Too short, unknown version, sizes past the segment or not adding up,
        digest table not ``e_phnum`` entries of 32 or 48 bytes, or (v7) an
        unknown hash algorithm.  The message names the field and value.
    """
    data = bytes(data)
    if len(data) > MAX_HASH_SEGMENT:
        raise MdtFormatError(
            "hash segment p_filesz",
            len(data),
            f"larger than the {MAX_HASH_SEGMENT:#x}-byte bound",
        )
    if len(data) < 8:
        raise MdtFormatError(
            "hash segment size",
            len(data),
            "shorter than the 8 bytes of image_id + version",
        )
    version = struct.unpack_from("<I", data, 4)[0]
    if version not in SUPPORTED_VERSIONS:
        raise MdtFormatError(
            "hash segment version",
            version,
            f"unknown MBN header version (supported: "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))})",
        )
    names = _FIELDS[version]
    size = 4 * len(names)
    if len(data) < size:
        raise MdtFormatError(
            "hash segment size",
            len(data),
            f"shorter than the {size}-byte v{version} header",
        )
    fields = dict(zip(names, struct.unpack_from(f"<{len(names)}I", data), strict=True))
    parts, end = _split_body(data, version, fields, size)
    if version != 7:
        _check_total(fields, end - size)
    algorithm = _algorithm(version, fields, parts, e_phnum)
    hashes = _digest_table(parts["hashes"], algorithm, e_phnum)
    hash_end = _hash_table_end(version, fields, size)
    return HashSegment(
        version=version,
        fields=fields,
        header_size=size,
        algorithm=algorithm,
        hashes=hashes,
        parts=parts,
        signed_length=hash_end,
        trailing=len(data) - end,
        raw=data,
    )


def _split_body(
    data: bytes, version: int, fields: dict[str, int], start: int
) -> tuple[dict[str, bytes], int]:
    parts: dict[str, bytes] = {}
    off = start
    for part, size_field in _BODY[version]:
        size = fields[size_field]
        if size > len(data) - off:
            raise MdtFormatError(
                size_field,
                size,
                f"{part} at offset {off:#x} runs past the {len(data):#x}-byte "
                "hash segment",
            )
        parts[part] = data[off : off + size]
        off += size
    return parts, off


def _check_total(fields: dict[str, int], body: int) -> None:
    if fields["total_size"] != body:
        raise MdtFormatError(
            "total_size",
            fields["total_size"],
            f"is not the sum of the parts after the header ({body:#x})",
        )


def _algorithm(
    version: int, fields: dict[str, int], parts: dict[str, bytes], e_phnum: int
) -> str:
    if version == 7:
        return _v7_algorithm(fields, parts["common_metadata"])
    if e_phnum <= 0:
        raise MdtFormatError("e_phnum", e_phnum, "no program headers to hash")
    size, rest = divmod(fields["hash_size"], e_phnum)
    if rest or size not in DIGEST_ALGORITHMS:
        raise MdtFormatError(
            "hash_size",
            fields["hash_size"],
            f"is not {e_phnum} (e_phnum) digests of 32 or 48 bytes",
        )
    return DIGEST_ALGORITHMS[size]


def _v7_algorithm(fields: dict[str, int], common: bytes) -> str:
    if len(common) < V7_COMMON_METADATA_SIZE:
        raise MdtFormatError(
            "common_metadata_size",
            len(common),
            f"shorter than the {V7_COMMON_METADATA_SIZE} bytes of the common metadata",
        )
    words = struct.unpack_from("<6I", common)
    fields.update(zip(_COMMON_FIELDS, words, strict=True))
    algo = fields["hash_table_algorithm"]
    if algo not in V7_ALGORITHMS:
        raise MdtFormatError(
            "hash_table_algorithm",
            algo,
            "unknown (2 = SHA-256, 3 = SHA-384 are supported)",
        )
    return V7_ALGORITHMS[algo]


def _digest_table(table: bytes, algorithm: str, e_phnum: int) -> tuple[bytes, ...]:
    size = hashlib.new(algorithm).digest_size
    if len(table) != size * e_phnum:
        raise MdtFormatError(
            "hash_size",
            len(table),
            f"is not {e_phnum} (e_phnum) {algorithm} digests of {size} bytes",
        )
    return tuple(table[i : i + size] for i in range(0, len(table), size))


def _hash_table_end(version: int, fields: dict[str, int], start: int) -> int:
    end = start
    for part, size_field in _BODY[version]:
        end += fields[size_field]
        if part == "hashes":
            return end
    raise AssertionError("every layout has a digest table")  # pragma: no cover


# -- building -------------------------------------------------------------------


@dataclass
class HashSegmentSpec:
    """What :func:`build_hash_segment` needs besides the signatures.

    ``signature_sizes`` must match what the signers will produce, because
    the header (which the signatures cover) records them.
    """

    version: int
    algorithm: str
    hashes: list[bytes]
    signature_size: int
    cert_chain: bytes
    qti_signature_size: int = 0
    qti_cert_chain: bytes = b""
    metadata: bytes = b""
    qti_metadata: bytes = b""
    image_id: int = 0
    dest_addr: int = 0
    software_id: int = 0


def layout_header(spec: HashSegmentSpec) -> bytes:
    """The header (v7: and common metadata), metadata and digest table.

    These are the bytes the signatures cover; append the signatures and
    chains with :func:`assemble_hash_segment`.

    Raises
    ------
    MdtFormatError
        Unknown version, QTI parts on v3, metadata before v6, or an
        algorithm v3/v5/v6 cannot express.
    """
    version = spec.version
    if version not in SUPPORTED_VERSIONS:
        raise MdtFormatError("version", version, "unknown MBN header version")
    if version == 3 and (spec.qti_signature_size or spec.qti_cert_chain):
        raise MdtFormatError("version", 3, "v3 has no QTI signature or chain")
    if version in (3, 5) and (spec.metadata or spec.qti_metadata):
        raise MdtFormatError("version", version, "metadata needs v6 or later")
    if version == 7 and spec.algorithm not in V7_ALGORITHM_IDS:
        raise MdtFormatError("algorithm", spec.algorithm, "not a v7 algorithm")
    sizes = _part_sizes(spec)
    values = _header_values(spec, sizes)
    head = struct.pack(f"<{len(values)}I", *values)
    if version == 7:
        head += _common_metadata(spec)
    return head + spec.qti_metadata + spec.metadata + b"".join(spec.hashes)


def _part_sizes(spec: HashSegmentSpec) -> dict[str, int]:
    return {
        "hash_size": sum(len(h) for h in spec.hashes),
        "signature_size": spec.signature_size,
        "cert_chain_size": len(spec.cert_chain),
        "qti_signature_size": spec.qti_signature_size,
        "qti_cert_chain_size": len(spec.qti_cert_chain),
        "metadata_size": len(spec.metadata),
        "qti_metadata_size": len(spec.qti_metadata),
        "common_metadata_size": V7_COMMON_METADATA_SIZE,
    }


def _header_values(spec: HashSegmentSpec, sizes: dict[str, int]) -> list[int]:
    names = _FIELDS[spec.version]
    body = sum(sizes[f] for _, f in _BODY[spec.version])
    hsize = 4 * len(names)
    # v3 records load addresses of its parts (qtestsign's update()); v5/v6
    # mark the address slots unused with all-ones.
    dest = spec.dest_addr + hsize
    known = {
        "image_id": spec.image_id,
        "version": spec.version,
        "flash_addr": 0,
        "dest_addr": dest,
        "total_size": body,
        "signature_addr": dest + sizes["hash_size"]
        if spec.version == 3
        else 0xFFFFFFFF,
        "cert_chain_addr": (
            dest + sizes["hash_size"] + sizes["signature_size"]
            if spec.version == 3
            else 0xFFFFFFFF
        ),
        **sizes,
    }
    return [known[n] & 0xFFFFFFFF for n in names]


def _common_metadata(spec: HashSegmentSpec) -> bytes:
    return struct.pack(
        "<6I", 0, 0, spec.software_id, 0, V7_ALGORITHM_IDS[spec.algorithm], 0
    )


def assemble_hash_segment(
    signed: bytes,
    spec: HashSegmentSpec,
    signature: bytes,
    qti_signature: bytes = b"",
) -> bytes:
    """The whole hash segment: ``signed`` then signatures and chains in order.

    Raises
    ------
    MdtFormatError
        A signature's length differs from the one the header records.
    """
    if len(signature) != spec.signature_size:
        raise MdtFormatError(
            "signature_size", len(signature), f"header records {spec.signature_size:#x}"
        )
    if len(qti_signature) != spec.qti_signature_size:
        raise MdtFormatError(
            "qti_signature_size",
            len(qti_signature),
            f"header records {spec.qti_signature_size:#x}",
        )
    if spec.version == 3:
        return signed + signature + spec.cert_chain
    return signed + qti_signature + spec.qti_cert_chain + signature + spec.cert_chain
