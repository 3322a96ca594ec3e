"""The two-step flow on a model carveout: init, load, auth-and-reset, shutdown."""

from __future__ import annotations

import errno

import numpy as np
import pytest
from qcom_helpers import (
    CARVEOUT_PA,
    CARVEOUT_SIZE,
    DDR,
    PAS_ID,
    no_files,
    patch_u32,
    phdr_offset,
    segments,
    service,
)

from rproctee.errors import AddressError
from rproctee.platform.memory import DeviceMemory
from rproctee.qcom import (
    PasAccessError,
    SegmentSpec,
    TestSigner,
    build_image,
    parse_image,
)
from rproctee.qcom import constants as c
from rproctee.qcom import mdt_loader as ml
from rproctee.qcom.pas import Carveout, PasService, PasState


def _boot(
    data: bytes, tz: PasService, name: str = "modem.mbn"
) -> tuple[int, list[str]]:
    """adsp_start's firmware part: pas_init, load_no_init, auth_and_reset."""
    log: list[str] = []
    ret = ml.qcom_mdt_pas_init(data, name, PAS_ID, CARVEOUT_PA, tz, no_files, log)
    if ret:
        return ret, log
    ret, _ = ml.qcom_mdt_load_no_init(
        data, name, tz.normal_world(), CARVEOUT_PA, CARVEOUT_SIZE, no_files, log
    )
    if ret:
        return ret, log
    return ml.qcom_scm_pas_auth_and_reset(tz, PAS_ID), log


@pytest.mark.parametrize("version", [3, 5, 6, 7])
@pytest.mark.parametrize("relocatable", [False, True])
def test_two_step_flow(signer: TestSigner, version: int, relocatable: bool) -> None:
    base = 0x2000_0000 if relocatable else CARVEOUT_PA
    data = build_image(
        segments(base), version=version, signer=signer, relocatable=relocatable
    )
    tz = service(signer.root_sha256)
    bus = tz.normal_world()
    assert _boot(data, tz) == (0, [])
    assert tz.state(PAS_ID) is PasState.RUNNING
    names = [call.name for call in tz.calls]
    assert names == ["PAS_INIT_IMAGE"] + ["PAS_MEM_SETUP"] * relocatable + [
        "PAS_AUTH_AND_RESET"
    ]
    # Linux is locked out of the whole carveout, reads and writes alike ...
    with pytest.raises(
        PasAccessError, match="normal-world write of \\[0x8c000000, \\+0x4\\)"
    ):
        bus.write(CARVEOUT_PA, b"evil")
    with pytest.raises(PasAccessError, match="read"):
        bus.read(CARVEOUT_PA + CARVEOUT_SIZE - 1, 1)
    with pytest.raises(PasAccessError):
        bus.zero(CARVEOUT_PA - 0x10, 0x20)  # straddling into it
    bus.write(CARVEOUT_PA + CARVEOUT_SIZE, b"ok")  # ... but not out of the rest
    # ... and a second load is refused the same way.
    with pytest.raises(PasAccessError):
        ml.qcom_mdt_load_no_init(
            data, "modem.mbn", bus, CARVEOUT_PA, CARVEOUT_SIZE, no_files, []
        )
    assert tz.memory.read_da(CARVEOUT_PA + 0x5000, 0x321) == b"\xa5" * 0x321
    assert ml.qcom_scm_pas_shutdown(tz, PAS_ID) == 0
    assert tz.state(PAS_ID) is PasState.IDLE
    # After shutdown Linux may read (coredump) and write again; nothing was wiped.
    assert bus.read(CARVEOUT_PA + 0x5000, 2) == b"\xa5\xa5"
    bus.write(CARVEOUT_PA, b"next")


