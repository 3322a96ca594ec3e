"""``rproctee boot --pas`` and the PAS coredump (rproc_da_to_va through the op).

The CLI runs the same life as the TEE path (``run_life``) and answers with
the same JSON keys; a coredump of a PAS processor reads the carveout through
``qcom_pas_da_to_va`` (the core asks the driver first, as the kernel does).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from elftools.elf.elffile import ELFFile
from qcom_helpers import CARVEOUT_PA, CARVEOUT_SIZE, PAS_ID, segments

from rproctee.cli import main
from rproctee.linux.coredump import ELFCLASS32, EM_NONE
from rproctee.linux.lifecycle import run_life
from rproctee.linux.state import CrashType, DumpConf
from rproctee.qcom import TestSigner, build_image, split_image
from rproctee.qcom.pas import Carveout
from rproctee.qcom.pas_ops import build_pas_system

CARVEOUT = f"{CARVEOUT_PA:#x}:{CARVEOUT_SIZE:#x}"
#: The JSON keys of ``rproctee boot`` on the TEE path.
BOOT_KEYS = {
    "ok", "platform", "series", "tee", "steps", "states", "tee_calls",
    "rsc_table", "rsc_table_error", "trace", "trace_after_recovery",
    "carveouts", "crash", "coredump", "coredump_bytes", "messages", "events",
}  # fmt: skip
SCM_BOOT = ["PAS_INIT_IMAGE", "PAS_AUTH_AND_RESET"]


def _loaded(base: int) -> dict[int, bytes]:
    """Each loadable segment of ``segments(base)`` once running: its file
    bytes, then the zero tail TrustZone fills up to ``p_memsz``."""
    return {
        base + 0x0000: bytes(range(256)) * 8 + bytes(0x3000 - 0x800),
        base + 0x4000: bytes(0x800),
        base + 0x5000: b"\xa5" * 0x321,
    }


def _dump_segments(core: bytes) -> dict[int, bytes]:
    elf = ELFFile(io.BytesIO(core))
    assert (elf.elfclass, elf["e_type"], elf["e_machine"]) == (32, "ET_CORE", "EM_NONE")
    return {s["p_vaddr"]: s.data() for s in elf.iter_segments()}


# -- the coredump -----------------------------------------------------------------


@pytest.mark.parametrize(
    "mode", [DumpConf.ENABLED, DumpConf.INLINE], ids=["enabled", "inline"]
)
@pytest.mark.parametrize("relocatable", [False, True], ids=["fixed", "relocatable"])
def test_pas_coredump_holds_the_loaded_segments(
    signer: TestSigner, mode: DumpConf, relocatable: bool
) -> None:
    """Recovery dumps after PAS_SHUTDOWN: the carveout's bytes, not 0xFF."""
    base = 0x1000_0000 if relocatable else CARVEOUT_PA
    image = build_image(
        segments(base), version=6, signer=signer, relocatable=relocatable
    )
    system = build_pas_system(
        split_image(image, "modem.mdt"),
        "modem.mdt",
        Carveout("mpss", CARVEOUT_PA, CARVEOUT_SIZE),
        trusted_root=signer.root_sha256,
        pas_id=PAS_ID,
    )
    system.rproc.coredump_set_elf_info(ELFCLASS32, EM_NONE)  # qcom_pas_probe
    report = run_life(system, crash=CrashType.WATCHDOG, coredump_mode=mode)
    assert report.ok, report.steps
    (core,) = system.rproc.coredumps
    # Segments at the firmware's own addresses (p_paddr), read where
    # mdt_loader put them (relocated images: shifted to the carveout).
    assert _dump_segments(core) == _loaded(base)
    assert not any("invalid copy request" in t for _, t in system.rproc.messages)


# -- the command line ----------------------------------------------------------------


@pytest.fixture
def mdt(tmp_path: Path, signer: TestSigner) -> Path:
    """A split set modem.mdt + modem.bNN in its own folder."""
    folder = tmp_path / "fw"
    folder.mkdir()
    image = build_image(segments(), version=6, signer=signer)
    for name, blob in split_image(image, "modem.mdt").items():
        (folder / name).write_bytes(blob)
    return folder / "modem.mdt"


def _boot(*args: str) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(main, ["boot", *args])
    doc = json.loads(result.stdout) if "--json" in args and result.stdout else {}
    return result.exit_code, doc, result.output


