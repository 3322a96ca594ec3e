"""Device-tree reading: a DTB through libfdt, a DTS through a real DTS parser.

Both readers produce the same small in-memory tree (:class:`DeviceTree` of
:class:`DtNode`), whose property values are the raw big-endian bytes a DTB
holds, so everything built on top of it (the remote-processor memory map at
the end of this module) gives identical answers whatever the input format.

* ``.dtb``: parsed with ``pylibfdt``, the Python binding of the real libfdt.
* ``.dts``: parsed with Zephyr's ``dtlib`` (PyPI package ``devicetree``), which
  handles labels, ``&label`` and ``&{/path}`` references, ``/delete-node/``,
  ``/delete-property/``, ``/bits/``, ``/incbin/`` and C-style cell expressions.
  When that package is missing, ``dtc`` is used if it is on ``PATH``.
  Sources still holding ``#include`` must be run through the C preprocessor
  first (as the kernel build does).
"""

from __future__ import annotations

import fnmatch
import importlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import libfdt

from rproctee.errors import RprocError

FDT_MAGIC = 0xD00DFEED
_CPP_LINE = re.compile(rb"^[ \t]*#[ \t]*(include|define|if|ifdef|ifndef)\b", re.M)


class DeviceTreeError(RprocError, ValueError):
    """A device tree cannot be read, or lacks what a remote processor needs.

    The message names the file, the node path and the property concerned.
    """


@dataclass(eq=False)
class DtNode:
    """One node: its name, full path, raw property bytes, children and labels."""

    name: str
    path: str
    parent: DtNode | None = None
    props: dict[str, bytes] = field(default_factory=dict)
    children: list[DtNode] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def add_child(self, name: str) -> DtNode:
        """Create, attach and return a child node called ``name``."""
        path = f"/{name}" if self.path == "/" else f"{self.path}/{name}"
        child = DtNode(name=name, path=path, parent=self)
        self.children.append(child)
        return child

    @property
    def base_name(self) -> str:
        """The node name without its ``@unit-address``."""
        return self.name.split("@", 1)[0]

    def strings(self, prop: str) -> list[str]:
        """Decode a string-list property (empty list when absent)."""
        raw = self.props.get(prop)
        if not raw:
            return []
        return [s.decode("utf-8", "replace") for s in raw.rstrip(b"\0").split(b"\0")]

    def iter_tree(self) -> Iterator[DtNode]:
        """This node, then every descendant, depth first in source order."""
        yield self
        for child in self.children:
            yield from child.iter_tree()


@dataclass(eq=False)
class DeviceTree:
    """A whole tree with its phandle, label and path indexes."""

    root: DtNode
    source: str
    _phandles: dict[int, DtNode] = field(init=False, default_factory=dict)
    _labels: dict[str, DtNode] = field(init=False, default_factory=dict)
    _paths: dict[str, DtNode] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for node in self.root.iter_tree():
            self._paths[node.path] = node
            for label in node.labels:
                self._labels[label] = node
            for prop in ("phandle", "linux,phandle"):
                raw = node.props.get(prop)
                if raw is not None and len(raw) == 4:
                    self._phandles[int.from_bytes(raw, "big")] = node
        self._index_symbols()

    def _index_symbols(self) -> None:
        symbols = self._paths.get("/__symbols__")
        if symbols is None:
            return
        for label in symbols.props:
            target = self._paths.get(symbols.strings(label)[0] if label else "")
            if target is not None and label not in self._labels:
                self._labels[label] = target

    def nodes(self) -> Iterator[DtNode]:
        """Every node, depth first."""
        return self.root.iter_tree()

    def node_at(self, path: str) -> DtNode | None:
        """The node at an absolute path, or None."""
        return self._paths.get(path.rstrip("/") or "/")

    def by_label(self, label: str) -> DtNode | None:
        """The node carrying a DTS label (or a ``/__symbols__`` entry), or None."""
        return self._labels.get(label)

    def by_phandle(self, phandle: int) -> DtNode | None:
        """The node whose ``phandle`` property equals ``phandle``, or None."""
        return self._phandles.get(phandle)

    def alias(self, name: str) -> DtNode | None:
        """The node an ``/aliases`` entry points to, or None."""
        aliases = self._paths.get("/aliases")
        if aliases is None or name not in aliases.props:
            return None
        return self.node_at(aliases.strings(name)[0])


# --------------------------------------------------------------------------
# DTB (libfdt)


def parse_dtb(blob: bytes, source: str = "<dtb>") -> DeviceTree:
    """Parse a flattened device tree blob with libfdt.

    Parameters
    ----------
    blob : bytes
        The whole DTB.
    source : str
        Name used in error messages and kept in the result.

    Returns
    -------
    DeviceTree
        The tree; labels come from ``/__symbols__`` when the blob has one.

    Raises
    ------
    DeviceTreeError
        Bad magic, truncated or structurally invalid blob.
    """
    if not is_dtb(blob):
        raise DeviceTreeError(f"{source}: not a DTB (magic is not 0xd00dfeed)")
    _check_dtb_header(blob, source)
    data = bytearray(blob[: _u32(blob, 4)])
    # libfdt's accessors trust the structure; fdt_check_full checks it all.
    err = libfdt.fdt_check_full(data, len(data))
    if err:
        raise DeviceTreeError(f"{source}: invalid DTB: {libfdt.fdt_strerror(err)}")
    try:
        fdt = libfdt.Fdt(bytes(data))
        root = DtNode(name="", path="/")
        _copy_fdt_node(fdt, 0, root)
    except (libfdt.FdtException, SystemError, UnicodeDecodeError) as exc:
        raise DeviceTreeError(f"{source}: invalid DTB: {exc}") from exc
    return DeviceTree(root=root, source=source)


def _u32(blob: bytes, offset: int) -> int:
    return int.from_bytes(blob[offset : offset + 4], "big")


