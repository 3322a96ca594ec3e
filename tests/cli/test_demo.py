"""``rproctee demo``: the README's main job, the whole life of a remote processor."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rproctee.cli import main
from rproctee.elf import scan_elf
from rproctee.firmware import demo_firmware


@pytest.mark.parametrize(("policy", "series"), [("strict", "v22"), ("optee", "v15")])
def test_demo_runs_the_whole_life(policy: str, series: str) -> None:
    result = CliRunner().invoke(
        main, ["demo", "--json", "--size-mib", "1", "--policy", policy,
               "--series", series],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 1
    demo = doc["life_demo"]
    life = demo["life"]
    assert demo["ok"] and life["ok"] and life["series"] == series
    assert [s["step"] for s in life["steps"]] == ["boot", "crash+recovery", "shutdown"]
    assert life["states"] == ["RUNNING", "CRASHED", "OFFLINE", "RUNNING", "OFFLINE"]
    assert [c["cmd"] for c in life["tee_calls"]][-2:] == ["STOP", "RELEASE_FW"]
    assert all(c["result"] == "TEE_SUCCESS" for c in life["tee_calls"])
    assert [e["type_name"] for e in life["rsc_table"]] == ["trace", "vdev"]
    assert life["trace"] == "cm4: firmware up (boot #1), rpmsg ready\n"
    assert life["crash"] == "watchdog" and life["coredump_bytes"] > 0
    # LOAD_FW wrote the same four ranges at boot and again at recovery
    ranges = [(s["op"], s["da"], s["bytes"]) for s in demo["segments"]]
    once = [("copy", 0x0, 0x1000), ("copy", 0x30000000, 0x10000),
            ("copy", 0x10000000, 0x100), ("zero", 0x10000100, 0x800)]  # fmt: skip
    assert ranges == once * 2
    phases = [p["phase"] for p in demo["phases"]]
    assert phases[:3] == ["keygen rsa2048", "build ELF", "sign"]
    assert phases[-3:] == ["boot", "crash+recovery", "shutdown"]
    rows = doc["kernels"]["rows"]
    assert all(row["gb_per_s"] > 0 for row in rows.values())


def test_demo_terminal_output() -> None:
    result = CliRunner().invoke(main, ["demo", "--size-mib", "0"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "states: OFFLINE -> RUNNING -> CRASHED -> OFFLINE -> RUNNING" in out
    assert "trace0: cm4: firmware up (boot #1), rpmsg ready" in out
    assert "recovered -> cm4: firmware up (boot #2)" in out
    assert "Where the time went" in out and "GB/s" in out
    assert "Kernels at scale" not in out


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
