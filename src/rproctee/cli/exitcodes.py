"""Exit statuses of the ``rproctee`` command, one meaning each.

=====  ==========================================================
0      success
1      a pre-flight (``check``) found the image would not load
2      usage error (bad option or argument, unusable key: click's own
       status for bad options)
3      I/O error (file missing, unreadable, unwritable, a directory
       where a file is wanted; out of memory; broken pipe)
4      malformed image or ELF
5      bad signature
6      segment hash mismatch
7      the TEE answered something other than TEE_SUCCESS
70     internal error (a bug in rproctee: please report it)
=====  ==========================================================
"""

OK = 0
WOULD_NOT_LOAD = 1
USAGE = 2
IO_ERROR = 3
MALFORMED_IMAGE = 4
BAD_SIGNATURE = 5
HASH_MISMATCH = 6
TEE_ERROR = 7
INTERNAL = 70

#: The ``kind`` of a JSON error object, one per exit status.
KINDS: dict[int, str] = {
    WOULD_NOT_LOAD: "would-not-load",
    USAGE: "usage",
    IO_ERROR: "io",
    MALFORMED_IMAGE: "malformed-image",
    BAD_SIGNATURE: "bad-signature",
    HASH_MISMATCH: "hash-mismatch",
    TEE_ERROR: "tee-error",
    INTERNAL: "internal",
}

#: The lines every command's ``--help`` ends with (click keeps ``\\b`` blocks
#: as written).
HELP_EPILOG = (
    "\b\nExit status: 0 ok, 1 would not load, 2 usage (bad option, unusable "
    "key),\n3 I/O (missing file, directory), 4 malformed image, 5 bad "
    "signature,\n6 hash mismatch, 7 TEE error, 70 internal error."
)
