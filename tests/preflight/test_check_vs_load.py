"""``check`` and ``load`` never disagree: one LOAD_FW, two callers.

For every crafted image of the hostile-input suite and every OP-TEE vector,
under both policies, the TEE verdict of :func:`rproctee.preflight.check_firmware`
is LOAD_FW's answer on a fresh world, result code and reason alike.
"""

from __future__ import annotations

import pytest

from rproctee.api import run_load
from rproctee.platform.board import PlatformSpec, load_platform
from rproctee.preflight import IMAGE_MAGIC, check_firmware
from rproctee.tee import build_secure_world
from security.crafted import CASES, Case
from security.images import PLATFORMS
from tee.factory import PUB_PEM, VECTORS

POLICIES = ("optee", "strict")
#: Cases whose answer depends on the caller's buffer changing during the load
#: or on TA options check does not take (heap size): not a pre-flight's input.
STATIC = [c for c in CASES if c.during is None and not c.world_kw]


def _load_answer(
    image: bytes, spec: PlatformSpec, policy: str, key: bytes
) -> tuple[str, str]:
    world = build_secure_world(spec, policy=policy, key_pem=key)
    result = run_load(world, image)
    return result.result, result.reason


def _is_input(image: bytes) -> bool:
    head = int.from_bytes(image[:4], "little") if len(image) >= 4 else 0
    return head == IMAGE_MAGIC or image[:4] == b"\x7fELF"


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("case", STATIC, ids=lambda c: c.name)
def test_crafted_image(case: Case, policy: str) -> None:
    image = case.image()
    if not _is_input(image):
        pytest.skip("neither a signed image nor an ELF: check refuses the input")
    spec = PlatformSpec(f"test-{case.platform}", PLATFORMS[case.platform])
    report = check_firmware(image, spec, policy=policy, key_pem=PUB_PEM)
    assert report.tee is not None
    assert (report.tee.result, report.tee.reason) == _load_answer(
        image, spec, policy, PUB_PEM
    )
    assert report.would_load == (report.tee.result == "TEE_SUCCESS")


VECTOR_KEYS = {
    "v01_rsa2048_fw1.sig": "rsa2048_pub.pem",
    "v06_ecp256_fw1.sig": "ecp256_pub.pem",
    "v07_rsa2048enc_fw1.sig": "rsa2048_enc_pub.pem",
    "v10_rsa2048_multi_fw1_fw2.sig": "rsa2048_pub.pem",
    "v11_rsa2048_fw2.sig": "rsa2048_pub.pem",
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", sorted(VECTOR_KEYS))
def test_optee_vector(name: str, policy: str) -> None:
    image = (VECTORS / "signed" / name).read_bytes()
    key = (VECTORS / "keys" / VECTOR_KEYS[name]).read_bytes()
    spec = load_platform("stm32mp15-dk2")
    report = check_firmware(image, spec, policy=policy, key_pem=key)
    assert report.tee is not None
    assert (report.tee.result, report.tee.reason) == _load_answer(
        image, spec, policy, key
    )


@pytest.mark.parametrize("policy", POLICIES)
def test_plain_elf_gets_the_verdict_of_its_signed_image(policy: str) -> None:
    """The issue's case: an ELF with p_paddr != p_vaddr for the segment that
    holds the table. check on the ELF and load of the signed ELF agree."""
    from rproctee.image import KeySigner, build_image, generate_key, public_key_pem
    from tee.factory import Seg, make_elf

    elf = make_elf([Seg(0x0, bytes(64) * 2), Seg(0x10000000, b"\x11" * 8, 0x208)])
    raw = bytearray(elf.raw)
    raw[52 + 8 : 52 + 12] = (0x10020000).to_bytes(4, "little")  # p_vaddr of seg 0
    spec = load_platform("stm32mp15-dk2")
    report = check_firmware(bytes(raw), spec, policy=policy)
    key = generate_key("rsa2048")
    signed = build_image([bytes(raw)], KeySigner(key))
    loaded = _load_answer(signed, spec, policy, public_key_pem(key))
    assert report.tee is not None and report.tee.result == loaded[0]
    assert any("p_vaddr 0x10020000" in f.message for f in report.findings)