def test_auth_hashes_what_linux_loaded(signer: TestSigner) -> None:
    data = build_image(segments(), version=6, signer=signer)
    tz = service(signer.root_sha256)
    log: list[str] = []
    assert (
        ml.qcom_mdt_pas_init(data, "m.mbn", PAS_ID, CARVEOUT_PA, tz, no_files, log) == 0
    )
    ml.qcom_mdt_load_no_init(
        data, "m.mbn", tz.normal_world(), CARVEOUT_PA, CARVEOUT_SIZE, no_files, log
    )
    tz.normal_world().write(CARVEOUT_PA + 0x10, b"\xcc")  # Linux changes a byte
    call = tz.auth_and_reset(PAS_ID)
    assert (call.status, call.ret) == (c.QCOM_SCM_ERROR, -errno.EIO)
    assert "segment 2 at 0x8c000000: loaded bytes hash to" in (call.reason or "")
    # The failure wiped and released the carveout, and forgot the image.
    assert tz.state(PAS_ID) is PasState.IDLE and tz.xpu.locked == {}
    assert not tz.memory.view_pa(CARVEOUT_PA, CARVEOUT_SIZE).any()
    assert tz.memory.writes[-1].op == "scrub"
    assert tz.auth_and_reset(PAS_ID).ret == -errno.EINVAL


def test_auth_zeroes_the_tails_itself(signer: TestSigner) -> None:
    data = build_image(segments(), version=6, signer=signer)
    tz = service(signer.root_sha256)
    log: list[str] = []
    ml.qcom_mdt_pas_init(data, "m.mbn", PAS_ID, CARVEOUT_PA, tz, no_files, log)
    ml.qcom_mdt_load_no_init(
        data, "m.mbn", tz.normal_world(), CARVEOUT_PA, CARVEOUT_SIZE, no_files, log
    )
    tz.normal_world().write(CARVEOUT_PA + 0x900, b"junk in .bss")  # no digest covers it
    assert tz.auth_and_reset(PAS_ID).ret == 0
    assert not tz.memory.view_pa(CARVEOUT_PA + 0x800, 0x2800).any()


def test_metadata_is_a_private_copy(signer: TestSigner) -> None:
    data = build_image(segments(), version=6, signer=signer)
    meta = bytearray(parse_image(data, "a").metadata)
    tz = service(signer.root_sha256)
    assert tz.init_image(PAS_ID, meta).ret == 0
    meta[60] ^= 0xFF  # Linux scribbles on its buffer after the call
    ml.qcom_mdt_load_no_init(
        data, "m.mbn", tz.normal_world(), CARVEOUT_PA, CARVEOUT_SIZE, no_files, []
    )
    assert tz.auth_and_reset(PAS_ID).ret == 0


def test_authentication_failures(signer: TestSigner, other_signer: TestSigner) -> None:
    tz = service(signer.root_sha256)
    foreign = parse_image(build_image(segments(), signer=other_signer), "a").metadata
    call = tz.init_image(PAS_ID, foreign)
    assert (call.ret, tz.state(PAS_ID)) == (-errno.EIO, PasState.IDLE)
    assert "is not the trusted root" in (call.reason or "")
    unsigned = parse_image(build_image(segments()), "a").metadata
    assert "unsigned image" in (tz.init_image(PAS_ID, unsigned).reason or "")
    # Without secure boot (no root fused) an unsigned image is accepted.
    assert service(None).init_image(PAS_ID, unsigned).ret == 0


def test_tampered_table_is_refused(signer: TestSigner) -> None:
    meta = bytearray(
        parse_image(build_image(segments(), version=5, signer=signer), "a").metadata
    )
    meta[52 + 5 * 32 + 40 + 2 * 32] ^= 1  # a digest of segment 2
    call = service(signer.root_sha256).init_image(PAS_ID, bytes(meta))
    assert call.ret == -errno.EIO and "does not verify" in (call.reason or "")


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        (lambda m: m[:51], "metadata: file size = 0x33"),
        (
            lambda m: patch_u32(m, phdr_offset(1, "p_flags"), 0),
            "needs a non-LOAD header",
        ),
        (lambda m: m + b"\0", r"phdr\[1\].p_filesz = .*the blob holds"),
        (
            lambda m: patch_u32(m, 24, 0x1),
            r"hash\[0\] = 0x0: does not match the ELF header",
        ),
        (
            lambda m: patch_u32(m, phdr_offset(0, "p_filesz"), 0x40),
            r"phdr\[0\].p_filesz = 0x40",
        ),
    ],
)
def test_malformed_metadata(signer: TestSigner, patch, reason: str) -> None:  # type: ignore[no-untyped-def]
    meta = parse_image(build_image(segments(), signer=signer), "a").metadata
    call = service(None).init_image(PAS_ID, patch(meta))
    assert (call.status, call.ret) == (c.QCOM_SCM_EINVAL_ARG, -errno.EINVAL)
    assert call.reason is not None
    import re

    assert re.search(reason, call.reason), call.reason


