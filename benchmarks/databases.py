"""Fresh databases for benchmarks: each run measures on a store nobody wrote to before.

``database(backend)`` yields the URL of a new, empty store and removes it afterwards: a SQLite
file in a temporary directory, or a uniquely named database on the development server of
PostgreSQL or MariaDB (the same servers the test suite uses). The benchmarks run as scripts
from this folder, so they import this module by its bare name.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

SERVERS = {
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306",
}
"""The development servers, by backend name (their ``test`` database is the admin's door)."""


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A new empty store of ``backend`` (``sqlite``, ``postgres``, ``mysql``), removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'bench.db'}"
        return
    name = f"tideflow_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"{SERVERS[backend]}/test", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f"CREATE DATABASE {name}"))
        try:
            yield f"{SERVERS[backend]}/{name}"
        finally:
            # PostgreSQL refuses to drop a database a leftover connection (a killed server's)
            # still holds, unless forced; MariaDB drops it anyway.
            force = " WITH (FORCE)" if backend == "postgres" else ""
            with admin.connect() as c:
                c.execute(text(f"DROP DATABASE {name}{force}"))
    finally:
        admin.dispose()
