"""Reading Qualcomm MDT/MBN firmware: one file, or a split ``.mdt`` + ``.bNN`` set.

The format (Linux ``drivers/soc/qcom/mdt_loader.c``, 6.12; spec section 5.1):
an ELF32 file whose program header 0 is a non-LOAD entry covering the ELF
header and program headers, and one program header (found by its p_flags
type bits, not its p_type) is the *hash segment*.  Each segment may live in
its own file ``name.bNN`` (the last three characters of the ``.mdt`` name
replaced by ``b%02d``), or inline at ``p_offset`` in one ``.mbn``.

Program headers are read at ``e_phoff``, as the 6.12 stable code with
``mdt_header_valid`` does (older kernels read them right after the ELF
header; the generator here always puts them there, so both agree).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rproctee.elf import Phdr
from rproctee.qcom import constants as c
from rproctee.qcom.errors import MdtFileError, MdtFormatError
from rproctee.qcom.hashseg import HashSegment, parse_hash_segment

#: Fetch ``name`` of at most ``max_size`` bytes (a ``.bNN`` file); raise
#: :class:`MdtFileError` when it does not exist.  Returning more than
#: ``max_size`` bytes tells the caller the file is too long.
Fetch = Callable[[str, int], bytes]

_EHDR = struct.Struct("<16sHHIIIIIHHHHHH")
_EHDR_NAMES = (
    "e_ident",
    "e_type",
    "e_machine",
    "e_version",
    "e_entry",
    "e_phoff",
    "e_shoff",
    "e_flags",
    "e_ehsize",
    "e_phentsize",
    "e_phnum",
    "e_shentsize",
    "e_shnum",
    "e_shstrndx",
)


@dataclass(frozen=True)
class MdtHeader:
    """The ELF32 header of an MDT/MBN file."""

    e_ident: bytes
    e_type: int
    e_machine: int
    e_version: int
    e_entry: int
    e_phoff: int
    e_shoff: int
    e_flags: int
    e_ehsize: int
    e_phentsize: int
    e_phnum: int
    e_shentsize: int
    e_shnum: int
    e_shstrndx: int

    @classmethod
    def unpack(cls, data: bytes) -> MdtHeader:
        """From the first 52 bytes of ``data`` (caller checked the size)."""
        return cls(*_EHDR.unpack_from(data, 0))

    @property
    def phdr_end(self) -> int:
        """End offset of the program-header table."""
        return self.e_phoff + c.ELF32_PHDR_SIZE * self.e_phnum


def header_problem(data: bytes) -> tuple[str, int, str] | None:
    """The first ``mdt_header_valid`` rule ``data`` breaks, or None.

    Mirrors Linux 6.12 ``mdt_header_valid`` (spec 5.2): size at least the
    ELF32 header, ELF magic, ``e_phentsize == 32``, the program headers
    inside the file, and, unless ``e_shentsize`` and ``e_shnum`` are both 0,
    ``e_shentsize == 40`` with the section headers inside the file.  The
    kernel's saturating ``size_add``/``size_mul`` cannot wrap; Python ints
    cannot either.

    Returns
    -------
    (field, value, rule) or None
    """
    if len(data) < c.ELF32_EHDR_SIZE:
        return ("file size", len(data), "shorter than the 52-byte ELF32 header")
    hdr = MdtHeader.unpack(data)
    if hdr.e_ident[:4] != b"\x7fELF":
        return ("e_ident", int.from_bytes(hdr.e_ident[:4], "big"), "no ELF magic")
    if hdr.e_phentsize != c.ELF32_PHDR_SIZE:
        return ("e_phentsize", hdr.e_phentsize, "is not 32 (ELF32 program header)")
    if hdr.phdr_end > len(data):
        return (
            "e_phoff",
            hdr.e_phoff,
            f"{hdr.e_phnum} program headers end past the {len(data):#x}-byte file",
        )
    if hdr.e_shentsize or hdr.e_shnum:
        if hdr.e_shentsize != c.ELF32_SHDR_SIZE:
            return ("e_shentsize", hdr.e_shentsize, "is not 40 (ELF32 section header)")
        if hdr.e_shoff + c.ELF32_SHDR_SIZE * hdr.e_shnum > len(data):
            return (
                "e_shoff",
                hdr.e_shoff,
                f"{hdr.e_shnum} section headers end past the {len(data):#x}-byte file",
            )
    return None


def mdt_header_valid(data: bytes) -> bool:
    """True when ``data`` passes Linux's ``mdt_header_valid`` (see above)."""
    return header_problem(data) is None


