"""``rproctee boot --emulate`` and ``rproctee demo --emulate``: firmware executed.

The test firmware of ``tests/emu/fw`` (committed ELFs) runs on the emulated
Cortex-M core behind the Linux side; the packaged ``fw_virtio`` is what
``demo --emulate`` boots.
"""

from __future__ import annotations

import importlib.util
import io
import json
import struct
import sys
from pathlib import Path

import pytest
from cli_helpers import KEYS
from click.testing import CliRunner, Result
from elftools.elf.elffile import ELFFile

from rproctee.cli import main
from rproctee.image import KeySigner, build_image, load_private_key

FW = Path(__file__).resolve().parents[1] / "emu" / "fw"
needs_unicorn = pytest.mark.skipif(
    importlib.util.find_spec("unicorn") is None,
    reason="the emulated core needs unicorn 2.x (pip install 'rproctee[emu]')",
)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def symbol(name: str, elf: str) -> int:
    """Address of ``name`` in a test firmware (Thumb bit cleared)."""
    with (FW / f"{elf}.elf").open("rb") as f:
        table = ELFFile(f).get_section_by_name(".symtab")
        return int(table.get_symbol_by_name(name)[0]["st_value"]) & ~1


def signed(tmp_path: Path, name: str) -> Path:
    """``tests/emu/fw/<name>.elf`` signed with the vectors' RSA-2048 key."""
    key = load_private_key((KEYS / "rsa2048.pem").read_bytes())
    image = build_image([(FW / f"{name}.elf").read_bytes()], KeySigner(key))  # type: ignore[arg-type]
    out = tmp_path / f"{name}.img"
    out.write_bytes(bytes(image))
    return out


def prstatus_pc(core: bytes) -> int:
    """The pc of the first ``NT_PRSTATUS`` note of an ELF32 core."""
    elf = ELFFile(io.BytesIO(core))
    seg = next(s for s in elf.iter_segments() if s["p_type"] == "PT_NOTE")
    note = next(n for n in seg.iter_notes() if n["n_type"] == "NT_PRSTATUS")
    desc = note["n_desc"]
    raw = desc if isinstance(desc, bytes) else desc.encode("latin-1")
    return int(struct.unpack_from("<18I", raw, 72)[15])


# -- without unicorn ---------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ("boot", FW / "fw_virtio.elf", "--no-tee", "-p", "stm32mp15-dk2", "--emulate"),
        ("demo", "--emulate"),
    ],
)
def test_missing_unicorn_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str | Path, ...]
) -> None:
    monkeypatch.setitem(sys.modules, "unicorn", None)  # import unicorn fails
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "pip install 'rproctee[emu]'" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ticks", "3"), "--ticks is for --emulate only"),
        (("--emulate", "--ticks", "0"), "0 is not in the range x>=1"),
    ],
)
def test_boot_emulate_usage_errors(args: tuple[str, ...], message: str) -> None:
    result = run("boot", FW / "fw_virtio.elf", "--no-tee", "-p", "stm32mp15-dk2",
                 *args)  # fmt: skip
    assert result.exit_code == 2
    assert message in result.stderr


def test_boot_emulate_is_not_for_pas(tmp_path: Path) -> None:
    fw = tmp_path / "fw.mdt"
    fw.write_bytes(b"")
    result = run("boot", fw, "--pas", "--carveout", "0x8b000000:0x100000",
                 "--emulate")  # fmt: skip
    assert result.exit_code == 2
    assert "--emulate does not apply to --pas" in result.stderr


def test_packaged_demo_firmware_is_the_test_firmware() -> None:
    from rproctee.emu.demo import packaged_firmware

    assert packaged_firmware() == (FW / "fw_virtio.elf").read_bytes()


