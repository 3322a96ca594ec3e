"""Load through memmap-backed memories and read the bytes back from the files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rproctee.platform.board import PlatformSpec
from rproctee.tee import build_secure_world

from .factory import DK2, VECTORS, load, session


def test_memmap_backed_load_reads_back(tmp_path: Path) -> None:
    spec = PlatformSpec("dk2", DK2)
    key = (VECTORS / "keys" / "rsa2048_pub.pem").read_bytes()
    w = build_secure_world(spec, policy="optee", key_pem=key, backing_dir=tmp_path)
    assert load(
        session(w), (VECTORS / "signed" / "v01_rsa2048_fw1.sig").read_bytes()
    ).ok
    w.memory.flush()
    elf = (VECTORS / "inputs" / "fw1.elf").read_bytes()
    retram = np.fromfile(tmp_path / "retram.bin", dtype=np.uint8)
    assert retram[:0x7C].tobytes() == elf[0x1000:0x107C]
    mcuram2 = np.fromfile(tmp_path / "mcuram2.bin", dtype=np.uint8)
    assert mcuram2[:4].tobytes() == elf[0x2000:0x2004]
    assert not mcuram2[4:0x204].any()
