"""Throw-away databases on the PostgreSQL and MariaDB servers of the development machine.

Each test session creates uniquely named databases and drops them at the end, so parallel runs
and leftovers never collide. A server that cannot be reached skips its tests with the reason --
unless ``CI=true``, where a missing server is a failure, not a silent gap in coverage.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

SERVERS = {
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306",
}
ADMIN_DATABASE = "test"


def unavailable(backend: str, reason: str) -> None:
    """Skip (or, under CI, fail) because the server of ``backend`` is not usable."""
    message = f"{backend} server at {SERVERS[backend]} is unavailable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true requires it)")
    pytest.skip(message)


@contextmanager
def server_database(backend: str) -> Iterator[str]:
    """Create a new empty database on the server of ``backend``; yield its URL; drop it."""
    name = f"tideflow_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{SERVERS[backend]}/{ADMIN_DATABASE}", isolation_level="AUTOCOMMIT")
    try:
        try:
            with admin.connect() as connection:
                connection.execute(text(f"CREATE DATABASE {name}"))
        except OperationalError as e:
            unavailable(backend, str(e.orig).strip().splitlines()[0])
        try:
            yield f"{SERVERS[backend]}/{name}"
        finally:
            drop = f"DROP DATABASE {name}" + (" WITH (FORCE)" if backend == "postgres" else "")
            with admin.connect() as connection:
                connection.execute(text(drop))
    finally:
        admin.dispose()
