"""Run a server in the foreground until SIGTERM / SIGINT, logging under ``$TIDEFLOW_HOME/logs``."""

from __future__ import annotations

import gc
import io
import logging
import os
import signal
import sys
from logging.handlers import RotatingFileHandler
from types import FrameType
from typing import Any

from tideflow import logs
from tideflow.errors import TideflowError
from tideflow.logs import LogFormat
from tideflow.rpc.call import current_call
from tideflow.server.app import TideflowServer
from tideflow.server.config import ServerConfig


class PrivateRotatingFileHandler(RotatingFileHandler):
    """A rotating log whose files are created ``0600``, whatever the umask."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)  # one made before, with the umask's mode
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


def configure_logging(
    config: ServerConfig, *, to_stderr: bool, log_format: LogFormat | str = LogFormat.TEXT
) -> None:
    """Log to ``logs/server.log`` (rotated, ``0600``), and to stderr in the foreground.

    ``log_format`` is ``text`` or ``json`` (:mod:`tideflow.logs`); the server's jobs are
    started with the same.
    """
    config.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handlers: list[logging.Handler] = [
        PrivateRotatingFileHandler(
            config.log_dir / "server.log", maxBytes=10_000_000, backupCount=5
        )
    ]
    if to_stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    logs.configure(log_format, handlers, level=logging.INFO)
    logs.add_id_source(_current_rpc_ids)


def _current_rpc_ids() -> dict[str, Any]:
    """The project and request id of the RPC being served on this thread, if any."""
    call = current_call.get(None)
    if call is None:
        return {}
    return {"project": call.project, "request_id": call.request_id}


def serve(config: ServerConfig) -> int:
    """Start, serve until a stop signal, stop gracefully; return the exit status.

    Raises:
        TideflowError: The server could not start, or its HTTP app could not be built (it
            stopped then).
    """
    server = TideflowServer(config)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        server.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.start()
        # Everything imported and built at start-up lives as long as the server: keep it out
        # of the collector's scans (the events benchmark saw 30 ms GC pauses on busy writers).
        # The HTTP app is built after start returns (the server is ready sooner): again then.
        gc.freeze()
        if server.wait_http_built():
            gc.freeze()
        server.wait()
    finally:
        server.stop()
    if server.http_error is not None:
        raise TideflowError(f"cannot serve HTTP: {server.http_error}") from server.http_error
    return 0
