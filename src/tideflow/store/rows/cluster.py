"""Tables of a cluster of servers on one database: its members and the leader's lease.

Times here are seconds on the *database's* clock (``Double``), never a server's: the members
of a cluster compare each other's heartbeats and the lease's expiry, and their own clocks may
disagree; the database's is the one clock they all read.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Double, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tideflow.store.rows.base import Base
from tideflow.store.types import UTCDateTime

SECONDS: Double[float] = Double()


class ClusterMemberRow(Base):
    """One server of the cluster: who it is, where it answers, when it last said it lives."""

    __tablename__ = "cluster_member"

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    addresses: Mapped[str] = mapped_column(Text)
    """JSON: ``{"grpc": url, "http": url}``."""
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat: Mapped[float] = mapped_column(SECONDS)
    home: Mapped[str | None] = mapped_column(String(2048))
    """Its ``$TIDEFLOW_HOME``: a server restarted there replaces this member at once."""
    executors: Mapped[str | None] = mapped_column(Text)
    """JSON list of the executors it runs (NULL: not said): who can take a dead one's jobs."""


class ClusterLeaseRow(Base):
    """The leader's lease: who holds it, until when, and its fencing token (``epoch``).

    ``epoch`` grows by one at every change of holder and never goes back: a write that checks
    it in its own transaction cannot commit once another member has taken the lease.
    """

    __tablename__ = "cluster_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(BigInteger)
    expires: Mapped[float] = mapped_column(SECONDS)