def check_header(data: bytes) -> MdtHeader:
    """The header, after ``mdt_header_valid`` and this package's stricter rules.

    Beyond the kernel (which reads any class as ELF32): ``EI_CLASS`` must be
    1 (ELF32) and ``EI_DATA`` 1 (little-endian).

    Raises
    ------
    MdtFormatError
        Naming the first rule broken.
    """
    problem = header_problem(data)
    if problem is not None:
        raise MdtFormatError(*problem)
    hdr = MdtHeader.unpack(data)
    if hdr.e_ident[4] != 1:
        raise MdtFormatError("e_ident[EI_CLASS]", hdr.e_ident[4], "is not 1 (ELF32)")
    if hdr.e_ident[5] != 1:
        raise MdtFormatError(
            "e_ident[EI_DATA]", hdr.e_ident[5], "is not 1 (little-endian)"
        )
    return hdr


def read_phdrs(data: bytes, hdr: MdtHeader) -> tuple[Phdr, ...]:
    """The program headers at ``e_phoff`` (the caller checked they fit)."""
    off = hdr.e_phoff
    size = c.ELF32_PHDR_SIZE
    return tuple(
        Phdr.unpack(data[off + i * size : off + (i + 1) * size])
        for i in range(hdr.e_phnum)
    )


def is_hash_segment(ph: Phdr) -> bool:
    """The p_flags type bits say "hash segment"."""
    return (ph.p_flags & c.QCOM_MDT_TYPE_MASK) == c.QCOM_MDT_TYPE_HASH


def is_loadable(ph: Phdr) -> bool:
    """``mdt_phdr_valid``: PT_LOAD, not the hash segment, and ``p_memsz != 0``."""
    return ph.p_type == c.PT_LOAD and not is_hash_segment(ph) and ph.p_memsz != 0


def is_relocatable(phdrs: tuple[Phdr, ...]) -> bool:
    """Any loadable segment carries ``QCOM_MDT_RELOCATABLE``."""
    return any(is_loadable(p) and p.p_flags & c.QCOM_MDT_RELOCATABLE for p in phdrs)


def find_hash_segment(phdrs: tuple[Phdr, ...]) -> int | None:
    """Index of the first program header ``i >= 1`` typed HASH, or None."""
    for i in range(1, len(phdrs)):
        if is_hash_segment(phdrs[i]):
            return i
    return None


def bins_are_split(data_size: int, phdrs: tuple[Phdr, ...]) -> bool:
    """``qcom_mdt_bins_are_split``: some segment with file bytes ends past the file.

    Segments with ``p_filesz == 0`` are ignored, as the kernel does (the
    ``.mdt`` is not padded to cover them).
    """
    return any(
        p.p_filesz and (p.p_offset > data_size or p.p_offset + p.p_filesz > data_size)
        for p in phdrs
    )