def _check_dtb_header(blob: bytes, source: str) -> None:
    """Bounds libfdt relies on but does not check against the Python buffer."""
    if len(blob) < 40:
        raise DeviceTreeError(f"{source}: invalid DTB: {len(blob)}-byte header")
    total = _u32(blob, 4)
    blocks = {
        "structure block": (_u32(blob, 8), _u32(blob, 36)),
        "strings block": (_u32(blob, 12), _u32(blob, 32)),
    }
    if total > len(blob):
        raise DeviceTreeError(
            f"{source}: invalid DTB: totalsize {total:#x} exceeds the "
            f"{len(blob):#x}-byte file (truncated?)"
        )
    if _u32(blob, 20) < 17:
        raise DeviceTreeError(f"{source}: invalid DTB: version {_u32(blob, 20)} < 17")
    for name, (off, size) in blocks.items():
        if off > total or size > total - off:
            raise DeviceTreeError(
                f"{source}: invalid DTB: {name} [{off:#x}, +{size:#x}) exceeds "
                f"totalsize {total:#x}"
            )


def _copy_fdt_node(fdt: Any, offset: int, node: DtNode) -> None:
    prop = fdt.first_property_offset(offset, libfdt.QUIET_NOTFOUND)
    while prop >= 0:
        value = fdt.get_property_by_offset(prop)
        node.props[str(value.name)] = bytes(value)
        prop = fdt.next_property_offset(prop, libfdt.QUIET_NOTFOUND)
    sub = fdt.first_subnode(offset, libfdt.QUIET_NOTFOUND)
    while sub >= 0:
        _copy_fdt_node(fdt, sub, node.add_child(str(fdt.get_name(sub))))
        sub = fdt.next_subnode(sub, libfdt.QUIET_NOTFOUND)


# --------------------------------------------------------------------------
# DTS (dtlib, or dtc as a fallback)


def parse_dts(path: str | Path) -> DeviceTree:
    """Parse a device-tree source file.

    Parameters
    ----------
    path : str or Path
        A ``.dts`` file, already run through the C preprocessor if it used
        ``#include``/``#define`` (``/include/`` is fine).

    Returns
    -------
    DeviceTree
        The tree, with the source's labels.

    Raises
    ------
    DeviceTreeError
        Syntax errors (with line and column), unresolved references,
        un-preprocessed sources, or no DTS parser available.
    """
    path = Path(path)
    text = _read_file(path)
    match = _CPP_LINE.search(text)
    if match is not None:
        line = text.count(b"\n", 0, match.start()) + 1
        raise DeviceTreeError(
            f"{path}: line {line} is a C "
            f"preprocessor directive ({match.group(0).strip().decode()}); run the "
            "source through cpp first (cpp -nostdinc -undef -x assembler-with-cpp "
            "-I include/ ...) or pass the compiled .dtb"
        )
    dtlib = _dtlib_module()
    if dtlib is not None:
        return _parse_with_dtlib(dtlib, path)
    return _parse_with_dtc(path)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DeviceTreeError(f"{path}: cannot read: {exc.strerror}") from exc


def _dtlib_module() -> Any:
    try:
        return importlib.import_module("devicetree.dtlib")
    except ImportError:
        return None


def _parse_with_dtlib(dtlib: Any, path: Path) -> DeviceTree:
    try:
        dt = dtlib.DT(str(path))
    except dtlib.DTError as exc:
        raise DeviceTreeError(f"{path}: {exc}") from exc
    root = DtNode(name="", path="/")
    _copy_dtlib_node(dt.root, root)
    return DeviceTree(root=root, source=str(path))


def _copy_dtlib_node(src: Any, node: DtNode) -> None:
    node.labels = list(src.labels)
    for name, prop in src.props.items():
        node.props[str(name)] = bytes(prop.value)
    for name, child in src.nodes.items():
        _copy_dtlib_node(child, node.add_child(str(name)))


def _parse_with_dtc(path: Path) -> DeviceTree:
    dtc = shutil.which("dtc")
    if dtc is None:
        raise DeviceTreeError(
            f"{path}: cannot parse DTS: install the 'devicetree' Python package "
            "(Zephyr's dtlib) or put dtc on PATH, or pass the compiled .dtb"
        )
    cmd = [dtc, "-q", "-I", "dts", "-O", "dtb", "-@", str(path)]
    proc = subprocess.run(cmd, capture_output=True, check=False, timeout=120)
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip()
        raise DeviceTreeError(f"{path}: dtc failed: {detail}")
    return parse_dtb(proc.stdout, source=str(path))


def read_tree(path: str | Path) -> DeviceTree:
    """Read a device tree from a file, DTB or DTS, chosen by content.

    Parameters
    ----------
    path : str or Path
        A ``.dtb`` (recognised by its magic whatever the suffix) or a DTS.

    Returns
    -------
    DeviceTree
    """
    path = Path(path)
    data = _read_file(path)
    if len(data) >= 4 and int.from_bytes(data[:4], "big") == FDT_MAGIC:
        return parse_dtb(data, source=str(path))
    if path.suffix.lower() == ".dtb":
        raise DeviceTreeError(f"{path}: not a DTB (magic is not 0xd00dfeed)")
    return parse_dts(path)


def is_dtb(data: bytes) -> bool:
    """Whether ``data`` starts with the flattened-device-tree magic."""
    return len(data) >= 4 and int.from_bytes(data[:4], "big") == FDT_MAGIC


# --------------------------------------------------------------------------
# Remote processors and their memory regions

#: ``compatible`` values of the upstream remoteproc bindings this model knows
#: by name (exact), then patterns (fnmatch) for their relatives.
RPROC_BINDINGS: tuple[str, ...] = (
    "st,stm32mp1-m4",
    "st,stm32mp1-m4-tee",
    "st,stm32mp2-m33",
    "st,stm32mp2-m33-tee",
    "st,stm32mp2-m0",
    "ti,j721e-r5f",
    "ti,am64-r5f",
    "ti,j721e-c66-dsp",
    "ti,j721e-c71-dsp",
    "fsl,imx8mp-cm7",
    "fsl,imx93-cm33",
)
RPROC_COMPATIBLES: tuple[str, ...] = RPROC_BINDINGS + (
    "st,stm32mp2-m33*",
    "st,stm32mp2-m0*",
    "fsl,imx*-cm*",
    "fsl,imx*-dsp*",
    "fsl,imx*-hifi*",
    "ti,*-r5f",
    "ti,*-dsp",
    "ti,*-m4f*",
    "ti,*-ipu",
    "ti,*-wkup-m3",
    "ti,*-pru",
    "xlnx,*-r5f",
    "amd,*-r5f",
    "mediatek,*-scp*",
    "qcom,*-pas",
    "qcom,*-pil",
    "renesas,*-cr7",
    "amlogic,*-ao-arc",
    "*rproc*",
    "*remoteproc*",
)

