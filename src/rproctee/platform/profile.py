"""Hand-written TOML platform profiles.

::

    [platform]
    name = "my-board"
    accept_ecdsa = false          # optional
    processor_ids = [0]           # optional
    key = "my_key_pub.pem"        # optional, relative to this file
    linux_driver = "stm32"        # optional: stm32, imx, imx_dsp or default
    [[regions]]
    name = "retram"
    da = 0x00000000
    pa = 0x38000000               # optional, defaults to da
    size = 0x10000
    access = "rwx"                # optional
    [[linux_carveouts]]           # optional: what the Linux driver registers
    name = "vdev0vring0"          # (default: the same list as [[regions]])
    da = 0x10040000
    pa = 0x10040000               # optional, defaults to da
    size = 0x1000

Unknown keys are refused (they are almost always typos).
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from rproctee.errors import RprocError
from rproctee.platform.board import LINUX_DRIVERS, PlatformSpec
from rproctee.platform.memory import RegionSpec

_PLATFORM_KEYS = {
    "name", "accept_ecdsa", "processor_ids", "key", "notes", "linux_driver",
}  # fmt: skip
_REGION_KEYS = {"name", "da", "pa", "size", "access"}
_TOP_KEYS = {"platform", "regions", "linux_carveouts"}
_CARVEOUT_KEYS = {"name", "da", "pa", "size"}
_LIMIT = 1 << 64


class ProfileError(RprocError, ValueError):
    """A TOML profile is unreadable or breaks the schema (file and key named)."""


def load_profile(path: str | Path) -> PlatformSpec:
    """Read a TOML platform profile.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    PlatformSpec
        With the profile's key (``key =``) as ``default_key_pem``, else None.

    Raises
    ------
    ProfileError
        Unreadable file, TOML syntax error, missing or unknown keys, wrong
        types, empty/overflowing/duplicate regions, unreadable key file.
    """
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from exc
    return profile_from_dict(doc, path)


def profile_from_dict(doc: dict[str, Any], path: Path) -> PlatformSpec:
    """Validate a decoded profile and build the platform (see :func:`load_profile`)."""
    where = str(path)
    _no_unknown(doc, _TOP_KEYS, where)
    table = doc.get("platform")
    if not isinstance(table, dict):
        raise ProfileError(f"{where}: missing [platform] table")
    _no_unknown(table, _PLATFORM_KEYS, f"{where} [platform]")
    name = _string(table, "name", f"{where} [platform]")
    regions = _regions(doc.get("regions"), where)
    carveouts = _carveouts(doc.get("linux_carveouts"), where)
    key_pem, key_notes = _key(table.get("key"), path)
    notes = tuple(_string_list(table, "notes", f"{where} [platform]"))
    return PlatformSpec(
        name=name,
        regions=regions,
        accept_ecdsa=_bool(table, "accept_ecdsa", f"{where} [platform]"),
        processor_ids=_processor_ids(table, f"{where} [platform]"),
        default_key_pem=key_pem,
        source=where,
        notes=notes + key_notes + _overlap_notes(regions),
        node=None,
        carveouts=carveouts,
        linux_driver=_linux_driver(table, f"{where} [platform]"),
    )


def _linux_driver(table: dict[str, Any], where: str) -> str | None:
    """``linux_driver``: which Linux driver's ELF ops serve the board.

    Absent: None (the driver then follows ``compatible``, else stm32).
    """
    if "linux_driver" not in table:
        return None
    value = table["linux_driver"]
    if value not in LINUX_DRIVERS:
        raise ProfileError(
            f"{where}: 'linux_driver' = {value!r} is not a Linux driver "
            f"(one of: {', '.join(LINUX_DRIVERS)})"
        )
    return str(value)


def _no_unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ProfileError(
            f"{where}: unknown key(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )


def _string(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{where}: '{key}' must be a non-empty string")
    return value


def _string_list(table: dict[str, Any], key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProfileError(f"{where}: '{key}' must be a list of strings")
    return list(value)


def _bool(table: dict[str, Any], key: str, where: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise ProfileError(f"{where}: '{key}' must be true or false, not {value!r}")
    return value


def _int(table: dict[str, Any], key: str, where: str) -> int:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(f"{where}: '{key}' must be an integer, not {value!r}")
    if not 0 <= value < _LIMIT:
        raise ProfileError(f"{where}: '{key}' = {value} is outside 0..2**64-1")
    return value


def _processor_ids(table: dict[str, Any], where: str) -> tuple[int, ...]:
    value = table.get("processor_ids", [0])
    if not isinstance(value, list) or not value:
        raise ProfileError(f"{where}: 'processor_ids' must be a non-empty list")
    ids = tuple(_int({"processor_ids": v}, "processor_ids", where) for v in value)
    if any(i >= 1 << 32 for i in ids):
        raise ProfileError(f"{where}: 'processor_ids' must fit 32 bits")
    return ids


def _regions(value: Any, where: str) -> tuple[RegionSpec, ...]:
    if not isinstance(value, list) or not value:
        raise ProfileError(f"{where}: needs at least one [[regions]] table")
    return _region_list(value, where, "regions", _REGION_KEYS)


def _carveouts(value: Any, where: str) -> tuple[RegionSpec, ...]:
    """The optional ``[[linux_carveouts]]`` list (empty when absent)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise ProfileError(
            f"{where}: 'linux_carveouts' must be a non-empty array of tables"
        )
    return _region_list(value, where, "linux_carveouts", _CARVEOUT_KEYS)


