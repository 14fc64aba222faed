"""``client.workflows``: submit workflows (plan + code package) and manage their snapshots.

``submit`` runs entirely on the client's side up to the upload: it compiles (a
:class:`~tideflow.errors.GraphError` stops it before anything is packaged or stored), zips the
workflow's directory, computes the snapshot identity over canonical content, uploads the
package to the blob store, and registers the snapshot -- or reuses the workflow's snapshot with
the same identity. docs/submission.md describes exactly what counts.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from tideflow.client.identity import snapshot_identity
from tideflow.client.package import build_package
from tideflow.domain.graph import AIGraph
from tideflow.domain.limits import MAX_PACKAGE_BYTES
from tideflow.domain.metadata import Snapshot, Submission, Workflow, WorkflowExecution
from tideflow.errors import InvalidArgumentError, NotFoundError
from tideflow.metadata import WorkflowService
from tideflow.scheduler.schedule import TickResult
from tideflow.scheduler.service import SchedulerService
from tideflow.sdk.builder import Workflow as WorkflowBuilder
from tideflow.store.repositories.scheduler import WorkflowSettings


class Workflows:
    """Submitted workflows and their snapshots in one project (see DESIGN.md "Client API")."""

    def __init__(
        self,
        service: WorkflowService,
        project: str,
        *,
        scheduler: SchedulerService | None = None,
    ) -> None:
        self._service = service
        self._project = project
        self._scheduler_service = scheduler

    @property
    def _scheduler(self) -> SchedulerService:
        from tideflow.client.executions import require_scheduler

        return require_scheduler(self._scheduler_service)

    def start(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        context: str | None = None,
    ) -> WorkflowExecution:
        """Start an execution of ``name`` on its latest snapshot.

        Args:
            name: The workflow.
            params: JSON-serialisable parameters; every job sees them as ``ctx.params``.
            context: For ``per_context`` workflows, the context string it serves.

        Raises:
            NotFoundError: No such workflow, or it has no snapshot.
            FailedPreconditionError: The workflow is paused or at its
                ``max_active_executions``.
        """
        return self._scheduler.start_execution(self._project, name, params=params, context=context)

    def pause(self, name: str) -> WorkflowSettings:
        """Start no new executions of ``name`` (running ones go on)."""
        return self._scheduler.pause_workflow(self._project, name)

    def resume(self, name: str) -> WorkflowSettings:
        """Let ``name`` start executions again."""
        return self._scheduler.resume_workflow(self._project, name)

    def settings(self, name: str) -> WorkflowSettings:
        """Whether ``name`` is paused, and its cap of running executions."""
        return self._scheduler.get_workflow_settings(self._project, name)

    def backfill(self, name: str, start: datetime, end: datetime) -> list[TickResult]:
        """Start one execution per tick of ``name``'s schedule in ``[start, end]`` (aware).

        Each tick starts once: ticks already handled are left alone and not returned.
        """
        return self._scheduler.backfill_workflow(self._project, name, start, end)

    def set_max_active_executions(self, name: str, limit: int | None) -> WorkflowSettings:
        """Cap how many executions of ``name`` run at once (``None``: no cap)."""
        return self._scheduler.set_max_active_executions(self._project, name, limit)

    def submit(
        self,
        workflow: WorkflowBuilder | AIGraph,
        *,
        source: str | Path | None = None,
        max_package_bytes: int = MAX_PACKAGE_BYTES,
    ) -> Submission:
        """Compile, package, upload and register ``workflow``.

        Returns the snapshot, and whether an identical one was reused.

        Args:
            workflow: The builder from ``with tide.workflow(...) as wf``, or an AI Graph.
            source: The directory (or a file in it) to package; by default the directory of
                the file that declared the workflow.
            max_package_bytes: Refuse larger packages.

        Raises:
            GraphError: The workflow does not compile; nothing is uploaded or stored.
            InvalidArgumentError: No source directory is known, or the package is too large.
        """
        from tideflow.compiler import compile

        plan = compile(workflow)
        if source is None and isinstance(workflow, WorkflowBuilder):
            source = workflow.source_file
        if source is None:
            raise InvalidArgumentError(
                f"workflow {plan.workflow!r} was not declared in a file: pass source= (the "
                "directory to package)",
                field="source",
            )
        package = build_package(source, max_bytes=max_package_bytes)
        graph = workflow.graph if isinstance(workflow, WorkflowBuilder) else workflow
        processors = {n.name: n.processor for n in graph.nodes if n.processor is not None}
        identity = snapshot_identity(plan, package.files, processors)
        self._service.upload_package(self._project, package.data, sha256=package.sha256)
        return self._service.submit(
            self._project,
            plan.workflow,
            plan=plan.to_json(),
            code_sha256=package.sha256,
            identity=identity,
        )

    def get(self, name: str) -> Workflow:
        """Workflow ``name``; raises :class:`~tideflow.errors.NotFoundError` naming it."""
        return self._service.get_workflow(self._project, name)

    def list(self) -> builtins.list[Workflow]:
        """The project's workflows, by name."""
        return self._service.list_workflows(self._project)

    def delete(self, name: str) -> None:
        """Delete workflow ``name`` with its snapshots and executions.

        Packages stay in the blob store: snapshots of other workflows may share them.
        """
        self._service.delete_workflow(self._project, name)

    def snapshots(self, name: str) -> builtins.list[Snapshot]:
        """The snapshots of workflow ``name``, newest first."""
        return self._service.list_snapshots(self._project, name)

    def snapshot(self, snapshot_id: int) -> Snapshot:
        """Snapshot ``snapshot_id``."""
        return self._service.get_snapshot(self._project, snapshot_id)

    def latest_snapshot(self, name: str) -> Snapshot:
        """The snapshot new executions of ``name`` start from.

        Raises:
            NotFoundError: No such workflow, or it has no snapshot.
        """
        workflow = self.get(name)
        if workflow.latest_snapshot_id is None:
            raise NotFoundError("snapshot", name, message=f"workflow {name!r} has no snapshot")
        return self.snapshot(workflow.latest_snapshot_id)

    def package(self, snapshot_id: int) -> bytes:
        """The code package (zip) of a snapshot, checked against its SHA-256.

        Raises:
            FailedPreconditionError: The stored package was changed after upload: refused.
        """
        return self._service.get_package(self._project, snapshot_id)


def submit(
    workflow: WorkflowBuilder | AIGraph,
    *,
    source: str | Path | None = None,
    max_package_bytes: int = MAX_PACKAGE_BYTES,
) -> Submission:
    """``tide.submit(wf)``: :meth:`Workflows.submit` on the default client (``tide.init``).

    Raises:
        FailedPreconditionError: No default client: call ``tide.init(project=...)`` first.
        GraphError: The workflow does not compile; nothing is uploaded or stored.
    """
    from tideflow.client.default import get_default_client

    return get_default_client().workflows.submit(
        workflow, source=source, max_package_bytes=max_package_bytes
    )