#: Firewalls and buses: they carry ``memory-region`` (the memories they
#: protect, e.g. STM32MP2's RISAF) but are never processors.
NOT_PROCESSORS: tuple[str, ...] = (
    "*risaf*",
    "*rifsc*",
    "*etzpc*",
    "*firewall*",
    "*tzc*",
    "*-bus",
    "simple-bus",
    "simple-mfd",
    "syscon",
)
_ENABLED = ("okay", "ok")
_U64 = 1 << 64


@dataclass(frozen=True)
class DtRegion:
    """One memory region of a remote processor read from a device tree.

    ``pa`` and ``size`` come from the reserved-memory node's ``reg``; ``da`` is
    ``pa`` seen through the buses' ``dma-ranges``; ``translation`` says how.
    """

    name: str
    node: str
    pa: int
    da: int
    size: int
    translation: str
    #: ``"reserved-memory"`` (a ``memory-region`` target: a Linux carveout) or
    #: ``"internal"`` (the processor's own ``reg`` memory, e.g. a TCM).
    kind: str = "reserved-memory"


@dataclass(frozen=True)
class DtPlatform:
    """What a device tree says about one remote processor.

    ``machines`` are the ``e_machine`` values its firmware is built for
    (:func:`expected_machines`), empty when the compatible does not say.
    """

    source: str
    node: str
    compatible: tuple[str, ...]
    model: str | None
    regions: tuple[DtRegion, ...]
    processor_ids: tuple[int, ...]
    notes: tuple[str, ...]
    machines: tuple[int, ...] = ()


def is_enabled(node: DtNode) -> bool:
    """Whether ``node`` and all its ancestors have ``status`` okay (or none)."""
    cur: DtNode | None = node
    while cur is not None:
        status = cur.strings("status")
        if status and status[0] not in _ENABLED:
            return False
        cur = cur.parent
    return True


def _status_text(node: DtNode) -> str:
    cur: DtNode | None = node
    while cur is not None:
        status = cur.strings("status")
        if status and status[0] not in _ENABLED:
            where = "" if cur is node else f" (inherited from {cur.path})"
            return f'status = "{status[0]}"{where}'
        cur = cur.parent
    return 'status = "okay"'


def _matches(node: DtNode, patterns: tuple[str, ...]) -> bool:
    return any(
        fnmatch.fnmatchcase(compat, pattern)
        for compat in node.strings("compatible")
        for pattern in patterns
    )


def is_firewall_or_bus(node: DtNode) -> bool:
    """Whether ``node`` is a firewall or bus (:data:`NOT_PROCESSORS`), which
    may list ``memory-region`` but is never a processor."""
    return _matches(node, NOT_PROCESSORS) or "#access-controller-cells" in node.props


def is_remoteproc(node: DtNode) -> bool:
    """Whether a ``compatible`` entry of ``node`` matches :data:`RPROC_COMPATIBLES`
    (and the node is not a firewall or bus)."""
    return _matches(node, RPROC_COMPATIBLES) and not is_firewall_or_bus(node)


def _has_memories(node: DtNode) -> bool:
    return "memory-region" in node.props or internal_kind(node) is not None


def find_remoteprocs(tree: DeviceTree) -> list[DtNode]:
    """Remote-processor nodes: a remoteproc compatible plus memories (a
    ``memory-region``, or the node's own ``reg`` memories such as TI K3 TCMs).

    Parameters
    ----------
    tree : DeviceTree

    Returns
    -------
    list of DtNode
        In tree order, enabled or not; never a firewall or bus node.
    """
    return [n for n in tree.nodes() if is_remoteproc(n) and _has_memories(n)]


def describe_node(node: DtNode) -> str:
    """``path (compatible "...", status ..., label ...)`` for candidate lists."""
    compat = ", ".join(f'"{c}"' for c in node.strings("compatible")) or "none"
    labels = f", label {', '.join(node.labels)}" if node.labels else ""
    return f"{node.path} (compatible {compat}, {_status_text(node)}{labels})"


def resolve_node(tree: DeviceTree, ref: str) -> DtNode | None:
    """Find a node by absolute path, label (``&label`` or ``label``), alias or name.

    A bare name matches a node's full name (``m4@10000000``) or its name without
    unit address (``m4``) when exactly one node has it, or when exactly one of
    the nodes that have it is a remote processor. A ``&label`` also works on
    a ``.dtb`` without ``/__symbols__`` when a node has that name.
    """
    ref = ref.strip()
    if ref.startswith("/"):
        return tree.node_at(ref)
    label = ref[1:] if ref.startswith("&") else ref
    found = tree.by_label(label) or tree.alias(label)
    if found is not None:
        return found
    named = [n for n in tree.nodes() if label in (n.name, n.base_name)]
    if len(named) > 1:
        named = [n for n in named if is_remoteproc(n)]
    return named[0] if len(named) == 1 else None


def select_remoteproc(tree: DeviceTree, ref: str | None = None) -> DtNode:
    """Choose the remote-processor node, by ``ref`` or automatically.

    Parameters
    ----------
    tree : DeviceTree
    ref : str or None
        Path, label, alias or node name (``--node``). None: the single enabled
        candidate of :func:`find_remoteprocs`.

    Returns
    -------
    DtNode

    Raises
    ------
    DeviceTreeError
        ``ref`` names no node or a node without ``memory-region``; or, when
        choosing automatically, there is no candidate, several enabled ones,
        or only disabled ones. The message lists the candidates.
    """
    candidates = find_remoteprocs(tree)
    if ref is not None:
        return _select_by_ref(tree, ref, candidates)
    enabled = [n for n in candidates if is_enabled(n)]
    if len(enabled) == 1:
        return enabled[0]
    if len(enabled) > 1:
        raise DeviceTreeError(
            f"{tree.source}: several remote-processor nodes; choose one with "
            f"--node PATH_OR_LABEL:{_listing(enabled)}"
        )
    if candidates:
        raise DeviceTreeError(
            f"{tree.source}: every remote-processor node is disabled; pass "
            f"--node PATH_OR_LABEL to read one anyway:{_listing(candidates)}"
        )
    raise DeviceTreeError(_no_candidate_message(tree))


