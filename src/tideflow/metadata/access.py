"""API tokens: create (shown once), list, revoke, and authenticate a presented token.

A token is ``tf_`` followed by 43 URL-safe characters of ``secrets.token_urlsafe(32)`` (256
random bits). Only its SHA-256 is stored: a leaked database does not leak working tokens, and
an unsalted fast hash is enough because the tokens are random, not chosen by people.

Every call to :meth:`AccessService.authenticate` reads the store (one indexed point read), so a
revoked token stops working on its very next call, in every server sharing the database.
"""

from __future__ import annotations

import hashlib
import secrets

from tideflow.domain.access import ApiToken, Role
from tideflow.domain.limits import MAX_TEXT_LENGTH, check_name, check_text
from tideflow.errors import InvalidArgumentError, UnauthenticatedError
from tideflow.store import Store
from tideflow.store.repositories.access import TokenRepository
from tideflow.store.types import utcnow

TOKEN_PREFIX = "tf_"
MAX_TOKEN_LENGTH = 256


def hash_token(token: str) -> str:
    """The hex SHA-256 under which ``token`` is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_role(role: Role | str) -> Role:
    """``role`` as a :class:`Role`.

    Raises:
        InvalidArgumentError: Not one of reader, writer, admin (or job).
    """
    try:
        return Role(str(role).lower())
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise InvalidArgumentError(
            f"unknown role {role!r}; choose one of {choices}", field="role"
        ) from None


class AccessService:
    """API tokens of every project."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        """The store the tokens are in (the web app keeps its audit list there too)."""
        return self._store

    def create_token(
        self, project: str, role: Role | str, *, name: str = ""
    ) -> tuple[ApiToken, str]:
        """Create a token for ``project`` with ``role``.

        Returns:
            The token's metadata, and the token itself (shown to the user once; only its hash
            is kept).

        Raises:
            InvalidArgumentError: Invalid project name, role or name.
        """
        check_name(project, "project name")
        checked = parse_role(role)
        if checked is Role.JOB:
            raise InvalidArgumentError(
                "job tokens are minted by the server for each attempt; "
                "choose reader, writer or admin",
                field="role",
            )
        check_text(name, "token name", MAX_TEXT_LENGTH)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = hash_token(token)
        created = self._store.run(
            lambda c: TokenRepository(c).create(digest, name, project, checked, utcnow())
        )
        return created, token

    def create_job_token(
        self, project: str, *, execution_id: int, job_execution_id: int, name: str = ""
    ) -> tuple[ApiToken, str]:
        """Mint the ``job`` token of one attempt (revoked when the attempt ends).

        Returns:
            The token's metadata and the token (handed to the attempt, never logged).
        """
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = hash_token(token)
        label = name or f"attempt {job_execution_id}"
        created = self._store.run(
            lambda c: TokenRepository(c).create(
                digest,
                label,
                project,
                Role.JOB,
                utcnow(),
                job_execution_id=job_execution_id,
                execution_id=execution_id,
            )
        )
        return created, token

    def list_tokens(self, project: str | None = None) -> list[ApiToken]:
        """Tokens of ``project`` (of every project when ``None``), revoked ones included."""
        return self._store.run(lambda c: TokenRepository(c).list(project), write=False)

    def revoke_token(self, token_id: int) -> ApiToken:
        """Revoke a token: it is refused from its next call on.

        Raises:
            NotFoundError: No such token.
        """
        return self._store.run(lambda c: TokenRepository(c).revoke(token_id, utcnow()))

    def authenticate(self, token: str) -> ApiToken:
        """The token's metadata (its project and role) if it is known and not revoked.

        Raises:
            UnauthenticatedError: Unknown or revoked token (the message never echoes it).
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise UnauthenticatedError("invalid API token")
        digest = hash_token(token)
        found = self._store.run(lambda c: TokenRepository(c).find(digest), write=False)
        if found is None:
            raise UnauthenticatedError("invalid API token")
        if found.revoked:
            raise UnauthenticatedError(f"API token {found.token_id} was revoked")
        return found
