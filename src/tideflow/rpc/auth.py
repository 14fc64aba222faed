"""The server's authenticator: API tokens, roles and project isolation at the RPC edge.

Rules, checked for every call before its handler runs (see :class:`TokenAuthenticator`):

- No token: refused with :class:`~tideflow.errors.UnauthenticatedError` when auth is required;
  otherwise admitted with the ``admin`` role (auth optional: a loopback server by default).
- A token that is unknown or revoked: always refused (``UnauthenticatedError``), even when auth
  is optional, so a mistyped token never silently works as "no token".
- A token of project B used for project A (the ``x-tideflow-project`` metadata): refused with
  :class:`~tideflow.errors.PermissionDeniedError`. Services scope every call by that project,
  so this check alone keeps one project's events, models, datasets and workflows from another.
- A role below the one the method needs: ``PermissionDeniedError``. Reading RPCs need
  ``reader``, mutating ones (:func:`~tideflow.rpc.call.is_mutating`) ``writer``, and the
  administrative ones in :data:`ADMIN_METHODS` ``admin``.
- ``authorization`` metadata that is not one ``Bearer <token>`` (a bare ``tf_...``, another
  scheme such as ``Token tf_...``, ``Bearer`` alone, several values): refused with
  ``UnauthenticatedError`` when the call is parsed (:func:`~tideflow.rpc.call.bearer_token`),
  whatever the auth mode. Only a call with no ``authorization`` at all counts as "no token".
- A stream (``Listen``) re-checks its token while it runs, at most every
  ``recheck_interval`` seconds (:meth:`TokenAuthenticator.recheck`): once the token is revoked,
  the stream ends with ``UNAUTHENTICATED`` ("API token N was revoked") within about that
  interval -- the same status and message as the next unary call with that token gets, since
  it is the credential that is no longer valid, not a right the caller lacks. Its role and
  project cannot change, so only the token's validity is looked up again.
- A ``job`` token (minted by the server for one attempt, revoked when it ends) may call only
  :data:`JOB_METHODS`, and of the scheduler's only the reads of its own execution: the call
  carries that execution's id (``Call.execution_id``) and the servicer refuses any other.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from tideflow.domain.access import Role
from tideflow.errors import PermissionDeniedError, UnauthenticatedError
from tideflow.metadata.access import AccessService
from tideflow.rpc.call import Call, is_mutating

ADMIN_METHODS = frozenset(
    {"CompactEvents", "DeleteProject", "CreateToken", "ListTokens", "RevokeToken"}
)
"""RPC names (without service) only ``admin`` tokens may call: they drop data or grant access."""

JOB_METHODS = frozenset(
    {
        # events
        "SendEvent",
        "SendEvents",
        "ListEvents",
        "GetLatestOffset",
        "Listen",
        "CommitOffset",
        "GetCommittedOffset",
        # models: versions, their status, deployment, rollback and aliases
        "CreateModel",
        "GetModel",
        "ListModels",
        "UpdateModel",
        "CreateModelVersion",
        "GetModelVersion",
        "ListModelVersions",
        "SetModelVersionStatus",
        "DeployModelVersion",
        "RollbackModel",
        "SetModelAlias",
        "DeleteModelAlias",
        "ListModelAliases",
        "GetModelVersionHistory",
        # datasets, artifacts, metrics, lineage
        "GetProject",
        "RegisterDataset",
        "GetDataset",
        "ListDatasets",
        "UpdateDataset",
        "RegisterArtifact",
        "GetArtifact",
        "ListArtifacts",
        "UpdateArtifact",
        "LogMetric",
        "ListMetrics",
        "RecordLineage",
        "GetUpstreamLineage",
        "GetDownstreamLineage",
        # blobs (models and artifacts are stored there)
        "UploadBlob",
        "GetBlob",
        # its own execution (the servicer checks the id) and the server's address book
        "GetWorkflowExecution",
        "ListJobExecutions",
        "ListExecutionActions",
        "GetServerInfo",
    }
)
"""RPC names a ``job`` token may call: what shipped jobs do, and nothing that grants access,
submits or deletes workflows, controls executions or deletes data."""


DEFAULT_RECHECK_INTERVAL = 1.0
"""Seconds between look-ups of an open stream's token (``--token-recheck``)."""