def _select_by_ref(tree: DeviceTree, ref: str, candidates: list[DtNode]) -> DtNode:
    node = resolve_node(tree, ref)
    if node is None:
        hint = _listing(candidates) if candidates else " (none found)"
        labels = ""
        if ref.startswith("&") and tree.node_at("/__symbols__") is None:
            labels = (
                " (this tree has no /__symbols__, so labels are unknown: build "
                "the .dtb with dtc -@, or give the path or node name)"
            )
        raise DeviceTreeError(
            f"{tree.source}: --node '{ref}' matches no node{labels} (give a path, "
            f"a label or a unique node name); remote-processor nodes:{hint}"
        )
    if is_firewall_or_bus(node):
        compat = ", ".join(node.strings("compatible")) or "no compatible"
        raise DeviceTreeError(
            f"{tree.source}: node {node.path} ({compat}) is a firewall or bus, "
            f"not a processor; remote-processor nodes:"
            + (_listing(candidates) if candidates else " (none found)")
        )
    if not _has_memories(node):
        raise DeviceTreeError(
            f"{tree.source}: node {node.path} has no 'memory-region' property, "
            "so it names no firmware memory"
        )
    return node


def _listing(nodes: list[DtNode]) -> str:
    return "".join(f"\n  {describe_node(n)}" for n in nodes)


def _no_candidate_message(tree: DeviceTree) -> str:
    others = [
        n
        for n in tree.nodes()
        if "memory-region" in n.props and not is_firewall_or_bus(n)
    ]
    msg = (
        f"{tree.source}: no remote-processor node (a node with 'memory-region' "
        'and a remoteproc compatible such as "st,stm32mp2-m33", '
        '"fsl,imx93-cm33" or "ti,j721e-r5f"); describe the board by hand: '
        f"rproctee platform profile {tree.source} > board.toml lists its "
        "reserved memories, keep the ones the processor uses"
    )
    if others:
        msg += "; nodes with 'memory-region' (pick one with --node):" + _listing(others)
    return msg


def read_cells(node: DtNode, prop: str) -> list[int]:
    """A property as big-endian 32-bit cells.

    Raises
    ------
    DeviceTreeError
        The length is not a multiple of 4.
    """
    raw = node.props.get(prop, b"")
    if len(raw) % 4:
        raise DeviceTreeError(
            f"node {node.path}: property '{prop}' is {len(raw)} bytes, not a "
            "whole number of 32-bit cells"
        )
    return [int.from_bytes(raw[i : i + 4], "big") for i in range(0, len(raw), 4)]


def cell_counts(bus: DtNode) -> tuple[int, int]:
    """``(#address-cells, #size-cells)`` that ``bus`` gives its children.

    Absent properties take the devicetree specification's defaults, 2 and 1
    (libfdt's ``fdt_address_cells``/``fdt_size_cells`` do the same).
    """
    return _one_cell_prop(bus, "#address-cells", 2), _one_cell_prop(
        bus, "#size-cells", 1
    )


def _one_cell_prop(node: DtNode, prop: str, default: int) -> int:
    if prop not in node.props:
        return default
    cells = read_cells(node, prop)
    if len(cells) != 1 or cells[0] > 4:
        raise DeviceTreeError(
            f"node {node.path}: '{prop}' = {cells} is not one cell of 0..4"
        )
    return cells[0]


def split_entries(
    node: DtNode, prop: str, widths: tuple[int, ...]
) -> list[tuple[int, ...]]:
    """Split a property into entries of ``widths`` cells each, joined as ints.

    Raises
    ------
    DeviceTreeError
        The cell count is not a multiple of ``sum(widths)``.
    """
    cells = read_cells(node, prop)
    step = sum(widths)
    if step == 0 or len(cells) % step:
        shape = "+".join(str(w) for w in widths)
        raise DeviceTreeError(
            f"node {node.path}: '{prop}' has {len(cells)} cells, not a multiple "
            f"of {step} ({shape} cells per entry from #address-cells/#size-cells)"
        )
    entries = []
    for start in range(0, len(cells), step):
        entry, pos = [], start
        for width in widths:
            entry.append(_join_cells(cells[pos : pos + width]))
            pos += width
        entries.append(tuple(entry))
    return entries


def _join_cells(cells: list[int]) -> int:
    value = 0
    for cell in cells:
        value = (value << 32) | cell
    return value


def reg_entries(node: DtNode) -> list[tuple[int, int]]:
    """``(address, size)`` pairs of ``reg``, sized by the parent's cell counts."""
    if node.parent is None:
        raise DeviceTreeError("the root node has no 'reg' to translate")
    addr_cells, size_cells = cell_counts(node.parent)
    return [(e[0], e[1]) for e in split_entries(node, "reg", (addr_cells, size_cells))]


def dma_ranges(bus: DtNode) -> list[tuple[int, int, int]] | None:
    """``(child address, parent address, length)`` triples of ``dma-ranges``.

    Returns None when the property is absent and ``[]`` when it is empty (both
    mean identity).
    """
    if "dma-ranges" not in bus.props:
        return None
    child_cells, size_cells = cell_counts(bus)
    parent_cells = cell_counts(bus.parent)[0] if bus.parent is not None else 2
    widths = (child_cells, parent_cells, size_cells)
    return [(e[0], e[1], e[2]) for e in split_entries(bus, "dma-ranges", widths)]


def memory_region_targets(tree: DeviceTree, rproc: DtNode) -> list[DtNode]:
    """The nodes ``memory-region`` points to, in order.

    Raises
    ------
    DeviceTreeError
        Empty property, or a phandle that no node carries.
    """
    phandles = read_cells(rproc, "memory-region")
    if not phandles:
        raise DeviceTreeError(
            f"{tree.source}: node {rproc.path}: 'memory-region' is empty"
        )
    targets = []
    for index, phandle in enumerate(phandles):
        target = tree.by_phandle(phandle)
        if target is None:
            raise DeviceTreeError(
                f"{tree.source}: node {rproc.path}: 'memory-region' entry {index} "
                f"is phandle {phandle:#x}, which no node has"
            )
        targets.append(target)
    return targets


