"""``build_system(request_firmware=...)``: the caller's loader is what the
core calls, with ``rproc->firmware``, each time it requests the firmware."""

from __future__ import annotations

import pytest
from linux_helpers import dk2, signed_demo_image, signing_key

from rproctee.image import public_key_pem
from rproctee.linux.errors import RprocErrno, enoent
from rproctee.linux.state import RprocState
from rproctee.linux.system import build_system


def test_the_loader_is_asked_at_each_boot_with_the_current_name() -> None:
    files = {"a-fw": signed_demo_image()}
    asked: list[str] = []

    def request(name: str) -> bytes:
        asked.append(name)
        if name not in files:
            raise enoent(f"Direct firmware load for {name} failed with error -2")
        return files[name]

    system = build_system(dk2(), request_firmware=request, firmware_name="a-fw",
                          key_pem=public_key_pem(signing_key()))  # fmt: skip
    assert system.files == {} and asked == []  # nothing read before a boot
    system.rproc.boot()
    assert system.rproc.state == RprocState.RUNNING and asked == ["a-fw"]
    system.rproc.shutdown()
    system.rproc.set_firmware("b-fw")
    with pytest.raises(RprocErrno) as exc:
        system.rproc.boot()
    assert exc.value.name == "ENOENT" and asked[-1] == "b-fw"
    assert system.rproc.state == RprocState.OFFLINE
    files["b-fw"] = files["a-fw"]  # appears later: read then
    system.rproc.boot()
    assert system.rproc.state == RprocState.RUNNING and asked[-1] == "b-fw"


def test_exactly_one_of_image_and_loader() -> None:
    with pytest.raises(ValueError, match="exactly one of image and request_firmware"):
        build_system(dk2())
    with pytest.raises(ValueError, match="image set, request_firmware set"):
        build_system(dk2(), b"x", request_firmware=lambda name: b"x")


def test_an_image_still_serves_its_own_name_only() -> None:
    system = build_system(dk2(), signed_demo_image(),
                          key_pem=public_key_pem(signing_key()))  # fmt: skip
    assert list(system.files) == ["rproc-m4-fw"]
    system.rproc.set_firmware("other")
    with pytest.raises(RprocErrno) as exc:
        system.rproc.boot()
    assert exc.value.name == "ENOENT"
