"""The PAS sequence view and the side-by-side ownership tables."""

from __future__ import annotations

from qcom_helpers import CARVEOUT_PA, CARVEOUT_SIZE, segments

from rproctee.linux.events import EventLog
from rproctee.linux.lifecycle import run_life
from rproctee.qcom import TestSigner, build_image, split_image
from rproctee.qcom.pas import Carveout
from rproctee.qcom.pas_ops import build_pas_system
from rproctee.qcom.sequence import ownership, pas_markdown, side_by_side


def _pas_log(signer: TestSigner) -> EventLog:
    files = split_image(build_image(segments(), signer=signer), "modem.mdt")
    system = build_pas_system(
        files,
        "modem.mdt",
        Carveout("mpss", CARVEOUT_PA, CARVEOUT_SIZE),
        trusted_root=signer.root_sha256,
    )
    assert run_life(system).ok
    return system.log


def test_pas_ownership(signer: TestSigner) -> None:
    rows = [(r.actor, r.action, r.holder) for r in ownership(_pas_log(signer).events)]
    assert rows[:5] == [
        ("Linux -> TrustZone", "SCM PAS_INIT_IMAGE", "none"),
        ("Linux", "4 writes, 0x3b21 bytes", "none"),
        ("Linux -> TrustZone", "SCM PAS_AUTH_AND_RESET", "none"),
        ("TrustZone", "XPU lock of the carveout", "XPU: Linux locked out"),
        ("TrustZone", "2 writes, 0x3000 bytes", "XPU: Linux locked out"),
    ]
    assert ("TrustZone", "XPU unlock of the carveout", "none") in rows
    assert {r.rsc_table for r in ownership(_pas_log(signer).events)} == {
        "none in the image"
    }


def test_pas_markdown(signer: TestSigner) -> None:
    text = pas_markdown(_pas_log(signer).events, "modem.mdt")
    assert "participant Z as TrustZone PAS" in text
    order = [
        text.index(s)
        for s in (
            "L->>Z: PAS_INIT_IMAGE",
            "L->>R: copy da 0x8c000000",
            "L->>Z: PAS_AUTH_AND_RESET",
            "Note over Z: XPU lock",
            "Z->>R: zero",
            "Note over R: on_start",
            "L->>Z: PAS_SHUTDOWN",
            "Note over Z: XPU unlock",
        )
    ]
    assert order == sorted(order)
    assert "| 4 | boot | TrustZone | XPU lock of the carveout |" in text


def test_side_by_side_with_the_tee_path(signer: TestSigner) -> None:
    from rproctee.firmware import demo_firmware
    from rproctee.image import KeySigner, generate_key, public_key_pem
    from rproctee.image import build_image as build_signed
    from rproctee.linux.system import build_system
    from rproctee.platform.presets import get_preset

    key = generate_key("p256")
    preset = get_preset("stm32mp15-dk2")
    import dataclasses

    spec = dataclasses.replace(preset, accept_ecdsa=True)
    tee = build_system(
        spec,
        build_signed([demo_firmware(16)], KeySigner(key)),
        key_pem=public_key_pem(key),
    )
    assert run_life(tee).ok
    tee_rows = ownership(tee.log.events)
    assert tee_rows[0].actor == "Linux -> OP-TEE" and tee_rows[0].rsc_table == "not yet"
    assert tee_rows[1].rsc_table == "authenticated with the segments (LOAD_FW)"
    assert tee_rows[1].actor in (
        "platform PTA",
        "remoteproc TA",
    )  # the secure side copies
    doc = side_by_side(_pas_log(signer).events, tee.log.events)
    assert (
        doc.index("## PAS") < doc.index("## OP-TEE") and "SCM PAS_AUTH_AND_RESET" in doc
    )


def test_compare_paths(signer: TestSigner) -> None:
    from rproctee.qcom.sequence import compare_paths

    carveout = Carveout("mpss", CARVEOUT_PA, CARVEOUT_SIZE)
    for base, reloc in ((CARVEOUT_PA, False), (0x1000_0000, True)):
        image = build_image(segments(base), signer=signer, relocatable=reloc)
        cmp = compare_paths(
            split_image(image, "modem.mdt"),
            "modem.mdt",
            carveout,
            trusted_root=signer.root_sha256,
        )
        assert (cmp.identical, cmp.pas_ok, cmp.tee_ok) == (True, True, True)
        assert (
            "SCM PAS_MEM_SETUP" in cmp.markdown
            if reloc
            else "PAS_MEM_SETUP" not in cmp.markdown
        )
    # A tampered segment: PAS refuses (and wipes); OP-TEE loads its own copy.
    files = split_image(build_image(segments(), signer=signer), "modem.mdt")
    files["modem.b04"] = b"\x00" + files["modem.b04"][1:]
    cmp = compare_paths(files, "modem.mdt", carveout, trusted_root=signer.root_sha256)
    assert (cmp.pas_ok, cmp.tee_ok, cmp.identical) == (False, True, False)
    assert cmp.first_difference == 1  # PAS wiped the carveout; code byte 0 is 0 anyway