def translate_to_device(
    rproc: DtNode, pa: int, size: int, what: str
) -> tuple[int, str]:
    """Turn a CPU physical range into the remote processor's device address.

    Each bus between the root and ``rproc`` is applied from the outside in:
    a bus without ``dma-ranges`` or with an empty one is an identity; otherwise
    the first triple whose parent range holds the whole ``[pa, pa + size)``
    gives ``child + (pa - parent)`` (OP-TEE's stm32mp PTA and Linux do the same
    for the one bus of an STM32MP1).

    Returns
    -------
    (int, str)
        The device address and a description of how it was obtained.

    Raises
    ------
    DeviceTreeError
        A bus has ``dma-ranges`` and no triple covers the range.
    """
    addr, steps = pa, []
    for bus in reversed(_buses(rproc)):
        ranges = dma_ranges(bus)
        if not ranges:
            continue
        hit = next((r for r in ranges if _covers(r[1], r[2], addr, size)), None)
        if hit is None:
            raise DeviceTreeError(_uncovered(bus, ranges, addr, size, what))
        child, parent, length = hit
        addr = child + (addr - parent)
        steps.append(f"dma-ranges of {bus.path}: <{child:#x} {parent:#x} {length:#x}>")
    how = "; ".join(steps) if steps else "no dma-ranges translation: da = pa"
    return addr, how


def _buses(rproc: DtNode) -> list[DtNode]:
    buses, cur = [], rproc.parent
    while cur is not None and cur.parent is not None:
        buses.append(cur)
        cur = cur.parent
    return buses


def _covers(base: int, length: int, addr: int, size: int) -> bool:
    return base <= addr and size <= length and addr - base <= length - size


def _uncovered(
    bus: DtNode, ranges: list[tuple[int, int, int]], addr: int, size: int, what: str
) -> str:
    shown = ", ".join(f"<{c:#x} {p:#x} {s:#x}>" for c, p, s in ranges)
    return (
        f"{what} [{addr:#x}, +{size:#x}) is not covered by any 'dma-ranges' "
        f"entry of {bus.path} ({shown}); OP-TEE's probe fails on such a region"
    )


def read_platform(tree: DeviceTree, node_ref: str | None = None) -> DtPlatform:
    """Read a remote processor's memory regions from a device tree.

    Parameters
    ----------
    tree : DeviceTree
        From :func:`read_tree`, :func:`parse_dtb` or :func:`parse_dts`.
    node_ref : str or None
        ``--node``: path, label, alias or node name; None chooses the single
        enabled remote-processor node.

    Returns
    -------
    DtPlatform
        Regions in ``memory-region`` order with their device addresses.

    Raises
    ------
    DeviceTreeError
        No usable node, bad ``memory-region`` phandles, disabled or ``reg``-less
        targets, malformed cells, or a region outside the ``dma-ranges``.
    """
    rproc = select_remoteproc(tree, node_ref)
    notes: list[str] = []
    if not is_enabled(rproc):
        notes.append(f"node {rproc.path} is disabled ({_status_text(rproc)})")
    regions = internal_memories(tree, rproc, notes)
    seen: set[str] = set()
    targets = (
        memory_region_targets(tree, rproc) if "memory-region" in rproc.props else []
    )
    for index, target in enumerate(targets):
        if target.path in seen:
            notes.append(f"memory-region entry {index}: {target.path} listed twice")
            continue
        seen.add(target.path)
        regions.extend(_target_regions(tree, rproc, index, target, notes))
    if not regions:
        raise DeviceTreeError(
            f"{tree.source}: node {rproc.path}: no 'memory-region' target has a "
            "fixed 'reg', so there is no region to load firmware into"
        )
    model = tree.root.strings("model")
    compatible = tuple(rproc.strings("compatible"))
    return DtPlatform(
        source=tree.source,
        node=rproc.path,
        compatible=compatible,
        model=model[0] if model else None,
        regions=tuple(_unique_names(regions)),
        processor_ids=processor_ids(tree, rproc),
        notes=tuple(notes),
        machines=expected_machines(compatible),
    )


# --------------------------------------------------------------------------
# A processor's own memories (``reg`` + ``reg-names``) and their device
# addresses, as the vendor drivers compute them

#: R5F view of the TCM that is not at 0 (``K3_R5_TCM_DEV_ADDR`` of Linux's
#: ti_k3_r5_remoteproc): with ``ti,loczrama = <1>`` (the binding's default)
#: ATCM is at 0 and BTCM here, with 0 the other way round.
K3_R5_TCM_DEV_ADDR = 0x41010000
#: A K3 C66x/C71x DSP sees its own L1/L2 memories at the low 24 bits of their
#: SoC address (``KEYSTONE_RPROC_LOCAL_ADDRESS_MASK``).
K3_DSP_LOCAL_MASK = 0x00FFFFFF

_INTERNAL_KINDS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("k3-r5f", ("ti,*-r5f",), ("atcm", "btcm")),
    ("k3-dsp", ("ti,*-c66-dsp", "ti,*-c71-dsp", "ti,*-c7xv-dsp"),
     ("l2sram", "l1pram", "l1dram")),
)  # fmt: skip


#: Memories a driver knows without the tree saying so: (compatible patterns,
#: ((name, da, pa, size), ...)). The i.MX8MN/8MP Cortex-M7 TCMs are the
#: ATT_OWN entries of imx_rproc's address translation table (Linux 6.12).
_Memory = tuple[str, int, int, int]
_DRIVER_MEMORIES: tuple[tuple[tuple[str, ...], tuple[_Memory, ...]], ...] = (
    (("fsl,imx8mn-cm7", "fsl,imx8mp-cm7"),
     (("itcm", 0x00000000, 0x007E0000, 0x20000),
      ("dtcm", 0x20000000, 0x00800000, 0x20000))),
)  # fmt: skip


def _driver_memories(rproc: DtNode) -> list[DtRegion]:
    for patterns, memories in _DRIVER_MEMORIES:
        if _matches(rproc, patterns):
            how = "imx_rproc address translation table (Linux 6.12), not in the tree"
            return [
                DtRegion(name, rproc.path, pa, da, size, how, kind="internal")
                for name, da, pa, size in memories
            ]
    return []


def internal_kind(node: DtNode) -> str | None:
    """``"k3-r5f"`` or ``"k3-dsp"`` when ``node`` has ``reg`` memories this
    model places (TI K3 R5F TCMs, K3 DSP L1/L2 SRAM), else None."""
    if "reg" not in node.props:
        return None
    for kind, patterns, _names in _INTERNAL_KINDS:
        if _matches(node, patterns):
            return kind
    return None


