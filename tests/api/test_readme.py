"""The README's Python code runs as written (issue 9 item 7).

Every ```python block of README.md is executed, in order, in one namespace (a
later block may use what an earlier one made), so the documented API cannot
drift from the real one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_has_a_python_api_section_with_code() -> None:
    text = README.read_text(encoding="utf-8")
    assert "\n## Python API\n" in text
    assert any("rproctee.load(" in block for block in _blocks())


def test_readme_python_blocks_run(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"__name__": "readme"}
    for index, block in enumerate(_blocks()):
        exec(compile(block, f"README.md python block {index}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "retram" in out and "cm4_log" in out
    assert "TEE_ERROR_SIGNATURE_INVALID" in out
    assert "resource table at pa 0x38000200" in out
