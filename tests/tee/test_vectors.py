"""Every row of vectors/optee/expected.tsv: result, resource table, exact writes."""

from __future__ import annotations

import csv
import re

import pytest

from rproctee.tee import TeeResult

from .factory import DK2, VECTORS, load, rsc, session, writes

ROWS = list(
    csv.DictReader((VECTORS / "expected.tsv").read_text().splitlines(), delimiter="\t")
)
CODE = re.compile(r"\((0x[0-9a-f]+)\)")


def _expected_writes(text: str) -> list[tuple[str, int, int, int]]:
    out = []
    for item in text.split(";"):
        op, *fields = item.split()
        vals = dict(f.split("=") for f in fields)
        out.append((op, int(vals["da"], 16), int(vals["pa"], 16), int(vals["len"], 16)))
    return out


def _run(row: dict[str, str], policy: str, ecdsa: bool):  # type: ignore[no-untyped-def]
    key = (VECTORS / row["verify_with"]).read_bytes()
    from rproctee.platform.board import PlatformSpec
    from rproctee.tee import build_secure_world

    spec = PlatformSpec("dk2", DK2)
    w = build_secure_world(spec, policy=policy, key_pem=key, accept_ecdsa=ecdsa)
    s = session(w)
    ans = load(s, (VECTORS / row["file"]).read_bytes())
    return w, s, ans


@pytest.mark.parametrize("policy", ["optee", "strict"])
@pytest.mark.parametrize("ecdsa", [False, True])
@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_expected_row(row: dict[str, str], policy: str, ecdsa: bool) -> None:
    w, s, ans = _run(row, policy, ecdsa)
    col = row["expected_LOAD_FW_upstream_stm32mp"]
    if ecdsa and row["expected_if_ECDSA_supported"] != "same":
        col = row["expected_if_ECDSA_supported"]
    code = int(CODE.search(col).group(1), 16)  # type: ignore[union-attr]
    assert ans.result == TeeResult(code), ans.reason
    got, pa, size = rsc(s)
    if code:
        assert got.result == TeeResult.TEE_ERROR_BAD_STATE  # type: ignore[attr-defined]
        assert writes(w) == []
        return
    want_pa, want_size = (
        int(x, 16) for x in row["rsc_pa/rsc_size(GET_RSC_TABLE)"].split("/")
    )
    assert (pa, size) == (want_pa, want_size)
    assert writes(w) == _expected_writes(row["memory_effects(stm32mp15-dk2 map)"])


def test_vector_loads_the_signed_bytes() -> None:
    row = ROWS[0]
    w, _s, ans = _run(row, "optee", False)
    assert ans.result == TeeResult.TEE_SUCCESS
    elf = (VECTORS / "inputs" / "fw1.elf").read_bytes()
    assert w.memory.read_da(0x0, 0x7C) == elf[0x1000:0x107C]
    assert w.memory.read_da(0x10000000, 4) == elf[0x2000:0x2004]
    assert w.memory.read_da(0x10000004, 0x200) == bytes(0x200)
