"""The Linux side: mdt_loader.c's functions, values and messages (6.12)."""

from __future__ import annotations

import errno

from qcom_helpers import (
    CARVEOUT_PA,
    CARVEOUT_SIZE,
    PAS_ID,
    dict_fetch,
    no_files,
    patch_u16,
    patch_u32,
    phdr_offset,
    segments,
    service,
)

from rproctee.qcom import SegmentSpec, TestSigner, build_image, parse_image, split_image
from rproctee.qcom import mdt_loader as ml

EINVAL = -errno.EINVAL


def _image(signer: TestSigner, **kw: object) -> bytes:
    return build_image(segments(), version=6, signer=signer, **kw)  # type: ignore[arg-type]


def test_get_size(signer: TestSigner) -> None:
    # Segments from CARVEOUT_PA to +0x5321, rounded up to 4 KiB.
    assert ml.qcom_mdt_get_size(_image(signer)) == 0x6000
    assert ml.qcom_mdt_get_size(b"\x7fELF") == EINVAL


def test_get_size_wraps_in_32_bits(signer: TestSigner) -> None:
    data = build_image([SegmentSpec(0x1000, b"x")], signer=signer)
    # p_paddr + p_memsz wraps past 4 GiB: max < min and the kernel says -EINVAL.
    wrapped = patch_u32(data, phdr_offset(2, "p_paddr"), 0xFFFFF800)
    wrapped = patch_u32(wrapped, phdr_offset(2, "p_memsz"), 0x1000)
    assert ml.qcom_mdt_get_size(wrapped) == EINVAL


def test_get_size_without_loadable_segments(signer: TestSigner) -> None:
    data = build_image([SegmentSpec(0x1000, b"x", p_type=0)], signer=signer)
    assert ml.qcom_mdt_get_size(data) == EINVAL


def test_read_metadata_sources(signer: TestSigner) -> None:
    data = _image(signer)
    expected = parse_image(data, "m.mbn").metadata
    log: list[str] = []
    assert ml.qcom_mdt_read_metadata(data, "modem.mbn", no_files, log) == expected
    files = split_image(data, "modem.mdt")
    assert (
        ml.qcom_mdt_read_metadata(files["modem.mdt"], "modem.mdt", no_files, log)
        == expected
    )
    # A .mdt with only the headers: the hash segment comes from modem.b01.
    hdr_only = files["modem.mdt"][: 52 + 5 * 32]
    assert (
        ml.qcom_mdt_read_metadata(hdr_only, "modem.mdt", dict_fetch(files), log)
        == expected
    )
    assert log == []


def test_read_metadata_failures(signer: TestSigner) -> None:
    data = _image(signer)
    hdr_only = data[: 52 + 5 * 32]
    log: list[str] = []
    assert (
        ml.qcom_mdt_read_metadata(hdr_only, "modem.mdt", no_files, log) == -errno.ENOENT
    )
    assert log == ["error -2 loading modem.b01"]
    files = split_image(data, "modem.mdt")
    short = dict(files, **{"modem.b01": files["modem.b01"][:-1]})
    log.clear()
    assert (
        ml.qcom_mdt_read_metadata(hdr_only, "modem.mdt", dict_fetch(short), log)
        == EINVAL
    )
    assert log == ["failed to load segment 1 from truncated file modem.b01"]
    long = dict(files, **{"modem.b01": files["modem.b01"] + b"\0"})
    assert (
        ml.qcom_mdt_read_metadata(hdr_only, "modem.mdt", dict_fetch(long), log)
        == -errno.EFBIG
    )
    assert ml.qcom_mdt_read_metadata(hdr_only, "mdt", dict_fetch(files), log) == EINVAL
    log.clear()
    assert (
        ml.qcom_mdt_read_metadata(
            patch_u32(data, phdr_offset(1, "p_flags"), 0), "m.mdt", no_files, log
        )
        == EINVAL
    )
    assert log == ["no hash segment found in m.mdt"]
    assert (
        ml.qcom_mdt_read_metadata(patch_u16(data, 44, 1), "m.mdt", no_files, log)
        == EINVAL
    )
    assert (
        ml.qcom_mdt_read_metadata(
            patch_u32(data, phdr_offset(0, "p_type"), 1), "m.mdt", no_files, log
        )
        == EINVAL
    )
    assert ml.qcom_mdt_read_metadata(data[:40], "m.mdt", no_files, log) == EINVAL


