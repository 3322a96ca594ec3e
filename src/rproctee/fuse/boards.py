"""The boards a mount serves: one normal world per instance, firmware from a
directory, and the event log of the run as JSON lines.

Each instance is its own :func:`~rproctee.linux.system.build_system` board
(its own secure world and device memories). Its ``request_firmware`` is
:meth:`FirmwareDir.request`: it reads ``<firmware-path>/<rproc->firmware>``
at the moment the model asks for it (boot, recovery), as the kernel reads
``/lib/firmware``, so a file replaced between two starts is the one loaded
next and a missing one is ``-ENOENT`` then.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rproctee.errors import RprocError
from rproctee.fuse.tree import Instance
from rproctee.linux.errors import RprocErrno, enoent
from rproctee.linux.sysfs import Debugfs, Sysfs
from rproctee.linux.system import DEFAULT_FIRMWARE, System

SERIES = ("v15", "v22")
POLICIES = ("optee", "strict")


class BoardError(RprocError, ValueError):
    """A bad mount option, naming the option and its value (a usage error)."""


@dataclass(frozen=True)
class BoardOptions:
    """What ``rproctee sysfs mount``/``run`` builds.

    Attributes
    ----------
    platform : str
        Preset, device tree or TOML profile.
    firmware_path : Path or None
        The model's ``/lib/firmware``; None: a temporary directory holding the
        demo firmware (signed with a key made for the run under the TEE).
    firmware : str
        The initial ``rproc->firmware``.
    key : Path or None
        PEM public key the PTA verifies with (default: the platform's).
    instances : int
        How many boards (``remoteproc0``..).
    series : str
        ``"v15"`` or ``"v22"``.
    tee : bool
        TEE-backed ops (True) or plain ELF ops.
    policy : str
        TA policy, ``"optee"`` or ``"strict"``.
    """

    platform: str = "stm32mp15-dk2"
    firmware_path: Path | None = None
    firmware: str = DEFAULT_FIRMWARE
    key: Path | None = None
    instances: int = 1
    series: str = "v22"
    tee: bool = True
    policy: str = "strict"

    def validate(self) -> None:
        """Check every field before anything is built.

        Raises
        ------
        BoardError
            The first bad field, by option name and value.
        """
        if not 1 <= self.instances <= 64:
            raise BoardError(f"--instances: {self.instances} is not in 1..64")
        if self.series not in SERIES:
            raise BoardError(f"--series: {self.series!r} is not v15 or v22")
        if self.policy not in POLICIES:
            raise BoardError(f"--policy: {self.policy!r} is not optee or strict")
        if not self.firmware or "\n" in self.firmware or "\0" in self.firmware:
            raise BoardError(f"--firmware: {self.firmware!r} is not a file name")
        if self.firmware_path is not None and not self.firmware_path.is_dir():
            raise BoardError(
                f"--firmware-path: {self.firmware_path} is not a directory"
            )
        if self.key is not None and self.firmware_path is None:
            raise BoardError(
                f"--key {self.key}: needs --firmware-path (without it the demo "
                "firmware is signed with a key made for this run)"
            )
        if self.key is not None and not self.key.is_file():
            raise BoardError(f"--key: {self.key} is not a readable file")


class FirmwareDir:
    """``request_firmware`` over one directory.

    Parameters
    ----------
    root : Path
        The directory (``/lib/firmware``).
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path_of(self, name: str) -> Path | None:
        """The file ``name`` names, or None when it is missing or outside."""
        try:
            candidate = (self.root / os.fsdecode(os.fsencode(name))).resolve()
            inside = candidate.is_relative_to(self.root) and candidate.is_file()
        except OSError:  # a name too long for the file system, a loop...
            return None
        return candidate if inside else None

    def load(self, name: str) -> bytes | None:
        """The bytes of ``name``, or None (``request_firmware`` gets ``-ENOENT``)."""
        path = self.path_of(name)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def request(self, name: str) -> bytes:
        """``request_firmware(name)``: the file's bytes, read now.

        Raises
        ------
        RprocErrno
            ``-ENOENT`` when ``name`` is missing, unreadable or outside the
            directory (the firmware loader's message).
        """
        data = self.load(name)
        if data is None:
            raise enoent(f"Direct firmware load for {name} failed with error -2")
        return data


class EventWriter:
    """Appends each instance's new events to a JSON-lines file.

    Every line is one :class:`~rproctee.linux.events.Event` as a mapping plus
    ``"instance": K``; lines are written after every write to the mount and
    at shutdown, so the file can be followed while the mount runs.
    """

    def __init__(self, stream: IO[str], systems: Sequence[System]) -> None:
        self.stream = stream
        self.systems = list(systems)
        self._sent = [0] * len(self.systems)
        self._lock = threading.Lock()

    def flush(self) -> None:
        """Write what was logged since the last call."""
        with self._lock:
            for k, system in enumerate(self.systems):
                events = system.log.events
                for event in events[self._sent[k] : len(events)]:
                    line = {"instance": k, **event.to_dict()}
                    self.stream.write(json.dumps(line, default=_jsonable) + "\n")
                self._sent[k] = len(events)
            self.stream.flush()


def _jsonable(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


class Boards:
    """The instances of one mount and how to shut them down.

    Parameters
    ----------
    systems : sequence of System
    firmware : FirmwareDir
    events : EventWriter or None
    """

    def __init__(
        self,
        systems: Sequence[System],
        firmware: FirmwareDir,
        events: EventWriter | None = None,
    ) -> None:
        self.systems = list(systems)
        self.firmware = firmware
        self.events = events
        self.instances = [self._instance(k, s) for k, s in enumerate(self.systems)]

    def _instance(self, k: int, system: System) -> Instance:
        system.rproc.index = k

        def after() -> None:
            if self.events is not None:
                self.events.flush()

        return Instance(k, Sysfs(system.rproc), Debugfs(system.rproc), None, after)

    def shutdown(self) -> list[str]:
        """Stop every processor still up (all its users), flush the events.

        Returns
        -------
        list of str
            One line per processor that refused (``remoteproc1: -EINVAL``...).
        """
        problems: list[str] = []
        for k, system in enumerate(self.systems):
            rproc = system.rproc
            # the model says which states rproc_shutdown accepts (6.12.117:
            # running, attached and crashed); one call per remaining user
            while rproc.power > 0:
                try:
                    rproc.shutdown()
                except RprocErrno as exc:
                    problems.append(f"remoteproc{k}: -{exc.name} {exc.message}")
                    break
        if self.events is not None:
            self.events.flush()
        return problems


def demo_image(tee: bool) -> tuple[bytes, bytes | None]:
    """The demo firmware, signed with a fresh RSA-2048 key under the TEE.

    Returns
    -------
    (image, public key PEM or None)
    """
    from rproctee.firmware import demo_firmware

    elf = demo_firmware(4)
    if not tee:
        return elf, None
    from rproctee.image import KeySigner, build_image, generate_key, public_key_pem

    key = generate_key("rsa2048")
    return build_image([elf], KeySigner(key)), public_key_pem(key)


def build_boards(
    options: BoardOptions,
    firmware_root: Path,
    *,
    key_pem: bytes | None = None,
    events: IO[str] | None = None,
) -> Boards:
    """Build ``options.instances`` boards reading firmware from ``firmware_root``.

    Parameters
    ----------
    options : BoardOptions
        Validated options.
    firmware_root : Path
        The directory ``request_firmware`` reads.
    key_pem : bytes, optional
        The PTA key (overrides ``options.key``; the demo key, for instance).
    events : text stream, optional
        Where the JSON lines of the event log go.

    Raises
    ------
    BoardError
        An unloadable platform or key.
    """
    from rproctee.linux.system import build_system
    from rproctee.platform.board import load_platform

    options.validate()
    try:
        spec = load_platform(options.platform)
    except RprocError as exc:
        raise BoardError(f"--platform: {exc}") from exc
    if key_pem is None and options.key is not None:
        key_pem = _read_key(options.key)
    firmware = FirmwareDir(firmware_root)
    systems: list[System] = []
    for _ in range(options.instances):
        system = build_system(
            spec, request_firmware=firmware.request, series=options.series,
            tee=options.tee, key_pem=key_pem, policy=options.policy,
            firmware_name=options.firmware,
        )  # fmt: skip
        systems.append(system)
    writer = EventWriter(events, systems) if events is not None else None
    return Boards(systems, firmware, writer)


def _read_key(path: Path) -> bytes:
    """The PTA's key file, checked now rather than at the first start.

    Raises
    ------
    BoardError
        Unreadable, or not a PEM key (naming ``--key`` and the file).
    """
    from rproctee.image import load_public_key

    try:
        pem = path.read_bytes()
        load_public_key(pem)
    except OSError as exc:
        raise BoardError(f"--key: {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise BoardError(f"--key: {path} is not a usable PEM key: {exc}") from exc
    return pem


def write_demo_firmware(directory: Path, name: str, tee: bool) -> bytes | None:
    """Put the demo firmware at ``directory/name``; return its key's PEM."""
    image, pem = demo_image(tee)
    target = directory / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(image)
    return pem


def describe(boards: Boards) -> dict[str, Any]:
    """A summary for the CLI: instances, series, ops, firmware directory."""
    first = boards.systems[0]
    return {
        "instances": len(boards.systems),
        "series": first.series if first.tee else "mainline",
        "ops": "tee" if first.tee else "elf",
        "firmware_path": str(boards.firmware.root),
        "firmware": first.rproc.firmware,
    }