def _region_list(
    value: list[Any], where: str, what: str, allowed: set[str]
) -> tuple[RegionSpec, ...]:
    regions: list[RegionSpec] = []
    for index, table in enumerate(value):
        here = f"{where} [[{what}]] #{index}"
        if not isinstance(table, dict):
            raise ProfileError(f"{here}: must be a table")
        region = _region(table, here, allowed)
        if any(r.name == region.name for r in regions):
            kind = "region" if what == "regions" else "carveout"
            raise ProfileError(f"{here}: duplicate {kind} name {region.name!r}")
        regions.append(region)
    return tuple(regions)


def _region(
    table: dict[str, Any], where: str, allowed: set[str] = _REGION_KEYS
) -> RegionSpec:
    _no_unknown(table, allowed, where)
    name = _string(table, "name", where)
    where = f"{where} ({name})"
    da = _int(table, "da", where)
    pa = _int(table, "pa", where) if "pa" in table else da
    size = _int(table, "size", where)
    if size == 0:
        raise ProfileError(f"{where}: 'size' must not be 0")
    for key, base in (("da", da), ("pa", pa)):
        if base + size > _LIMIT:
            raise ProfileError(
                f"{where}: '{key}' {base:#x} + size {size:#x} wraps 64 bits"
            )
    access = table.get("access", "rwx")
    if not isinstance(access, str) or not set(access) <= set("rwx") or not access:
        raise ProfileError(f"{where}: 'access' must be letters of 'rwx'")
    return RegionSpec(name=name, da=da, pa=pa, size=size, access=access)


def _key(value: Any, path: Path) -> tuple[bytes | None, tuple[str, ...]]:
    if value is None:
        return None, ()
    if not isinstance(value, str) or not value:
        raise ProfileError(f"{path} [platform]: 'key' must be a file path")
    key_path = (path.parent / value).resolve()
    pem = _read_key_file(key_path, path)
    _check_public_pem(pem, key_path, path)
    return pem, (f"built-in key from {key_path}",)


#: A PEM public key of any supported kind is well under this (RSA-4096: 800).
MAX_KEY_FILE = 64 << 10


def _read_key_file(key_path: Path, path: Path) -> bytes:
    """The key file's bytes: a regular file of at most ``MAX_KEY_FILE`` bytes.

    A profile is trusted to describe the platform, not to make the reader
    block or exhaust memory: ``key = "/dev/zero"`` or a FIFO is refused
    before anything is read.
    """
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(key_path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ProfileError(
                    f"{path} [platform]: key file {key_path} is not a regular file"
                )
            pem = f.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise ProfileError(
            f"{path} [platform]: key file {key_path}: {exc.strerror}"
        ) from exc
    if len(pem) > MAX_KEY_FILE:
        raise ProfileError(
            f"{path} [platform]: key file {key_path} is larger than "
            f"{MAX_KEY_FILE} bytes: not a PEM public key"
        )
    return pem


def _check_public_pem(pem: bytes, key_path: Path, path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if b"PRIVATE KEY" in pem:
        raise ProfileError(
            f"{path} [platform]: key file {key_path} holds a private key; give "
            "the public half (openssl pkey -in KEY -pubout)"
        )
    try:
        load_pem_public_key(pem)
    except ValueError as exc:
        raise ProfileError(
            f"{path} [platform]: key file {key_path} is not a PEM public key"
        ) from exc


def _overlap_notes(regions: tuple[RegionSpec, ...]) -> tuple[str, ...]:
    notes = []
    for i, a in enumerate(regions):
        for b in regions[i + 1 :]:
            if a.da < b.da + b.size and b.da < a.da + a.size:
                notes.append(
                    f"regions {a.name} and {b.name} overlap in device addresses; "
                    f"the first ({a.name}) wins lookups"
                )
    return tuple(notes)
