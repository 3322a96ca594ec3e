"""The Python API in one call: :func:`load`, and the TEE client path.

:func:`load` does what ``rproctee load`` does, without a command line: it
builds the secure world of a platform, opens a session to the remoteproc TA,
sends LOAD_FW and, on success, GET_RSC_TABLE, then decodes the resource table
from device memory with :func:`rproctee.rsctable.parse_resource_table`::

    import rproctee
    result = rproctee.load("fw.img", platform="stm32mp15-dk2", key="key.pub")
    print(result.result, result.reason)

For xtest-style work (any command, any parameters, wrong ones on purpose)
:func:`secure_world` and :func:`open_session` give the GlobalPlatform client
objects of :mod:`rproctee.tee` directly.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rproctee.errors import RprocError

if TYPE_CHECKING:
    from rproctee.platform.board import PlatformSpec
    from rproctee.platform.memory import RegionSpec
    from rproctee.rsctable import ResourceTable
    from rproctee.tee import SecureWorld, TeeSession

    PathLike = str | os.PathLike[str]
    ImageLike = bytes | bytearray | memoryview | PathLike
    PlatformLike = str | os.PathLike[str] | PlatformSpec


class ApiError(RprocError, ValueError):
    """An argument of the API cannot be used (names the argument and value)."""


@dataclass(frozen=True)
class Write:
    """One device-memory write: ``op`` is ``"copy"`` or ``"fill"``; ``region``
    names the platform region that holds it."""

    op: str
    da: int
    pa: int
    len: int
    region: str


@dataclass(frozen=True)
class Timing:
    """Wall time of one phase (``LOAD_FW.<sub-phase>`` for the TA's own)."""

    phase: str
    seconds: float


@dataclass(frozen=True)
class LoadResult:
    """What one :func:`load` did.

    Attributes
    ----------
    result : str
        The TEE result name of LOAD_FW (or of the session opening when that
        failed), e.g. ``"TEE_SUCCESS"``, ``"TEE_ERROR_SECURITY"``.
    code : int
        Its 32-bit value (0 for success).
    reason : str
        Why, in words (empty on success).
    writes : tuple of Write
        Every device-memory write, in order.
    rsc_table : ResourceTable or None
        The resource table decoded from device memory at the address
        GET_RSC_TABLE returned; None when there is none (or it is invalid,
        see ``rsc_table_error``).
    rsc_table_address : tuple of (int, int) or None
        ``(pa, size)`` from GET_RSC_TABLE.
    rsc_table_error : str or None
        Why the bytes at that address are not a valid table.
    timings : tuple of Timing
        Per phase, sub-phases of LOAD_FW after it.
    policy : str
        ``"strict"`` or ``"optee"``.
    world : SecureWorld
        The secure world, to inspect device memory afterwards
        (``result.world.memory.read_da(...)``).
    """

    result: str
    code: int
    reason: str
    writes: tuple[Write, ...]
    rsc_table: ResourceTable | None
    rsc_table_address: tuple[int, int] | None
    rsc_table_error: str | None
    timings: tuple[Timing, ...]
    policy: str
    world: SecureWorld = field(repr=False)
    #: When a TA fault answered ``TEE_ERROR_TARGET_DEAD``: the model's traceback.
    traceback: str = ""
    #: Where the answer came from (``TEE_ORIGIN_*`` name: ``TRUSTED_APP``,
    #: ``TEE``, ``API``...).
    origin: str = "TRUSTED_APP"
    #: Page-fault records of the device memory made before this load (the
    #: platform's prefault), which :meth:`profile` shows apart.
    touched_before: int = 0

    def profile(self) -> list[dict[str, Any]]:
        """Where the time of LOAD_FW went, as ``rproctee load --profile``.

        Returns
        -------
        list of dict
            ``{"what", "bytes", "seconds", "gb_per_s"}`` rows: the prefault
            of each region when the platform was built, then header copy and
            signature check, ELF parse and checks, region checks, resource
            table, first touch (lazy memory), copy+hash and zero-fill (summed
            over segments) and the load step's wall time.
        """
        from rproctee.tee.ta_load import load_profile

        touch = self.world.memory.first_touch
        rows = [
            {"what": f"prefault at platform build ({t.how}, {t.region})",
             "bytes": t.len, "seconds": t.seconds,
             "gb_per_s": t.len / t.seconds / 1e9 if t.seconds > 0 else None}
            for t in touch[: self.touched_before]
        ]  # fmt: skip
        ta = self.world.ta()
        last = ta.last_load if ta is not None else None
        return rows + load_profile(
            last, self.world.pta.timings, touch[self.touched_before :]
        )

    @property
    def ok(self) -> bool:
        """True when LOAD_FW answered ``TEE_SUCCESS``."""
        return self.code == 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (integers stay integers)."""
        return {
            "result": self.result,
            "code": self.code,
            "reason": self.reason,
            "policy": self.policy,
            "platform": self.world.platform.name,
            "writes": [vars(w).copy() for w in self.writes],
            "rsc_table": self.rsc_table.to_dict() if self.rsc_table else None,
            "rsc_table_address": (
                None
                if self.rsc_table_address is None
                else {
                    "pa": self.rsc_table_address[0],
                    "size": self.rsc_table_address[1],
                }
            ),
            "rsc_table_error": self.rsc_table_error,
            "timings": [vars(t).copy() for t in self.timings],
        }


def load(
    image: ImageLike,
    platform: PlatformLike = "stm32mp15-dk2",
    key: bytes | PathLike | Any | None = None,
    policy: str = "strict",
    *,
    node: str | None = None,
    accept_ecdsa: bool | None = None,
    rproc_id: int = 0,
    threads: int | None = None,
) -> LoadResult:
    """Load a signed image through a TEE session, as ``rproctee load`` does.

    Parameters
    ----------
    image : bytes, bytearray, memoryview, str or PathLike
        The signed image, or the path of its file.
    platform : str, PathLike or PlatformSpec
        A preset name, a ``.dtb``/``.dts``/``.toml`` path, or a platform.
    key : bytes, str, PathLike or public key, optional
        The PTA's verification key: PEM bytes, the path of a PEM file, or a
        ``cryptography`` public key. Default: the platform's built-in key.
    policy : {"strict", "optee"}
        The TA's policy.
    node : str, optional
        Device trees only: the remote-processor node (path, label or name).
    accept_ecdsa : bool, optional
        Override whether the platform verifies ECDSA P-256.
    rproc_id : int
        The processor id for the session and LOAD_FW.
    threads : int, optional
        Worker threads copying and hashing segments (``strict``; default:
        the usable cores). The answer, the write log and the first error do
        not depend on it.

    Returns
    -------
    LoadResult
        A TEE refusal is a result (``result.ok`` is False), not an exception;
        ``result.profile()`` says where the time went.

    Raises
    ------
    ApiError
        An argument is of the wrong type or an unusable key.
    OSError
        The image or key file cannot be read.
    rproctee.platform.board.PlatformError
        (and the device-tree/profile errors) the platform cannot be built.
    """
    data = _image_bytes(image)
    world = secure_world(platform, key=key, policy=policy, node=node,
                         accept_ecdsa=accept_ecdsa)  # fmt: skip
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ApiError(f"threads = {threads!r}: expected an integer >= 1")
        world.core.threads = threads
    return run_load(world, data, rproc_id)


def secure_world(
    platform: PlatformLike = "stm32mp15-dk2",
    *,
    key: bytes | PathLike | Any | None = None,
    policy: str = "strict",
    node: str | None = None,
    accept_ecdsa: bool | None = None,
) -> SecureWorld:
    """Build the secure world of a platform (TEE core, TA, PTA, memories).

    Parameters are those of :func:`load`.

    Returns
    -------
    SecureWorld
        ``world.core`` for a :class:`rproctee.tee.TeeContext`,
        ``world.memory`` for the device memories.
    """
    from rproctee.tee import build_secure_world

    spec = _platform(platform, node)
    try:
        return build_secure_world(
            spec, policy=policy, key_pem=_key_pem(key), accept_ecdsa=accept_ecdsa
        )
    except RprocError:
        raise
    except ValueError as exc:
        raise ApiError(str(exc)) from exc


def open_session(world: SecureWorld, rproc_id: int = 0) -> TeeSession:
    """Open a session to the remoteproc TA of ``world`` (``TEEC_OpenSession``).

    Parameters
    ----------
    world : SecureWorld
        From :func:`secure_world`.
    rproc_id : int
        The processor id given to the TA's open-session entry point.

    Returns
    -------
    TeeSession
        Use it as a context manager; ``invoke_command`` never raises for a
        TEE error, it answers an :class:`rproctee.tee.Answer`.

    Raises
    ------
    rproctee.tee.TeeClientError
        The TA refused the session (``exc.answer`` says why).
    """
    from rproctee.tee import TA_UUID, TeeContext, value_in

    return TeeContext(world.core).open_session(TA_UUID, [value_in(rproc_id)])


# --------------------------------------------------------------------------


def _image_bytes(image: ImageLike) -> bytes | bytearray | memoryview:
    if isinstance(image, bytes | bytearray | memoryview):
        return image
    if isinstance(image, str | os.PathLike):
        return Path(image).read_bytes()
    raise ApiError(f"image: expected bytes or a file path, not {type(image).__name__}")


def _platform(platform: PlatformLike, node: str | None) -> PlatformSpec:
    from rproctee.platform.board import PlatformSpec, load_platform

    if isinstance(platform, PlatformSpec):
        if node is not None:
            raise ApiError("node: give it with a device-tree path, not a PlatformSpec")
        return platform
    if isinstance(platform, str | os.PathLike):
        return load_platform(os.fspath(platform), node)
    raise ApiError(
        f"platform: expected a preset name, a file path or a PlatformSpec, not "
        f"{type(platform).__name__}"
    )


def _key_pem(key: bytes | PathLike | Any | None) -> bytes | None:
    if key is None:
        return None
    if isinstance(key, bytes):
        if b"-----BEGIN" not in key:
            raise ApiError("key: bytes given are not PEM (no '-----BEGIN' line)")
        return key
    if isinstance(key, str | os.PathLike):
        return Path(key).read_bytes()
    from rproctee.image.keys import PublicKey, public_key_pem

    if isinstance(key, PublicKey):
        return public_key_pem(key)
    raise ApiError(
        f"key: expected PEM bytes, a file path or a public key, not "
        f"{type(key).__name__}"
    )


def run_load(
    world: SecureWorld, image: bytes | bytearray | memoryview, rproc_id: int = 0
) -> LoadResult:
    """One TEE session on ``world``: LOAD_FW ``image``, then GET_RSC_TABLE.

    What :func:`load`, ``rproctee load`` and the pre-flight ``rproctee check``
    (on a scratch world) all run, so their verdicts cannot drift apart.
    """
    from rproctee.tee import Answer, TaCommand, TeeClientError, memref_in, value_in

    timings: list[Timing] = []
    touched = len(world.memory.first_touch)
    t0 = time.perf_counter()
    try:
        session = open_session(world, rproc_id)
    except TeeClientError as exc:
        timings.append(Timing("open_session", time.perf_counter() - t0))
        return _result(world, exc.answer, None, timings, touched)
    timings.append(Timing("open_session", time.perf_counter() - t0))
    with session:
        t1 = time.perf_counter()
        answer: Answer = session.invoke_command(
            TaCommand.LOAD_FW, [value_in(rproc_id), memref_in(image)]
        )
        timings.append(Timing("LOAD_FW", time.perf_counter() - t1))
        timings.extend(_ta_phases(world))
        where = None
        if answer.ok:
            t2 = time.perf_counter()
            where = _get_rsc_table(session, rproc_id)
            timings.append(Timing("GET_RSC_TABLE", time.perf_counter() - t2))
    return _result(world, answer, where, timings, touched)


def _ta_phases(world: SecureWorld) -> list[Timing]:
    ta = world.ta()
    if ta is None or ta.last_load is None:
        return []
    return [Timing(f"LOAD_FW.{name}", s) for name, s in ta.last_load.phases]


def _get_rsc_table(session: TeeSession, rproc_id: int) -> tuple[int, int] | None:
    from rproctee.tee import TaCommand, Value, value_in, value_out

    answer = session.invoke_command(
        TaCommand.GET_RSC_TABLE, [value_in(rproc_id), value_out(), value_out()]
    )
    if not answer.ok:
        return None
    addr, size = answer.outputs[1], answer.outputs[2]
    assert isinstance(addr, Value) and isinstance(size, Value)
    return addr.b << 32 | addr.a, size.b << 32 | size.a


def _result(
    world: SecureWorld,
    answer: Any,
    where: tuple[int, int] | None,
    timings: list[Timing],
    touched_before: int = 0,
) -> LoadResult:
    table, error = _decode_table(world, where)
    regions = world.platform.regions
    writes = tuple(
        Write(w.op, w.da, w.pa, w.len, _region_of(regions, w.pa, w.len))
        for w in world.memory.writes
    )
    return LoadResult(
        result=answer.result.name,
        code=int(answer.result),
        reason=answer.reason,
        writes=writes,
        rsc_table=table,
        rsc_table_address=where,
        rsc_table_error=error,
        timings=tuple(timings),
        policy=world.policy.value,
        world=world,
        traceback=answer.traceback,
        origin=answer.origin.name,
        touched_before=touched_before,
    )


def _decode_table(
    world: SecureWorld, where: tuple[int, int] | None
) -> tuple[ResourceTable | None, str | None]:
    """The table from device memory at the address the TA gave (not the ELF)."""
    from rproctee.rsctable import parse_resource_table

    if where is None or where[1] == 0:
        return None, None
    pa, size = where
    try:
        return parse_resource_table(world.memory.view_pa(pa, size)), None
    except RprocError as exc:
        return None, f"bytes at pa {pa:#x} (size {size:#x}) are not a table: {exc}"


def _region_of(regions: tuple[RegionSpec, ...], pa: int, size: int) -> str:
    for region in regions:
        if region.pa <= pa and pa - region.pa + size <= region.size:
            return region.name
    return "?"
