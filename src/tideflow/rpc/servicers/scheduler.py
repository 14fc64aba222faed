"""SchedulerService over :class:`~tideflow.metadata.WorkflowService`: workflow submission.

Submission is two calls: ``UploadCodePackage`` streams the zip (chunks, the declared SHA-256
in the first message) into the blob store, then ``SubmitWorkflow`` registers the snapshot,
reusing one with the same identity. Both are safe to retry: the blob is content-addressed and
the snapshot is deduplicated by identity (and the interceptor by request id).
``GetCodePackage`` checks the stored package against its hash before sending a byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tideflow.domain.limits import MAX_PACKAGE_BYTES
from tideflow.errors import InvalidArgumentError
from tideflow.metadata import WorkflowService
from tideflow.rpc import convert
from tideflow.rpc.call import project
from tideflow.rpc.v1 import scheduler_pb2 as s
from tideflow.rpc.v1 import scheduler_pb2_grpc as g

CHUNK_BYTES = 1024 * 1024


def chunks(data: bytes, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """``data`` in pieces of at most ``size`` bytes (one empty piece for empty data)."""
    yield data[:size]
    for start in range(size, len(data), size):
        yield data[start : start + size]


class SchedulerServicer(g.SchedulerServiceServicer):
    """The workflow RPCs of the Scheduler Service; errors are mapped by the interceptor."""

    def __init__(self, workflows: WorkflowService) -> None:
        self._workflows = workflows

    def SubmitWorkflow(
        self, request: s.SubmitWorkflowRequest, context: Any
    ) -> s.SubmitWorkflowResponse:
        submission = self._workflows.submit(
            project(),
            request.workflow,
            plan=request.plan_json,
            code_sha256=request.code_sha256,
            identity=request.identity,
        )
        return s.SubmitWorkflowResponse(
            snapshot=convert.snapshot_to_pb(submission.snapshot), reused=submission.reused
        )

    def UploadCodePackage(
        self, request_iterator: Iterator[s.UploadCodePackageRequest], context: Any
    ) -> s.UploadCodePackageResponse:
        declared = ""
        parts: list[bytes] = []
        size = 0
        for message in request_iterator:
            declared = declared or message.sha256
            size += len(message.chunk)
            if size > MAX_PACKAGE_BYTES:  # refuse before holding more of it in memory
                raise InvalidArgumentError(
                    f"code package exceeds the limit of {MAX_PACKAGE_BYTES} bytes",
                    field="package",
                )
            parts.append(message.chunk)
        if not declared:
            raise InvalidArgumentError(
                "the first UploadCodePackage message must carry the package's sha256",
                field="sha256",
            )
        uri = self._workflows.upload_package(project(), b"".join(parts), sha256=declared)
        return s.UploadCodePackageResponse(uri=uri)

    def GetCodePackage(
        self, request: s.GetCodePackageRequest, context: Any
    ) -> Iterator[s.GetCodePackageResponse]:
        snapshot = self._workflows.get_snapshot(project(), request.snapshot_id)
        data = self._workflows.get_package(project(), request.snapshot_id)
        for index, chunk in enumerate(chunks(data)):
            yield s.GetCodePackageResponse(
                sha256=snapshot.code_sha256 if index == 0 else "", chunk=chunk
            )

    def GetWorkflow(self, request: s.GetWorkflowRequest, context: Any) -> s.GetWorkflowResponse:
        workflow = self._workflows.get_workflow(project(), request.name)
        return s.GetWorkflowResponse(workflow=convert.workflow_to_pb(workflow))

    def ListWorkflows(
        self, request: s.ListWorkflowsRequest, context: Any
    ) -> s.ListWorkflowsResponse:
        workflows = self._workflows.list_workflows(project())
        return s.ListWorkflowsResponse(workflows=[convert.workflow_to_pb(w) for w in workflows])

    def DeleteWorkflow(
        self, request: s.DeleteWorkflowRequest, context: Any
    ) -> s.DeleteWorkflowResponse:
        self._workflows.delete_workflow(project(), request.name)
        return s.DeleteWorkflowResponse()

    def GetSnapshot(self, request: s.GetSnapshotRequest, context: Any) -> s.GetSnapshotResponse:
        snapshot = self._workflows.get_snapshot(project(), request.snapshot_id)
        return s.GetSnapshotResponse(snapshot=convert.snapshot_to_pb(snapshot))

    def ListSnapshots(
        self, request: s.ListSnapshotsRequest, context: Any
    ) -> s.ListSnapshotsResponse:
        snapshots = self._workflows.list_snapshots(project(), request.workflow)
        return s.ListSnapshotsResponse(snapshots=[convert.snapshot_to_pb(x) for x in snapshots])
