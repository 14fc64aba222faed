"""The shared database every cluster test's members run on: one new database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import server_database


@pytest.fixture(
    params=[
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
    ]
)
def shared_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A new empty database on the development server of the backend (SQLite cannot cluster)."""
    with server_database(request.param) as url:
        yield url
