"""Compose and run one server: store -> services -> gRPC (with the edge interceptor) + HTTP.

Shutdown is graceful: the health check turns 503, gRPC stops accepting calls and gives
in-flight ones ``grace`` seconds, listeners are closed, HTTP stops, the store is released.

Before anything else, start resolves ``--job-user`` (refusing a server that is not root),
makes the home private (:mod:`tideflow.server.home`) and checks, as the job user, that it can
run jobs: a server that could not run them does not start.

Several servers on one PostgreSQL or MariaDB database form a cluster: each is a member, and
only the one holding the leader's lease runs the :class:`Scheduler` (dispatcher, timers,
schedules, re-offering), fenced by that lease (:mod:`tideflow.scheduler.leadership`); every
member serves every call and stream. On SQLite a second server on the same file is refused
(:mod:`tideflow.server.single`).

Threads: gRPC is ``grpc.aio`` on an event loop of its own thread (:mod:`tideflow.rpc.aio_server`).
On SQLite the short calls (:data:`~tideflow.rpc.inline.INLINE_METHODS`) run on the loop; every
other call, and every call on a server database, runs on a pool of :data:`RPC_WORKERS` threads.
An open ``Listen`` stream is a task, not a thread; the Notification servicer refuses streams
over ``max_listeners`` with ``RESOURCE_EXHAUSTED``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from tideflow._version import __version__
from tideflow.client.services import Services, local_services
from tideflow.domain.scheduling import AttemptOwner
from tideflow.errors import UnavailableError
from tideflow.executors.identity import JobUser, check_job_user, resolve_job_user
from tideflow.metadata.access import AccessService
from tideflow.net import tcp_listener
from tideflow.rpc.aio_server import AioServer
from tideflow.rpc.auth import TokenAuthenticator
from tideflow.rpc.inline import INLINE_METHODS
from tideflow.rpc.interceptor import EdgeInterceptor
from tideflow.rpc.server_info import server_info_handler
from tideflow.rpc.servicers.blob import BlobServicer
from tideflow.rpc.servicers.metadata import MetadataServicer, MetadataServices
from tideflow.rpc.servicers.model_center import ModelCenterServicer
from tideflow.rpc.servicers.notification import NotificationServicer
from tideflow.rpc.servicers.scheduler import SchedulerServicer
from tideflow.rpc.v1 import (
    blob_pb2_grpc,
    metadata_pb2_grpc,
    model_center_pb2_grpc,
    notification_pb2_grpc,
    scheduler_pb2_grpc,
)
from tideflow.scheduler.clock import Clock
from tideflow.scheduler.handover import AttemptHandover
from tideflow.scheduler.leadership import Leadership
from tideflow.scheduler.runtime import Scheduler
from tideflow.server.config import ServerConfig
from tideflow.server.executors import ServerExecutors, executor_names, host_bound
from tideflow.server.home import private_database, private_file, secure_home
from tideflow.server.metrics import ServerMetrics
from tideflow.server.request_log import StoreRequestLog
from tideflow.server.single import SqliteServerLock
from tideflow.store import Store
from tideflow.store.blob import BlobStore

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
RPC_WORKERS = 64
"""Pool threads for the calls that do not run on the event loop, and for listeners' reads."""
CHECKPOINT_EVERY = 0.5
"""Seconds between the server's looks at a SQLite log to checkpoint (tideflow.store.checkpoint)."""
SERVER_FILE = "server.json"
HTTP_GRACE_SECONDS = 5
"""How long stopping HTTP waits for open responses (e.g. live streams) before closing them."""
HTTP_BUILD_SECONDS = 60.0
"""How long a stop waits for an HTTP app still being built (about a second; more when starved)."""