# -- boot --emulate ------------------------------------------------------------------
@needs_unicorn
@pytest.mark.parametrize("series", ["v15", "v22"])
def test_boot_emulate_runs_the_signed_firmware(tmp_path: Path, series: str) -> None:
    image = signed(tmp_path, "fw_virtio")
    result = run("boot", image, "-p", "stm32mp15-dk2", "--key",
                 KEYS / "rsa2048_pub.pem", "--series", series, "--emulate",
                 "--ticks", "3", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["states"] == ["RUNNING", "OFFLINE"]
    assert [s["step"] for s in doc["steps"]] == ["boot", "run", "shutdown"]
    assert doc["trace"] == "cm4: virtio firmware up\n"  # debugfs trace0
    vdev = next(e for e in doc["rsc_table"] if e["type_name"] == "vdev")
    assert vdev["status"] == 4  # DRIVER_OK, stored by the firmware's own code
    emu = doc["emulator"]
    assert emu["cpu"] == "cortex-m4" and emu["ticks"] == 3
    assert emu["ticks_per_run"] == 3 and emu["doorbells"] == 1
    assert emu["trace_lines"] == ["cm4: virtio firmware up"] and emu["crashes"] == []
    assert emu["instructions"] >= 0 and emu["instructions_per_second"] >= 0
    # the lines were streamed as they came, on stderr under --json
    assert "[m4 trace0] cm4: virtio firmware up" in result.stderr


@needs_unicorn
def test_boot_emulate_streams_uart_and_trace_then_reports(tmp_path: Path) -> None:
    result = run("boot", FW / "fw_uart.elf", "--no-tee", "-p", "stm32mp15-dk2",
                 "--emulate", "--ticks", "3")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    first = out.index("[m4 uart] hello from the M4 uart")
    assert first < out.index("[m4 trace0] cm4: systick wrapped")
    assert first < out.index("remoteproc m4 on stm32mp15-dk2: plain ELF ops")
    assert "emulated cortex-m4: " in out and " instructions/s; 3 ticks" in out
    assert "2 UART lines" in out


@needs_unicorn
def test_boot_emulate_fault_is_recovered_and_dumped(tmp_path: Path) -> None:
    core_path = tmp_path / "m4.core"
    result = run("boot", FW / "fw_fault_bus.elf", "--no-tee", "-p", "stm32mp15-dk2",
                 "--emulate", "--ticks", "2", "--coredump", core_path,
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    fault_insn = symbol("fault_insn", "fw_fault_bus")
    emu = doc["emulator"]
    assert [c["kind"] for c in emu["crashes"]] == ["bus fault"] * 2  # each boot
    assert all(c["registers"]["pc"] == fault_insn for c in emu["crashes"])
    assert doc["crash"] == "mmufault" and emu["coredumps"] == 2
    assert doc["states"][:4] == ["RUNNING", "CRASHED", "OFFLINE", "RUNNING"]
    core = core_path.read_bytes()
    assert doc["coredump"] == str(core_path) and doc["coredump_bytes"] == len(core)
    assert ELFFile(io.BytesIO(core))["e_machine"] == "EM_ARM"
    assert prstatus_pc(core) == emu["coredump_registers"]["pc"] == fault_insn


@needs_unicorn
def test_boot_emulate_terminal_shows_the_fault_and_registers(tmp_path: Path) -> None:
    result = run("boot", FW / "fw_fault_bus.elf", "--no-tee", "-p", "stm32mp15-dk2",
                 "--emulate", "--ticks", "2", "--coredump", tmp_path / "c")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    pc = symbol("fault_insn", "fw_fault_bus")
    assert f"fault: bus fault at pc {pc:#010x} (mmufault)" in out and "(x2)" in out
    assert "registers from the coredump's NT_PRSTATUS:" in out
    assert f"pc {pc:#010x}" in out.split("NT_PRSTATUS:", 1)[1]


@needs_unicorn
def test_boot_emulate_crash_requested_by_linux(tmp_path: Path) -> None:
    result = run("boot", FW / "fw_virtio.elf", "--no-tee", "-p", "stm32mp15-dk2",
                 "--emulate", "--ticks", "2", "--crash", "watchdog",
                 "--coredump", tmp_path / "c", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    steps = [s["step"] for s in doc["steps"]]
    assert steps == ["boot", "run", "crash+recovery", "shutdown"]
    assert doc["crash"] == "watchdog" and doc["coredump_bytes"] > 0
    assert doc["trace_after_recovery"] == "cm4: virtio firmware up\n"
    emu = doc["emulator"]
    # no instruction faulted: the dump has no registers to carry
    assert emu["crashes"] == [] and emu["coredump_registers"] is None
    assert emu["ticks"] == 4  # two runs of two ticks


@needs_unicorn
def test_boot_emulate_refused_load_never_runs_the_core() -> None:
    # an unsigned ELF through the TEE: LOAD_FW refuses it, nothing executes
    result = run("boot", FW / "fw_virtio.elf", "-p", "stm32mp15-dk2", "--emulate")
    assert result.exit_code == 7, result.output
    assert "boot" in result.stdout and "FAILED: -EIO" in result.stdout
    assert result.stdout.rstrip().endswith("emulated cortex-m4: never ran")
    assert "[m4 " not in result.stdout


# -- demo --emulate ------------------------------------------------------------------
@needs_unicorn
def test_demo_emulate_json() -> None:
    result = run("demo", "--emulate", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["kernels"] is None  # only with an explicit --size-mib
    out = doc["emulated_demo"]
    assert out["ok"] is True
    assert out["boot"] == {"state": "running", "trace0": "cm4: virtio firmware up\n"}
    assert out["echo"]["echo"] == out["echo"]["sent"] == "hello from linux"
    crash_insn = symbol("crash_insn", "fw_virtio")
    assert out["crash"]["kind"] == "bus fault"
    assert out["crash"]["registers"]["pc"] == crash_insn
    assert out["coredump"]["registers"]["pc"] == crash_insn
    assert out["recovery"]["state"] == "running"
    assert "[m4 trace0] cm4: crash requested" in result.stderr


@needs_unicorn
def test_demo_emulate_terminal() -> None:
    result = run("demo", "--emulate", "--series", "v15", "--size-mib", "1")
    assert result.exit_code == 0, result.output
    out = result.stdout
    crash_insn = symbol("crash_insn", "fw_virtio")
    assert "Booting fw_virtio" in out and "series v15" in out
    assert out.index("[m4 trace0] cm4: virtio firmware up") < out.index(
        "[m4 trace0] cm4: crash requested")  # fmt: skip
    assert "vring echo: sent 'hello from linux', got 'hello from linux'" in out
    assert f"fault: bus fault at pc {crash_insn:#010x}" in out
    assert "recovery: running (crash_cnt 1)" in out
    assert f"pc {crash_insn:#010x}" in out.split("NT_PRSTATUS:", 1)[1]
    assert "instructions/s" in out and "Kernels at scale" in out