def test_read_metadata_bounds(signer: TestSigner) -> None:
    data = _image(signer)
    log: list[str] = []
    huge = patch_u32(data, phdr_offset(1, "p_filesz"), ml.KMALLOC_MAX_SIZE)
    assert ml.qcom_mdt_read_metadata(huge, "m.mdt", no_files, log) == -errno.ENOMEM
    past = patch_u32(data, phdr_offset(0, "p_filesz"), len(data) + 0x100)
    assert ml.qcom_mdt_read_metadata(past, "m.mdt", no_files, log) == EINVAL
    assert log[-1].startswith("model: phdr[0].p_filesz") and "read past" in log[-1]


def _load(
    data: bytes,
    name: str = "modem.mbn",
    fetch=no_files,
    signer_root=None,
    mem_phys: int = CARVEOUT_PA,
    mem_size: int = CARVEOUT_SIZE,
):  # type: ignore[no-untyped-def]
    tz = service(signer_root)
    log: list[str] = []
    ret, reloc = ml.qcom_mdt_load_no_init(
        data, name, tz.normal_world(), mem_phys, mem_size, fetch, log
    )
    return tz, ret, reloc, log


def test_load_fixed_image(signer: TestSigner) -> None:
    tz, ret, reloc, log = _load(_image(signer))
    assert (ret, reloc, log) == (0, CARVEOUT_PA, [])
    mem = tz.memory
    assert mem.read_da(CARVEOUT_PA, 0x800) == bytes(range(256)) * 8
    assert mem.read_da(CARVEOUT_PA + 0x5000, 0x321) == b"\xa5" * 0x321
    ops = [(w.op, w.pa - CARVEOUT_PA, w.len) for w in mem.writes]
    assert ops == [
        ("copy", 0, 0x800),
        ("zero", 0x800, 0x2800),
        ("zero", 0x4000, 0x800),
        ("copy", 0x5000, 0x321),
    ]


def test_load_relocatable_image_shifts_to_the_carveout(signer: TestSigner) -> None:
    data = build_image(
        segments(base=0x1000_0000), version=6, signer=signer, relocatable=True
    )
    tz, ret, reloc, log = _load(data)
    assert (ret, reloc) == (0, 0x1000_0000)  # mem_reloc is the lowest p_paddr
    assert tz.memory.read_da(CARVEOUT_PA + 0x5000, 4) == b"\xa5" * 4
    # A fixed image with the same addresses is outside the carveout.
    fixed = build_image(segments(base=0x1000_0000), version=6, signer=signer)
    _, ret, reloc, log = _load(fixed)
    assert (ret, reloc, log) == (EINVAL, CARVEOUT_PA, ["segment outside memory range"])


def test_load_rejections(signer: TestSigner) -> None:
    data = _image(signer)
    _, ret, _, log = _load(data, mem_size=0x5000)  # last segment sticks out
    assert (ret, log) == (EINVAL, ["segment outside memory range"])
    fat = patch_u32(data, phdr_offset(4, "p_memsz"), 0x320)
    tz, ret, _, log = _load(fat)
    assert (ret, log) == (
        EINVAL,
        ["refusing to load segment 4 with p_filesz > p_memsz"],
    )
    assert all(
        w.pa < CARVEOUT_PA + 0x5000 for w in tz.memory.writes
    )  # earlier ones landed
    for args in ({"mem_phys": 0}, {"mem_size": 0}):
        tz, ret, reloc, _ = _load(data, **args)  # type: ignore[arg-type]
        assert (ret, reloc, tz.memory.writes) == (EINVAL, 0, [])
    assert _load(b"")[1] == EINVAL
    assert _load(data[:51])[1] == EINVAL


