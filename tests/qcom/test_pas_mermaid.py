"""The shared Mermaid diagram draws the PAS path with a TrustZone lane.

``rproctee.linux.mermaid`` puts ``scm``/``scm_ret``/``xpu`` events and the
writes of the ``trustzone`` layer in lane ``Z``; in a PAS run (no TEE
driver) writes logged under ``tee`` are TrustZone's too.  TEE and plain-ELF
runs keep their lanes (``docs/lifecycle.md`` is unchanged).
"""

from __future__ import annotations

import pytest
from qcom_helpers import CARVEOUT_PA, CARVEOUT_SIZE, PAS_ID, segments

from rproctee.linux.errors import RprocErrno
from rproctee.linux.events import LAYERS, EventLog
from rproctee.linux.mermaid import sequence_diagram
from rproctee.linux.system import System
from rproctee.qcom import TestSigner, build_image, split_image
from rproctee.qcom.pas import Carveout
from rproctee.qcom.pas_ops import build_pas_system


def _participants(text: str) -> list[str]:
    lines = text.splitlines()
    return [line.split()[1] for line in lines if line.startswith("    participant")]


def _pas_run(signer: TestSigner, root: bytes | None) -> System:
    image = build_image(segments(), version=6, signer=signer)
    return build_pas_system(
        split_image(image, "modem.mdt"),
        "modem.mdt",
        Carveout("mpss", CARVEOUT_PA, CARVEOUT_SIZE),
        trusted_root=root,
        pas_id=PAS_ID,
    )


def test_pas_boot_and_shutdown_in_the_trustzone_lane(signer: TestSigner) -> None:
    system = _pas_run(signer, signer.root_sha256)
    with system.log.in_phase("boot"):
        system.rproc.boot()
    with system.log.in_phase("shutdown"):
        system.rproc.shutdown()
    text = sequence_diagram(system.log.events, "modem.mdt")
    assert _participants(text) == ["L", "Z", "R"]  # no TEE driver, TA or PTA
    assert "    participant Z as TrustZone (PAS)" in text
    body = [line.strip() for line in text.splitlines()]
    init = next(line for line in body if line.startswith("L->>Z: PAS_INIT_IMAGE"))
    assert init.startswith("L->>Z: PAS_INIT_IMAGE (PAS id 4) 0x")
    order = [
        init,
        "Z-->>L: PAS_INIT_IMAGE = 0",
        "L->>R: copy da 0x8c000000 +0x800",
        "L->>Z: PAS_AUTH_AND_RESET (PAS id 4)",
        "Note over Z: XPU lock of pa 0x8c000000 +0x100000",
        "Z->>R: zero da 0x8c000800 +0x2800",  # TrustZone zero-fills the tails
        "Z-->>L: PAS_AUTH_AND_RESET = 0",
        "L->>Z: PAS_SHUTDOWN (PAS id 4)",
        "Note over Z: XPU unlock of pa 0x8c000000 +0x100000",
        "Z-->>L: PAS_SHUTDOWN = 0",
    ]
    assert [body.index(line) for line in order] == sorted(
        body.index(line) for line in order
    )
    assert not any(line.startswith(("D", "L->>D")) for line in body)


def test_a_refused_call_shows_its_reason(
    signer: TestSigner, other_signer: TestSigner
) -> None:
    system = _pas_run(signer, other_signer.root_sha256)
    with pytest.raises(RprocErrno, match="qcom_mdt_pas_init"):
        system.rproc.boot()
    text = sequence_diagram(system.log.events)
    (ret,) = [line for line in text.splitlines() if "Z-->>L" in line]
    assert ret.startswith("    Z-->>L: PAS_INIT_IMAGE = -5 (authentication failed: ")
    assert "XPU" not in text  # nothing was locked


def test_the_trustzone_layer() -> None:
    assert "trustzone" in LAYERS
    log = EventLog()
    log.add("trustzone", "scm", "PAS_SHUTDOWN", pas_id=1, args=[])
    log.add("trustzone", "xpu", "unlock", pas_id=1, pa=0x1000, len=0x100)
    log.add("trustzone", "write", "scrub", da=0x1000, pa=0x1000, len=0x100)
    log.add("trustzone", "scm_ret", "PAS_SHUTDOWN", pas_id=1, ret=0, reason=None)
    text = sequence_diagram(log.events)
    assert _participants(text) == ["L", "Z", "R"]
    assert text.splitlines()[4:] == [
        "    L->>Z: PAS_SHUTDOWN (PAS id 1)",
        "    Note over Z: XPU unlock of pa 0x1000 +0x100",
        "    Z->>R: scrub da 0x1000 +0x100",
        "    Z-->>L: PAS_SHUTDOWN = 0",
    ]
    with pytest.raises(ValueError, match="'tz' is not one of .*trustzone"):
        log.add("tz", "scm", "x")


def test_tee_writes_stay_in_the_tee_driver_lane_without_scm_events() -> None:
    log = EventLog()
    log.add("tee", "write", "copy", da=0x10, pa=0x10, len=4)
    last = sequence_diagram(log.events).splitlines()[-1]
    assert last == "    D->>R: copy da 0x10 +0x4"
