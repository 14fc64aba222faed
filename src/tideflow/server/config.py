"""Everything ``tideflow server start`` can be told, with the defaults of DESIGN.md."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tideflow.domain.limits import MAX_PACKAGE_FILES, MAX_PACKAGE_RATIO, MAX_PACKAGE_UNPACKED_BYTES
from tideflow.metadata.package import PackageLimits

if TYPE_CHECKING:
    from tideflow.scheduler.leadership import LeaseSettings
from tideflow.settings import Settings

DEFAULT_PORT = 50051
DEFAULT_HTTP_PORT = 8080
DEFAULT_MAX_LISTENERS = 10_000
"""An idle ``Listen`` stream is a task costing about 28 KiB of server memory: 10,000 ~ 280 MiB."""
DEFAULT_TOKEN_RECHECK = 1.0
DEFAULT_LEASE_SECONDS = 2.5
"""With heartbeats every 0.5 s, a dead leader is replaced ~2.5 s after its death: the median
failover of issue 17's target (<= 3 s) with room for a loaded machine (docs/ha.md,
benchmarks/bench_failover.py). A leader stalled longer than this loses the lease."""
DEFAULT_HEARTBEAT_SECONDS = 0.5


@dataclass(frozen=True)
class ServerConfig:
    """How one server runs.

    Attributes:
        db_url: The store.
        home: ``$TIDEFLOW_HOME``: logs, blobs and ``server.json`` live there.
        host: The address gRPC and HTTP bind to.
        port: gRPC port; 0 picks a free one.
        http_port: HTTP port (UI, JSON API, /metrics, /healthz); 0 picks a free one.
        blob_url: Where code packages, models and artifacts are stored (any fsspec URL).
        auth: ``optional`` or ``required`` (default: required unless bound to loopback).
        tls_cert: PEM certificate for gRPC TLS.
        tls_key: PEM private key for gRPC TLS.
        ready_file: Written with the bound ports once serving (for scripts and tests).
        port_search: If ``port`` (or ``http_port``) is taken, try up to this many following
            ports (the embedded server uses it to live beside other servers).
        grace: Seconds in-flight calls get on shutdown.
        max_listeners: Most ``Listen`` streams open at once (each a task of the gRPC loop,
            ~28 KiB of memory; no thread).
        executor_options: Per executor name, its ``ExecutorContext.options`` (``--ray-address``
            becomes ``{"ray": {"address": ...}}``).
        job_user: The unprivileged OS user local jobs run as (``--job-user``; the server must
            run as root); ``None`` runs them as the server's own user.
        token_recheck: Seconds between look-ups of an open stream's token
            (``--token-recheck``): a revoked token's ``Listen`` streams end within about this.
        max_package_unpacked: Bytes a code package may unpack to in all
            (``--max-package-unpacked``).
        max_package_files: Entries a code package may hold (``--max-package-files``).
        max_package_ratio: How many times its compressed size one large entry of a code
            package may unpack to (``--max-package-ratio``).
        lease_seconds: On PostgreSQL / MariaDB, how long the leader's lease lasts after its
            last renewal (``--lease-seconds``): a dead leader is replaced after about this.
        heartbeat_seconds: How often members renew their heartbeat and the leader its lease
            (``--heartbeat-seconds``); below ``lease_seconds``.
    """

    db_url: str
    home: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    http_port: int = DEFAULT_HTTP_PORT
    blob_url: str | None = None
    auth: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ready_file: Path | None = None
    port_search: int = 0
    grace: float = 5.0
    max_listeners: int = DEFAULT_MAX_LISTENERS
    executor_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    job_user: str | None = None
    token_recheck: float = DEFAULT_TOKEN_RECHECK
    max_package_unpacked: int = MAX_PACKAGE_UNPACKED_BYTES
    max_package_files: int = MAX_PACKAGE_FILES
    max_package_ratio: float = MAX_PACKAGE_RATIO
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> ServerConfig:
        """Defaults from the environment's settings, then explicit options."""
        values: dict[str, object] = {"db_url": settings.db_url, "home": settings.home}
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def loopback(self) -> bool:
        """Whether the server only listens on this machine."""
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")

    @property
    def auth_required(self) -> bool:
        """Tokens are required unless explicitly optional; optional by default on loopback."""
        if self.auth is not None:
            return self.auth == "required"
        return not self.loopback

    @property
    def tls(self) -> bool:
        """Whether gRPC is served over TLS."""
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def blob_root(self) -> str:
        """The blob store URL."""
        return self.blob_url or str(self.home / "blobs")

    @property
    def package_limits(self) -> PackageLimits:
        """What a code package may unpack to (checked at upload and at each extraction)."""
        return PackageLimits(
            max_unpacked_bytes=self.max_package_unpacked,
            max_files=self.max_package_files,
            max_ratio=self.max_package_ratio,
        )

    @property
    def lease(self) -> LeaseSettings:
        """The cluster's lease settings (checked: the heartbeat must be below the lease)."""
        from tideflow.scheduler.leadership import LeaseSettings

        return LeaseSettings(lease=self.lease_seconds, heartbeat=self.heartbeat_seconds)

    @property
    def log_dir(self) -> Path:
        """Where the server writes its log."""
        return self.home / "logs"