def test_load_split_set(signer: TestSigner) -> None:
    data = _image(signer)
    files = split_image(data, "modem.mdt")
    tz, ret, _, log = _load(files["modem.mdt"], "modem.mdt", dict_fetch(files))
    assert (ret, log) == (0, [])
    assert tz.memory.read_da(CARVEOUT_PA + 0x5000, 0x321) == b"\xa5" * 0x321
    short = dict(files, **{"modem.b04": files["modem.b04"][:-1]})
    tz, ret, _, log = _load(files["modem.mdt"], "modem.mdt", dict_fetch(short))
    assert (ret, log) == (
        EINVAL,
        ["failed to load segment 4 from truncated file modem.b04"],
    )
    # request_firmware_into_buf put the short file in memory before the check.
    assert tz.memory.read_da(CARVEOUT_PA + 0x5000, 0x320) == b"\xa5" * 0x320
    missing = {k: v for k, v in files.items() if k != "modem.b02"}
    tz, ret, _, log = _load(files["modem.mdt"], "modem.mdt", dict_fetch(missing))
    assert (ret, log) == (-errno.ENOENT, ["error -2 loading modem.b02"])
    assert tz.memory.writes == []
    longer = dict(files, **{"modem.b02": files["modem.b02"] + b"!"})
    tz, ret, _, log = _load(files["modem.mdt"], "modem.mdt", dict_fetch(longer))
    assert (ret, log) == (-errno.EFBIG, ["error -27 loading modem.b02"])
    assert tz.memory.writes == []


def test_zero_sized_trailing_segments_do_not_make_it_split(signer: TestSigner) -> None:
    data = build_image(
        [
            SegmentSpec(CARVEOUT_PA, b"abc"),
            SegmentSpec(CARVEOUT_PA + 0x1000, b"", memsz=16),
        ],
        signer=signer,
    )
    far = patch_u32(data, phdr_offset(3, "p_offset"), len(data) + 0x1000)
    tz, ret, _, log = _load(far)
    assert (ret, log) == (0, [])


def test_pas_init_and_load(signer: TestSigner) -> None:
    data = build_image(segments(base=0x0), version=6, signer=signer, relocatable=True)
    tz = service(signer.root_sha256)
    log: list[str] = []
    ret, reloc = ml.qcom_mdt_load(
        data,
        "modem.mbn",
        PAS_ID,
        tz,
        tz.normal_world(),
        CARVEOUT_PA,
        CARVEOUT_SIZE,
        no_files,
        log,
    )
    assert (ret, reloc, log) == (0, 0, [])
    assert [(c.name, c.args) for c in tz.calls] == [
        ("PAS_INIT_IMAGE", (len(parse_image(data, "a").metadata),)),
        ("PAS_MEM_SETUP", (CARVEOUT_PA, 0x6000)),
    ]


def test_pas_init_failures_are_logged(
    signer: TestSigner, other_signer: TestSigner
) -> None:
    tz = service(signer.root_sha256)
    log: list[str] = []
    assert (
        ml.qcom_mdt_pas_init(
            build_image(segments(), signer=other_signer),
            "modem.mdt",
            PAS_ID,
            CARVEOUT_PA,
            tz,
            no_files,
            log,
        )
        == -errno.EIO
    )
    assert log == ["error -5 initializing firmware modem.mdt"]
    log.clear()
    hdr_only = _image(signer)[: 52 + 5 * 32]
    assert (
        ml.qcom_mdt_pas_init(
            hdr_only, "modem.mdt", PAS_ID, CARVEOUT_PA, tz, no_files, log
        )
        == -errno.ENOENT
    )
    assert log == [
        "error -2 loading modem.b01",
        "error -2 reading firmware modem.mdt metadata",
    ]
    log.clear()
    data = build_image(segments(base=0), signer=signer, relocatable=True)
    assert (
        ml.qcom_mdt_pas_init(
            data,
            "modem.mdt",
            PAS_ID,
            CARVEOUT_PA + CARVEOUT_SIZE - 0x1000,
            tz,
            no_files,
            log,
        )
        == EINVAL
    )
    assert log == ["error -22 setting up firmware modem.mdt"]
    assert (
        ml.qcom_mdt_pas_init(b"junk", "m.mdt", PAS_ID, CARVEOUT_PA, tz, no_files, log)
        == EINVAL
    )
