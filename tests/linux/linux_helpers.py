"""Shared builders for the rproc core tests: a fake driver and signed systems."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from pathlib import Path

from rproctee.firmware import demo_firmware
from rproctee.image import KeySigner, build_image, generate_key, public_key_pem
from rproctee.linux.carveouts import register_platform_carveouts
from rproctee.linux.core import Rproc
from rproctee.linux.errors import RprocErrno, einval
from rproctee.linux.ops import DeviceTable, Firmware, RprocOps
from rproctee.linux.remote import RemoteProcessor
from rproctee.linux.system import System, build_system
from rproctee.platform.board import PlatformSpec, load_platform
from rproctee.platform.memory import DeviceMemory
from rproctee.rsctable import (
    CarveoutRsc,
    TraceRsc,
    VdevRsc,
    VringRsc,
    build_resource_table,
)

TEST_DATA = Path(__file__).resolve().parents[1] / "data"
DK2_DTB = TEST_DATA / "dts" / "stm32mp157c-dk2.dtb"
#: Where the fake firmware's table lives (retram, da 0x200 = pa 0x38000200).
TABLE_DA = 0x200
ANY = 0xFFFFFFFF


def dk2() -> PlatformSpec:
    """The built-in DK2 preset."""
    return load_platform("stm32mp15-dk2")


def demo_table(
    *, carveout: CarveoutRsc | None = None, vrings: tuple[int, int] = (16, 16)
) -> bytes:
    """trace + vdev(2 vrings) [+ a carveout] resource table."""
    entries: list[object] = []
    if carveout is not None:
        entries.append(carveout)
    entries.append(TraceRsc(0, 0x10000100, 256, 0, "cm4_log"))
    rings = tuple(
        VringRsc(da, 16, num, ANY, 0)
        for da, num in zip((0x10040000, 0x10041000), vrings, strict=True)
    )
    entries.append(VdevRsc(0, 7, 0, 1, 0, 0, 0, 2, (0, 0), rings, b""))
    return build_resource_table(entries)  # type: ignore[arg-type]


class FakeDriver:
    """A driver whose ops record their calls and fail on demand.

    ``fail`` maps an op name to the errno-raising callable it should run.
    """

    def __init__(self, table: bytes | None, platform: PlatformSpec) -> None:
        self.table = table
        self.platform = platform
        self.calls: list[str] = []
        self.fail: dict[str, Callable[[], RprocErrno]] = {}

    def _rec(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]()

    def ops(self, *, attach: bool = False) -> RprocOps:
        def prepare(r: Rproc) -> None:
            self._rec("prepare")
            register_platform_carveouts(r, self.platform.linux_carveouts())

        def unprepare(r: Rproc) -> None:
            self._rec("unprepare")

        def parse_fw(r: Rproc, fw: Firmware) -> None:
            self._rec("parse_fw")
            if self.table is not None:
                r.set_cached_table(self.table)

        def load(r: Rproc, fw: Firmware) -> None:
            self._rec("load")
            if self.table is not None:
                r.require_memory().copy_in(TABLE_DA, self.table)

        def find_loaded(r: Rproc, fw: Firmware) -> DeviceTable | None:
            self._rec("find_loaded_rsc_table")
            if self.table is None:
                return None
            return DeviceTable(TABLE_DA, 0x38000000 + TABLE_DA, len(self.table))

        def start(r: Rproc) -> None:
            self._rec("start")
            if r.remote is not None:
                r.remote.power_on()

        def stop(r: Rproc) -> None:
            self._rec("stop")
            if r.remote is not None:
                r.remote.power_off()

        def simple(name: str) -> Callable[[Rproc], None]:
            return lambda r: self._rec(name)

        ops = RprocOps(
            prepare=prepare, unprepare=unprepare, parse_fw=parse_fw, load=load,
            find_loaded_rsc_table=find_loaded, start=start, stop=stop,
        )  # fmt: skip
        if attach:
            ops.attach = simple("attach")
            ops.detach = simple("detach")

            def get_loaded(r: Rproc) -> DeviceTable | None:
                self._rec("get_loaded_rsc_table")
                if self.table is None:
                    return None
                return DeviceTable(TABLE_DA, 0x38000000 + TABLE_DA, len(self.table))

            ops.get_loaded_rsc_table = get_loaded
        return ops


def fake_rproc(
    table: bytes | None = None, *, series: str = "mainline", attach: bool = False
) -> tuple[Rproc, FakeDriver]:
    """An rproc over the DK2 memories with a :class:`FakeDriver`."""
    platform = dk2()
    memory = DeviceMemory(platform.regions)
    driver = FakeDriver(table if table is not None else demo_table(), platform)
    rproc = Rproc(
        "m4", driver.ops(attach=attach), request_firmware=lambda name: b"fw",
        memory=memory, series=series, remote=RemoteProcessor(memory),
    )  # fmt: skip
    rproc.coredump_set_elf_info(1, 0)
    return rproc, driver


Injector = Callable[[], RprocErrno]


def fail_with(errno_fn: Callable[[str], RprocErrno] = einval) -> Injector:
    """A failure injector for :attr:`FakeDriver.fail`."""
    return lambda: errno_fn("injected failure")


@functools.cache
def signing_key() -> object:
    """One RSA-2048 key for the whole run (key generation is slow)."""
    return generate_key("rsa2048")


@functools.cache
def signed_demo_image(code_kib: int = 4) -> bytes:
    """The demo firmware signed with :func:`signing_key`."""
    return build_image([demo_firmware(code_kib)], KeySigner(signing_key()))


def tee_system(series: str = "v22", **kw: object) -> System:
    """A DK2 board with TEE-backed ops and the signed demo firmware."""
    return build_system(
        dk2(), signed_demo_image(), series=series,
        key_pem=public_key_pem(signing_key()), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def elf_system(**kw: object) -> System:
    """A DK2 board with plain ELF ops and the unsigned demo firmware."""
    return build_system(dk2(), demo_firmware(4), tee=False, **kw)  # type: ignore[arg-type]


def u32(data: bytes, offset: int) -> int:
    """Little-endian u32 at ``offset``."""
    return int(struct.unpack_from("<I", data, offset)[0])
