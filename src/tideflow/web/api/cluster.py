"""The cluster: ``/cluster``, the members of the cluster this server belongs to and its leader.

Servers on one PostgreSQL or MariaDB database form a cluster (docs/ha.md); every member answers
this route with what the database says, so any member shows the same list (each marks itself
``this``). A server on SQLite is single-server: ``clustered`` is false and the list is empty.
The route needs a valid token when the server requires one, of any project and role: hosts,
pids and addresses are the operators' business, not any one project's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tideflow.scheduler.leadership import Leadership
from tideflow.web.api.params import Services
from tideflow.web.auth import Access, current_principal

router = APIRouter(tags=["cluster"])


def cluster_json(leadership: Leadership | None) -> dict[str, Any]:
    """The members and the leader as the database holds them now (see the module doc)."""
    if leadership is None:
        return {
            "clustered": False,
            "this_member": None,
            "leader": None,
            "epoch": None,
            "lease_expires_in": None,
            "members": [],
        }
    members, lease = leadership.members()
    live = lease is not None and lease.holder is not None and lease.expires_in > 0
    leader = lease.holder if live and lease is not None else None
    return {
        "clustered": True,
        "this_member": leadership.member_id,
        "leader": leader,
        "epoch": lease.epoch if lease is not None else None,
        "lease_expires_in": round(lease.expires_in, 3) if lease is not None else None,
        "members": [
            {
                "member_id": m.member_id,
                "host": m.host,
                "pid": m.pid,
                "address": m.addresses.get("grpc", ""),
                "start_time": m.start_time.isoformat(),
                "heartbeat_age": round(m.heartbeat_age, 3),
                "leader": m.member_id == leader,
                "this": m.member_id == leadership.member_id,
            }
            for m in members
        ],
    }


@router.get(
    "/cluster",
    summary="The members of this server's cluster and its leader",
    responses={
        200: {
            "description": "`clustered` is false on a single server (SQLite); otherwise each "
            "member's id, host, pid, gRPC address, seconds since its last heartbeat, and "
            "the leader with the lease's epoch (its fencing token)."
        }
    },
)
def get_cluster(
    services: Services, _: Annotated[Access, Depends(current_principal)]
) -> dict[str, Any]:
    """The cluster as the shared database holds it."""
    return cluster_json(services.leadership)
