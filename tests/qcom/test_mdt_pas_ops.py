"""qcom_q6v5_pas's ops on the Linux rproc core, and the PAS path beside OP-TEE's."""

from __future__ import annotations

import errno

import numpy as np
import pytest
from qcom_helpers import CARVEOUT_PA, CARVEOUT_SIZE, PAS_ID, segments

from rproctee.linux.errors import RprocErrno
from rproctee.linux.lifecycle import run_life
from rproctee.linux.state import CrashType, RprocState
from rproctee.linux.system import System
from rproctee.qcom import PasAccessError, TestSigner, build_image, split_image
from rproctee.qcom.pas import Carveout, PasService, PasState
from rproctee.qcom.pas_ops import PRIV_KEY, build_pas_system, qcom_pas_da_to_va

CARVEOUT = Carveout("mpss", CARVEOUT_PA, CARVEOUT_SIZE)


def _system(files: dict[str, bytes], root: bytes | None) -> System:
    return build_pas_system(
        files, "modem.mdt", CARVEOUT, trusted_root=root, pas_id=PAS_ID
    )


def _scm(system: System) -> PasService:
    scm: PasService = system.rproc.priv[PRIV_KEY].scm
    return scm


def _split(signer: TestSigner, **kw: object) -> dict[str, bytes]:
    image = build_image(segments(**kw.pop("seg", {})), version=6, signer=signer, **kw)  # type: ignore[arg-type]
    return split_image(image, "modem.mdt")


def test_boot_and_shutdown(signer: TestSigner) -> None:
    system = _system(_split(signer), signer.root_sha256)
    rproc, scm = system.rproc, _scm(system)
    rproc.boot()
    assert rproc.state == RprocState.RUNNING and scm.state(PAS_ID) is PasState.RUNNING
    # load is set: no ELF defaults (no sanity check, no table), and load keeps fw.
    assert system.log.op_calls() == ["parse_fw", "load", "start"]
    assert [(s.da, s.size) for s in rproc.dump_segments] == [
        (CARVEOUT_PA, 0x3000),
        (CARVEOUT_PA + 0x4000, 0x800),
        (CARVEOUT_PA + 0x5000, 0x321),
    ]
    assert system.memory.read_da(CARVEOUT_PA + 0x5000, 4) == b"\xa5" * 4
    assert system.remote.running
    with pytest.raises(PasAccessError):
        qcom_pas_da_to_va(rproc, CARVEOUT_PA, 16)
    rproc.shutdown()
    assert rproc.state == RprocState.OFFLINE and scm.xpu.locked == {}
    assert bytes(qcom_pas_da_to_va(rproc, CARVEOUT_PA + 0x5000, 2)) == b"\xa5\xa5"
    assert qcom_pas_da_to_va(rproc, CARVEOUT_PA + CARVEOUT_SIZE - 1, 2) is None
    assert qcom_pas_da_to_va(rproc, CARVEOUT_PA - 1, 1) is None
    assert [c.name for c in scm.calls] == [
        "PAS_INIT_IMAGE",
        "PAS_AUTH_AND_RESET",
        "PAS_SHUTDOWN",
    ]


def test_event_order_two_steps(signer: TestSigner) -> None:
    """Metadata first, Linux writes, then lock, TrustZone's checks, release."""
    system = _system(_split(signer), signer.root_sha256)
    system.rproc.boot()
    rows = [
        (e.layer, e.kind, e.name)
        for e in system.log.events
        if e.kind in ("scm", "scm_ret", "xpu", "write", "remote")
    ]
    assert rows == [
        ("trustzone", "scm", "PAS_INIT_IMAGE"),
        ("trustzone", "scm_ret", "PAS_INIT_IMAGE"),
        ("linux", "write", "copy"),
        ("linux", "write", "zero"),
        ("linux", "write", "zero"),
        ("linux", "write", "copy"),
        ("trustzone", "scm", "PAS_AUTH_AND_RESET"),
        ("trustzone", "xpu", "lock"),
        ("trustzone", "write", "zero"),
        ("trustzone", "write", "zero"),
        ("trustzone", "scm_ret", "PAS_AUTH_AND_RESET"),
        ("remote", "remote", "on_start"),
    ]


def test_relocatable_boot(signer: TestSigner) -> None:
    system = _system(_split(signer, seg={"base": 0x1000_0000}, relocatable=True), None)
    system.rproc.boot()
    pas = system.rproc.priv[PRIV_KEY]
    assert pas.mem_reloc == 0x1000_0000
    assert [(c.name, c.args) for c in _scm(system).calls][1] == (
        "PAS_MEM_SETUP",
        (CARVEOUT_PA, 0x6000),
    )
    system.rproc.shutdown()
    # da_to_va maps the firmware's own addresses onto the carveout.
    assert bytes(qcom_pas_da_to_va(system.rproc, 0x1000_5000, 1)) == b"\xa5"


def test_tampered_segment_file_fails_authentication(signer: TestSigner) -> None:
    files = _split(signer)
    files["modem.b04"] = b"\x5a" + files["modem.b04"][1:]
    system = _system(files, signer.root_sha256)
    with pytest.raises(RprocErrno) as info:
        system.rproc.boot()
    assert info.value.errno == errno.EIO
    assert (
        "err",
        "failed to authenticate image and release reset",
    ) in system.rproc.messages
    assert system.rproc.state == RprocState.OFFLINE and not system.remote.running
    assert _scm(system).xpu.locked == {}
    assert not system.memory.view_pa(CARVEOUT_PA, CARVEOUT_SIZE).any()  # wiped


