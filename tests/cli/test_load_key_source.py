"""``rproctee load`` says which key the PTA verifies with."""

from __future__ import annotations

import json

from click.testing import CliRunner

from rproctee.cli import main


def _load(test_data, *args):
    image = test_data / "vectors/optee/signed/v01_rsa2048_fw1.sig"
    return CliRunner().invoke(main, ["load", str(image), "--json", *args])


def test_preset_key_is_announced_as_the_optee_development_key(test_data):
    result = _load(test_data, "-p", "stm32mp15-dk2")
    doc = json.loads(result.stdout)
    assert result.exit_code == 7
    assert doc["result"] == "TEE_ERROR_SIGNATURE_INVALID"  # signed with another key
    assert "development key" in doc["key"]
    assert "development key" in result.stderr


def test_device_tree_without_key_names_the_missing_key(test_data):
    dtb = test_data / "dts/stm32mp157c-dk2.dtb"
    result = _load(test_data, "-p", str(dtb))
    doc = json.loads(result.stdout)
    assert doc["result"] == "TEE_ERROR_SIGNATURE_INVALID"
    assert "--key" in doc["reason"]
    assert doc["key"].startswith("none")


def test_device_tree_with_key_loads(test_data):
    dtb = test_data / "dts/stm32mp157c-dk2.dtb"
    pub = test_data / "vectors/optee/keys/rsa2048_pub.pem"
    result = _load(test_data, "-p", str(dtb), "--key", str(pub))
    doc = json.loads(result.stdout)
    assert result.exit_code == 0
    table = doc["rsc_table"]
    assert (table["pa"], table["size"]) == (0x38000038, 0x44)
    assert table["decoded"]["entries"][0]["name"] == "cm4_log"
    assert doc["key"] == str(pub)
