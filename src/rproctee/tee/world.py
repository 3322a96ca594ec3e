"""Assemble a secure world: TEE core + remoteproc TA + stm32mp PTA + memories."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from rproctee.platform.board import PlatformSpec
from rproctee.platform.memory import DeviceMemory
from rproctee.tee.core import TaEnv, TeeCore, TrustedApplication
from rproctee.tee.policy import Policy
from rproctee.tee.pta_stm32mp import (
    PTA_RPROC_UUID,
    PublicKey,
    Stm32mpRemoteprocPta,
    load_public_key,
)
from rproctee.tee.ta_remoteproc import (
    DEFAULT_HEAP_SIZE,
    TA_FLAGS,
    TA_UUID,
    PhaseHook,
    RemoteprocTa,
)


@dataclass
class SecureWorld:
    """One platform instance: its core, PTA and device memories."""

    core: TeeCore
    pta: Stm32mpRemoteprocPta
    memory: DeviceMemory
    policy: Policy
    platform: PlatformSpec
    #: ``on_phase(name, info)`` given to every TA instance (see
    #: :mod:`rproctee.tee.ta_remoteproc`); may be set or changed at any time.
    on_phase: PhaseHook | None = None

    def ta(self) -> RemoteprocTa | None:
        """The live remoteproc TA instance (None before the first session)."""
        inst = self.core.instance(TA_UUID)
        return inst if isinstance(inst, RemoteprocTa) else None


def build_secure_world(
    platform: PlatformSpec,
    *,
    policy: Policy | str = Policy.STRICT,
    key_pem: bytes | None = None,
    accept_ecdsa: bool | None = None,
    heap_size: int = DEFAULT_HEAP_SIZE,
    backing_dir: str | os.PathLike[str] | None = None,
    on_phase: PhaseHook | None = None,
    prefault: str | None = None,
) -> SecureWorld:
    """Build the secure world of one platform instance.

    Parameters
    ----------
    platform : PlatformSpec
        Regions, processor ids, default key, ECDSA acceptance.
    policy : Policy or str
        ``"strict"`` (default) or ``"optee"``.
    key_pem : bytes, optional
        Public key of the PTA; default: the platform's built-in key.
    accept_ecdsa : bool, optional
        Override the platform's ECDSA acceptance.
    heap_size : int
        TA heap (``CFG_REMOTEPROC_TA_HEAP_SIZE``).
    backing_dir : path, optional
        Back the memories with ``np.memmap`` files there.
    on_phase : callable, optional
        LOAD_FW phase hook (``SecureWorld.on_phase``; can be set later).
    prefault : str, optional
        How device memory comes into existence (see
        :class:`~rproctee.platform.memory.DeviceMemory`); ``"lazy"`` for a
        scratch world that should cost only what is written.

    Returns
    -------
    SecureWorld
    """
    pol = Policy.parse(policy)
    memory = DeviceMemory(platform.regions, backing_dir=backing_dir, prefault=prefault)
    pem = key_pem if key_pem is not None else platform.default_key_pem
    key: PublicKey | None = load_public_key(pem) if pem else None
    ecdsa = platform.accept_ecdsa if accept_ecdsa is None else accept_ecdsa
    pta = Stm32mpRemoteprocPta(
        memory,
        processor_ids=platform.processor_ids,
        public_key=key,
        accept_ecdsa=ecdsa,
        policy=pol,
    )
    core = TeeCore()
    core.register_pta(PTA_RPROC_UUID, pta)
    world = SecureWorld(core, pta, memory, pol, platform, on_phase)
    hook = _WorldPhaseHook(world)

    def factory(env: TaEnv) -> TrustedApplication:
        return RemoteprocTa(env, pol, hook)

    core.register_ta(TA_UUID, factory, TA_FLAGS, heap_size)
    return world


class _WorldPhaseHook:
    """The TA's ``on_phase``: forwards to ``SecureWorld.on_phase``, read at
    call time (the world's hook may be set after the TA exists).

    ``watching`` tells the TA whether anyone listens, so that it may take
    paths that skip per-segment phases (the strict batch load) only when no
    hook would miss them.
    """

    def __init__(self, world: SecureWorld) -> None:
        self.world = world

    @property
    def watching(self) -> bool:
        """A hook is set on the world."""
        return self.world.on_phase is not None

    def __call__(self, name: str, info: dict[str, Any]) -> None:
        hook = self.world.on_phase
        if hook is not None:
            hook(name, info)
