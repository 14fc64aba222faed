"""A small client of Flink's REST API (standard library only): job states, stop, cancel, logs.

Only what the executor needs: ``/overview`` (is the cluster up), ``/jobs/<id>`` (state, and
its vertices' record and byte counts), ``/jobs/<id>/exceptions`` (why it failed), ``/jobs/<id>/stop`` (stop with a savepoint),
``PATCH /jobs/<id>?mode=cancel`` and the TaskManagers' logs.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tideflow.errors import UnavailableError


class FlinkRestError(UnavailableError):
    """Flink's REST endpoint could not be reached or refused a request."""


def normalise_address(address: str) -> str:
    """``host:port`` or a URL -> ``http://host:port`` (no trailing slash)."""
    text = address.strip().rstrip("/")
    if "://" not in text:
        text = "http://" + text
    return text


class FlinkRest:
    """Calls to one Flink cluster's REST endpoint.

    Args:
        address: ``http://host:port`` or ``host:port`` of the JobManager's REST endpoint.
        timeout: Seconds per request.
    """

    def __init__(self, address: str, *, timeout: float = 10.0) -> None:
        self.url = normalise_address(address)
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One request; the decoded JSON answer (or None for an empty one).

        Raises:
            FlinkRestError: The cluster is unreachable or answered with an error status.
        """
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise FlinkRestError(
                f"Flink at {self.url} answered {method} {path} with {exc.code}: {detail}"
            ) from exc
        except (OSError, urllib.error.URLError) as exc:
            raise FlinkRestError(f"Flink at {self.url} is not reachable: {exc}") from exc
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def text(self, path: str) -> str:
        """A plain-text resource (a log file)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=self.timeout) as answer:
                return str(answer.read().decode(errors="replace"))
        except (OSError, urllib.error.URLError) as exc:
            raise FlinkRestError(f"Flink at {self.url}: reading {path} failed: {exc}") from exc

    def alive(self) -> bool:
        """Whether the cluster answers and has at least one TaskManager."""
        try:
            overview = self.call("GET", "/overview")
        except FlinkRestError:
            return False
        return isinstance(overview, dict) and int(overview.get("taskmanagers", 0)) > 0

    def _job(self, job_id: str) -> dict[str, Any] | None:
        """The job's details (``GET /jobs/<id>``), or None if the cluster does not know it."""
        try:
            answer = self.call("GET", f"/jobs/{job_id}")
        except FlinkRestError as exc:
            if " 404:" in str(exc):
                return None
            raise
        return answer if isinstance(answer, dict) else None

    def job_state(self, job_id: str) -> str | None:
        """The job's state (``RUNNING``, ``FINISHED``, ...), or None if the cluster does not know it.

        Raises:
            FlinkRestError: The cluster is unreachable.
        """
        answer = self._job(job_id)
        return None if answer is None else str(answer.get("state"))

    def job_status(self, job_id: str) -> tuple[str | None, bool]:
        """``(state, tasks_running)``: the job's state, and whether every task is deployed.

        Flink calls a job RUNNING as soon as it is scheduled, while its tasks may still be
        deploying (a savepoint then fails); Tideflow's RUNNING waits for the tasks.

        Raises:
            FlinkRestError: The cluster is unreachable.
        """
        answer = self._job(job_id)
        if answer is None:
            return None, False
        vertices = answer.get("vertices") or []
        ready = bool(vertices) and all(v.get("status") in ("RUNNING", "FINISHED") for v in vertices)
        return str(answer.get("state")), ready

    def job_end_time(self, job_id: str) -> float | None:
        """When the job ended (seconds since the epoch), or None if it did not or is unknown.

        Raises:
            FlinkRestError: The cluster is unreachable.
        """
        answer = self._job(job_id)
        end = None if answer is None else answer.get("end-time")
        if not isinstance(end, int | float) or isinstance(end, bool) or end <= 0:
            return None
        return float(end) / 1000.0

    def job_metrics(self, job_id: str) -> dict[str, int] | None:
        """Records and bytes the job's tasks read and wrote, summed over its vertices.

        Flink's vertex metrics (``read-records``, ``write-records``, ``read-bytes``,
        ``write-bytes``) count what crosses a task boundary: operators chained into one task
        pass records without counting them. ``None`` when the cluster does not know the job.

        Raises:
            FlinkRestError: The cluster is unreachable.
        """
        answer = self._job(job_id)
        if answer is None:
            return None
        names = {
            "records_in": "read-records",
            "records_out": "write-records",
            "bytes_in": "read-bytes",
            "bytes_out": "write-bytes",
        }
        totals = dict.fromkeys(names, 0)
        for vertex in answer.get("vertices") or []:
            metrics = vertex.get("metrics") or {}
            for name, flink_name in names.items():
                value = metrics.get(flink_name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    totals[name] += int(value)
        return totals

    def failure(self, job_id: str) -> str:
        """The root exception of a failed job (its first lines), or ``""``."""
        try:
            answer = self.call("GET", f"/jobs/{job_id}/exceptions")
        except FlinkRestError:
            return ""
        if not isinstance(answer, dict):
            return ""
        root = answer.get("root-exception") or ""
        history = answer.get("exceptionHistory") or {}
        entries = history.get("entries") or []
        if not root and entries:
            root = entries[0].get("stacktrace") or entries[0].get("exceptionName") or ""
        return str(root)

    def cancel(self, job_id: str) -> None:
        """Cancel the job (ignored when it already ended)."""
        self.call("PATCH", f"/jobs/{job_id}?mode=cancel")

    def stop_with_savepoint(self, job_id: str, directory: str) -> str:
        """Trigger stop-with-savepoint; the trigger id to poll with :meth:`savepoint_status`."""
        answer = self.call(
            "POST", f"/jobs/{job_id}/stop", {"targetDirectory": directory, "drain": False}
        )
        return str(answer["request-id"])

    def savepoint_status(self, job_id: str, trigger: str) -> tuple[str, str | None, str | None]:
        """``(status, location, failure)`` of a savepoint trigger; status IN_PROGRESS|COMPLETED."""
        answer = self.call("GET", f"/jobs/{job_id}/savepoints/{trigger}")
        status = str(answer.get("status", {}).get("id", "IN_PROGRESS"))
        operation = answer.get("operation") or {}
        failure = operation.get("failure-cause")
        location = operation.get("location")
        text = None
        if failure:
            text = str(failure.get("stack-trace") or failure.get("class") or failure)[:2000]
        return status, location, text

    def taskmanager_log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of each TaskManager's log, headed by its id."""
        try:
            managers = self.call("GET", "/taskmanagers").get("taskmanagers", [])
        except (FlinkRestError, AttributeError):
            return ""
        parts = []
        for manager in managers:
            manager_id = manager.get("id")
            try:
                text = self.text(f"/taskmanagers/{manager_id}/log")
            except FlinkRestError:
                continue
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(
                f"--- TaskManager {manager_id} ({self.url}/#/task-manager/{manager_id}/logs)\n{tail}"
            )
        return "\n".join(parts)