MAX_CACHED_TOKENS = 10_000
"""Tokens whose last good look-up :meth:`TokenAuthenticator.recheck` remembers."""


def required_role(method: str) -> Role:
    """The least role that may call ``/package.Service/Method``."""
    name = method.rsplit("/", 1)[-1]
    if name in ADMIN_METHODS:
        return Role.ADMIN
    return Role.WRITER if is_mutating(method) else Role.READER


class TokenAuthenticator:
    """Checks each call's bearer token against the store's API tokens.

    Args:
        access: Where tokens are looked up.
        required: Whether calls without a token are refused.
        recheck_interval: How often (seconds) an open stream's token is looked up again; a
            revoked token's streams end within about this long.
    """

    def __init__(
        self,
        access: AccessService,
        *,
        required: bool,
        recheck_interval: float = DEFAULT_RECHECK_INTERVAL,
    ) -> None:
        self._access = access
        self.required = required
        self.recheck_interval = recheck_interval
        # token -> when its last successful look-up stops counting: many streams of one token
        # (a job's listeners, a dashboard's) share one read per interval.
        self._valid_until: dict[str, float] = {}
        self._valid_lock = threading.Lock()

    def recheck(self, call: Call) -> None:
        """Check again that the token of an admitted ``call`` still works (for streams).

        One store read per token per :attr:`recheck_interval` at most, shared by every stream
        of that token.

        Raises:
            UnauthenticatedError: The token was revoked (or is gone) since the call started.
        """
        token = call.token
        if token is None:
            return
        now = time.monotonic()
        with self._valid_lock:
            if self._valid_until.get(token, 0.0) > now:
                return
        self._access.authenticate(token)
        with self._valid_lock:
            if len(self._valid_until) >= MAX_CACHED_TOKENS:
                self._valid_until = {t: u for t, u in self._valid_until.items() if u > now}
                if len(self._valid_until) >= MAX_CACHED_TOKENS:
                    self._valid_until.clear()
            self._valid_until[token] = now + self.recheck_interval

    def authenticate(self, call: Call) -> Call:
        """Return ``call`` with the caller's role, or raise.

        Raises:
            UnauthenticatedError: No token while one is required; an unknown or revoked token.
            PermissionDeniedError: The token is of another project, or its role is too low.
        """
        if call.token is None:
            if self.required:
                raise UnauthenticatedError(
                    "this server requires an API token: pass token=... to tide.connect / "
                    "tide.init, or --token (or $TIDEFLOW_TOKEN) to the CLI; an admin creates "
                    "one with `tideflow token create`"
                )
            return replace(call, role=Role.ADMIN.value)
        principal = self._access.authenticate(call.token)
        if principal.project != call.project:
            raise PermissionDeniedError(
                f"API token {principal.token_id} is for project {principal.project!r}, "
                f"not {call.project!r}"
            )
        name = call.method.rsplit("/", 1)[-1]
        if principal.role is Role.JOB:
            if name not in JOB_METHODS:
                raise PermissionDeniedError(
                    f"API token {principal.token_id} is a job's token (attempt "
                    f"{principal.job_execution_id}); jobs may not call {name}"
                )
            return replace(
                call,
                role=Role.JOB.value,
                token_id=principal.token_id,
                execution_id=principal.execution_id,
            )
        needed = required_role(call.method)
        if not principal.role.allows(needed):
            raise PermissionDeniedError(
                f"API token {principal.token_id} has role {principal.role.value!r}; "
                f"{call.method.rsplit('/', 1)[-1]} needs {needed.value!r}"
            )
        return replace(call, role=principal.role.value, token_id=principal.token_id)
