"""Who may do what: API token roles and the token entity (no secrets: only metadata).

Roles are ordered: a ``writer`` may do everything a ``reader`` may, an ``admin`` everything a
``writer`` may. A token belongs to one project and grants its role there only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    """What a token's holder may do in its project.

    ``READER`` calls reading RPCs only; ``WRITER`` also changes state (send events, create
    and deploy model versions, submit workflows); ``ADMIN`` also runs administrative calls
    (compacting the event log, managing tokens). ``JOB`` is for job attempts only.
    """

    READER = "reader"
    WRITER = "writer"
    ADMIN = "admin"
    JOB = "job"
    """A job attempt's own token: minted by the server for one attempt, never by people. It
    stands outside the order: it may make the calls jobs make (see ``tideflow.rpc.auth``)."""

    @property
    def rank(self) -> int:
        """Position in the order reader < writer < admin (``job`` ranks as a reader)."""
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """Whether this role includes ``needed`` (for ``job``, only reading)."""
        return self.rank >= needed.rank


_RANKS = {Role.READER: 0, Role.WRITER: 1, Role.ADMIN: 2, Role.JOB: 0}


@dataclass(frozen=True)
class ApiToken:
    """An API token's metadata (the token itself is shown once, at creation, and never stored).

    Attributes:
        token_id: Server-assigned id (what ``tideflow token revoke`` takes).
        name: A label for people (who or what uses it).
        project: The one project it grants access to.
        role: What it allows there.
        create_time: When it was created (UTC).
        revoke_time: When it was revoked (UTC), or ``None`` while valid.
        job_execution_id: For a ``job`` token, the attempt it was minted for (it is revoked
            when that attempt ends); ``None`` for people's tokens.
        execution_id: For a ``job`` token, the only execution it may read.
    """

    token_id: int
    name: str
    project: str
    role: Role
    create_time: datetime | None = None
    revoke_time: datetime | None = None
    job_execution_id: int | None = None
    execution_id: int | None = None

    @property
    def revoked(self) -> bool:
        """Whether the token no longer works."""
        return self.revoke_time is not None
