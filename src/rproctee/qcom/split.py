"""Split a single-file image into ``name.mdt`` + ``name.bNN``, and join them back.

Split layout (as Linux's ``qcom_mdt_read_metadata`` expects it): the
``.mdt`` holds the ELF header + program headers immediately followed by the
hash segment ("packed"), and every program header with file bytes gets its
own ``name.bNN`` (``b00`` the headers, then the hash segment, then each
segment).  Join writes each ``.bNN`` back at its ``p_offset``; gaps are
zero.  The round trip is byte-exact when every byte of the single file
outside all segments is zero and the file ends with its last segment;
:func:`split_image` refuses other files unless told to lose those bytes.
"""

from __future__ import annotations

from rproctee.qcom import constants as c
from rproctee.qcom.errors import MdtFileError, MdtFormatError
from rproctee.qcom.format import (
    Fetch,
    MdtImage,
    bins_are_split,
    check_header,
    fetch_segment,
    parse_image,
    read_phdrs,
)

#: Largest file :func:`join_image` builds (a hostile ``p_offset`` near 4 GiB
#: would otherwise ask for a 4 GiB buffer of zeros).
MAX_JOIN_SIZE = 512 << 20


def split_image(data: bytes, name: str, *, lossy: bool = False) -> dict[str, bytes]:
    """The files of the split form of the single-file image ``data``.

    Parameters
    ----------
    data : bytes
        A single-file image (every segment inline).
    name : str
        The ``.mdt`` file name to produce (``modem.mdt``); at least 4
        characters, as the kernel requires to derive ``.bNN`` names.
    lossy : bool
        Split even when bytes outside all segments are not zero (they are
        dropped, so joining will not give ``data`` back).

    Returns
    -------
    dict
        File name -> contents, the ``.mdt`` first.

    Raises
    ------
    MdtFormatError
        ``data`` is not a valid single-file image, the name is too short,
        or (unless ``lossy``) a non-zero byte lies outside every segment.
    """
    if len(name) < 4:
        raise MdtFormatError("name", name, "shorter than 4 characters")
    hdr = check_header(data)
    if bins_are_split(len(data), read_phdrs(data, hdr)):
        raise MdtFormatError(
            "image", name, "is already split (segments end past the file)"
        )
    image = parse_image(data, name)
    if image.phdrs[0].p_offset != 0:
        raise MdtFormatError(
            "phdr[0].p_offset",
            image.phdrs[0].p_offset,
            "is not 0: the headers segment must start the file",
        )
    if not lossy:
        _check_lossless(data, image)
    files = {name: image.header_bytes + image.segments[image.hash_index]}
    for index in sorted(image.segments):
        files[c.segment_file_name(name, index)] = image.segments[index]
    return files


def _check_lossless(data: bytes, image: MdtImage) -> None:
    import numpy as np

    lost = np.frombuffer(data, dtype=np.uint8).copy()
    end = 0
    for ph in image.phdrs:
        if ph.p_filesz:
            lost[ph.p_offset : ph.p_offset + ph.p_filesz] = 0
            end = max(end, ph.p_offset + ph.p_filesz)
    nonzero = np.flatnonzero(lost)
    if nonzero.size:
        off = int(nonzero[0])
        raise MdtFormatError(
            "byte offset",
            off,
            f"holds {data[off]:#04x} outside every segment: split/join would "
            "lose it (use lossy=True / --lossy to split anyway)",
        )
    if end != len(data):
        raise MdtFormatError(
            "file size",
            len(data),
            f"the last segment ends at {end:#x}: the trailing zero bytes would "
            "not come back on join (use lossy=True / --lossy)",
        )


def join_image(mdt: bytes, name: str, fetch: Fetch) -> bytes:
    """The single-file image of a split set (``name.mdt`` + ``name.bNN``).

    Segment 0 (headers) and the hash segment come from ``name.b00`` and the
    hash ``.bNN`` when present (they must then match the ``.mdt``'s copy),
    else from the ``.mdt``.  Every other segment's ``.bNN`` must exist with
    exactly ``p_filesz`` bytes.

    Raises
    ------
    MdtFormatError
        Bad header, a ``.bNN`` of the wrong size or disagreeing with the
        ``.mdt``, overlapping segments with different bytes, or a result
        larger than :data:`MAX_JOIN_SIZE`.
    MdtFileError
        A needed ``.bNN`` is missing.
    """
    image = parse_image(mdt, name, fetch)
    end = max(p.p_offset + p.p_filesz for p in image.phdrs if p.p_filesz)
    if end > MAX_JOIN_SIZE:
        raise MdtFormatError("joined size", end, f"larger than {MAX_JOIN_SIZE:#x}")
    out = bytearray(end)
    for index, blob in sorted(image.segments.items()):
        blob = _prefer_file(name, index, blob, image, fetch)
        off = image.phdrs[index].p_offset
        out[off : off + len(blob)] = blob
    _check_overlaps(out, image)
    joined = bytes(out)
    _same_headers(joined, image)
    return joined


def _prefer_file(
    name: str, index: int, blob: bytes, image: MdtImage, fetch: Fetch
) -> bytes:
    """For the headers and hash segment: the ``.bNN`` if it exists, checked."""
    if index != 0 and index != image.hash_index:
        return blob
    try:
        from_file = fetch_segment(name, index, len(blob), fetch)
    except MdtFileError:  # a missing .b00 or hash .bNN is fine: the .mdt has them
        return blob
    if from_file != blob:
        raise MdtFormatError(
            c.segment_file_name(name, index),
            len(from_file),
            f"differs from segment {index} in {name}",
        )
    return from_file


def _check_overlaps(out: bytearray, image: MdtImage) -> None:
    for index, blob in image.segments.items():
        off = image.phdrs[index].p_offset
        if out[off : off + len(blob)] != blob:
            raise MdtFormatError(
                f"phdr[{index}].p_offset",
                off,
                "overlaps another segment with different bytes",
            )


def _same_headers(joined: bytes, image: MdtImage) -> None:
    """The joined file's own headers read back as the ``.mdt``'s."""
    hdr = check_header(joined)
    if read_phdrs(joined, hdr) != image.phdrs:  # pragma: no cover - defensive
        raise MdtFormatError("joined headers", 0, "differ from the .mdt's")
