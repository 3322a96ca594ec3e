"""``rproctee demo``: the README's main job signs and securely loads firmware."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rproctee.cli import main
from rproctee.elf import scan_elf
from rproctee.firmware import demo_firmware


@pytest.mark.parametrize("policy", ["strict", "optee"])
def test_demo_loads_the_signed_firmware(policy):
    result = CliRunner().invoke(
        main, ["demo", "--json", "--size-mib", "1", "--policy", policy]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    secure = doc["secure_load"]
    assert doc["schema_version"] == 1
    assert secure["result"] == "TEE_SUCCESS"
    assert (secure["rsc_table"]["pa"], secure["rsc_table"]["size"]) == (0x38000200, 140)
    assert [e["type"] for e in secure["rsc_table_decoded"]] == ["trace", "vdev"]
    assert [(w["op"], w["da"], w["pa"], w["len"]) for w in secure["writes"]] == [
        ("copy", 0x0, 0x38000000, 0x1000),
        ("copy", 0x30000000, 0x30000000, 0x10000),
        ("copy", 0x10000000, 0x10000000, 0x100),
        ("zero", 0x10000100, 0x10000100, 0x800),
    ]
    rows = doc["kernels"]["rows"]
    assert all(row["gb_per_s"] > 0 for row in rows.values())


def test_demo_terminal_output():
    result = CliRunner().invoke(main, ["demo", "--size-mib", "0"])
    assert result.exit_code == 0, result.output
    assert "TEE_SUCCESS" in result.output
    assert "Where the time went" in result.output


def test_demo_firmware_is_a_well_formed_cortex_m_elf():
    elf = scan_elf(demo_firmware(4))
    assert (elf.elf_class, elf.data, elf.machine, elf.type) == (32, 1, 40, 2)
    assert elf.entry & 1  # Thumb entry point
    index = elf.find_section(".resource_table")
    assert index is not None
    assert int(elf.shdrs["sh_addr"][index]) == 0x200


def test_demo_firmware_reads_the_same_in_pyelftools():
    import io

    from elftools.elf.elffile import ELFFile

    raw = demo_firmware(4)
    ref = ELFFile(io.BytesIO(raw))
    names = [s.name for s in ref.iter_sections()]
    assert names == ["", ".isr_vector", ".text", ".data", ".bss", ".resource_table",
                     ".shstrtab"]  # fmt: skip
    loads = [(s["p_paddr"], s["p_filesz"], s["p_memsz"]) for s in ref.iter_segments()]
    assert loads == [(0x0, 0x1000, 0x1000), (0x30000000, 0x1000, 0x1000),
                     (0x10000000, 0x100, 0x900)]  # fmt: skip
    rsc = ref.get_section_by_name(".resource_table")
    assert rsc.data()[:4] == b"\x01\x00\x00\x00"
