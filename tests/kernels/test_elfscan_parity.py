"""elfscan: native == reference on real and mutated ELF files; pyelftools agrees."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import given
from hypothesis import strategies as st
from kernel_calls import outcome

from rproctee.elf import scan_elf
from rproctee.errors import ElfFormatError


def _minimal_elf(cls=1, data=1, phnum=1, shnum=0):
    order = "<" if data == 1 else ">"
    ehsize, phent, shent = (52, 32, 40) if cls == 1 else (64, 56, 64)
    phoff = ehsize
    shoff = phoff + phnum * phent if shnum else 0
    ident = b"\x7fELF" + bytes([cls, data, 1]) + bytes(9)
    if cls == 1:
        hdr = struct.pack(
            order + "HHIIIIIHHHHHH",
            2,
            40,
            1,
            0x101,
            phoff,
            shoff,
            0,
            ehsize,
            phent,
            phnum,
            shent,
            shnum,
            0,
        )
        ph = struct.pack(order + "8I", 1, 0x100, 0x10, 0x20, 4, 8, 5, 4)
        sh = struct.pack(order + "10I", *range(1, 11))
    else:
        hdr = struct.pack(
            order + "HHIQQQIHHHHHH",
            2,
            183,
            1,
            0x101,
            phoff,
            shoff,
            0,
            ehsize,
            phent,
            phnum,
            shent,
            shnum,
            0,
        )
        ph = struct.pack(order + "IIQQQQQQ", 1, 5, 0x100, 0x10, 0x20, 4, 8, 4)
        sh = struct.pack(order + "IIQQQQIIQQ", *range(1, 11))
    return ident + hdr + ph * phnum + sh * shnum


def _same(a, b):
    if a[0] != "ok" or b[0] != "ok":
        return a == b
    (i1, e1, p1, s1), (i2, e2, p2, s2) = a[1], b[1]
    return (i1, e1) == (i2, e2) and np.array_equal(p1, p2) and np.array_equal(s1, s2)


@pytest.mark.parametrize("cls", [1, 2])
@pytest.mark.parametrize("data", [1, 2])
def test_field_order_and_endianness(backend, cls, data):
    ident, ehdr, ph, sh = backend["elfscan"].scan_headers(_minimal_elf(cls, data, 2, 1))
    assert ident[:2] == (cls, data)
    assert ehdr[3] == 0x101  # e_entry
    assert ph.tolist() == [[1, 0x100, 0x10, 0x20, 4, 8, 5, 4]] * 2
    assert sh.tolist() == [list(range(1, 11))]


def test_real_firmware_agrees_with_pyelftools(test_data):
    raw = (test_data / "vectors/optee/inputs/fw1.elf").read_bytes()
    scan = scan_elf(raw)
    ref = ELFFile(io.BytesIO(raw))
    assert scan.machine == ref["e_machine"] == "EM_ARM" or scan.machine == 40
    assert scan.entry == ref["e_entry"]
    segs = list(ref.iter_segments())
    assert len(scan.phdrs) == len(segs)
    for row, seg in zip(scan.phdrs, segs, strict=True):
        assert int(row["p_paddr"]) == seg["p_paddr"]
        assert int(row["p_memsz"]) == seg["p_memsz"]
    names = [s.name for s in ref.iter_sections()]
    assert [scan.section_name(i) for i in range(scan.shnum)] == names
    assert scan.find_section(".resource_table") == names.index(".resource_table")


@given(data=st.binary(max_size=200))
def test_random_bytes_parity(both_backends, data):
    a, b = (outcome(m["elfscan"].scan_headers, data) for m in both_backends)
    assert _same(a, b)


@given(
    cls=st.sampled_from([1, 2]),
    flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 260),
)
def test_mutated_headers_parity(both_backends, cls, flips, cut):
    raw = bytearray(_minimal_elf(cls, 1, 2, 1))
    for pos, val in flips:
        if pos < len(raw):
            raw[pos] = val
    raw = bytes(raw[:cut])
    a, b = (outcome(m["elfscan"].scan_headers, raw) for m in both_backends)
    assert _same(a, b)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:10], "shorter than the 16-byte identification"),
        (lambda b: b"\x7fELX" + b[4:], "not an ELF file"),
        (lambda b: b[:4] + b"\x03" + b[5:], "EI_CLASS] = 3"),
        (lambda b: b[:5] + b"\x00" + b[6:], "EI_DATA] = 0"),
        (lambda b: b[:40], "shorter than the 52-byte header"),
        (lambda b: b[:42] + struct.pack("<H", 31) + b[44:], "e_phentsize = 31"),
        (lambda b: b[:44] + struct.pack("<H", 0xFFFF) + b[46:], "program header table"),
        (
            lambda b: b[:28] + struct.pack("<I", 0xFFFFFFF0) + b[32:],
            "program header table",
        ),
    ],
)
def test_rejections_name_the_field(backend, mutate, message):
    raw = mutate(_minimal_elf())
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        backend["elfscan"].scan_headers(raw)
    with pytest.raises(ElfFormatError):
        scan_elf(raw)


def test_no_section_headers_is_fine(backend):
    ident, ehdr, ph, sh = backend["elfscan"].scan_headers(_minimal_elf(shnum=0))
    assert sh.shape == (0, 10) and ph.shape == (1, 8)


def test_segment_and_section_views_are_bounds_checked():
    raw = bytearray(_minimal_elf(shnum=0))
    struct.pack_into("<II", raw, 52 + 4, 0x54, 0)  # p_offset, p_vaddr
    struct.pack_into("<I", raw, 52 + 16, 8)  # p_filesz
    scan = scan_elf(bytes(raw) + b"payload!")
    assert bytes(scan.segment_bytes(0)) == b"payload!"
    struct.pack_into("<I", raw, 52 + 16, 9)  # one byte past the file
    with pytest.raises(ElfFormatError, match="ends past the 0x5c-byte file"):
        scan_elf(bytes(raw) + b"payload!").segment_bytes(0)