def internal_memories(
    tree: DeviceTree, rproc: DtNode, notes: list[str]
) -> list[DtRegion]:
    """The processor's own memories as regions (empty when it has none): its
    ``reg`` memories, or those its driver knows (i.MX8MP CM7 ITCM/DTCM).

    Parameters
    ----------
    tree : DeviceTree
    rproc : DtNode
        The processor node.
    notes : list of str
        Appended to: memories left out, the view used.

    Returns
    -------
    list of DtRegion
        ``pa`` is the ``reg`` address through the buses' ``ranges``; ``da`` the
        address the processor itself uses, as Linux's driver computes it.

    Raises
    ------
    DeviceTreeError
        ``reg`` and ``reg-names`` disagree in length. (A memory that a bus's
        ``ranges`` does not cover is left out with a note.)
    """
    kind = internal_kind(rproc)
    if kind is None:
        return _driver_memories(rproc)
    known = next(names for k, _p, names in _INTERNAL_KINDS if k == kind)
    names = rproc.strings("reg-names")
    entries = reg_entries(rproc)
    if len(names) != len(entries):
        raise DeviceTreeError(
            f"{tree.source}: node {rproc.path}: 'reg' has {len(entries)} entries "
            f"but 'reg-names' has {len(names)}"
        )
    regions = []
    for name, (addr, size) in zip(names, entries, strict=True):
        if name not in known:
            notes.append(f"{rproc.path}: reg '{name}' is not a memory; left out")
            continue
        where = f"node {rproc.path} reg '{name}'"
        try:
            pa, how = translate_to_cpu(rproc, addr, size, where)
        except DeviceTreeError as exc:
            # The reserved memories still make a usable platform: say why
            # this memory is missing instead of refusing the whole node.
            notes.append(f"{exc}; '{name}' left out of the regions")
            continue
        da, view = _internal_da(kind, rproc, name, pa)
        problem = _range_problem(pa, size) or _range_problem(da, size)
        if problem is not None:
            # as an untranslatable memory: not a region, and said so
            notes.append(f"{where}: {problem}; '{name}' left out of the regions")
            continue
        regions.append(DtRegion(name, rproc.path, pa, da, size, f"{how}; {view}",
                                kind="internal"))  # fmt: skip
    return regions


def _internal_da(kind: str, rproc: DtNode, name: str, pa: int) -> tuple[int, str]:
    if kind == "k3-dsp":
        da = pa & K3_DSP_LOCAL_MASK
        return da, f"DSP local view: pa & {K3_DSP_LOCAL_MASK:#x}"
    cells = read_cells(rproc, "ti,loczrama") if "ti,loczrama" in rproc.props else [1]
    atcm_at_zero = bool(cells and cells[0])
    at_zero = (name == "atcm") == atcm_at_zero
    da = 0 if at_zero else K3_R5_TCM_DEV_ADDR
    return da, f"R5F view with ti,loczrama = <{int(atcm_at_zero)}>"


def translate_to_cpu(node: DtNode, addr: int, size: int, what: str) -> tuple[int, str]:
    """Turn a ``reg`` address of ``node`` into a CPU physical address.

    Each parent bus's ``ranges`` is applied from the inside out (as Linux's
    ``of_translate_address``): an empty ``ranges`` is an identity, an entry
    whose child range holds ``[addr, addr + size)`` maps it to the parent.

    Returns
    -------
    (int, str)
        The physical address and how it was obtained.

    Raises
    ------
    DeviceTreeError
        A bus has ``ranges`` entries and none covers the range.
    """
    steps = []
    bus = node.parent
    while bus is not None and bus.parent is not None:
        ranges = _bus_ranges(bus, "ranges")
        if ranges:
            hit = next((r for r in ranges if _covers(r[0], r[2], addr, size)), None)
            if hit is None:
                shown = ", ".join(f"<{c:#x} {p:#x} {s:#x}>" for c, p, s in ranges)
                raise DeviceTreeError(
                    f"{what} [{addr:#x}, +{size:#x}) is not covered by any "
                    f"'ranges' entry of {bus.path} ({shown})"
                )
            child, parent, _length = hit
            addr = parent + (addr - child)
            steps.append(f"ranges of {bus.path}")
        bus = bus.parent
    how = "; ".join(steps) if steps else "no ranges translation"
    return addr, how


def _bus_ranges(bus: DtNode, prop: str) -> list[tuple[int, int, int]]:
    if prop not in bus.props:
        return []
    child_cells, size_cells = cell_counts(bus)
    parent_cells = cell_counts(bus.parent)[0] if bus.parent is not None else 2
    widths = (child_cells, parent_cells, size_cells)
    return [(e[0], e[1], e[2]) for e in split_entries(bus, prop, widths)]


#: ``e_machine`` of the firmware each processor family runs (EM_ARM 40,
#: EM_TI_C6000 140, EM_TI_PRU 144, EM_XTENSA 94, EM_QDSP6 164).
_MACHINES: tuple[tuple[tuple[str, ...], int], ...] = (
    (("st,stm32mp1-m4*", "st,stm32mp2-m33*", "st,stm32mp2-m0*", "ti,*-r5f",
      "ti,*-m4f*", "ti,*-ipu", "ti,*-wkup-m3", "fsl,imx*-cm*", "xlnx,*-r5f",
      "amd,*-r5f", "renesas,*-cr7"), 40),
    (("ti,*-c66-dsp", "ti,*-c71-dsp", "ti,*-c7xv-dsp"), 140),
    (("ti,*-pru",), 144),
    (("fsl,imx*-dsp*", "fsl,imx*-hifi*"), 94),
    (("qcom,*-pas", "qcom,*-pil"), 164),
)  # fmt: skip


def expected_machines(compatible: tuple[str, ...] | list[str]) -> tuple[int, ...]:
    """The ``e_machine`` values firmware for a processor node is built for.

    Parameters
    ----------
    compatible : sequence of str
        The node's ``compatible`` list.

    Returns
    -------
    tuple of int
        E.g. ``(40,)`` (EM_ARM) for Cortex-M/R nodes, ``(140,)``
        (EM_TI_C6000) for TI C66x/C71x DSPs; empty when unknown. Name them
        with :func:`rproctee.elf.describe_machine`.
    """
    found: list[int] = []
    for patterns, machine in _MACHINES:
        hit = any(fnmatch.fnmatchcase(c, p) for c in compatible for p in patterns)
        if hit and machine not in found:
            found.append(machine)
    return tuple(found)


