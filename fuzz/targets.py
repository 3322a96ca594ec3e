"""Fuzz targets: bytes in, and only the documented error may come out.

Each target feeds one reader of hostile input and lets through only the
error type that reader documents (every one derives from
:class:`rproctee.errors.RprocError`); anything else (``IndexError``,
``struct.error``, ``TypeError``, a ``MemoryError`` from a size never
checked, a crash of a compiled kernel) is a finding, and the input that
caused it is kept under ``tests/security/regressions/<target>/`` and replayed
by ``tests/security/test_regressions.py``.

Targets
-------
``image``     the signed-image parser, :func:`rproctee.image.parse_image`
``elf``       the ELF scanner, :func:`rproctee.elf.scan_elf` (the kernels'
              ``scan_headers``), then every segment, section and name lookup
``rsctable``  the one resource-table parser,
              :func:`rproctee.rsctable.parse_resource_table`, and the image
              tool's display of it
``dtb``       the device-tree reader, :func:`rproctee.platform.devicetree.
              parse_dtb`, then the platform it describes
``toml``      the TOML profile reader,
              :func:`rproctee.platform.profile.profile_from_dict`
``ta``        the whole secure world: the input is an ELF, signed (hash table
              made from it), and loaded by the TA under both policies with the
              invariants of ``tests/security/oracles.py`` checked
"""

from __future__ import annotations

import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "tests") not in sys.path:  # the ta target uses the test oracles
    sys.path.insert(0, str(REPO / "tests"))

from rproctee.errors import RprocError  # noqa: E402

Target = Callable[[bytes], None]


def image(data: bytes) -> None:
    """Signed-image parser: header, TLV walk, hash table, image table."""
    from rproctee.image import parse_image

    try:
        parsed = parse_image(data)
    except RprocError:
        return
    for elf in parsed.images:
        bytes(elf.data[:64])
    parsed.digest()


def elf(data: bytes) -> None:
    """ELF scanner and its accessors (every offset from the file is checked)."""
    from rproctee.elf import scan_elf

    try:
        scan = scan_elf(data)
    except RprocError:
        return
    for i in range(min(scan.phnum, 256)):
        try:
            scan.segment_bytes(i)
        except RprocError:
            pass
    for i in range(min(scan.shnum, 256)):
        try:
            scan.section_name(i)
            scan.section_bytes(i)
        except RprocError:
            pass
    try:
        scan.find_section(".resource_table")
    except RprocError:
        pass


def rsctable(data: bytes) -> None:
    """The validating resource-table parser and the display built on it."""
    from rproctee.image.rsctable import parse_rsc_table
    from rproctee.rsctable import parse_resource_table

    for has_iommu in (True, False):
        try:
            parse_resource_table(data, has_iommu=has_iommu)
        except RprocError:
            pass
    try:
        parse_rsc_table(memoryview(data))
    except RprocError:
        pass


def dtb(data: bytes) -> None:
    """DTB reader (libfdt behind a full structure check), then the platform."""
    from rproctee.platform.board import from_devicetree
    from rproctee.platform.devicetree import parse_dtb

    try:
        tree = parse_dtb(data, "<fuzz>")
        from_devicetree(tree, None)
    except RprocError:
        return


_PROFILE_DIR = Path(tempfile.gettempdir()) / "rproctee-fuzz-profile"


def toml(data: bytes) -> None:
    """TOML profile reader (the schema, after TOML itself parsed the text).

    A profile's ``key =`` is read relative to the profile, here an empty
    directory of its own.
    """
    from rproctee.platform.profile import profile_from_dict

    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return  # not TOML: nothing of ours ran
    _PROFILE_DIR.mkdir(exist_ok=True)
    try:
        profile_from_dict(doc, _PROFILE_DIR / "fuzz.toml")
    except RprocError:
        return


def ta(data: bytes) -> None:
    """LOAD_FW of a validly signed image around the ELF ``data``, both
    policies, every invariant (an AssertionError is a finding too)."""
    from security.images import BASES
    from security.oracles import (
        check_answer,
        check_exact_content,
        check_strict_failure,
        check_writes_bounded,
        run_load,
    )
    from tee.fuzz_helpers import resign_elf

    img = bytes(resign_elf(BASES[0], data))
    for policy in ("optee", "strict"):
        run = run_load(policy, img)
        check_answer(run)
        check_writes_bounded(run)
        if policy == "strict":
            if run.answer.ok:
                check_exact_content(run.world, img)
            else:
                check_strict_failure(run)


TARGETS: dict[str, Target] = {
    "image": image,
    "elf": elf,
    "rsctable": rsctable,
    "dtb": dtb,
    "toml": toml,
    "ta": ta,
}
#: Modules a coverage-guided engine instruments for each target.
INSTRUMENT = {
    "image": ("rproctee.image",),
    "elf": ("rproctee.elf", "rproctee._reference.elfscan"),
    "rsctable": ("rproctee.rsctable", "rproctee.image.rsctable"),
    "dtb": ("rproctee.platform",),
    "toml": ("rproctee.platform",),
    "ta": ("rproctee.tee",),
}
