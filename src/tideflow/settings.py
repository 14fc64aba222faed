"""Typed settings with their defaults (stdlib only, so every layer may read them).

Everything local lives under ``$TIDEFLOW_HOME`` (default ``~/.tideflow``): the embedded SQLite
store ``tideflow.db`` and the blob store ``blobs/``. Reading the environment happens in
:meth:`Settings.from_env` only, so tests pass their own mapping instead of patching globals.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOME_VARIABLE = "TIDEFLOW_HOME"
DB_VARIABLE = "TIDEFLOW_DB"
PROJECT_VARIABLE = "TIDEFLOW_PROJECT"
SERVER_VARIABLE = "TIDEFLOW_SERVER"
TOKEN_VARIABLE = "TIDEFLOW_TOKEN"
CA_VARIABLE = "TIDEFLOW_CA_FILE"
CONNECT_TIMEOUT_VARIABLE = "TIDEFLOW_CONNECT_TIMEOUT"
"""How long the CLI waits for a server to answer its first connection, in seconds."""
DEFAULT_CONNECT_TIMEOUT = 2.0
_PREFIX = "TIDEFLOW_"
DATA_DIR_VARIABLE = "TIDEFLOW_DATA_DIR"
"""Set for jobs: their project's data directory (``ctx.data_dir``)."""
DEFAULT_HOME = "~/.tideflow"
DEFAULT_PROJECT = "default"
DB_FILE = "tideflow.db"


@dataclass(frozen=True)
class Settings:
    """Where Tideflow keeps its state.

    Attributes:
        home: The Tideflow home directory.
        db_url: The store's URL; the SQLite file in ``home`` unless ``$TIDEFLOW_DB`` says
            otherwise.
        project: The project commands use when none is given.
        server: The server commands and ``tide.init`` use when none is given (``grpc://...``).
        token: The API token sent when none is given.
        ca_file: PEM file of the CA that signed the server's TLS certificate (``grpcs://``).
    """

    home: Path
    db_url: str
    project: str = DEFAULT_PROJECT
    server: str | None = None
    token: str | None = None
    ca_file: Path | None = None

    @property
    def blob_root(self) -> Path:
        """The local blob store (code packages, models, artifacts)."""
        return self.home / "blobs"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        home = Path(env.get(HOME_VARIABLE) or DEFAULT_HOME).expanduser()
        db_url = env.get(DB_VARIABLE) or sqlite_url(home / DB_FILE)
        ca_file = env.get(CA_VARIABLE)
        return cls(
            home=home,
            db_url=db_url,
            project=env.get(PROJECT_VARIABLE) or DEFAULT_PROJECT,
            server=env.get(SERVER_VARIABLE) or None,
            token=env.get(TOKEN_VARIABLE) or None,
            ca_file=Path(ca_file).expanduser() if ca_file else None,
        )


def connect_timeout(environ: Mapping[str, str] | None = None) -> float:
    """``$TIDEFLOW_CONNECT_TIMEOUT`` in seconds (default 2): the CLI's wait for a server.

    Read on its own, not in :class:`Settings`: a bad value must fail the command that uses
    it with a message naming the variable, not every reader of the settings.

    Raises:
        ValueError: Not a positive number (the message names the variable and shows an example).
    """
    env = os.environ if environ is None else environ
    raw = env.get(CONNECT_TIMEOUT_VARIABLE) or ""
    if not raw.strip():
        return DEFAULT_CONNECT_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ValueError(
            f"${CONNECT_TIMEOUT_VARIABLE} must be a positive number of seconds, got {raw!r} "
            f"(e.g. {CONNECT_TIMEOUT_VARIABLE}=5)"
        )
    return seconds


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of the SQLite file at ``path`` (made absolute)."""
    return f"sqlite:///{path.expanduser().absolute()}"


def default_db_url() -> str:
    """The store URL commands use without ``--db``."""
    return Settings.from_env().db_url


def scrubbed_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment without its Tideflow settings, for job processes to inherit.

    ``$TIDEFLOW_HOME``, ``$TIDEFLOW_DB``, the server's own ``$TIDEFLOW_TOKEN`` and the rest
    name the server's files and credentials: a job gets its own variables instead
    (:func:`job_environment`).
    """
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if not k.startswith(_PREFIX)}
