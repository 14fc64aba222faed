"""Several real servers on one PostgreSQL or MariaDB database: a cluster for tests.

    with TideflowTestCluster("postgresql+psycopg://...", size=3) as cluster:
        leader = cluster.wait_for_leader()
        leader.kill()  # SIGKILL, as a crash would
        assert cluster.wait_for_leader() is not leader  # within about a lease
        leader.start()  # back on its port and home, as a follower

Each member is a :class:`~tideflow.testing.TideflowTestServer` (``tideflow server start`` in
a child process) with a home of its own under the cluster's root. The lease is short by
default (1 s, heartbeat 0.2 s), so a test waits about a second for a failover rather than the
production defaults' few. All members share one blob store, as a real deployment must: a code
package submitted through one member is run by another. The first member starts alone, so it
migrates the database (and leads, until something happens to it); the others then start side
by side.

Who leads and who beats is read from the database (as ``tideflow server status`` does), never
from the members' logs: a member's row is matched to its server by pid, as every member runs on
this machine. ``hosts`` makes members register as on machines of their own, to test what a
lost host does to the jobs it ran.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from tideflow.client import Client, connect
from tideflow.testing.process import TideflowTestServer
from tideflow.testing.wait import wait_until

if TYPE_CHECKING:
    from tideflow.store import Store
    from tideflow.store.repositories.cluster import Lease, Member

LEASE = 1.0
"""Default lease seconds of a test cluster: a failover takes about this long."""
HEARTBEAT = 0.2
"""Default heartbeat seconds of a test cluster."""
BEATING_LEASES = 3
"""A member beats if its last heartbeat is younger than this many leases (a busy test machine
delays heartbeats well past one)."""


class TideflowTestCluster:
    """Servers sharing one database, as a high-availability deployment runs them.

    Args:
        db_url: The shared PostgreSQL or MariaDB database (SQLite is single-server). The first
            member migrates it.
        size: How many members.
        root: Where the members' homes (``m0``, ``m1``, ...) and the shared blob store
            (``blobs``) go; a temporary directory by default (removed on :meth:`close`).
        lease: ``--lease-seconds`` of every member; ``None`` keeps the server's default.
        heartbeat: ``--heartbeat-seconds`` of every member; ``None`` keeps the server's default.
        args: Extra ``tideflow server start`` options for every member.
        env: Extra environment variables for every member (``{"TIDEFLOW_EXECUTORS": ""}``).
        hosts: Each member's ``$TIDEFLOW_MEMBER_HOST``, ``size`` of them (``None``: this
            machine's name), so members look like servers on machines of their own.

    Raises:
        ValueError: ``db_url`` is SQLite, or ``hosts`` does not have ``size`` entries.
    """

    def __init__(
        self,
        db_url: str,
        *,
        size: int = 3,
        root: Path | None = None,
        lease: float | None = LEASE,
        heartbeat: float | None = HEARTBEAT,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        hosts: Sequence[str | None] | None = None,
    ) -> None:
        if db_url.startswith("sqlite"):
            raise ValueError("a cluster needs PostgreSQL or MariaDB: SQLite is single-server")
        if hosts is not None and len(hosts) != size:
            raise ValueError(f"hosts names {len(hosts)} hosts for {size} members")
        from tideflow.scheduler.leadership import MEMBER_HOST_VARIABLE
        from tideflow.server.config import DEFAULT_LEASE_SECONDS

        self.db_url = db_url
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="tideflow-cluster-")) if root is None else root
        self.lease = DEFAULT_LEASE_SECONDS if lease is None else lease
        options = ["--blob", str(self.root / "blobs")]
        if lease is not None:
            options += ["--lease-seconds", str(lease)]
        if heartbeat is not None:
            options += ["--heartbeat-seconds", str(heartbeat)]
        self.members: list[TideflowTestServer] = []
        for i in range(size):
            member_env = dict(env or {})
            if hosts is not None and hosts[i] is not None:
                member_env[MEMBER_HOST_VARIABLE] = str(hosts[i])
            self.members.append(
                TideflowTestServer(
                    home=self.root / f"m{i}", db_url=db_url, args=[*options, *args], env=member_env
                )
            )
        self._store: Store | None = None

    # -- running -----------------------------------------------------------------------------

    def start(self) -> TideflowTestCluster:
        """Start every member; each serves when this returns.

        The first starts alone (it migrates the database and takes the lease), the others
        side by side: a server start is seconds of imports and set-up that wait on nothing
        another member holds, so a three-member cluster starts in about two server starts.

        Raises:
            UnavailableError: A member did not start (those started are stopped again).
        """
        first, *others = self.members
        try:
            first.start()
            if others:
                with ThreadPoolExecutor(len(others), thread_name_prefix="member-start") as pool:
                    for started in [pool.submit(member.start) for member in others]:
                        started.result()  # the first failure, once every start has ended
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every running member (SIGTERM), side by side: each stop waits for its exit."""
        with ThreadPoolExecutor(len(self.members), thread_name_prefix="member-stop") as pool:
            for stopped in [pool.submit(member.stop) for member in self.members]:
                stopped.result()

    def close(self) -> None:
        """Stop the members, close the connection to the database, remove a temporary root."""
        self.stop()
        if self._store is not None:
            self._store.close()
            self._store = None
        for member in self.members:
            member.close()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TideflowTestCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reaching it -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The multi-address URL of every member (``grpc://host:a,host:b,...``)."""
        return self.url_from(0)

    def url_from(self, first: int) -> str:
        """The multi-address URL starting at member ``first`` (clients try members in order)."""
        first %= len(self.members)
        order = self.members[first:] + self.members[:first]
        return "grpc://" + ",".join(m.url.removeprefix("grpc://") for m in order)

    def client(self, project: str = "default", *, first: int = 0) -> Client:
        """A client of the whole cluster: a call whose member dies is retried on another."""
        return connect(self.url_from(first), project=project)

    # -- as the database sees it -------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The shared database, opened on first use (closed by :meth:`close`)."""
        if self._store is None:
            from tideflow.store import Store  # the store's libraries only when it is read

            self._store = Store.open(self.db_url)
        return self._store

    def view(self) -> tuple[list[Member], Lease | None]:
        """The members' rows and the lease, as the database holds them now."""
        from tideflow.scheduler.leadership import cluster_view

        return cluster_view(self.store)

    def member_id(self, server: TideflowTestServer) -> str | None:
        """The member id the running ``server`` registered under (``None``: not registered)."""
        if server.process is None:
            return None
        found, _ = self.view()
        return next((m.member_id for m in found if m.pid == server.process.pid), None)

    def server_of(self, member_id: str | None) -> TideflowTestServer | None:
        """The running member whose id is ``member_id``, if any."""
        found, _ = self.view()
        pid = next((m.pid for m in found if m.member_id == member_id), None)
        return next((s for s in self.members if s.process and s.process.pid == pid), None)

    def leader(self) -> TideflowTestServer | None:
        """The running member that holds a live lease (``None`` between leaders)."""
        _, lease = self.view()
        if lease is None or lease.holder is None or lease.expires_in <= 0:
            return None
        return self.server_of(lease.holder)

    def epoch(self) -> int:
        """The lease's fencing token: one more at every change of leader (0: never led)."""
        _, lease = self.view()
        return lease.epoch if lease is not None else 0

    def beating(self) -> list[TideflowTestServer]:
        """The running members whose heartbeat the database heard lately."""
        found, _ = self.view()
        fresh = {m.pid for m in found if m.heartbeat_age < BEATING_LEASES * self.lease}
        return [s for s in self.members if s.process is not None and s.process.pid in fresh]

    def whole(self) -> bool:
        """Every member runs and beats, and one of them leads."""
        return len(self.beating()) == len(self.members) and self.leader() is not None

    def wait_for_leader(self, timeout: float = 60.0) -> TideflowTestServer:
        """Wait until a running member leads; that member."""
        return wait_until(self.leader, timeout=timeout, what="a leader")

    def wait_whole(self, timeout: float = 60.0) -> TideflowTestServer:
        """Wait until every member beats and one leads (after a restart); the leader."""
        wait_until(self.whole, timeout=timeout, what=f"{len(self.members)} members and a leader")
        return self.wait_for_leader(timeout)

    def describe(self) -> str:
        """The lease, each member's row and process, and its log's last warnings: for failures."""
        lines: list[str] = []
        with contextlib.suppress(Exception):  # a description must not hide the failure
            found, lease = self.view()
            lines.append(f"lease: {lease}")
            lines += [
                f"member {m.member_id} pid {m.pid} age {m.heartbeat_age:.2f} s" for m in found
            ]
        for i, server in enumerate(self.members):
            process = server.process
            state = "stopped" if process is None else f"pid {process.pid}"
            if process is not None and process.poll() is not None:
                state += f" (exited with {process.returncode})"
            log = server.log_file.read_text(errors="replace") if server.log_file.exists() else ""
            notable = [
                line
                for line in log.splitlines()
                if " WARNING " in line or " ERROR " in line or "Traceback" in line
            ]
            lines.append(f"m{i} {state}, its log's last warnings:")
            lines += notable[-15:]
        return "\n".join(lines)
