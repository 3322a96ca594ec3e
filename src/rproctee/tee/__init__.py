"""The secure world: TEE client API model, remoteproc TA, stm32mp platform PTA.

Data flows one way: image bytes -> :class:`TeeSession.invoke_command` ->
TA (parses the memref itself) -> PTA (TEE internal client API) -> device
memory. Only the PTA writes device memory.
"""

from __future__ import annotations

from rproctee.tee.client import TeeClientError, TeeContext, TeeSession
from rproctee.tee.core import Answer, TaFlags, TaHeap, TeeCore
from rproctee.tee.params import (
    Memref,
    ParamType,
    Value,
    memref_in,
    memref_out,
    param_types,
    value_in,
    value_out,
)
from rproctee.tee.policy import Policy
from rproctee.tee.pta_stm32mp import PTA_RPROC_UUID, PtaCommand, Stm32mpRemoteprocPta
from rproctee.tee.results import Origin, TaPanic, TeeError, TeeResult
from rproctee.tee.ta_remoteproc import TA_UUID, RemoteprocTa, RprocState, TaCommand
from rproctee.tee.world import SecureWorld, build_secure_world

__all__ = [
    "PTA_RPROC_UUID",
    "TA_UUID",
    "Answer",
    "Memref",
    "Origin",
    "ParamType",
    "Policy",
    "PtaCommand",
    "RemoteprocTa",
    "RprocState",
    "SecureWorld",
    "Stm32mpRemoteprocPta",
    "TaCommand",
    "TaFlags",
    "TaHeap",
    "TaPanic",
    "TeeClientError",
    "TeeContext",
    "TeeCore",
    "TeeError",
    "TeeResult",
    "TeeSession",
    "Value",
    "build_secure_world",
    "memref_in",
    "memref_out",
    "param_types",
    "value_in",
    "value_out",
]
