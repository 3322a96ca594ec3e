"""Resource exhaustion (checklist 5.8): huge declared sizes and counts.

Each input declares far more than it holds (4 GiB lengths, 65,535 program
and section headers, a 4 GiB ``p_memsz``, a table claiming 2^31 entries) and
must be refused by arithmetic: in bounded time and memory, measured with
``time.perf_counter`` and the ``tracemalloc`` peak of the one call. The
bounds (2 s, 64 MiB) are correctness bounds, generous on a loaded 2-core
machine and on the pure-Python kernels; honouring a declared size would
take 4 GiB or minutes. Time is the CPU time of the call (see
``oracles.measured``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from rproctee.elf import scan_elf
from rproctee.errors import RprocError
from rproctee.image import parse_image
from rproctee.image.rsctable import parse_rsc_table as display_rsc_table
from rproctee.rsctable import parse_resource_table
from rproctee.tee import TeeResult
from tee.factory import Seg, default_tlvs, pad8, signed_image, tlv_area

from .crafted import GOOD, PH0, PH1, SH_NAME, from_area, header, signed_segs
from .images import RAW, TABLE, default_segs
from .oracles import MEMORY_BOUND, TIME_BOUND_S, check_run, measured, run_load

R = TeeResult
POLICIES = ("optee", "strict")
BIG = 0xFFFF  # e_phnum / e_shnum maximum
#: The TA model walks 65,535 headers in Python at some 40 us each, more
#: under tracemalloc (a few seconds of CPU): linear. A quadratic walk would
#: take 65,535^2 steps (hours), so this bound still tells the two apart.
BIG_TABLE_BOUND_S = 15.0


def refused_in_bounds(fn: Callable[[], object], error: type[Exception]) -> None:
    """``fn()`` raises ``error`` within the time and memory bounds."""

    def call() -> object:
        with pytest.raises(error):
            fn()
        return None

    _none, seconds, peak = measured(call)  # type: ignore[arg-type]
    assert seconds < TIME_BOUND_S, f"{seconds:.2f} s"
    assert peak < MEMORY_BOUND, f"{peak / 2**20:.1f} MiB"


def ta_refuses(
    policy: str,
    image: bytes | bytearray,
    want: R | set[R],
    seconds: float = TIME_BOUND_S,
) -> None:
    """LOAD_FW answers ``want``; every invariant, bounds included, holds."""
    run = check_run(run_load(policy, image), seconds=seconds)
    wanted = want if isinstance(want, set) else {want}
    assert run.answer.result in wanted, (run.answer.result.name, run.answer.reason)


# -- 4 GiB declared lengths --------------------------------------------------------

LENGTHS = {
    "tlv_len": (header(tlv_len=0xFFFFFFFF), R.TEE_ERROR_BAD_PARAMETERS),
    "img_len": (header(img_len=0xFFFFFFFF), R.TEE_ERROR_BAD_PARAMETERS),
    "tlv-record-length": (
        lambda: from_area(
            tlv_area(default_tlvs([RAW])) + struct.pack("<2I", 0x10000, 0xFFFFFFFF)
        ),
        R.TEE_SUCCESS,
    ),
    "imgsize": (
        lambda: signed_image([RAW], tlvs=[
            (t, struct.pack("<I", 0xFFFFFFF8) if t == 5 else v)
            for t, v in default_tlvs([RAW])]),
        R.TEE_ERROR_BAD_PARAMETERS,
    ),  # fmt: skip
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", list(LENGTHS))
def test_4gib_declared_lengths_ta(name: str, policy: str) -> None:
    """Header lengths, a TLV record length and IMGSIZE of 4 GiB."""
    build, optee = LENGTHS[name]
    # spec 2.6: an image end that wraps the address space is BAD_PARAMETERS
    want = R.TEE_ERROR_BAD_PARAMETERS if policy == "strict" else optee
    ta_refuses(policy, bytes(build()), want)


@pytest.mark.parametrize("policy", POLICIES)
def test_4gib_sign_len_ta(policy: str) -> None:
    img = bytes(signed_image([RAW], sign_len=0xFFFFFFFF, signature=b""))
    want = R.TEE_ERROR_TARGET_DEAD if policy == "optee" else R.TEE_ERROR_BAD_PARAMETERS
    ta_refuses(policy, img, want)


@pytest.mark.parametrize(
    "field,offset", [("tlv_len", 8), ("sign_len", 12), ("img_len", 16)]
)
def test_4gib_declared_lengths_image_parser(field: str, offset: int) -> None:
    img = bytearray(GOOD)
    struct.pack_into("<I", img, offset, 0xFFFFFFFF)
    refused_in_bounds(lambda: parse_image(bytes(img)), RprocError)


# -- 65,535 program and section headers -----------------------------------------------


def with_tables(phnum: int, shnum: int, *, real: bool) -> bytearray:
    """The default ELF claiming ``phnum`` program / ``shnum`` section headers.

    ``real``: the tables are really there, appended (2 MiB + 2.5 MiB for
    65,535 each): the signed program headers first, then PT_LOAD headers no
    hash entry names; the section table keeps its null entry and the name
    table, then empty sections, the last one naming a string past the name
    table (so a walk meets no ``.resource_table`` and must reach the end).
    Otherwise only the counts change: the tables would run past the file.
    """
    raw = bytearray(RAW)
    if not real:
        struct.pack_into("<H", raw, 44, phnum)
        struct.pack_into("<H", raw, 48, shnum)
        return raw
    raw += bytes(-len(raw) % 4)
    phoff = len(raw)
    raw += RAW[PH0 : PH0 + 32 * min(phnum, 2)]
    raw += b"".join(
        struct.pack("<8I", 1, 0, 0x30000000 + 16 * i, 0x30000000 + 16 * i, 0, 0, 6, 4)
        for i in range(phnum - 2)
    )
    shoff = len(raw)
    null_shdr = SH_NAME - 40
    raw += RAW[null_shdr : null_shdr + 40] + RAW[SH_NAME + 40 : SH_NAME + 80]
    raw += bytes(40 * (shnum - 3)) + struct.pack("<10I", 0xFFFFFFF0, *([0] * 9))
    struct.pack_into("<IIIHHHHH", raw, 28, phoff, shoff, u32(raw, 36), 52, 32,
                     phnum, 40, shnum)  # fmt: skip
    struct.pack_into("<H", raw, 50, 1)  # e_shstrndx: the name table
    return raw


def u32(raw: bytes | bytearray, off: int) -> int:
    return int(struct.unpack_from("<I", raw, off)[0])


def signed_as_raw(elf: bytes) -> bytes:
    """``elf`` behind RAW's signed hash table, IMGSIZE and img_len covering
    it (a signer's image whose unsigned tables were then enlarged)."""
    size = struct.pack("<I", len(pad8(elf)))
    records = [(t, size if t == 5 else v) for t, v in default_tlvs([RAW])]
    return bytes(signed_image([elf], tlvs=records))


@pytest.fixture(scope="module")
def big_tables() -> bytes:
    return bytes(with_tables(BIG, BIG, real=True))


@pytest.mark.parametrize("policy", POLICIES)
def test_65535_program_headers_ta(policy: str, big_tables: bytes) -> None:
    """Real tables, unsigned: the third program header names no hash entry."""
    # upstream loads the first two, then the third names no hash entry;
    # strict reads all 65,535 once, then: no hash entry (NO_DATA), or more
    # PT_LOAD headers than signed entries (BAD_PARAMETERS)
    want = R.TEE_ERROR_NO_DATA if policy == "optee" else {
        R.TEE_ERROR_NO_DATA, R.TEE_ERROR_BAD_PARAMETERS}  # fmt: skip
    ta_refuses(policy, signed_as_raw(big_tables), want, BIG_TABLE_BOUND_S)


@pytest.mark.parametrize("policy", POLICIES)
def test_65535_section_headers_ta(policy: str) -> None:
    """Real section table: the walk reaches the last sh_name, out of range."""
    raw = with_tables(2, BIG, real=True)
    ta_refuses(policy, signed_as_raw(bytes(raw)), R.TEE_ERROR_BAD_FORMAT,
               BIG_TABLE_BOUND_S)  # fmt: skip


@pytest.mark.parametrize("policy", POLICIES)
def test_65535_headers_past_the_end_ta(policy: str) -> None:
    """Only the counts: both tables would run past the end of the file."""
    img = bytes(signed_image([bytes(with_tables(BIG, BIG, real=False))],
                             signed_elves=[RAW]))  # fmt: skip
    ta_refuses(policy, img, R.TEE_ERROR_BAD_FORMAT)


def test_65535_headers_elf_scanner() -> None:
    """The ELF scanner (native or reference kernel): tables that would run
    past the end of the file are refused before anything is read."""
    refused_in_bounds(lambda: scan_elf(bytes(with_tables(BIG, BIG, real=False))),
                      RprocError)  # fmt: skip
    only_sections = with_tables(BIG, BIG, real=False)
    struct.pack_into("<H", only_sections, 44, 2)
    refused_in_bounds(lambda: scan_elf(bytes(only_sections)), RprocError)


# -- a 4 GiB p_memsz -----------------------------------------------------------------


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("memsz", [0xFFFFFFFF, 0xFFFFFFF8, 0x80000000])
def test_4gib_p_memsz(policy: str, memsz: int) -> None:
    """Validly signed: refused from arithmetic, never allocated or cleared."""
    img = signed_segs([default_segs()[0], Seg(0x10000000, b"m" * 8, memsz)])()
    ta_refuses(policy, img, {R.TEE_ERROR_ACCESS_DENIED, R.TEE_ERROR_BAD_FORMAT})


@pytest.mark.parametrize("policy", POLICIES)
def test_4gib_p_filesz(policy: str) -> None:
    """p_filesz 4 GiB (signed and in the hash table): beyond the image."""
    raw = bytearray(RAW)
    struct.pack_into("<2I", raw, PH1 + 16, 0xFFFFFFFF, 0xFFFFFFFF)
    ta_refuses(policy, bytes(signed_image([bytes(raw)])), R.TEE_ERROR_BAD_FORMAT)


# -- a table claiming 2^31 entries -----------------------------------------------------

HUGE_NUM = 1 << 31


def huge_table() -> bytes:
    table = bytearray(TABLE)
    struct.pack_into("<I", table, 4, HUGE_NUM)
    return bytes(table)


@pytest.mark.parametrize("policy", POLICIES)
def test_rsc_table_claiming_2_31_entries_ta(policy: str) -> None:
    img = signed_segs(default_segs(), huge_table())()
    ta_refuses(policy, img, R.TEE_ERROR_BAD_FORMAT)


def test_rsc_table_claiming_2_31_entries_parsers() -> None:
    """The one validating parser and the image tool's display of it."""
    refused_in_bounds(lambda: parse_resource_table(huge_table()), RprocError)
    refused_in_bounds(lambda: display_rsc_table(memoryview(huge_table())), RprocError)


@pytest.mark.parametrize("policy", POLICIES)
def test_hash_table_claiming_2_26_entries(policy: str) -> None:
    """A HASHTABLE TLV whose length claims 2^26 entries (4 GiB) in a small
    area: never found (it does not fit) under optee, refused under strict."""
    area = tlv_area([r for r in default_tlvs([RAW]) if r[0] != 0x10])
    area += struct.pack("<2I", 0x10, 0xFFFFFFC0)  # 2^26 - 1 entries of 64 bytes
    img = from_area(bytes(area))
    want = R.TEE_ERROR_NO_DATA if policy == "optee" else R.TEE_ERROR_BAD_PARAMETERS
    ta_refuses(policy, img, want)
    refused_in_bounds(lambda: parse_image(img), RprocError)
