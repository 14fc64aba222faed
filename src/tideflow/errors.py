"""Tideflow's one error tree.

Every error Tideflow raises on purpose is a :class:`TideflowError`. Each subclass stands for
one meaning, so callers (and the gRPC status table that a later layer keeps) can act on the
class alone; the structured fields say *what* was at fault::

    TideflowError
    ├── InvalidArgumentError        bad input: a name, a value, a filter
    │   └── GraphError              a workflow graph that cannot compile (lists every problem)
    ├── NotFoundError               an entity that does not exist
    ├── AlreadyExistsError          an entity that already exists
    ├── IllegalTransitionError      a status change the state machine forbids
    ├── FailedPreconditionError     the system is not in the state an operation needs
    │   ├── NotLeaderError          a leader-only write by a server that no longer leads
    │   └── NotOwnerError           an attempt's status written by a member that lost it
    ├── UnauthenticatedError        no or unknown credentials
    ├── PermissionDeniedError       credentials that do not allow the operation
    ├── UnavailableError            a server or database that cannot be reached now
    │   └── ResourceExhaustedError  a server limit is reached (e.g. its open listen streams)
    ├── StoreError                  a database failure with no more specific meaning
    └── UserCodeError               a user's processor raised (keeps the user's traceback)

Driver errors (SQLAlchemy, grpc) are translated where they happen and chained with
``raise ... from``, so none of them leaks out of its layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class TideflowError(Exception):
    """Root of every error Tideflow raises on purpose."""


class InvalidArgumentError(TideflowError):
    """The caller passed a value Tideflow cannot accept.

    Attributes:
        field: The argument or field at fault, when one can be named.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class GraphProblem:
    """One thing wrong with a workflow graph, located as precisely as possible.

    Attributes:
        message: What is wrong and, where possible, how to fix it.
        workflow: The workflow's name.
        job: The job at fault, if any.
        node: The node at fault, if any.
        location: ``file:line`` of the user's declaration, if known.
    """

    message: str
    workflow: str | None = None
    job: str | None = None
    node: str | None = None
    location: str | None = None

    def __str__(self) -> str:
        where = [
            f"{label} '{value}'"
            for label, value in (
                ("workflow", self.workflow),
                ("job", self.job),
                ("node", self.node),
            )
            if value is not None
        ]
        prefix = ", ".join(where)
        text = f"{prefix}: {self.message}" if prefix else self.message
        return f"{text} (at {self.location})" if self.location else text


class GraphError(InvalidArgumentError):
    """A workflow graph that cannot be compiled.

    Validation collects every problem before raising, so one run shows the user all of them.

    Attributes:
        problems: Each problem, in the order they were found.
    """

    def __init__(self, problems: Sequence[GraphProblem] | str) -> None:
        if isinstance(problems, str):
            problems = [GraphProblem(problems)]
        self.problems: tuple[GraphProblem, ...] = tuple(problems)
        count = len(self.problems)
        header = f"workflow graph has {count} problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([header, *(f"  - {p}" for p in self.problems)]))


class NotFoundError(TideflowError):
    """An entity that does not exist.

    Attributes:
        entity: Its kind (``model``, ``model version``, ``dataset``, ...).
        key: What it was looked up by.
    """

    def __init__(self, entity: str, key: object, *, message: str | None = None) -> None:
        super().__init__(message or f"{entity} {key!r} not found")
        self.entity = entity
        self.key = key


class AlreadyExistsError(TideflowError):
    """An entity that already exists where a new one was asked for.

    Attributes:
        entity: Its kind.
        key: Its identifying key.
    """

    def __init__(self, entity: str, key: object, *, message: str | None = None) -> None:
        super().__init__(message or f"{entity} {key!r} already exists")
        self.entity = entity
        self.key = key


class IllegalTransitionError(TideflowError):
    """A status change the state machine forbids.

    Attributes:
        entity: What changes status (``model version ctr/3``, ``job train``).
        current: The status it has.
        requested: The status that was asked for.
        allowed: The statuses it may move to from ``current`` (empty: none, or not known).
    """

    def __init__(
        self, entity: str, current: str, requested: str, *, allowed: Sequence[str] = ()
    ) -> None:
        hint = f"; allowed from {current}: {', '.join(allowed)}" if allowed else ""
        super().__init__(f"{entity}: illegal transition {current} -> {requested}{hint}")
        self.entity = entity
        self.current = current
        self.requested = requested
        self.allowed = tuple(allowed)


class FailedPreconditionError(TideflowError):
    """The system is not in the state the operation needs (e.g. a stale schema)."""


class NotLeaderError(FailedPreconditionError):
    """A leader-only write (a scheduler decision, a timer tick) by a server that does not lead.

    Raised inside the write's own transaction, which then rolls back: the fencing token it
    held is no longer the lease's (another server took over while this one was paused or cut
    off).
    """


class NotOwnerError(FailedPreconditionError):
    """A status report about an attempt by a cluster member that no longer owns it.

    Raised inside the report's own transaction, which then rolls back: the member was taken
    for dead (paused, cut off) and the leader handed its attempt to another member, whose
    reports are the attempt's from then on. The executor lets go of the attempt without
    touching the job.
    """


class UnauthenticatedError(TideflowError):
    """No credentials, or credentials the server does not know."""


class PermissionDeniedError(TideflowError):
    """Credentials that do not allow this operation on this project."""


class UnavailableError(TideflowError):
    """A server or database that cannot be reached now; retrying later may work."""


class ResourceExhaustedError(UnavailableError):
    """A server limit is reached (e.g. its cap on open listen streams); retry later or raise it."""


class StoreError(TideflowError):
    """A database failure that has no more specific meaning."""


class UserCodeError(TideflowError):
    """A user's processor raised; the original exception is chained as ``__cause__``.

    Attributes:
        node: The node whose processor failed.
        user_traceback: The formatted traceback of the user's exception.
    """

    def __init__(self, message: str, *, node: str | None = None, user_traceback: str = "") -> None:
        super().__init__(message)
        self.node = node
        self.user_traceback = user_traceback