@dataclass(frozen=True)
class MdtImage:
    """A whole firmware: header file, program headers and every segment's bytes.

    Attributes
    ----------
    name : str
        The file name the segments are derived from (``modem.mdt``).
    data : bytes
        Contents of that file.
    header : MdtHeader
    phdrs : tuple of Phdr
    hash_index : int
        Index of the hash segment.
    split : bool
        Segments come from ``.bNN`` files (``qcom_mdt_bins_are_split``).
    segments : dict
        File bytes of every program header with ``p_filesz > 0``.
    sources : dict
        Where each of those came from: ``"inline"``, ``"packed"`` (hash
        right after the header in a split ``.mdt``) or a ``.bNN`` name.
    hash_segment : HashSegment
    """

    name: str
    data: bytes = field(repr=False)
    header: MdtHeader
    phdrs: tuple[Phdr, ...]
    hash_index: int
    split: bool
    segments: dict[int, bytes] = field(repr=False)
    sources: dict[int, str]
    hash_segment: HashSegment

    @property
    def header_bytes(self) -> bytes:
        """The ELF header + program headers (program header 0's bytes)."""
        return self.segments[0]

    @property
    def relocatable(self) -> bool:
        """Any loadable segment is relocatable."""
        return is_relocatable(self.phdrs)

    @property
    def metadata(self) -> bytes:
        """What ``qcom_mdt_read_metadata`` hands to TrustZone."""
        return self.header_bytes + self.segments[self.hash_index]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the image (no segment bytes)."""
        return {
            "name": self.name,
            "split": self.split,
            "relocatable": self.relocatable,
            "e_phnum": self.header.e_phnum,
            "e_machine": self.header.e_machine,
            "e_entry": self.header.e_entry,
            "hash_index": self.hash_index,
            "segments": [
                {
                    **_phdr_dict(p),
                    "index": i,
                    "loadable": is_loadable(p),
                    "hash": i == self.hash_index,
                    "source": self.sources.get(i),
                }
                for i, p in enumerate(self.phdrs)
            ],
            "hash_segment": self.hash_segment.to_dict(),
        }


def _phdr_dict(ph: Phdr) -> dict[str, int]:
    return dict(ph.__dict__)


def parse_image(data: bytes, name: str, fetch: Fetch | None = None) -> MdtImage:
    """Read an image from its ``.mdt``/``.mbn`` bytes (and ``.bNN`` via ``fetch``).

    Parameters
    ----------
    data : bytes
        The ``.mdt`` or ``.mbn`` file.
    name : str
        Its file name; split segment files are named from it.
    fetch : callable, optional
        Reads a ``.bNN`` file (see :data:`Fetch`).  Without it, a split
        image is an error.

    Returns
    -------
    MdtImage

    Raises
    ------
    MdtFormatError
        Header rules (:func:`check_header`), fewer than 2 program headers,
        program header 0 a PT_LOAD, no hash segment, a header segment not
        covering the program headers, ``p_filesz > p_memsz`` on a loadable
        segment, a segment past the end of a single file, a ``.bNN`` of the
        wrong size, or a malformed hash segment.
    MdtFileError
        A ``.bNN`` file is missing.
    """
    data = bytes(data)
    hdr = check_header(data)
    phdrs = read_phdrs(data, hdr)
    hash_index = _check_layout(data, hdr, phdrs)
    split = bins_are_split(len(data), phdrs)
    segments, sources = _gather_segments(data, name, phdrs, hash_index, split, fetch)
    hashseg = parse_hash_segment(segments[hash_index], hdr.e_phnum)
    return MdtImage(
        name, data, hdr, phdrs, hash_index, split, segments, sources, hashseg
    )


def _check_layout(data: bytes, hdr: MdtHeader, phdrs: tuple[Phdr, ...]) -> int:
    if hdr.e_phnum < 2:
        raise MdtFormatError(
            "e_phnum", hdr.e_phnum, "fewer than 2 (header and hash segments)"
        )
    if phdrs[0].p_type == c.PT_LOAD:
        raise MdtFormatError(
            "phdr[0].p_type",
            phdrs[0].p_type,
            "is PT_LOAD; program header 0 must describe the headers",
        )
    hash_index = find_hash_segment(phdrs)
    if hash_index is None:
        raise MdtFormatError(
            "p_flags",
            0,
            "no program header has the HASH type bits",
            message="no hash segment found (no p_flags type == HASH)",
        )
    ehdr_size = phdrs[0].p_filesz
    if ehdr_size < hdr.phdr_end or ehdr_size > len(data):
        raise MdtFormatError(
            "phdr[0].p_filesz",
            ehdr_size,
            f"must cover the headers ({hdr.phdr_end:#x} bytes) and fit in the "
            f"{len(data):#x}-byte file",
        )
    for i, ph in enumerate(phdrs):
        if is_loadable(ph) and ph.p_filesz > ph.p_memsz:
            raise MdtFormatError(
                f"phdr[{i}].p_filesz",
                ph.p_filesz,
                f"larger than p_memsz {ph.p_memsz:#x}",
            )
    return hash_index


def _gather_segments(
    data: bytes,
    name: str,
    phdrs: tuple[Phdr, ...],
    hash_index: int,
    split: bool,
    fetch: Fetch | None,
) -> tuple[dict[int, bytes], dict[int, str]]:
    segments = {0: data[: phdrs[0].p_filesz]}
    sources = {0: "inline"}
    for i, ph in enumerate(phdrs):
        if i == 0 or not ph.p_filesz:
            continue
        if i == hash_index:
            segments[i], sources[i] = _hash_bytes(data, name, phdrs, i, fetch)
        elif not split:
            segments[i], sources[i] = _inline(data, i, ph), "inline"
        else:
            segments[i] = fetch_segment(name, i, ph.p_filesz, fetch)
            sources[i] = c.segment_file_name(name, i)
    if hash_index not in segments:
        raise MdtFormatError(
            f"phdr[{hash_index}].p_filesz", 0, "the hash segment is empty"
        )
    return segments, sources


def _hash_bytes(
    data: bytes, name: str, phdrs: tuple[Phdr, ...], index: int, fetch: Fetch | None
) -> tuple[bytes, str]:
    """The hash segment, from the first source ``qcom_mdt_read_metadata`` tries."""
    ehdr_size, size = phdrs[0].p_filesz, phdrs[index].p_filesz
    if ehdr_size + size == len(data):
        return data[ehdr_size:], "packed"
    off = phdrs[index].p_offset
    if off + size <= len(data):
        return data[off : off + size], "inline"
    return fetch_segment(name, index, size, fetch), c.segment_file_name(name, index)


def _inline(data: bytes, index: int, ph: Phdr) -> bytes:
    if ph.p_offset + ph.p_filesz > len(data):  # unreachable when not split
        raise MdtFormatError(
            f"phdr[{index}].p_offset", ph.p_offset, "segment would be truncated"
        )
    return data[ph.p_offset : ph.p_offset + ph.p_filesz]


def fetch_segment(name: str, index: int, size: int, fetch: Fetch | None) -> bytes:
    """Read ``name.bNN`` for segment ``index``, which must be exactly ``size`` bytes.

    Raises
    ------
    MdtFileError
        No ``fetch`` given, or the file is missing.
    MdtFormatError
        The file is shorter or longer than ``p_filesz``.
    """
    seg_name = c.segment_file_name(name, index)
    if fetch is None:
        raise MdtFileError(seg_name, "split image: segment file not available")
    blob = fetch(seg_name, size)
    if len(blob) != size:
        rule = "shorter" if len(blob) < size else "longer"
        raise MdtFormatError(
            f"{seg_name} size",
            len(blob),
            f"{rule} than segment {index}'s p_filesz {size:#x}",
            message=f"{seg_name}: {len(blob):#x} bytes, {rule} than segment "
            f"{index}'s p_filesz {size:#x} (truncated or wrong file)",
        )
    return blob


def directory_fetch(folder: Path) -> Fetch:
    """A :data:`Fetch` reading ``.bNN`` files from ``folder``.

    Reads at most ``max_size + 1`` bytes, so an oversized file is detected
    without reading it whole.
    """

    def fetch(seg_name: str, max_size: int) -> bytes:
        path = folder / seg_name
        try:
            with open(path, "rb") as handle:
                return handle.read(max_size + 1)
        except FileNotFoundError as exc:
            raise MdtFileError(str(path), "missing segment file") from exc
        except OSError as exc:
            raise MdtFileError(str(path), exc.strerror or str(exc)) from exc

    return fetch


def open_image(path: str | Path) -> MdtImage:
    """Read ``path`` (``.mbn``, or ``.mdt`` with its ``.bNN`` beside it).

    Raises
    ------
    MdtFileError
        ``path`` or a needed ``.bNN`` cannot be read.
    MdtFormatError
        See :func:`parse_image`.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MdtFileError(str(path), exc.strerror or str(exc)) from exc
    return parse_image(data, path.name, directory_fetch(path.parent))