def test_overlapping_segments_are_refused(signer: TestSigner) -> None:
    segs = [
        SegmentSpec(CARVEOUT_PA, b"a" * 0x100),
        SegmentSpec(CARVEOUT_PA + 0x80, b"b"),
    ]
    meta = parse_image(build_image(segs, signer=signer), "a").metadata
    call = service(None).init_image(PAS_ID, meta)
    assert (
        call.ret == -errno.EINVAL
        and "phdr[3].p_paddr = 0x8c000080: overlaps segment 2" in (call.reason or "")
    )


def test_fixed_image_outside_the_carveout(signer: TestSigner) -> None:
    meta = parse_image(
        build_image(segments(base=CARVEOUT_PA + CARVEOUT_SIZE - 0x1000), signer=signer),
        "a",
    ).metadata
    call = service(None).init_image(PAS_ID, meta)
    assert (call.status, call.ret) == (c.QCOM_SCM_EINVAL_ADDR, -errno.EINVAL)
    assert "segment 2 [0x8c0ff000, +0x3000) is not inside carveout mpss" in (
        call.reason or ""
    )


def test_mem_setup_rules(signer: TestSigner) -> None:
    reloc = parse_image(
        build_image(segments(0), signer=signer, relocatable=True), "a"
    ).metadata
    fixed = parse_image(build_image(segments(), signer=signer), "a").metadata
    tz = service(None)
    assert tz.mem_setup(PAS_ID, CARVEOUT_PA, 0x6000).ret == -errno.EINVAL  # no init yet
    assert tz.init_image(PAS_ID, fixed).ret == 0
    assert "not relocatable" in (tz.mem_setup(PAS_ID, CARVEOUT_PA, 0x6000).reason or "")
    assert tz.init_image(PAS_ID, reloc).ret == 0  # re-init replaces the metadata
    assert "without PAS_MEM_SETUP" in (tz.auth_and_reset(PAS_ID).reason or "")
    outside = tz.mem_setup(PAS_ID, CARVEOUT_PA + CARVEOUT_SIZE - 0x1000, 0x6000)
    assert (outside.status, outside.ret) == (c.QCOM_SCM_EINVAL_ADDR, -errno.EINVAL)
    assert "smaller than the image span" in (
        tz.mem_setup(PAS_ID, CARVEOUT_PA, 0x5000).reason or ""
    )
    assert tz.mem_setup(PAS_ID, CARVEOUT_PA, 1 << 64).ret == -errno.EINVAL  # no wrap


def test_call_states_and_ids(signer: TestSigner) -> None:
    meta = parse_image(build_image(segments(), signer=signer), "a").metadata
    tz = service(None)
    assert tz.is_supported(PAS_ID).result == 1 and tz.is_supported(18).result == 0
    for call in (tz.init_image(18, meta), tz.auth_and_reset(18), tz.shutdown(18)):
        assert call.ret == -errno.EINVAL and "unknown PAS id 18" in (call.reason or "")
    assert tz.shutdown(PAS_ID).ret == -errno.EINVAL  # nothing to shut down
    assert tz.init_image(PAS_ID, meta).ret == 0
    assert tz.shutdown(PAS_ID).ret == 0  # from INITIALISED: drops the metadata
    assert tz.init_image(PAS_ID, meta).ret == 0
    assert tz.auth_and_reset(PAS_ID).ret == -errno.EIO  # nothing was loaded (zeros)
    assert tz.init_image(PAS_ID, meta).ret == 0
    ml.qcom_mdt_load_no_init(
        build_image(segments(), signer=signer),
        "m.mbn",
        tz.normal_world(),
        CARVEOUT_PA,
        CARVEOUT_SIZE,
        no_files,
        [],
    )
    assert tz.auth_and_reset(PAS_ID).ret == 0
    busy = tz.init_image(PAS_ID, meta)
    assert (busy.status, busy.ret) == (c.QCOM_SCM_V2_EBUSY, -errno.EBUSY)
    assert tz.auth_and_reset(PAS_ID).ret == -errno.EBUSY
    assert tz.calls[-1].to_dict()["status"] == "QCOM_SCM_V2_EBUSY"


