"""TEE result codes and the one table that maps rproctee errors onto them.

The values are the GlobalPlatform TEE Internal Core / Client API values that
OP-TEE uses (``tee_api_defines.h``); the names are the spec's names, so
``TeeResult.TEE_ERROR_SECURITY.name`` is what a user reads in OP-TEE logs.
"""

from __future__ import annotations

from enum import IntEnum

from rproctee.errors import AddressError, ElfFormatError, FormatError, RprocError


class TeeResult(IntEnum):
    """TEE result code (32-bit, unsigned)."""

    #: Everything went fine.
    TEE_SUCCESS = 0x00000000
    #: Catch-all; the stm32mp PTA uses it for map/unmap failures.
    TEE_ERROR_GENERIC = 0xFFFF0000
    #: Address outside every region; PTA opened by a caller that is not the TA.
    TEE_ERROR_ACCESS_DENIED = 0xFFFF0001
    #: The operation was cancelled.
    TEE_ERROR_CANCEL = 0xFFFF0002
    #: Concurrent access conflict.
    TEE_ERROR_ACCESS_CONFLICT = 0xFFFF0003
    #: Too much data for the request.
    TEE_ERROR_EXCESS_DATA = 0xFFFF0004
    #: ELF header / program or section header checks, IMGTYPE value, NUM_IMG length.
    TEE_ERROR_BAD_FORMAT = 0xFFFF0005
    #: Parameter types, buffer checks, header checks, unknown command.
    TEE_ERROR_BAD_PARAMETERS = 0xFFFF0006
    #: Command not allowed in the current state.
    TEE_ERROR_BAD_STATE = 0xFFFF0007
    #: Requested item not found.
    TEE_ERROR_ITEM_NOT_FOUND = 0xFFFF0008
    #: GET_COREDUMP upstream; PTA without the ELF/hash-table capability.
    TEE_ERROR_NOT_IMPLEMENTED = 0xFFFF0009
    #: SIGNTYPE not 1/2; unknown processor id at the PTA; ECDSA on stm32mp.
    TEE_ERROR_NOT_SUPPORTED = 0xFFFF000A
    #: A required TLV is missing or empty; no hash entry for a segment.
    TEE_ERROR_NO_DATA = 0xFFFF000B
    #: The TA heap is exhausted.
    TEE_ERROR_OUT_OF_MEMORY = 0xFFFF000C
    #: A second session to a single-instance, single-session TA.
    TEE_ERROR_BUSY = 0xFFFF000D
    #: Communication with the TEE failed.
    TEE_ERROR_COMMUNICATION = 0xFFFF000E
    #: Segment hash mismatch.
    TEE_ERROR_SECURITY = 0xFFFF000F
    #: Output memref too small; its size is updated to what is needed.
    TEE_ERROR_SHORT_BUFFER = 0xFFFF0010
    #: The TA panicked: the session is dead and the TA's state is lost.
    TEE_ERROR_TARGET_DEAD = 0xFFFF3024
    #: Signature verification failed (also: wrong signature length).
    TEE_ERROR_SIGNATURE_INVALID = 0xFFFF3072
    #: Misaligned resource table.
    TEE_ERROR_CORRUPT_OBJECT = 0xF0100001

    @property
    def short(self) -> str:
        """Name without the ``TEE_ERROR_`` prefix, e.g. ``SECURITY``."""
        return self.name.removeprefix("TEE_ERROR_").removeprefix("TEE_")


class Origin(IntEnum):
    """Where a result came from (``TEEC_ORIGIN_*``)."""

    #: The client library refused the call before it reached the TEE.
    API = 1
    #: Transport between normal and secure world.
    COMMS = 2
    #: The TEE core (session rules, TA panic).
    TEE = 3
    #: The trusted application itself.
    TRUSTED_APP = 4


class TeeError(RprocError):
    """An error that carries the TEE result code it maps to and a reason.

    Parameters
    ----------
    result : TeeResult
        The code the TA answers with.
    reason : str
        Human text naming the offending field and value.
    """

    def __init__(self, result: TeeResult, reason: str) -> None:
        self.result = TeeResult(result)
        self.reason = reason
        super().__init__(f"{self.result.name}: {reason}")


class TaPanic(RprocError):
    """The TA called ``TEE_Panic`` (or libutee did on its behalf).

    The core turns it into ``TEE_ERROR_TARGET_DEAD`` and drops the TA instance.
    """


# One table, most specific class first: which TEE result an rproctee error
# becomes when it crosses into the TA (h5py's exception table idea).
_ERROR_TABLE: tuple[tuple[type[BaseException], TeeResult], ...] = (
    (AddressError, TeeResult.TEE_ERROR_ACCESS_DENIED),
    (ElfFormatError, TeeResult.TEE_ERROR_BAD_FORMAT),
    (FormatError, TeeResult.TEE_ERROR_BAD_PARAMETERS),
    (MemoryError, TeeResult.TEE_ERROR_OUT_OF_MEMORY),
)


def result_for(exc: BaseException) -> TeeResult:
    """Map an exception onto the TEE result code it stands for.

    Parameters
    ----------
    exc : BaseException
        A :class:`TeeError` (its own code) or an rproctee error.

    Returns
    -------
    TeeResult
        ``TEE_ERROR_GENERIC`` for anything the table does not know.
    """
    if isinstance(exc, TeeError):
        return exc.result
    for kind, result in _ERROR_TABLE:
        if isinstance(exc, kind):
            return result
    return TeeResult.TEE_ERROR_GENERIC


def result_name(code: int) -> str:
    """Name of a 32-bit result code, or its hex value when it has no name."""
    try:
        return TeeResult(code).name
    except ValueError:
        return f"0x{code & 0xFFFFFFFF:08x}"
