"""OP-TEE-compatible signed remoteproc images: build, parse, sign, verify, inspect.

Typical use::

    from rproctee.image import build_image, signer_from_pem, verify_image
    image = build_image([elf_bytes], signer_from_pem(pem))
    report = verify_image(image, load_public_key(pub_pem))
"""

from rproctee.image.build import (
    UnsignedImage,
    build_image,
    hash_entries,
    parse_plat_tlv_args,
    plat_tlv_value,
    prepare_image,
    stitch_signature,
)
from rproctee.image.errors import (
    HashMismatchError,
    ImageFormatError,
    KeyFormatError,
    RscTableFormatError,
    SignatureError,
)
from rproctee.image.format import (
    MAGIC,
    VERSION,
    HashEntry,
    HashType,
    ImageHeader,
    ImgType,
    SignType,
    TlvType,
)
from rproctee.image.inspect import describe_image
from rproctee.image.keys import (
    KEY_KINDS,
    PrivateKey,
    PublicKey,
    fingerprint,
    generate_key,
    key_sign_type,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
    signature_size,
)
from rproctee.image.parse import EmbeddedImage, SignedImage, Tlv, parse_image
from rproctee.image.rsctable import RscEntry, RscTable, parse_rsc_table
from rproctee.image.sign import (
    CallableSigner,
    KeySigner,
    Signer,
    ecdsa_der_to_raw,
    signer_from_pem,
    verify_digest,
)
from rproctee.image.verify import Check, CheckKind, VerifyReport, verify_image

__all__ = [
    "KEY_KINDS",
    "MAGIC",
    "VERSION",
    "CallableSigner",
    "Check",
    "CheckKind",
    "EmbeddedImage",
    "HashEntry",
    "HashMismatchError",
    "HashType",
    "ImageFormatError",
    "ImageHeader",
    "ImgType",
    "KeyFormatError",
    "KeySigner",
    "PrivateKey",
    "PublicKey",
    "RscEntry",
    "RscTable",
    "RscTableFormatError",
    "SignType",
    "SignatureError",
    "SignedImage",
    "Signer",
    "Tlv",
    "TlvType",
    "UnsignedImage",
    "VerifyReport",
    "build_image",
    "describe_image",
    "ecdsa_der_to_raw",
    "fingerprint",
    "generate_key",
    "hash_entries",
    "key_sign_type",
    "load_private_key",
    "load_public_key",
    "parse_image",
    "parse_plat_tlv_args",
    "parse_rsc_table",
    "plat_tlv_value",
    "prepare_image",
    "private_key_pem",
    "public_key_pem",
    "signature_size",
    "signer_from_pem",
    "stitch_signature",
    "verify_digest",
    "verify_image",
]
