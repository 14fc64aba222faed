"""The real Redis of the development machine, one unique stream key per test (deleted after).

An unreachable Redis skips its tests with the reason -- unless ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tideflow.io.redis_stream import connect_redis, redis_url_from_env


@pytest.fixture
def redis_client() -> Iterator[Any]:
    import redis

    url = redis_url_from_env()
    client = connect_redis(url)
    try:
        client.ping()
    except redis.ConnectionError as e:
        client.close()
        message = f"Redis at {url} is unavailable: {e}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true requires it)")
        pytest.skip(message)
    yield client
    client.close()


@pytest.fixture
def stream_key(redis_client: Any) -> Iterator[str]:
    key = f"tideflow-test-{uuid.uuid4().hex}"
    yield key
    redis_client.delete(key)
