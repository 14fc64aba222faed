"""The contract between an executor and an in-job runtime: one attempt's control files.

An executor prepares a working directory for each job attempt (the extracted code package) and
a control directory inside it, ``<workdir>/.tideflow/`` (code packages never contain a
``.tideflow`` directory, so user files cannot collide with it). The executor writes what the
runtime needs; the runtime writes back how it is doing:

============== ========== ===============================================================
file           written by meaning
============== ========== ===============================================================
attempt.json   executor   :class:`AttemptSpec`: identity, params, the trigger events,
                          heartbeat interval
plan.json      executor   a one-job :class:`~tideflow.compiler.WorkflowPlan` (with payloads)
launch.json    executor   the pid (and its start time) the attempt runs as, once spawned
spawned.json   process    the same, claimed by the attempt's own process (``O_EXCL``) before
                          it runs anything: a twin spawned after a crash finds it and exits
stop.json      executor   a stop was requested, and why (``STOPPED``, a timeout, ...)
heartbeat      runtime    touched every ``heartbeat_interval`` seconds while alive
running        runtime    exists once every processor is open (the job is RUNNING)
result.json    runtime    :class:`AttemptResult`: how the attempt ended, written before exit
============== ========== ===============================================================

Files, not only pipes, because a job outlives the server that started it: a restarted executor
re-attaches to a running attempt from these files alone. When the runtime has a status pipe
(:data:`STATUS_FD_VARIABLE`), it also writes a ``running`` line to it, so a live executor learns
at once without polling.

Everything here is stdlib only: the runtime (``tideflow.engines``) and the executors
(``tideflow.executors``) sit in one layer and must not import each other.

The working directory may belong to the job's OS user while the executor runs as root
(``--job-user``): the executor then reads the job's files without following a symbolic link,
blocking on a FIFO or reading without bound, and writes its own with
:func:`write_control_file`, so nothing a job plants there makes root read or write elsewhere.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tideflow.domain.events import Event

CONTROL_DIR = ".tideflow"
ATTEMPT_DIR_VARIABLE = "TIDEFLOW_ATTEMPT_DIR"
"""The working directory of the attempt (the runtime's argument, also in its environment)."""
STATUS_FD_VARIABLE = "TIDEFLOW_STATUS_FD"
"""A file descriptor the runtime writes a ``running`` line to, when the executor gave it one."""
RUNNING_LINE = b"running\n"
MAX_CONTROL_BYTES = 1 << 20
"""The most a control file read by :meth:`AttemptFiles.read_json` may hold."""


@dataclass(frozen=True)
class AttemptSpec:
    """Who an attempt is and how it should behave (``attempt.json``).

    Attributes:
        project: The project.
        workflow: The workflow's name.
        execution_id: The workflow execution.
        snapshot_id: The snapshot the execution is pinned to.
        job: The job's name.
        attempt: The attempt number, from 1.
        job_execution_id: The job execution row of this attempt.
        params: The execution's parameters (``ctx.params``).
        heartbeat_interval: Seconds between two touches of the heartbeat file.
        server_url: The server jobs connect back to (``grpc://...``), if one is known. Jobs
            speak only the API: nothing here names the store (its URL, or a path into the
            server's own files); the attempt's token comes in ``$TIDEFLOW_TOKEN``.
        data_dir: The project's data directory: where jobs of the project hand files to
            each other (``ctx.data_dir``), if the executor has one.
        triggers: The events the attempt was started for, oldest first (``ctx.triggers``;
            the newest is ``ctx.trigger``); empty when nothing fired. Whole events, not
            offsets: a job reads them without a call to the server, and engines whose
            processors have no client (Spark, Flink) can pass them on too.
        context: The context the execution serves (``ctx.context``), for ``per_context``
            workflows; ``None`` otherwise.
    """

    project: str
    workflow: str
    execution_id: int
    snapshot_id: int
    job: str
    attempt: int
    job_execution_id: int
    params: Mapping[str, Any] = field(default_factory=dict)
    heartbeat_interval: float = 1.0
    server_url: str | None = None
    data_dir: str | None = None
    triggers: tuple[Event, ...] = ()
    context: str | None = None

    def to_json(self) -> str:
        """The JSON text of ``attempt.json``."""
        data = asdict(self)
        data["params"] = dict(self.params)
        data["triggers"] = [_event_to_dict(event) for event in self.triggers]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AttemptSpec:
        """Read ``attempt.json`` (one written before triggers existed has none)."""
        data = json.loads(text)
        data.pop("db_url", None)  # written by an older Tideflow; jobs no longer get it
        data["triggers"] = tuple(_event_from_dict(item) for item in data.get("triggers", ()))
        return cls(**data)


def _event_to_dict(event: Event) -> dict[str, Any]:
    return {
        "offset": event.offset,
        "namespace": event.namespace,
        "key": event.key,
        "value": event.value,
        "event_type": event.event_type,
        "sender": event.sender,
        "context": dict(event.context),
        "create_time": None if event.create_time is None else event.create_time.isoformat(),
        "idempotency_key": event.idempotency_key,
    }


def _event_from_dict(data: Mapping[str, Any]) -> Event:
    created = data.get("create_time")
    return Event(
        key=str(data["key"]),
        value=str(data["value"]),
        event_type=str(data["event_type"]),
        sender=str(data["sender"]),
        namespace=str(data["namespace"]),
        context=dict(data.get("context") or {}),
        offset=int(data["offset"]),
        create_time=None if created is None else datetime.fromisoformat(created),
        idempotency_key=data.get("idempotency_key"),
    )


@dataclass(frozen=True)
class AttemptResult:
    """How an attempt ended, in the runtime's words (``result.json``).

    Attributes:
        status: ``FINISHED``, ``FAILED`` or ``STOPPED`` (a :class:`~tideflow.domain.JobStatus`
            value).
        error: A one-line summary of the failure (the traceback is in the log).
    """

    status: str
    error: str | None = None

    def to_json(self) -> str:
        """The JSON text of ``result.json``."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AttemptResult:
        """Read ``result.json``."""
        data = json.loads(text)
        return cls(status=str(data["status"]), error=data.get("error"))


class AttemptFiles:
    """The control files of the attempt whose working directory is ``workdir``."""

    def __init__(self, workdir: str | Path) -> None:
        self.workdir = Path(workdir)
        self.control = self.workdir / CONTROL_DIR

    @property
    def spec(self) -> Path:
        """``attempt.json``."""
        return self.control / "attempt.json"

    @property
    def plan(self) -> Path:
        """``plan.json``."""
        return self.control / "plan.json"

    @property
    def launch(self) -> Path:
        """``launch.json``."""
        return self.control / "launch.json"

    @property
    def spawned(self) -> Path:
        """``spawned.json``."""
        return self.control / "spawned.json"

    @property
    def stop(self) -> Path:
        """``stop.json``."""
        return self.control / "stop.json"

    @property
    def heartbeat(self) -> Path:
        """``heartbeat``."""
        return self.control / "heartbeat"

    @property
    def running(self) -> Path:
        """``running``."""
        return self.control / "running"

    @property
    def result(self) -> Path:
        """``result.json``."""
        return self.control / "result.json"

    def read_result(self) -> AttemptResult | None:
        """The runtime's result, or ``None`` if it wrote none (it was killed or crashed)."""
        try:
            return AttemptResult.from_json(read_control_file(self.result))
        except (OSError, ValueError, KeyError):
            return None

    def read_json(self, path: Path) -> dict[str, Any] | None:
        """A control file's JSON object, or ``None`` if it is missing or unreadable."""
        try:
            data = json.loads(read_control_file(path))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def heartbeat_time(self) -> float | None:
        """When the heartbeat file was last touched (epoch seconds), or ``None``."""
        try:
            return self.heartbeat.stat().st_mtime
        except OSError:
            return None


def read_control_file(path: Path, *, limit: int = MAX_CONTROL_BYTES) -> str:
    """A control file's text, read as a job may have left it (``--job-user``).

    Raises:
        OSError: It is missing, or a symbolic link.
        ValueError: It is not a regular file (a FIFO would block), holds more than ``limit``
            bytes, or is not UTF-8.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path} is not a regular file")
        data = source.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} holds more than {limit} bytes")
    return data.decode()


def write_control_file(path: Path, text: str) -> None:
    """:func:`write_atomically` into a folder the job may own (``--job-user``).

    Neither the folder nor the temporary file is reached through a symbolic link, the
    temporary file is new (``O_EXCL``, a random name) and the rename replaces whatever the job
    put under the final name: whatever a job plants, the executor writes only there.
    """
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        tmp = f".{path.name}.{secrets.token_hex(8)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o644, dir_fd=folder)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
    finally:
        os.close(folder)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
