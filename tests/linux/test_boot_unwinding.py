"""rproc_fw_boot / rproc_start: each step's failure unwinds as the kernel's
labels do (spec 2.3), and a racing crash reporter cannot break the counts."""

from __future__ import annotations

import threading

import pytest
from linux_helpers import fail_with, fake_rproc

from rproctee.linux.errors import RprocErrno, enomem
from rproctee.linux.state import CrashType, RprocState

FULL = ["prepare", "parse_fw", "load", "find_loaded_rsc_table", "start"]


@pytest.mark.parametrize(
    ("step", "after", "carveouts_left"),
    [
        # prepare fails: disable_iommu only
        ("prepare", [], 0),
        # parse_fw fails: unprepare_rproc, past rproc_resource_cleanup, so
        # what prepare registered stays registered (the kernel's leak): the
        # six memory-region carveouts of the DK2 m4 node
        ("parse_fw", ["unprepare"], 6),
        # load/start fail: clean_up_resources, then unprepare_rproc
        ("load", ["unprepare"], 0),
        ("start", ["unprepare"], 0),
    ],
)
def test_each_boot_step_unwinds(step: str, after: list[str], carveouts_left: int):
    rproc, driver = fake_rproc()
    driver.fail[step] = fail_with(enomem)
    with pytest.raises(RprocErrno) as exc:
        rproc.boot()
    assert exc.value.name == "ENOMEM"
    assert driver.calls == FULL[: FULL.index(step) + 1] + after
    assert (rproc.state, rproc.power) == (RprocState.OFFLINE, 0)
    assert len(rproc.carveouts) == carveouts_left
    if step in ("load", "start"):
        assert rproc.cached_table is None and rproc.table_ptr is None
        assert rproc.rvdevs == [] and rproc.subdevs == [] and rproc.notifyids == {}
        assert rproc.dump_segments == []
    if step == "start":
        # rproc_start reset table_ptr before rproc_fw_boot freed the table
        assert ("err", "can't start rproc m4: -12") in rproc.messages


def test_missing_vring_carveout_falls_back_to_dma() -> None:
    rproc, driver = fake_rproc()
    rproc.boot()
    rproc.shutdown()
    # a platform without vdev0vring1: rproc_alloc_vring registers a DMA carveout
    driver.calls.clear()

    def broken_prepare(r) -> None:
        from rproctee.linux.carveouts import register_platform_carveouts

        driver.calls.append("prepare")
        specs = tuple(s for s in driver.platform.linux_carveouts()
                      if s.name != "vdev0vring1")  # fmt: skip
        register_platform_carveouts(r, specs)

    rproc.ops.prepare = broken_prepare
    rproc.boot()  # vring1 gets a DMA carveout instead: boot succeeds
    mem = rproc.find_carveout_by_name("vdev0vring1")
    assert mem is not None and mem.dma >= 0xC0000000 and not mem.is_iomem
    rproc.shutdown()


def test_racing_crashes_and_sysfs_writes() -> None:
    rproc, driver = fake_rproc()
    stop = threading.Event()
    failures: list[BaseException] = []

    def crasher() -> None:
        while not stop.is_set():
            try:
                rproc.report_crash(CrashType.WATCHDOG)
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                failures.append(exc)

    def user() -> None:
        for _ in range(40):
            for fn in (rproc.boot, rproc.shutdown):
                try:
                    fn()
                except RprocErrno:
                    pass  # shutdown of a crashed/offline rproc is -EINVAL

    threads = [threading.Thread(target=crasher), threading.Thread(target=user)]
    for t in threads:
        t.start()
    threads[1].join()
    stop.set()
    threads[0].join()
    assert failures == []
    assert rproc.state in (RprocState.OFFLINE, RprocState.RUNNING, RprocState.CRASHED)
    assert rproc.power >= 0
    assert driver.calls.count("start") - driver.calls.count("stop") == (
        1 if rproc.state == RprocState.RUNNING else 0
    )


def test_vring_outside_its_registered_carveout_is_logged_as_the_kernel_does() -> None:
    """Linux 6.12 allocates vrings in rproc-virtio's probe: rproc_alloc_vring
    -> rproc_check_carveout_da logs its dev_err line (the vring's da lies
    below vdev0vring0), the probe fails with -ENOMEM and the driver core
    says so, and the boot goes on without that vdev."""
    from linux_helpers import ANY

    from rproctee.rsctable import TraceRsc, VdevRsc, VringRsc, build_resource_table

    rings = (VringRsc(0x1003F000, 16, 16, ANY, 0), VringRsc(0x10041000, 16, 16, ANY, 0))
    table = build_resource_table([
        TraceRsc(0, 0x10000100, 256, 0, "cm4_log"),
        VdevRsc(0, 7, 0, 1, 0, 0, 0, 2, (0, 0), rings, b""),
    ])  # fmt: skip
    rproc, _driver = fake_rproc(table)
    rproc.boot()
    errors = [text for level, text in rproc.messages if level == "err"]
    assert errors == [
        "Registered carveout doesn't fit da request",
        "probe with driver rproc-virtio failed with error -12",
    ]
    assert rproc.state == RprocState.RUNNING and rproc.rvdevs == []
