"""The emulated remote processor: a Cortex-M core over the device memories.

Install the optional extra (``pip install 'rproctee[emu]'``, i.e. unicorn
2.x) to run firmware; importing this package does not import unicorn, only
building an :class:`EmulatedCore` does (it raises
:class:`EmulatorUnavailable` when unicorn is missing).

* :class:`EmulatedCore`: the core, its zero-copy mapping, peripherals and
  ticks (:mod:`rproctee.emu.core`);
* :class:`EmulatedFirmware`: the Linux side's running-firmware hook backed
  by the core (:mod:`rproctee.emu.hook`);
* :class:`CrashReport`, :class:`FaultKind`, :class:`Registers`
  (:mod:`rproctee.emu.faults`) and the ``NT_PRSTATUS`` helpers
  (:mod:`rproctee.emu.prstatus`);
* :class:`~rproctee.emu.vring.HostVirtqueue`, the host's end of a vring;
* :func:`~rproctee.emu.demo.run_emulated_demo`: boot, echo, crash,
  recover and read the coredump's registers, as one call.
"""

from __future__ import annotations

from rproctee.emu.core import (
    EmulatedCore,
    EmulatorUnavailable,
    Mapping,
    load_unicorn,
    unicorn_available,
)
from rproctee.emu.faults import CrashReport, FaultKind, Registers
from rproctee.emu.hook import (
    EmulatedFirmware,
    cpu_for_platform,
    vector_base_for_platform,
)
from rproctee.emu.prstatus import core_with_registers, prstatus_note

__all__ = [
    "CrashReport",
    "EmulatedCore",
    "EmulatedFirmware",
    "EmulatorUnavailable",
    "FaultKind",
    "Mapping",
    "Registers",
    "core_with_registers",
    "cpu_for_platform",
    "load_unicorn",
    "prstatus_note",
    "unicorn_available",
    "vector_base_for_platform",
]