def test_boot_pas_json_has_the_tee_paths_keys(mdt: Path, signer: TestSigner) -> None:
    root = signer.root_sha256.hex()
    code, doc, _ = _boot(str(mdt), "--pas", "--carveout", CARVEOUT, "--root", root,
                         "--json")  # fmt: skip
    assert code == 0 and doc["ok"]
    assert BOOT_KEYS <= set(doc)
    assert doc["states"] == ["RUNNING", "OFFLINE"]
    assert [c["cmd"] for c in doc["tee_calls"]] == [*SCM_BOOT, "PAS_SHUTDOWN"]
    first = doc["tee_calls"][0]
    assert {"cmd", "id", "result"} <= set(first)
    assert (first["id"], first["result"], first["ret"]) == (4, "QCOM_SCM_SUCCESS", 0)
    assert doc["tee"] is False and doc["series"] is None
    assert doc["rsc_table"] is None and doc["trace"] == ""  # MDT images have none
    assert doc["carveouts"] == [
        {"name": "carveout", "da": CARVEOUT_PA, "pa": CARVEOUT_PA, "len": CARVEOUT_SIZE}
    ]
    assert doc["pas"] == {"rproc": "modem", "pas_id": 4, "secure_boot": True}
    scm = [e for e in doc["events"] if e["kind"] == "scm"]
    assert [e["name"] for e in scm] == [*SCM_BOOT, "PAS_SHUTDOWN"]


def test_boot_pas_crash_coredump_and_sequence(mdt: Path, tmp_path: Path) -> None:
    core, seq = tmp_path / "core.elf", tmp_path / "seq.md"
    code, doc, _ = _boot(str(mdt), "--pas", "--carveout", CARVEOUT, "--crash",
                         "watchdog", "--coredump", str(core), "--sequence", str(seq),
                         "--json")  # fmt: skip
    assert code == 0, doc
    assert doc["states"] == ["RUNNING", "CRASHED", "OFFLINE", "RUNNING", "OFFLINE"]
    assert [c["cmd"] for c in doc["tee_calls"]] == 2 * [*SCM_BOOT, "PAS_SHUTDOWN"]
    assert doc["pas"]["secure_boot"] is False and doc["coredump"] == str(core)
    assert doc["coredump_bytes"] == len(core.read_bytes())
    assert _dump_segments(core.read_bytes()) == _loaded(CARVEOUT_PA)
    assert doc["sequence"] == str(seq)
    text = seq.read_text()
    assert text.startswith("# modem.mdt: PAS boot\n")
    assert "participant Z as TrustZone PAS" in text
    assert "L->>Z: PAS_INIT_IMAGE" in text and "XPU lock carveout 0x8c000000" in text
    assert "| # | phase | who | what | lock on firmware memory |" in text