def register_servicers(
    server: Any,
    services: Services,
    *,
    max_listeners: int | None = None,
    reads: Executor | None = None,
    inline_reads: bool = False,
) -> NotificationServicer:
    """Add every service's servicer to ``server``; return the Notification one (for metrics).

    ``reads`` runs the ``Listen`` streams' store reads (the server's pool), unless
    ``inline_reads`` has them run on the event loop (SQLite).
    """
    notification = NotificationServicer(
        services.notifications, max_listeners=max_listeners, reads=reads, inline_reads=inline_reads
    )
    model_center_pb2_grpc.add_ModelCenterServiceServicer_to_server(
        ModelCenterServicer(services.model_center), server
    )
    metadata_pb2_grpc.add_MetadataServiceServicer_to_server(
        MetadataServicer(MetadataServices.of(services)), server
    )
    notification_pb2_grpc.add_NotificationServiceServicer_to_server(notification, server)
    scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server(
        SchedulerServicer(services.workflows, services.scheduler), server
    )
    if services.blobs is not None:
        blob_pb2_grpc.add_BlobServiceServicer_to_server(BlobServicer(services.blobs), server)
    return notification


class TideflowServer:
    """One running server; :meth:`start`, then :meth:`wait` or :meth:`stop`.

    Args:
        config: How it runs (``tideflow server start``'s options).
        clock: The scheduler's clock (tests run a server in their process on a manual one);
            the system clock, or ``$TIDEFLOW_TEST_CLOCK_FILE``'s, by default.
        executors: The executors to run; ``$TIDEFLOW_EXECUTORS``, else every registered one,
            by default.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        clock: Clock | None = None,
        executors: Sequence[str] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._executor_names = executors
        self.metrics = ServerMetrics()
        self.grpc_port = 0
        self.http_port = 0
        self._serving = False
        self._stopped = threading.Event()
        self._grpc: AioServer | None = None
        self._http: Any = None
        self._http_thread: threading.Thread | None = None
        self._http_socket: socket.socket | None = None
        self._http_lock = threading.Lock()
        self._http_built = threading.Event()  # built, or failed to be
        self._http_closed = False  # stop() is past HTTP: an app built now is not served
        self.http_error: Exception | None = None
        """Why the HTTP app could not be built, if it could not (the server then stops)."""
        self._services: Services | None = None
        self._scheduler: Scheduler | None = None
        self._executors: ServerExecutors | None = None
        self._request_log: StoreRequestLog | None = None
        self._access: AccessService | None = None
        self._sqlite_lock: SqliteServerLock | None = None
        self._leadership: Leadership | None = None
        self._handover: AttemptHandover | None = None
        self._leader_lock = threading.Lock()
        self._store: Store | None = None

    @property
    def url(self) -> str:
        """``grpc://host:port`` of the running server (``grpcs://`` with TLS)."""
        scheme = "grpcs" if self.config.tls else "grpc"
        return f"{scheme}://{self.config.host}:{self.grpc_port}"

    def start(self) -> None:
        """Open the store (migrating an empty one), then serve gRPC and HTTP.

        Raises:
            FailedPreconditionError: ``job_user`` is set and the server is not root, or that
                user cannot run this server's Python; or another server serves the same
                SQLite file.
            InvalidArgumentError: ``job_user`` names no unprivileged OS user, or the lease
                settings are inconsistent.
        """
        config = self.config
        lease = config.lease  # checked before anything starts
        job_user: JobUser | None = None
        if config.job_user is not None:
            job_user = resolve_job_user(config.job_user)
        secure_home(config, job_user)
        if job_user is not None:
            check_job_user(job_user, config.home)
        self._sqlite_lock = SqliteServerLock.claim(config.db_url, url=self.url)
        # Checkpoints of a SQLite log in a thread of their own, not in a caller's commit.
        self._store = store = Store.open(config.db_url, checkpoint_every=CHECKPOINT_EVERY)
        private_database(config.db_url)  # created just now, or its -wal / -shm
        self._services = services = local_services(
            store,
            owns_store=True,
            blob_url=config.blob_root,
            home=config.home,
            package_limits=config.package_limits,
            clock=self._clock,
        )
        BlobStore(config.blob_root).sweep_uploads()  # what a killed server's uploads left
        last = [services.notifications.latest_offset()]

        def count_events(offset: int) -> None:
            if offset > last[0]:
                self.metrics.events.inc(offset - last[0])
                last[0] = offset

        store.add_commit_listener(count_events)
        clustered = store.dialect != "sqlite"
        if services.scheduler is not None and not clustered:  # the dispatcher and timer threads
            self._scheduler = Scheduler(store, services.scheduler)
            self._scheduler.start()
            self.metrics.leader.set(1)
        self._request_log = StoreRequestLog(store)
        self._access = AccessService(store)
        pool = ThreadPoolExecutor(max_workers=RPC_WORKERS, thread_name_prefix="rpc")
        interceptor = EdgeInterceptor(
            authenticator=TokenAuthenticator(
                self._access,
                required=config.auth_required,
                recheck_interval=config.token_recheck,
            ),
            request_log=self._request_log,
            observer=self.metrics,
            pool=pool,
            # On SQLite a short call is the process's own work: the loop runs it (no thread
            # hand-off). A server database's round trips would stop the loop: pool only.
            inline=INLINE_METHODS if store.dialect == "sqlite" else (),
        )
        self._grpc = AioServer(
            pool=pool,
            edge=interceptor,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                ("grpc.so_reuseport", 0),
            ],
        )
        notification = register_servicers(
            self._grpc,
            services,
            max_listeners=config.max_listeners,
            reads=pool,
            inline_reads=store.dialect == "sqlite",
        )
        self._grpc.add_generic_rpc_handlers((server_info_handler(self.info),))
        self.metrics.track_listeners(
            lambda: notification.open_streams, maximum=config.max_listeners
        )
        self.metrics.track_store(
            store,
            scheduler=self._scheduler,
            executions=services.scheduler.executions if services.scheduler else None,
        )
        try:
            self.grpc_port = self._bind_grpc(self._grpc)
        except BaseException:
            self._grpc.stop(0)  # its loop thread and pool go with the failed start
            self._grpc = None
            raise
        if self._sqlite_lock is not None:
            self._sqlite_lock.describe(self.url)
        if clustered and services.scheduler is not None:
            # The first heartbeat runs now: a lone server leads (and re-offers commands)
            # before its executors take any.
            self._leadership = Leadership(
                store,
                lease,
                addresses={"grpc": self.url},
                on_elected=self._lead,
                on_deposed=self._follow,
                on_beat=self._cluster_work,
                home=str(config.home),
                executors=(
                    executor_names() if self._executor_names is None else self._executor_names
                ),
            )
            self._leadership.start()
        self._grpc.start()
        if services.scheduler is not None:  # jobs connect back to self.url: known from here
            self._executors = ServerExecutors(
                home=config.home,
                scheduler=services.scheduler,
                workflows=services.workflows,
                server_url=self.url,
                access=self._access,
                names=self._executor_names,
                options=config.executor_options,
                metrics=services.metrics,
                lineage=services.lineage,
                job_user=job_user,
                owner=self._owner(),
            )
            self._executors.start()
        self._start_http()
        self._serving = True
        self._write_files()
        log.info(
            "Tideflow server serving gRPC on %s, HTTP on %s:%s, store %s",
            self.url,
            config.host,
            self.http_port,
            store,
        )

    def _lead(self, epoch: int) -> None:
        """This member was elected: run the scheduler's threads, fenced by ``epoch``."""
        assert self._services is not None
        assert self._services.scheduler is not None
        assert self._leadership is not None
        assert self._store is not None
        with self._leader_lock:
            if self._scheduler is not None:  # pragma: no cover - deposed first, always
                self._scheduler.stop()
            scheduler = Scheduler(
                self._store,
                self._services.scheduler,
                fence=self._leadership.fence,
                max_timer_wait=self.config.heartbeat_seconds,
                lease=self.config.lease_seconds,
            )
            scheduler.dispatcher.on_decided = self.metrics.decision_seconds.observe
            scheduler.start()
            self._scheduler = scheduler
            self._handover = AttemptHandover(
                self._store,
                self._services.scheduler.executions,
                fence=self._leadership.fence,
                lease=self.config.lease_seconds,
                host_bound=host_bound,
            )
            self.metrics.leader.set(1)
            self.metrics.leadership_changes.inc()

    def _owner(self) -> AttemptOwner | None:
        """This server as the owner of the attempts it launches (``None``: not a cluster)."""
        if self._leadership is None:
            return None
        return AttemptOwner(
            member_id=self._leadership.member_id,
            host=self._leadership.host,
            home=str(self.config.home),
            lease=self.config.lease_seconds,
        )

    def _cluster_work(self, leading: bool) -> None:
        """After each heartbeat, on its thread: hand dead members' work over, adopt ours.

        The leader re-offers dead members' commands and hands their attempts over; every
        member re-attaches the attempts handed to it.
        """
        handover = self._handover
        if leading and handover is not None:
            handover.run_once()
        executors = self._executors
        if executors is not None:
            executors.adopt_assigned()

    def _follow(self) -> None:
        """This member stopped leading: stop the scheduler's threads (their writes are fenced)."""
        self._handover = None
        with self._leader_lock:
            self.metrics.leader.set(0)
            self.metrics.leadership_changes.inc()
            if self._scheduler is not None:
                self._scheduler.stop()
                self._scheduler = None

    def _bind_grpc(self, server: AioServer) -> int:
        """Bind the gRPC port, or one of the next ``port_search`` ports if it is taken."""
        config = self.config
        credentials = None
        if config.tls_cert is not None and config.tls_key is not None:
            credentials = grpc.ssl_server_credentials(
                [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())]
            )
        last = config.port + config.port_search if config.port else 0
        for port in range(config.port, last + 1):
            address = f"{config.host}:{port}"
            try:
                # grpcio raises RuntimeError on a failed bind (older versions returned 0).
                if credentials is not None:
                    bound = server.add_secure_port(address, credentials)
                else:
                    bound = server.add_insecure_port(address)
            except RuntimeError:
                bound = 0
            if bound:
                return int(bound)
        raise UnavailableError(
            f"cannot bind gRPC to {config.host}:{config.port}"
            + (f"..{last}" if last > config.port else "")
            + ": address in use or not available"
        )

    def _bind_http(self) -> socket.socket:
        """A listening-ready socket on the HTTP port, or one of the next ``port_search``."""
        config = self.config
        last = config.http_port + config.port_search if config.http_port else 0
        for port in range(config.http_port, last + 1):
            try:
                # Listening claims the port now: SO_REUSEADDR alone lets another bind it.
                return tcp_listener(config.host, port)
            except OSError as e:
                if port == last:
                    raise UnavailableError(
                        f"cannot bind HTTP to {config.host}:{config.http_port}"
                        + (f"..{last}" if last > config.http_port else "")
                        + f": {e.strerror}"
                    ) from e
                continue
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_http(self) -> None:
        """Bind the HTTP port now; build the app and serve it on the HTTP thread.

        The port is bound (and listening) before :meth:`start` returns, so a taken port still
        fails the start and the ready file names a port that accepts connections. Building the
        app (FastAPI and every route of the API and pages: ~0.45 s, a quarter of a start) happens
        after: requests that come first wait in the socket's backlog until it serves, and
        :meth:`stop` waits for it, so that ``/healthz`` answers 503 through a graceful stop.
        """
        self._http_socket = sock = self._bind_http()
        self.http_port = sock.getsockname()[1]
        self._http_thread = threading.Thread(
            target=self._serve_http, args=(sock,), name="http", daemon=True
        )
        self._http_thread.start()

    def _serve_http(self, sock: socket.socket) -> None:
        """On the HTTP thread: build the app, then serve ``sock`` until :meth:`stop`.

        A failure to build it (a broken install) stops the server, with the error logged and
        :attr:`http_error` set, rather than leaving it serving gRPC without HTTP.
        """
        try:
            server = self._build_http()
        except Exception as e:  # the thread's edge: the main thread reports it
            log.exception("cannot build the HTTP app; stopping the server")
            self.http_error = e
            sock.close()
            self.request_stop()
            return
        finally:
            self._http_built.set()
        with self._http_lock:
            if self._http_closed:  # stop() gave up waiting for the build
                return
            self._http = server
        server.run(sockets=[sock])

    def _build_http(self) -> Any:
        """The uvicorn server of the HTTP app (imported here: FastAPI is heavy)."""
        import uvicorn

        from tideflow.web.app import create_app
        from tideflow.web.deps import WebServices

        assert self._services is not None
        assert self._access is not None
        web = WebServices.of(
            self._services,
            self._access,
            auth_required=self.config.auth_required,
            leadership=self._leadership,
        )
        app = create_app(
            healthy=lambda: self._serving, registry=self.metrics.registry, services=web
        )
        server: Any = uvicorn.Server(  # Any: install_signal_handlers is set below
            uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                # Open SSE streams end when the listeners close (stop() does that first);
                # this only bounds a stream that somehow does not.
                timeout_graceful_shutdown=HTTP_GRACE_SECONDS,
            )
        )
        server.install_signal_handlers = lambda: None  # signals belong to the main thread
        return server

    def wait_http_built(self) -> bool:
        """Block until the HTTP app is built or fails to be; whether it is.

        :meth:`start` returns before it is (see :meth:`_start_http`); ``serve`` waits for it
        to keep the app out of the collector's scans too.
        """
        self._http_built.wait()
        with self._http_lock:
            return self._http is not None

    def info(self) -> dict[str, Any]:
        """Where this server serves (``server.json``; ``GetServerInfo`` for remote clients)."""
        return {
            "url": self.url,
            "grpc_port": self.grpc_port,
            "http_port": self.http_port,
            "http_url": f"http://{self.config.host}:{self.http_port}",
            "version": __version__,
        }

    def _write_files(self) -> None:
        """``server.json`` and the ready file; a failure to write one (a full disk) is a warning.

        The server serves without them: reads go on on a full disk, and clients that are told
        the address (``--server``) reach it.
        """
        info = {**self.info(), "pid": os.getpid(), "db": self.config.db_url}
        paths = [self.config.home / SERVER_FILE]
        if self.config.ready_file is not None:
            paths.append(self.config.ready_file)
        for path in paths:
            try:
                _write_atomically(path, info)
            except OSError as e:
                with contextlib.suppress(OSError):
                    path.with_name(path.name + ".tmp").unlink(missing_ok=True)
                log.warning(
                    "could not write %s (%s); serving anyway at %s",
                    path,
                    e.strerror or e,
                    self.url,
                )

    def wait(self) -> None:
        """Block until :meth:`stop` is called (from a signal handler or another thread)."""
        self._stopped.wait()

    def request_stop(self) -> None:
        """Ask :meth:`wait` to return (safe from a signal handler)."""
        self._stopped.set()

    def stop(self) -> None:
        """Stop serving and release everything."""
        self._serving = False
        self.request_stop()
        if self._http_thread is not None:  # HTTP answers through the stop (/healthz: 503)
            self._http_built.wait(HTTP_BUILD_SECONDS)
        if self._services is not None:
            # Close listeners first: their streams end and let gRPC shut down promptly.
            self._services.notifications.close()
        if self._grpc is not None:
            self._grpc.stop(self.config.grace)
            self._grpc = None
        with self._http_lock:
            http, self._http = self._http, None
            self._http_closed = True
        if http is not None:
            http.should_exit = True
            if self._http_thread is not None:
                self._http_thread.join(10)
        elif self._http_socket is not None:  # never served (failed, or not built in time)
            self._http_socket.close()
        self._http_thread = self._http_socket = None
        if self._executors is not None:  # running jobs keep running
            self._executors.stop()
            self._executors = None
        if self._leadership is not None:  # stops the scheduler and hands the lease over
            self._leadership.stop()
            self._leadership = None
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        if self._services is not None:
            if self._request_log is not None:
                self._request_log.close()  # store the last responses before the store closes
                self._request_log = None
            self._services.close()
            self._services = None
        if self._sqlite_lock is not None:
            self._sqlite_lock.release()
            self._sqlite_lock = None
        server_file = self.config.home / SERVER_FILE
        try:
            if json.loads(server_file.read_text()).get("pid") == os.getpid():
                server_file.unlink()
        except (OSError, ValueError):
            pass
        log.info("Tideflow server stopped")


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write ``path`` whole or not at all, ``0600`` (it names the store)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # an old one may have another mode
    with open(private_file(tmp), "w") as out:
        out.write(json.dumps(data, indent=2))
    tmp.replace(path)
