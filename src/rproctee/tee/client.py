"""GlobalPlatform TEE Client API model: context, session, invoke.

This is the normal-world side. A driver (or the CLI) creates a
:class:`TeeContext` over a :class:`~rproctee.tee.core.TeeCore`, opens a
session to a TA by UUID and invokes commands with up to four typed parameters.
Memrefs are shared memory: the TA reads the caller's buffer in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

from rproctee.tee.core import UUID, Answer, TeeCore
from rproctee.tee.params import Param, word_for
from rproctee.tee.results import Origin, TeeError, TeeResult


class _ClosedOnExit:
    """``with`` support for handles that have a ``close()``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class TeeClientError(TeeError):
    """``TEEC_OpenSession`` failed; ``answer`` holds code, origin and reason."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        super().__init__(answer.result, answer.reason)


class TeeContext(_ClosedOnExit):
    """``TEEC_Context``: the connection of one client to the TEE.

    Parameters
    ----------
    core : TeeCore
        The secure world to talk to.
    """

    def __init__(self, core: TeeCore) -> None:
        self.core = core
        self._sessions: list[TeeSession] = []

    def open_session(
        self,
        uuid: UUID | str,
        params: Sequence[Param] = (),
        *,
        ptypes: int | None = None,
    ) -> TeeSession:
        """``TEEC_OpenSession`` with login "REE kernel".

        Parameters
        ----------
        uuid : UUID or str
            The TA to open.
        params : sequence of Value, Memref or None
            Up to four parameters.
        ptypes : int, optional
            Explicit parameter-type word; by default built from ``params``.

        Returns
        -------
        TeeSession

        Raises
        ------
        TeeClientError
            With the TEE's answer (e.g. BUSY, BAD_PARAMETERS, NOT_SUPPORTED).
        """
        word = word_for(params) if ptypes is None else ptypes & 0xFFFF
        answer, sid = self.core.open_session(uuid, word, params)
        if sid is None:
            raise TeeClientError(answer)
        session = TeeSession(self, sid, UUID(str(uuid)))
        self._sessions.append(session)
        return session

    def close(self) -> None:
        """``TEEC_FinalizeContext``: close every session still open."""
        for session in list(self._sessions):
            session.close()


class TeeSession(_ClosedOnExit):
    """``TEEC_Session``: one open session to a TA."""

    def __init__(self, context: TeeContext, sid: int, uuid: UUID) -> None:
        self.context = context
        self.sid = sid
        self.uuid = uuid
        self.closed = False

    def invoke_command(
        self,
        cmd: int,
        params: Sequence[Param] = (),
        *,
        ptypes: int | None = None,
    ) -> Answer:
        """``TEEC_InvokeCommand``.

        Parameters
        ----------
        cmd : int
            Command id.
        params : sequence of Value, Memref or None
            Up to four parameters; output values are written back in place.
        ptypes : int, optional
            Explicit parameter-type word (to send a wrong one on purpose).

        Returns
        -------
        Answer
            Result code, origin and reason. Never raises for a TEE error.
        """
        if self.closed:
            reason = "session already closed"
            return Answer(TeeResult.TEE_ERROR_BAD_STATE, Origin.API, reason)
        word = word_for(params) if ptypes is None else ptypes & 0xFFFF
        return self.context.core.invoke(self.sid, cmd & 0xFFFFFFFF, word, params)

    def close(self) -> None:
        """``TEEC_CloseSession`` (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.context.core.close_session(self.sid)
        if self in self.context._sessions:
            self.context._sessions.remove(self)
