"""The cluster page and ``GET /api/v1/cluster``: members and leader, from any member.

Two real servers on one PostgreSQL database (short lease, no executors): each member's route
lists both, names the same leader and epoch, and marks itself; after the leader is killed the
other member shows itself leading at the next epoch and the dead member's heartbeat ageing.
A server on SQLite says it is single-server.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.databases import server_database
from tideflow.testing import TideflowTestServer, wait_until

ARGS = ["--lease-seconds", "1", "--heartbeat-seconds", "0.2"]
NO_EXECUTORS = {"TIDEFLOW_EXECUTORS": ""}


def cluster(server: TideflowTestServer) -> dict[str, Any]:
    response = httpx.get(f"{server.http_url}/api/v1/cluster", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def page(server: TideflowTestServer) -> str:
    response = httpx.get(f"{server.http_url}/ui/default/cluster", timeout=30)
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.postgres
def test_every_member_shows_the_members_and_the_leader(tmp_path: Path) -> None:
    with server_database("postgres") as url:
        a = TideflowTestServer(home=tmp_path / "a", db_url=url, args=ARGS, env=NO_EXECUTORS)
        b = TideflowTestServer(home=tmp_path / "b", db_url=url, args=ARGS, env=NO_EXECUTORS)
        with a, b:
            pid_a, pid_b = a.process.pid, b.process.pid  # type: ignore[union-attr]
            seen_a, seen_b = cluster(a), cluster(b)
            assert seen_a["clustered"] is True
            members = {m["pid"]: m for m in seen_a["members"]}
            assert set(members) == {pid_a, pid_b}
            assert members[pid_a]["address"] == a.url
            assert members[pid_b]["address"] == b.url
            assert all(0 <= m["heartbeat_age"] < 1.0 for m in members.values())
            assert members[pid_a]["leader"] is True  # the first to start leads
            assert members[pid_b]["leader"] is False
            assert seen_a["leader"] == members[pid_a]["member_id"]
            epoch = seen_a["epoch"]
            assert epoch >= 1
            # every member answers alike, each marking itself
            assert (seen_b["leader"], seen_b["epoch"]) == (seen_a["leader"], epoch)
            assert seen_a["this_member"] == members[pid_a]["member_id"]
            assert seen_b["this_member"] == members[pid_b]["member_id"]

            html = page(b)
            assert 'href="/ui/default/cluster" class="current"' in html  # in the navigation
            row_a = re.search(rf'<tr data-member="{seen_a["leader"]}" data-leader="true">', html)
            assert row_a is not None
            assert f"leader (epoch {epoch})" in html
            assert f">{pid_a}<" in html
            assert f">{pid_b}<" in html
            assert a.url.removeprefix("grpc://") in html
            assert "(this server)" in html

            a.kill()  # the leader dies: B takes over and shows A's heartbeat ageing
            after = wait_until(
                lambda: (seen := cluster(b))["this_member"] == seen["leader"] and seen,
                timeout=30,
                what="B leads",
            )
            assert after["epoch"] == epoch + 1
            dead = next(m for m in after["members"] if m["pid"] == pid_a)
            assert dead["leader"] is False
            assert dead["heartbeat_age"] >= 1.0  # silent for a lease at least
            assert f"leader (epoch {epoch + 1})" in page(b)


def test_a_sqlite_server_says_it_is_single_server() -> None:
    with TideflowTestServer(env=NO_EXECUTORS) as server:
        body = cluster(server)
        assert body["clustered"] is False
        assert body["members"] == []
        assert body["leader"] is None
        html = page(server)
        assert 'id="single-server"' in html
        assert "This server is single-server" in html
        assert 'id="members"' not in html
