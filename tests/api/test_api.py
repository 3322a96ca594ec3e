"""``rproctee.load`` and friends: the one-call Python API (issue 9 item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

import rproctee
from rproctee.api import ApiError, LoadResult
from rproctee.firmware import demo_firmware
from rproctee.image import KeySigner, build_image, generate_key, public_key_pem
from rproctee.image.keys import PrivateKey
from rproctee.platform.board import PlatformError
from rproctee.rsctable import ResourceTable, TraceRsc


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return generate_key("p256")


@pytest.fixture(scope="module")
def image(key: PrivateKey) -> bytes:
    return build_image([demo_firmware(16)], KeySigner(key))


def _load(image: bytes, key: PrivateKey, **kwargs: object) -> LoadResult:
    return rproctee.load(
        image, platform="stm32mp15-dk2", key=public_key_pem(key),
        accept_ecdsa=True, **kwargs,
    )  # fmt: skip


def test_load_returns_the_result_the_writes_and_the_decoded_table(
    image: bytes, key: PrivateKey
) -> None:
    result = _load(image, key)
    assert (result.result, result.code, result.reason) == ("TEE_SUCCESS", 0, "")
    assert result.ok and result.policy == "strict"
    assert {w.region for w in result.writes} >= {"retram", "mcuram2"}
    assert all(result.world.platform.region(w.region).pa <= w.pa for w in result.writes)
    assert isinstance(result.rsc_table, ResourceTable)
    assert result.rsc_table_address == (0x38000200, result.rsc_table.size)
    assert [type(e) for e in result.rsc_table.entries][:1] == [TraceRsc]
    phases = [t.phase for t in result.timings]
    assert phases[:2] == ["open_session", "LOAD_FW"] and phases[-1] == "GET_RSC_TABLE"
    assert any(p.startswith("LOAD_FW.") for p in phases)
    doc = result.to_dict()
    assert doc["rsc_table"]["entries"][0]["type_name"] == "trace"
    assert doc["writes"][0]["region"] == "retram"


def test_a_refusal_is_a_result_not_an_exception(image: bytes, key: PrivateKey) -> None:
    refused = rproctee.load(image, platform="stm32mp15-dk2", policy="optee")
    assert not refused.ok and refused.result == "TEE_ERROR_NOT_SUPPORTED"
    assert refused.code == 0xFFFF000A and "not supported" in refused.reason
    assert refused.writes == () and refused.rsc_table is None


def test_paths_key_objects_and_platform_specs(
    tmp_path: Path, image: bytes, key: PrivateKey
) -> None:
    img = tmp_path / "fw.img"
    img.write_bytes(image)
    pub = tmp_path / "key.pub"
    pub.write_bytes(public_key_pem(key))
    spec = rproctee.load_platform("stm32mp15-dk2")
    by_path = rproctee.load(img, platform=spec, key=pub, accept_ecdsa=True)
    by_object = rproctee.load(
        str(img), platform=spec, key=key.public_key(), accept_ecdsa=True
    )
    assert by_path.writes == by_object.writes and by_path.ok


def test_bad_arguments_name_themselves(image: bytes) -> None:
    with pytest.raises(ApiError, match="image: expected bytes or a file path"):
        rproctee.load(42)  # type: ignore[arg-type]
    with pytest.raises(ApiError, match="key: bytes given are not PEM"):
        rproctee.load(image, key=b"not a key")
    with pytest.raises(PlatformError, match="unknown platform 'nope'"):
        rproctee.load(image, platform="nope")
    with pytest.raises(ApiError, match="policy 'lax' unknown"):
        rproctee.load(image, policy="lax")


def test_table_that_is_not_valid_in_memory_is_reported(
    image: bytes, key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rproctee import api

    def garbage(world: object, where: tuple[int, int] | None) -> object:
        return None, "bytes at pa 0x38000200 (size 0x8c) are not a table: ver 0"

    monkeypatch.setattr(api, "_decode_table", garbage)
    result = _load(image, key)
    assert result.ok and result.rsc_table is None
    assert "not a table" in (result.rsc_table_error or "")


def test_open_session_for_xtest_style_calls(image: bytes, key: PrivateKey) -> None:
    from rproctee.tee import TaCommand, TeeClientError, TeeResult, value_in

    world = rproctee.secure_world(
        "stm32mp15-dk2", key=public_key_pem(key), accept_ecdsa=True
    )
    with rproctee.open_session(world) as session:
        answer = session.invoke_command(TaCommand.START_FW, [value_in(0)])
        assert answer.result == TeeResult.TEE_ERROR_BAD_PARAMETERS
    with pytest.raises(TeeClientError):
        rproctee.open_session(world, rproc_id=7)


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_change_nothing_but_time(
    image: bytes, key: PrivateKey, threads: int
) -> None:
    base, other = _load(image, key), _load(image, key, threads=threads)
    assert other.world.core.threads == threads
    assert (other.result, other.reason, other.writes) == (
        base.result, base.reason, base.writes,
    )  # fmt: skip
    assert other.rsc_table == base.rsc_table


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_threads_must_be_a_positive_integer(
    image: bytes, key: PrivateKey, threads: object
) -> None:
    with pytest.raises(ApiError, match="threads"):
        _load(image, key, threads=threads)


def test_profile_says_where_the_time_went(image: bytes, key: PrivateKey) -> None:
    result = _load(image, key)
    rows = {r["what"]: r for r in result.profile()}
    copied = sum(w.len for w in result.writes if w.op == "copy")
    assert rows["copy+hash"]["bytes"] == copied > 0
    assert rows["copy+hash"]["gb_per_s"] > 0
    for what in ("signature check", "ELF parse and checks", "load step (wall)"):
        assert rows[what]["seconds"] >= 0
    # the platform's prefault is its own row, not a first touch of the load
    prefault = [w for w in rows if w.startswith("prefault at platform build")]
    assert len(prefault) == len(result.world.memory.regions)
    assert "first touch" not in rows
