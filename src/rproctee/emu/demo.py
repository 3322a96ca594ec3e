"""The emulated-core demo: boot a real firmware, echo, kill it, recover, dump.

:func:`run_emulated_demo` is what ``rproctee demo --emulate`` needs: it signs
a compiled Cortex-M firmware, boots it through the whole Linux -> TEE -> TA
-> PTA path on an emulated core, shows its trace, sends a message through
its vrings and reads the echo, makes it fault (IPCC doorbell on the crash
channel: the test firmware ``fw_virtio`` stores through a bad pointer),
lets Linux recover it, and reads the core's registers back from the
coredump's ``NT_PRSTATUS`` note. Every step is a plain dictionary, ready for
JSON or a terminal.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from rproctee.emu.hook import EmulatedFirmware
from rproctee.emu.prstatus import PR_REG_OFFSET
from rproctee.emu.vring import HostVirtqueue

#: IPCC channel on which the demo firmware takes a crash request.
CRASH_CHANNEL = 5
#: The demo firmware shipped with the package (``emu/firmware``), a copy of
#: ``tests/emu/fw/fw_virtio.elf`` built from ``tests/emu/fw/fw_virtio.c``.
DEMO_FIRMWARE = "fw_virtio.elf"
_REG_NAMES = (
    "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11",
    "r12", "sp", "lr", "pc", "xpsr",
)  # fmt: skip


def packaged_firmware(name: str = DEMO_FIRMWARE) -> bytes:
    """A compiled test firmware shipped as package data (``emu/firmware``).

    Raises
    ------
    FileNotFoundError
        No such file in the package.
    """
    from importlib import resources

    return (resources.files("rproctee.emu") / "firmware" / name).read_bytes()


def run_emulated_demo(
    elf: bytes,
    *,
    platform: str = "stm32mp15-dk2",
    series: str = "v22",
    policy: str = "strict",
    ticks: int = 4,
    budget: int = 100_000,
    message: bytes = b"hello from linux",
    on_line: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Boot ``elf`` emulated, echo ``message``, crash it, recover, dump registers.

    Parameters
    ----------
    elf : bytes
        A Cortex-M firmware ELF with a resource table (trace + rpmsg vdev).
    platform : str
        Preset, device tree or TOML profile (see ``load_platform``).
    series : str
        TEE series of the Linux ops (``v15`` or ``v22``).
    policy : str
        TA policy, ``"strict"`` or ``"optee"``.
    ticks : int
        Ticks to run after each boot.
    budget : int
        Instructions per tick.
    message : bytes
        Sent through vring 1; the firmware echoes it into vring 0.
    on_line : callable, optional
        ``on_line(source, text)`` as lines come (``trace``, ``uart``, ``linux``).

    Returns
    -------
    dict
        ``boot``, ``echo``, ``crash``, ``recovery``, ``coredump`` and the
        emulator ``report``.

    Raises
    ------
    rproctee.emu.core.EmulatorUnavailable
        unicorn is not installed.
    """
    from rproctee.image import KeySigner, build_image, generate_key, public_key_pem
    from rproctee.linux.sysfs import Debugfs, Sysfs
    from rproctee.linux.system import build_system
    from rproctee.platform.board import load_platform

    def emit(source: str) -> Callable[[str], None]:
        return lambda text: on_line(source, text) if on_line is not None else None

    spec = load_platform(platform)
    key = generate_key("rsa2048")
    image = build_image([elf], KeySigner(key))
    fw = EmulatedFirmware.for_platform(
        spec, budget=budget,
        on_uart_line=emit("uart"), on_trace_line=emit("trace"),
    )  # fmt: skip
    board = build_system(spec, image, series=series, key_pem=public_key_pem(key),
                         policy=policy, firmware=fw)  # fmt: skip
    rproc = board.rproc
    Sysfs(rproc).write("coredump", "enabled")
    rproc.boot()
    rproc.tick(ticks)
    out: dict[str, Any] = {
        "platform": spec.name,
        "cpu": fw.cpu,
        "boot": {"state": rproc.state.word, "trace0": Debugfs(rproc).read("trace0")},
    }
    out["echo"] = _echo(board, fw, message, ticks)
    fw.host_kick(CRASH_CHANNEL)
    rproc.tick(ticks)
    crash = fw.last_crash
    out["crash"] = crash.to_dict() if crash is not None else None
    rproc.tick(ticks)  # the recovered firmware runs again
    out["recovery"] = {
        "state": rproc.state.word,
        "crash_cnt": rproc.crash_cnt,
        "trace0": Debugfs(rproc).read("trace0"),
    }
    out["coredump"] = _coredump(rproc.coredumps, fw) if crash is not None else None
    out["report"] = fw.report()
    return out


def _echo(
    board: Any, fw: EmulatedFirmware, message: bytes, ticks: int
) -> dict[str, Any]:
    """Send ``message`` host -> firmware and read what comes back."""
    from rproctee.rsctable import parse_resource_table

    table = board.rproc.loaded_table
    if table is None:
        return {"sent": message.decode(errors="replace"), "echo": None}
    raw = board.memory.read_da(table.da, board.rproc.table_sz)
    vdevs = parse_resource_table(raw, has_iommu=False).vdevs()
    if not vdevs or len(vdevs[0].vrings) < 2:
        return {"sent": message.decode(errors="replace"), "echo": None}
    rings = vdevs[0].vrings
    to_host = HostVirtqueue(board.memory, rings[0].da, rings[0].num, rings[0].align)
    from_host = HostVirtqueue(board.memory, rings[1].da, rings[1].num, rings[1].align)
    buffer = board.platform.region("vdev0buffer").da
    to_host.offer(buffer, 256, device_writes=True)
    board.memory.copy_in(buffer + 256, message)
    from_host.offer(buffer + 256, len(message), device_writes=False)
    fw.host_kick(1)
    board.rproc.tick(ticks)
    used = to_host.take_used()
    echoed = board.memory.read_da(buffer, used[0][1]) if used else None
    return {
        "sent": message.decode(errors="replace"),
        "echo": echoed.decode(errors="replace") if echoed is not None else None,
    }


def _coredump(dumps: list[bytes], fw: EmulatedFirmware) -> dict[str, Any] | None:
    """The registers read back from the first coredump's ``NT_PRSTATUS``."""
    if not dumps:
        return None
    core = fw.coredump_with_registers(dumps[0])
    regs = prstatus_registers(core)
    return {"bytes": len(core), "registers": regs}


def prstatus_registers(core: bytes) -> dict[str, int]:
    """r0-pc and xPSR from the first ``NT_PRSTATUS`` note of an ELF32 core.

    Raises
    ------
    ValueError
        ``core`` has no ``NT_PRSTATUS`` note.
    """
    import io

    from elftools.elf.elffile import ELFFile
    from elftools.elf.segments import NoteSegment

    elf = ELFFile(io.BytesIO(core))
    for seg in elf.iter_segments():
        if not isinstance(seg, NoteSegment):
            continue
        for note in seg.iter_notes():
            if note["n_type"] == "NT_PRSTATUS":
                desc = note["n_desc"]
                raw = desc if isinstance(desc, bytes) else desc.encode("latin-1")
                words = struct.unpack_from("<17I", raw, PR_REG_OFFSET)
                return dict(zip(_REG_NAMES, words, strict=True))
    raise ValueError("core: no NT_PRSTATUS note")