# --------------------------------------------------------------------------
# Reserved memories of a whole tree (for ``rproctee platform profile``)


@dataclass(frozen=True)
class ReservedMemory:
    """One child of ``/reserved-memory``: fixed (``reg``) or dynamic (``size``)."""

    name: str
    path: str
    labels: tuple[str, ...]
    compatible: tuple[str, ...]
    no_map: bool
    reg: tuple[tuple[int, int], ...]
    size: int | None
    enabled: bool
    users: tuple[str, ...]
    firewalls: tuple[str, ...] = ()


def reserved_memories(tree: DeviceTree) -> list[ReservedMemory]:
    """Every ``/reserved-memory`` child, with the nodes whose ``memory-region``
    points at it (firewalls apart: they say who guards it).

    Raises
    ------
    DeviceTreeError
        Malformed ``reg``/``size`` cells.
    """
    parent = tree.node_at("/reserved-memory")
    if parent is None:
        return []
    users: dict[str, list[str]] = {}
    guards: dict[str, list[str]] = {}
    for node in tree.nodes():
        if "memory-region" not in node.props:
            continue
        into = guards if is_firewall_or_bus(node) else users
        for phandle in read_cells(node, "memory-region"):
            target = tree.by_phandle(phandle)
            if target is not None:
                into.setdefault(target.path, []).append(node.path)
    out = []
    for child in parent.children:
        size = _join_cells(read_cells(child, "size")) if "size" in child.props else None
        out.append(
            ReservedMemory(
                name=child.base_name,
                path=child.path,
                labels=tuple(child.labels),
                compatible=tuple(child.strings("compatible")),
                no_map="no-map" in child.props,
                reg=tuple(reg_entries(child)) if "reg" in child.props else (),
                size=size,
                enabled=is_enabled(child),
                users=tuple(users.get(child.path, ())),
                firewalls=tuple(guards.get(child.path, ())),
            )
        )
    return out


def _target_regions(
    tree: DeviceTree, rproc: DtNode, index: int, target: DtNode, notes: list[str]
) -> list[DtRegion]:
    where = f"{tree.source}: node {rproc.path}: 'memory-region' entry {index}"
    if not is_enabled(target):
        raise DeviceTreeError(
            f"{where} is {target.path}, which is disabled ({_status_text(target)}); "
            "Linux ignores disabled reserved-memory nodes, so the probe would fail"
        )
    if "reg" not in target.props:
        return _dynamic_region(where, target, notes)
    entries = reg_entries(target)
    if not entries:
        raise DeviceTreeError(f"{where} is {target.path}, whose 'reg' is empty")
    regions = []
    for k, (pa, size) in enumerate(entries):
        name = target.base_name if len(entries) == 1 else f"{target.base_name}[{k}]"
        _check_region_reg(where, target, pa, size, notes)
        da, how = translate_to_device(rproc, pa, size, f"{where} ({target.path})")
        problem = _range_problem(da, size)
        if problem is not None:
            raise DeviceTreeError(
                f"{where} is {target.path}, whose device address {problem}"
            )
        regions.append(DtRegion(name, target.path, pa, da, size, how))
    if len(entries) > 1:
        notes.append(
            f"{target.path} has {len(entries)} 'reg' entries, one region each "
            "(OP-TEE's and Linux's reserved-memory code use only the first)"
        )
    return regions


def _dynamic_region(where: str, target: DtNode, notes: list[str]) -> list[DtRegion]:
    if "size" not in target.props:
        raise DeviceTreeError(
            f"{where} is {target.path}, which has neither 'reg' nor 'size'"
        )
    size = _join_cells(read_cells(target, "size"))
    notes.append(
        f"{target.path} has no 'reg', only a dynamic 'size' = {size:#x}: its "
        "address is chosen at boot, so it is left out of the regions"
    )
    return []


def _range_problem(addr: int, size: int) -> str | None:
    """Why ``[addr, addr + size)`` cannot be a memory region (a
    :class:`~rproctee.platform.memory.RegionSpec`), or None."""
    if size == 0:
        return "size 0"
    if addr + size > _U64:
        return f"<{addr:#x} {size:#x}> wraps the 64-bit address space"
    return None


def _check_region_reg(
    where: str, target: DtNode, pa: int, size: int, notes: list[str]
) -> None:
    problem = _range_problem(pa, size)
    if problem == "size 0":
        raise DeviceTreeError(
            f"{where} is {target.path}, whose 'reg' has size 0 (OP-TEE rejects it)"
        )
    if problem is not None:
        raise DeviceTreeError(f"{where} is {target.path}, whose 'reg' {problem}")
    if pa == 0:
        notes.append(f"{target.path} starts at physical 0 (OP-TEE's PTA rejects it)")


def _unique_names(regions: list[DtRegion]) -> list[DtRegion]:
    counts: dict[str, int] = {}
    for region in regions:
        counts[region.name] = counts.get(region.name, 0) + 1
    return [
        r if counts[r.name] == 1 else replace(r, name=r.node.rsplit("/", 1)[1])
        for r in regions
    ]


def processor_ids(tree: DeviceTree, rproc: DtNode) -> tuple[int, ...]:
    """The TEE processor id of a node, following the TEE series' conventions.

    ``st,proc-id`` (v15..v19), the argument of ``st,rproc-tee`` /
    ``rproc-tee-phandle`` (v21, v22), the ``reg`` of a child of an
    ``rproc-service-*`` node (v20); otherwise 0.
    """
    if "st,proc-id" in rproc.props:
        return tuple(read_cells(rproc, "st,proc-id")[:1])
    for prop in ("st,rproc-tee", "rproc-tee-phandle"):
        cells = read_cells(rproc, prop) if prop in rproc.props else []
        if len(cells) == 2:
            return (cells[1],)
    parent = rproc.parent
    if parent is not None and any(
        c.startswith("rproc-service-") for c in parent.strings("compatible")
    ):
        reg = read_cells(rproc, "reg")
        if len(reg) == 1:
            return (reg[0],)
    return (0,)


