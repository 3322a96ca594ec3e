"""Exit statuses of the ``rproctee`` command, one meaning each.

=====  ==========================================================
0      success
1      a pre-flight (``check``) found the image would not load
2      usage error (bad option or argument; click's own status)
3      I/O error (file missing, unreadable, unwritable)
4      malformed image or ELF
5      bad signature (or unusable key)
6      segment hash mismatch
7      the TEE answered something other than TEE_SUCCESS
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
