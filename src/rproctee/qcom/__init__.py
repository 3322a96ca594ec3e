"""Qualcomm MDT/MBN firmware and the PAS (peripheral authentication) model.

* the format: :func:`open_image` / :func:`parse_image` read one ``.mbn``/
  ``.mdt`` or a split ``.mdt`` + ``.bNN`` set, with the hash segment's MBN
  header (v3, v5, v6, v7), digest table, signatures and DER certificate
  chains; :func:`split_image` / :func:`join_image`; :func:`verify_image`;
  :func:`build_image` makes signed test images with your own chain;
* the secure side: :class:`rproctee.qcom.pas.PasService`, TrustZone's
  PAS_INIT_IMAGE, PAS_MEM_SETUP, PAS_AUTH_AND_RESET and PAS_SHUTDOWN over
  :class:`rproctee.platform.memory.DeviceMemory`, locking the normal world
  out of a carveout while the processor runs;
* the Linux side: :mod:`rproctee.qcom.mdt_loader`, ``qcom_mdt_get_size``,
  ``qcom_mdt_read_metadata``, ``qcom_mdt_pas_init`` and
  ``qcom_mdt_load_no_init`` as functions returning the kernel's values.
"""

from __future__ import annotations

from rproctee.qcom.build import SegmentSpec, build_image
from rproctee.qcom.certs import TestSigner, make_test_signer
from rproctee.qcom.errors import (
    MdtError,
    MdtFileError,
    MdtFormatError,
    MdtHashMismatchError,
    MdtSignatureError,
    PasAccessError,
)
from rproctee.qcom.format import (
    MdtImage,
    directory_fetch,
    mdt_header_valid,
    open_image,
    parse_image,
)
from rproctee.qcom.hashseg import SUPPORTED_VERSIONS, HashSegment
from rproctee.qcom.pas import Carveout, NormalWorldBus, PasService, PasState, ScmCall
from rproctee.qcom.split import join_image, split_image
from rproctee.qcom.verify import VerifyReport, require_valid, verify_image

__all__ = [
    "Carveout",
    "NormalWorldBus",
    "PasService",
    "PasState",
    "ScmCall",
    "SUPPORTED_VERSIONS",
    "HashSegment",
    "MdtError",
    "MdtFileError",
    "MdtFormatError",
    "MdtHashMismatchError",
    "MdtImage",
    "MdtSignatureError",
    "PasAccessError",
    "SegmentSpec",
    "TestSigner",
    "VerifyReport",
    "build_image",
    "directory_fetch",
    "join_image",
    "make_test_signer",
    "mdt_header_valid",
    "open_image",
    "parse_image",
    "require_valid",
    "split_image",
    "verify_image",
]