def test_boot_pas_root_as_a_certificate_file(
    mdt: Path, tmp_path: Path, signer: TestSigner, other_signer: TestSigner
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from rproctee.qcom.certs import split_chain

    ders = split_chain(signer.chain)
    chain_pem = tmp_path / "chain.pem"
    chain_pem.write_bytes(
        b"".join(
            x509.load_der_x509_certificate(d).public_bytes(Encoding.PEM) for d in ders
        )
    )
    root_der = tmp_path / "root.der"
    root_der.write_bytes(ders[-1])
    for cert in (chain_pem, root_der):
        code, doc, _ = _boot(str(mdt), "--pas", "--carveout", CARVEOUT, "--root",
                             str(cert), "--json")  # fmt: skip
        assert code == 0 and doc["pas"]["secure_boot"], (cert, doc)
    # The attestation certificate alone is no root: refused before booting.
    leaf = tmp_path / "leaf.der"
    leaf.write_bytes(ders[0])
    code, _, out = _boot(str(mdt), "--pas", "--carveout", CARVEOUT, "--root", str(leaf))
    assert code == 2 and "leaf.der: the last certificate" in out
    assert "is not self-signed" in out
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a certificate")
    code, _, out = _boot(str(mdt), "--pas", "--carveout", CARVEOUT, "--root", str(junk))
    assert code == 2 and "junk.pem: not a PEM or DER certificate" in out
    # Another root: TrustZone refuses PAS_INIT_IMAGE, exit 7, nothing loaded.
    other = other_signer.root_sha256.hex()
    code, doc, _ = _boot(str(mdt), "--pas", "--carveout", CARVEOUT, "--root", other,
                         "--json")  # fmt: skip
    assert code == 7 and doc["ok"] is False and doc["states"] == []
    (call,) = doc["tee_calls"]
    assert (call["cmd"], call["result"], call["ret"]) == (
        "PAS_INIT_IMAGE", "QCOM_SCM_ERROR", -5,
    )  # fmt: skip
    assert "is not the trusted root" in call["reason"]
    assert doc["carveouts"] == []  # never booted
    assert not [e for e in doc["events"] if e["kind"] == "write"]


def test_boot_pas_text_output(mdt: Path, other_signer: TestSigner) -> None:
    code, _, out = _boot(str(mdt), "--pas", "--carveout", CARVEOUT)
    assert code == 0, out
    head = "remoteproc modem on qcom-pas: qcom_q6v5_pas, PAS id 4, secure boot off"
    assert head in out
    assert "SCM calls: PAS_INIT_IMAGE=SUCCESS, PAS_AUTH_AND_RESET=SUCCESS, " in out
    assert "carveout     da 0x8c000000  pa 0x8c000000  len 0x100000" in out
    code, _, out = _boot(str(mdt), "--pas", "--carveout", CARVEOUT, "--root",
                         other_signer.root_sha256.hex())  # fmt: skip
    assert code == 7
    assert "SCM calls: PAS_INIT_IMAGE=ERROR (authentication failed: " in out


def test_boot_pas_linux_side_failure_is_exit_1(mdt: Path) -> None:
    """A missing .bNN: Linux fails the load, TrustZone refused nothing."""
    (mdt.parent / "modem.b04").unlink()
    code, doc, _ = _boot(str(mdt), "--pas", "--carveout", CARVEOUT, "--json")
    assert code == 1 and doc["ok"] is False
    assert [c["cmd"] for c in doc["tee_calls"]] == ["PAS_INIT_IMAGE"]
    assert ("err", "error -2 loading modem.b04") in {
        (m["level"], m["text"]) for m in doc["messages"]
    }


def test_boot_pas_tampered_segment_is_exit_7(mdt: Path, signer: TestSigner) -> None:
    blob = bytearray((mdt.parent / "modem.b02").read_bytes())
    blob[0] ^= 0xFF
    (mdt.parent / "modem.b02").write_bytes(bytes(blob))
    code, doc, _ = _boot(str(mdt), "--pas", "--carveout", CARVEOUT, "--root",
                         signer.root_sha256.hex(), "--json")  # fmt: skip
    assert code == 7
    assert [(c["cmd"], c["result"]) for c in doc["tee_calls"]] == [
        ("PAS_INIT_IMAGE", "QCOM_SCM_SUCCESS"),
        ("PAS_AUTH_AND_RESET", "QCOM_SCM_ERROR"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pas"], "--pas needs --carveout BASE:SIZE"),
        (["--pas", "--carveout", CARVEOUT, "-p", "stm32mp15-dk2"],
         "--platform does not apply to --pas"),
        (["--pas", "--carveout", CARVEOUT, "--series", "v15"],
         "--series does not apply to --pas"),
        (["--pas", "--carveout", CARVEOUT, "--no-tee"],
         "--no-tee does not apply to --pas"),
        (["--carveout", CARVEOUT, "-p", "stm32mp15-dk2"],
         "--carveout is for --pas only"),
        (["--root", "ab" * 32, "-p", "stm32mp15-dk2"], "--root is for --pas only"),
        ([], "--platform is required (unless --pas)"),
        (["--pas", "--carveout", "0x8c000000"], "'0x8c000000' is not BASE:SIZE"),
        (["--pas", "--carveout", "0:0x40000001"], "is larger than 0x40000000"),
        (["--pas", "--carveout", CARVEOUT, "--root", "abcd"],
         "'abcd' is neither 64 hex digits (a SHA-256) nor a certificate file"),
    ],
)  # fmt: skip
def test_boot_pas_usage_errors(mdt: Path, args: list[str], message: str) -> None:
    code, _, out = _boot(str(mdt), *args)
    assert code == 2 and message in out, out


def test_boot_pas_missing_file_is_an_io_error(tmp_path: Path) -> None:
    code, _, out = _boot(str(tmp_path / "none.mdt"), "--pas", "--carveout", CARVEOUT)
    assert code == 3 and "none.mdt: No such file or directory" in out