def test_untrusted_image_and_missing_file(
    signer: TestSigner, other_signer: TestSigner
) -> None:
    system = _system(_split(other_signer), signer.root_sha256)
    with pytest.raises(RprocErrno) as info:
        system.rproc.boot()
    assert info.value.errno == errno.EIO
    assert ("err", "error -5 initializing firmware modem.mdt") in system.rproc.messages
    assert system.memory.writes == []  # nothing loaded before TrustZone said yes
    files = _split(signer)
    del files["modem.b02"]
    system = _system(files, signer.root_sha256)
    with pytest.raises(RprocErrno) as info:
        system.rproc.boot()
    assert info.value.errno == errno.ENOENT
    assert ("err", "error -2 loading modem.b02") in system.rproc.messages


def test_relocatable_image_larger_than_the_carveout(signer: TestSigner) -> None:
    big = build_image(
        segments(0) + [segments(CARVEOUT_SIZE)[0]], signer=signer, relocatable=True
    )
    system = _system(split_image(big, "modem.mdt"), None)
    with pytest.raises(RprocErrno) as info:
        system.rproc.boot()
    assert info.value.errno == errno.EINVAL
    assert ("err", "error -22 setting up firmware modem.mdt") in system.rproc.messages


def test_recovery_authenticates_again(signer: TestSigner) -> None:
    system = _system(_split(signer), signer.root_sha256)
    report = run_life(system, crash=CrashType.WATCHDOG)
    assert report.ok
    names = [c.name for c in _scm(system).calls]
    assert names == [
        "PAS_INIT_IMAGE",
        "PAS_AUTH_AND_RESET",
        "PAS_SHUTDOWN",
        "PAS_INIT_IMAGE",
        "PAS_AUTH_AND_RESET",
        "PAS_SHUTDOWN",
    ]
    assert system.remote.boot_count == 2


def test_same_firmware_same_memory_as_the_optee_path(signer: TestSigner) -> None:
    """OP-TEE's one-step load and the PAS two-step load leave identical memory."""
    from rproctee.firmware import Segment, build_elf
    from rproctee.image import KeySigner, generate_key, public_key_pem
    from rproctee.image import build_image as build_signed
    from rproctee.platform.board import PlatformSpec
    from rproctee.platform.memory import RegionSpec
    from rproctee.tee import TA_UUID, TeeContext, build_secure_world
    from rproctee.tee.params import memref_in, value_in
    from rproctee.tee.results import TeeResult
    from rproctee.tee.ta_remoteproc import TaCommand

    segs = segments()
    key = generate_key("p256")
    elf = build_elf(
        [
            Segment(f"s{i}", s.paddr, s.data, s.p_memsz, s.flags)
            for i, s in enumerate(segs)
            if s.data
        ]
    )
    region = RegionSpec("carveout", CARVEOUT_PA, CARVEOUT_PA, CARVEOUT_SIZE)
    spec = PlatformSpec(
        "side-by-side", (region,), accept_ecdsa=True, processor_ids=(0,)
    )
    world = build_secure_world(spec, policy="strict", key_pem=public_key_pem(key))
    session = TeeContext(world.core).open_session(TA_UUID, [value_in(0)])
    answer = session.invoke_command(
        TaCommand.LOAD_FW, [value_in(0), memref_in(build_signed([elf], KeySigner(key)))]
    )
    assert answer.result == TeeResult.TEE_SUCCESS
    pas = _system(
        split_image(
            build_image([s for s in segs if s.data], signer=signer), "modem.mdt"
        ),
        signer.root_sha256,
    )
    pas.rproc.boot()
    optee_mem = world.memory.view_pa(CARVEOUT_PA, CARVEOUT_SIZE)
    pas_mem = pas.memory.view_pa(CARVEOUT_PA, CARVEOUT_SIZE)
    assert optee_mem.any() and np.array_equal(optee_mem, pas_mem)
    # Who wrote: OP-TEE's secure side only; on the PAS path, Linux the file bytes.
    linux_writes = [
        e for e in pas.log.events if e.kind == "write" and e.layer == "linux"
    ]
    assert [w.name for w in linux_writes] == ["copy", "zero", "copy"]


def test_firmware_folder(tmp_path, signer: TestSigner) -> None:  # type: ignore[no-untyped-def]
    from rproctee.qcom import MdtFileError
    from rproctee.qcom.pas_ops import firmware_folder

    files = _split(signer)
    for name, blob in files.items():
        (tmp_path / name).write_bytes(blob)
    (tmp_path / "modem.b07").write_bytes(b"beyond e_phnum")  # not asked for
    assert firmware_folder(tmp_path / "modem.mdt") == files
    (tmp_path / "tiny").write_bytes(b"\x7fELF")
    assert firmware_folder(tmp_path / "tiny") == {"tiny": b"\x7fELF"}
    with pytest.raises(MdtFileError, match="nothing.mdt"):
        firmware_folder(tmp_path / "nothing.mdt")
