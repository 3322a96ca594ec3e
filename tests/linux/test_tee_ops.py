"""The TEE client driver: probe, register, error mapping (-EIO, -ENODEV, -EINVAL)."""

from __future__ import annotations

import pytest
from linux_helpers import dk2, signed_demo_image, tee_system

from rproctee.image import generate_key, public_key_pem
from rproctee.linux.core import Rproc
from rproctee.linux.errors import RprocErrno
from rproctee.linux.events import EventLog
from rproctee.linux.state import RprocState
from rproctee.linux.system import build_system
from rproctee.linux.tee_ops import (
    RprocTeeContext,
    rproc_tee_register,
    stm32_tee_ops,
)
from rproctee.tee import TeeCore, build_secure_world


def test_bad_signature_is_eio_and_releases() -> None:
    other = public_key_pem(generate_key("p256"))
    system = build_system(dk2(), signed_demo_image(), series="v22", key_pem=other)
    with pytest.raises(RprocErrno) as exc:
        system.rproc.boot()
    assert exc.value.name == "EIO" and "TA_RPROC_CMD_LOAD_FW invoke failed" in str(
        exc.value
    )
    calls = [(c["cmd"], c["result"]) for c in system.log.tee_calls()]
    assert calls[0][0] == "LOAD_FW" and calls[0][1] != "TEE_SUCCESS"
    # parse_fw's own release_fw, then rproc_boot's (v22)
    assert [c for c, _ in calls[1:]] == ["RELEASE_FW", "RELEASE_FW"]
    assert (system.rproc.state, system.rproc.power) == (RprocState.OFFLINE, 0)
    # rproc_fw_boot: a parse_fw failure jumps to unprepare_rproc, past
    # rproc_resource_cleanup: what stm32_rproc_prepare registered stays...
    names = [m.name for m in system.rproc.carveouts]
    assert names[:3] == ["retram", "mcuram", "mcuram2"] and len(names) == 6
    with pytest.raises(RprocErrno):
        system.rproc.boot()
    # ...and the next prepare registers every region a second time
    assert len(system.rproc.carveouts) == 12


def test_probe_needs_the_device_enum_ta() -> None:
    log = EventLog()
    assert RprocTeeContext.probe(TeeCore(), log) is None
    rproc = Rproc("m4", stm32_tee_ops("v22", ()), series="v22",
                  request_firmware=lambda name: b"image")  # fmt: skip
    with pytest.raises(RprocErrno) as exc:
        rproc_tee_register(None, rproc, 0)
    assert exc.value.name == "ENODEV"
    with pytest.raises(RprocErrno) as exc:
        rproc.boot()  # never registered: no TEE context
    assert exc.value.name == "ENODEV" and rproc.power == 0


def test_second_processor_session_is_busy_einval() -> None:
    world = build_secure_world(dk2())
    ctx = RprocTeeContext.probe(world.core, EventLog())
    assert ctx is not None
    first = Rproc("m4", stm32_tee_ops("v22", ()), series="v22")
    rproc_tee_register(ctx, first, 0)
    second = Rproc("m4b", stm32_tee_ops("v22", ()), series="v22")
    with pytest.raises(RprocErrno) as exc:
        rproc_tee_register(ctx, second, 0)
    assert exc.value.name == "EINVAL" and "BUSY" in str(exc.value)


def test_unknown_processor_id_is_refused_at_open() -> None:
    world = build_secure_world(dk2())
    ctx = RprocTeeContext.probe(world.core, EventLog())
    rproc = Rproc("m4", stm32_tee_ops("v22", ()), series="v22")
    with pytest.raises(RprocErrno) as exc:
        rproc_tee_register(ctx, rproc, 7)
    assert exc.value.name == "EINVAL"


def test_every_invoke_carries_the_processor_id() -> None:
    system = tee_system("v15")
    system.rproc.boot()
    system.rproc.shutdown()
    assert {c["id"] for c in system.log.tee_calls()} == {0}
    assert system.log.events[0].name == "tee bus probe"
    with pytest.raises(ValueError, match="series 'v99'"):
        stm32_tee_ops("v99", ())


def test_v15_load_fw_failure_powers_down_without_release() -> None:
    other = public_key_pem(generate_key("p256"))
    system = build_system(dk2(), signed_demo_image(), series="v15", key_pem=other)
    with pytest.raises(RprocErrno) as exc:
        system.rproc.boot()
    assert exc.value.name == "EIO"
    # rproc_load_fw failed: "goto downref_rproc", before rproc_fw_boot
    assert [c["cmd"] for c in system.log.tee_calls()] == ["LOAD_FW"]
    assert system.log.op_calls() == ["load_fw"]
    assert (system.rproc.power, system.rproc.carveouts) == (0, [])
