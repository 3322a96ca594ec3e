"""Loader policies, chosen per platform instance."""

from __future__ import annotations

from enum import StrEnum


class Policy(StrEnum):
    """How the remoteproc TA judges an image.

    ``OPTEE`` answers exactly as upstream OP-TEE 4.x, including its known
    weaknesses (security checklist section 3, W1-W9). ``STRICT`` gives the
    same answers for well-formed images and adds the checks a correct loader
    needs: 1:1 ordered hash-table match, ``p_filesz <= p_memsz``, no
    overlapping segments, EI_DATA / e_machine / e_type checks, resource table
    inside loaded file-backed memory, everything validated before the first
    write, memory scrubbed on failure.
    """

    OPTEE = "optee"
    STRICT = "strict"

    @classmethod
    def parse(cls, text: str | Policy) -> Policy:
        """Policy from its name (``"optee"`` or ``"strict"``)."""
        try:
            return cls(text)
        except ValueError:
            names = ", ".join(p.value for p in cls)
            raise ValueError(f"policy {text!r} unknown (choose {names})") from None