def test_oversized_metadata(signer: TestSigner) -> None:
    call = service(None).init_image(PAS_ID, bytes((1 << 20) + 1))
    assert (call.status, call.ret) == (c.QCOM_SCM_ENOMEM, -errno.ENOMEM)


def test_carveout_must_be_memory() -> None:
    with pytest.raises(AddressError):
        PasService(
            DeviceMemory([DDR]),
            {1: Carveout("x", DDR.pa + DDR.size - 0x10, 0x20)},
            None,
        )


def test_remap_table() -> None:
    assert [c.qcom_scm_remap_error(s) for s in (-1, -2, -3, -4, -5, -12, -99)] == [
        -errno.EIO,
        -errno.EINVAL,
        -errno.EINVAL,
        -errno.EOPNOTSUPP,
        -errno.ENOMEM,
        -errno.EBUSY,
        -errno.EINVAL,
    ]


def test_sha256_auth_uses_the_shared_kernel(
    signer: TestSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rproctee import kernels

    seen: list[int] = []
    real = kernels.sha256_staged

    def spy(view: np.ndarray, *args: int) -> bytes:
        seen.append(len(view))
        return real(view, *args)

    monkeypatch.setattr(kernels, "sha256_staged", spy)
    data = build_image(segments(), version=5, signer=signer)
    assert _boot(data, service(signer.root_sha256)) == (0, [])
    assert seen == [0x800, 0x321]


def test_lock_comes_before_the_check(
    signer: TestSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Linux write racing with PAS_AUTH_AND_RESET faults: no TOCTOU window."""
    from rproctee import kernels

    data = build_image(segments(), version=5, signer=signer)  # SHA-256: the kernel
    tz = service(signer.root_sha256)
    log: list[str] = []
    ml.qcom_mdt_pas_init(data, "m.mbn", PAS_ID, CARVEOUT_PA, tz, no_files, log)
    ml.qcom_mdt_load_no_init(
        data, "m.mbn", tz.normal_world(), CARVEOUT_PA, CARVEOUT_SIZE, no_files, log
    )
    raced: list[Exception] = []
    real = kernels.sha256_staged

    def racing_hash(view: np.ndarray, *args: int) -> bytes:
        try:  # another CPU of the normal world writes while TrustZone hashes
            tz.normal_world().write(CARVEOUT_PA, b"\x00" * 4)
        except PasAccessError as exc:
            raced.append(exc)
        return real(view, *args)

    monkeypatch.setattr(kernels, "sha256_staged", racing_hash)
    assert tz.auth_and_reset(PAS_ID).ret == 0
    assert len(raced) == 2 and tz.memory.read_da(CARVEOUT_PA, 4) == bytes(range(4))


def test_observer_sees_every_call_in_order(signer: TestSigner) -> None:
    tz = service(None)
    seen: list[tuple[str, str]] = []
    tz.observer = lambda kind, name, detail: seen.append((kind, name))
    tz.is_supported(PAS_ID)
    tz.shutdown(PAS_ID)
    assert seen == [
        ("scm", "PAS_IS_SUPPORTED"),
        ("scm_ret", "PAS_IS_SUPPORTED"),
        ("scm", "PAS_SHUTDOWN"),
        ("scm_ret", "PAS_SHUTDOWN"),
    ]
    with pytest.raises(KeyError):
        tz.state(99)