def to_dtb(tree: DeviceTree) -> bytes:
    """Serialise a tree to a DTB with libfdt's sequential writer.

    Parameters
    ----------
    tree : DeviceTree

    Returns
    -------
    bytes
        A blob that :func:`parse_dtb` reads back to the same nodes and bytes
        (labels survive only through a ``/__symbols__`` node).
    """
    sw = libfdt.FdtSw()
    sw.finish_reservemap()
    _write_node(sw, tree.root)
    blob = bytes(sw.as_fdt().as_bytearray())
    return blob[: _u32(blob, 4)]


def _write_node(sw: Any, node: DtNode) -> None:
    sw.begin_node(node.name)
    for name, value in node.props.items():
        sw.property(name, value)
    for child in node.children:
        _write_node(sw, child)
    sw.end_node()


def profile_toml(tree: DeviceTree, node_ref: str | None = None) -> str:
    """A TOML platform profile (see :mod:`rproctee.platform.profile`) for a tree.

    For a board whose tree has no usable processor node (Linux's
    STM32MP257F-DK today), or to start a hand-written profile from a tree.

    Parameters
    ----------
    tree : DeviceTree
    node_ref : str or None
        A processor node (``--node``): its regions, with their device
        addresses, become ``[[regions]]`` and every other reserved memory is
        listed commented out. None: every fixed ``/reserved-memory`` node is a
        region with ``da = pa`` (the tree cannot say how a processor sees it).

    Returns
    -------
    str
        TOML text that :func:`rproctee.platform.profile.load_profile` reads;
        each region is preceded by comments saying where it comes from, for
        the user to keep or delete.

    Raises
    ------
    DeviceTreeError
        ``node_ref`` names no usable processor node; malformed cells; the
        tree has no fixed reserved memory at all.
    """
    model = tree.root.strings("model")
    name = Path(tree.source).name.split(".", 1)[0] or "board"
    lines = [
        f"# Platform profile written by 'rproctee platform profile' from {tree.source}",
        f'# (model "{model[0]}").' if model else "# (no model property).",
        "# Keep the regions your remote processor loads firmware into or shares",
        "# with Linux, delete the others; then: rproctee check FW --platform FILE",
    ]
    plat = read_platform(tree, node_ref) if node_ref is not None else None
    if plat is None:
        lines += [
            "# No processor node was given: each 'da' (the address the processor",
            "# uses) is set to 'pa'. Correct it where the processor sees the",
            "# memory elsewhere (a bus dma-ranges, a TCM alias).",
        ]
    lines += ["", "[platform]", f'name = "{_toml_text(name)}"', "accept_ecdsa = false"]
    ids = plat.processor_ids if plat is not None else (0,)
    lines.append(f"processor_ids = [{', '.join(str(i) for i in ids)}]")
    lines.append(
        '# key = "my_key_pub.pem"   # public key the secure world verifies with'
    )
    regions, used = _profile_regions(tree, plat)
    if not regions:
        raise DeviceTreeError(
            f"{tree.source}: no /reserved-memory node with a fixed 'reg': nothing "
            "to list; write the profile by hand (see rproctee.platform.profile)"
        )
    for comments, body in regions:
        lines += ["", *comments, *body]
    lines += _profile_leftovers(tree, used)
    return "\n".join(lines) + "\n"


def _toml_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _memory_comment(mem: ReservedMemory) -> list[str]:
    labels = f" (label {', '.join(mem.labels)})" if mem.labels else ""
    compat = ", ".join(f'"{c}"' for c in mem.compatible) or "no compatible"
    flags = ", no-map" if mem.no_map else ""
    out = [f"# {mem.path}{labels}: {compat}{flags}"]
    for user in mem.users:
        out.append(f"#   memory-region of {user}")
    for guard in mem.firewalls:
        out.append(f"#   guarded by the firewall {guard} (not a processor)")
    return out


def _region_body(name: str, da: int, pa: int, size: int) -> list[str]:
    return [
        "[[regions]]",
        f'name = "{_toml_text(name)}"',
        f"da = {da:#010x}",
        f"pa = {pa:#010x}",
        f"size = {size:#x}",
    ]


def _profile_regions(
    tree: DeviceTree, plat: DtPlatform | None
) -> tuple[list[tuple[list[str], list[str]]], set[str]]:
    memories = {m.path: m for m in reserved_memories(tree)}
    out: list[tuple[list[str], list[str]]] = []
    used: set[str] = set()
    if plat is not None:
        for r in plat.regions:
            used.add(r.node)
            mem = memories.get(r.node)
            comment = (
                _memory_comment(mem)
                if mem is not None
                else [f"# {r.node}: the processor's own memory '{r.name}'"]
            )
            comment.append(f"#   da: {r.translation}")
            out.append((comment, _region_body(r.name, r.da, r.pa, r.size)))
        return out, used
    names: dict[str, int] = {}
    fixed = [m for m in memories.values() if m.reg and m.enabled]
    for mem in fixed:
        names[mem.name] = names.get(mem.name, 0) + len(mem.reg)
    for mem in fixed:
        used.add(mem.path)
        for k, (pa, size) in enumerate(mem.reg):
            name = mem.name if names[mem.name] == 1 else mem.path.rsplit("/", 1)[1]
            name = name if len(mem.reg) == 1 else f"{name}[{k}]"
            out.append((_memory_comment(mem), _region_body(name, pa, pa, size)))
    return out, used


def _profile_leftovers(tree: DeviceTree, used: set[str]) -> list[str]:
    """The reserved memories not listed as regions, as comments."""
    lines: list[str] = []
    for mem in reserved_memories(tree):
        if mem.path in used:
            continue
        lines.append("")
        lines += _memory_comment(mem)
        if not mem.enabled:
            lines.append("#   disabled: Linux ignores it")
        if not mem.reg:
            shown = f" {mem.size:#x}" if mem.size is not None else ""
            lines.append(f"#   dynamic size{shown}: its address is chosen at boot")
            continue
        node_name = mem.path.rsplit("/", 1)[1]  # unique among its siblings
        for k, (pa, size) in enumerate(mem.reg):
            name = node_name if len(mem.reg) == 1 else f"{node_name}[{k}]"
            lines += [f"# {line}" for line in _region_body(name, pa, pa, size)]
    return lines
