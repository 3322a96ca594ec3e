"""Numbers of the Qualcomm MDT/PAS interfaces, each with where it comes from.

Kernel facts are from Linux 6.12 (Debian ``linux-source-6.12``):
``include/linux/soc/qcom/mdt_loader.h`` (flag bits),
``drivers/firmware/qcom/qcom_scm.h`` (SCM service/command ids, SCM error
codes and ``qcom_scm_remap_error``), ``drivers/soc/qcom/mdt_loader.c``.
"""

from __future__ import annotations

import errno

# -- program-header p_flags bits (mdt_loader.h) -------------------------------
QCOM_MDT_TYPE_MASK = 7 << 24
QCOM_MDT_TYPE_HASH = 2 << 24
QCOM_MDT_RELOCATABLE = 1 << 27
#: Segment-type value of the ELF-header placeholder (program header 0), as
#: msm8916-mainline/qtestsign ``fw/hashseg.py`` writes it (flags 0x07000000).
QCOM_MDT_TYPE_HEADER = 7 << 24
#: Full p_flags qtestsign gives the hash segment (type HASH, 0x00200000 set).
HASH_SEGMENT_FLAGS = 0x0220_0000

PT_NULL = 0
PT_LOAD = 1
ELF32_EHDR_SIZE = 52
ELF32_PHDR_SIZE = 32
ELF32_SHDR_SIZE = 40
SZ_4K = 0x1000
U32_MASK = 0xFFFF_FFFF

# -- SCM (qcom_scm.h) ----------------------------------------------------------
QCOM_SCM_SVC_PIL = 0x02
QCOM_SCM_PIL_PAS_INIT_IMAGE = 0x01
QCOM_SCM_PIL_PAS_MEM_SETUP = 0x02
QCOM_SCM_PIL_PAS_AUTH_AND_RESET = 0x05
QCOM_SCM_PIL_PAS_SHUTDOWN = 0x06
QCOM_SCM_PIL_PAS_IS_SUPPORTED = 0x07

PAS_COMMAND_NAMES = {
    QCOM_SCM_PIL_PAS_INIT_IMAGE: "PAS_INIT_IMAGE",
    QCOM_SCM_PIL_PAS_MEM_SETUP: "PAS_MEM_SETUP",
    QCOM_SCM_PIL_PAS_AUTH_AND_RESET: "PAS_AUTH_AND_RESET",
    QCOM_SCM_PIL_PAS_SHUTDOWN: "PAS_SHUTDOWN",
    QCOM_SCM_PIL_PAS_IS_SUPPORTED: "PAS_IS_SUPPORTED",
}

QCOM_SCM_SUCCESS = 0
QCOM_SCM_ERROR = -1
QCOM_SCM_EINVAL_ARG = -2
QCOM_SCM_EINVAL_ADDR = -3
QCOM_SCM_EOPNOTSUPP = -4
QCOM_SCM_ENOMEM = -5
QCOM_SCM_V2_EBUSY = -12

SCM_STATUS_NAMES = {
    QCOM_SCM_SUCCESS: "QCOM_SCM_SUCCESS",
    QCOM_SCM_ERROR: "QCOM_SCM_ERROR",
    QCOM_SCM_EINVAL_ARG: "QCOM_SCM_EINVAL_ARG",
    QCOM_SCM_EINVAL_ADDR: "QCOM_SCM_EINVAL_ADDR",
    QCOM_SCM_EOPNOTSUPP: "QCOM_SCM_EOPNOTSUPP",
    QCOM_SCM_ENOMEM: "QCOM_SCM_ENOMEM",
    QCOM_SCM_V2_EBUSY: "QCOM_SCM_V2_EBUSY",
}

#: Known PAS ids of qcom_q6v5_pas (adsp 1, modem 4, cdsp 18, nsp1 30).
PAS_IDS = {"adsp": 1, "mpss": 4, "cdsp": 18, "nsp1": 30}


def qcom_scm_remap_error(status: int) -> int:
    """The negative errno Linux makes of an SCM error status.

    Mirrors ``qcom_scm_remap_error`` in ``drivers/firmware/qcom/qcom_scm.h``:
    unknown codes become ``-EINVAL`` too.
    """
    table = {
        QCOM_SCM_ERROR: -errno.EIO,
        QCOM_SCM_EINVAL_ADDR: -errno.EINVAL,
        QCOM_SCM_EINVAL_ARG: -errno.EINVAL,
        QCOM_SCM_EOPNOTSUPP: -errno.EOPNOTSUPP,
        QCOM_SCM_ENOMEM: -errno.ENOMEM,
        QCOM_SCM_V2_EBUSY: -errno.EBUSY,
    }
    return table.get(status, -errno.EINVAL)


def segment_file_name(fw_name: str, index: int) -> str:
    """``modem.mdt`` -> ``modem.b05``: the last three characters replaced.

    As ``mdt_load_split_segment`` builds it (``sprintf(... "b%02d")``); an
    index of 100 or more gives three digits there too.
    """
    return f"{fw_name[:-3]}b{index:02d}"
