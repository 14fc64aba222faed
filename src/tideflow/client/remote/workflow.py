"""Workflows and their snapshots over gRPC (the Scheduler Service's workflow RPCs)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import grpc

from tideflow.client.remote.channel import RpcChannel, translate
from tideflow.domain.metadata import Snapshot, Submission, Workflow
from tideflow.errors import FailedPreconditionError
from tideflow.metadata import WorkflowService
from tideflow.rpc import convert
from tideflow.rpc.servicers.scheduler import chunks
from tideflow.rpc.v1 import scheduler_pb2 as s
from tideflow.rpc.v1 import scheduler_pb2_grpc as g
from tideflow.store.blob import BlobStore

UPLOAD_TIMEOUT = 300.0
"""Seconds an upload or download of a package may take (they can be large)."""


class RemoteWorkflowService(WorkflowService):
    """:class:`WorkflowService`'s interface; the project comes from the channel's metadata."""

    def __init__(self, channel: RpcChannel) -> None:  # no store and no blobs: all remote
        self._rpc = channel
        self._stub = g.SchedulerServiceStub(channel.channel)

    @property
    def blobs(self) -> BlobStore:
        raise FailedPreconditionError("the blob store of a remote client is on the server")

    def upload_package(self, project: str, data: bytes, *, sha256: str | None = None) -> str:
        declared = sha256 or hashlib.sha256(data).hexdigest()

        def requests() -> Iterator[s.UploadCodePackageRequest]:
            for index, chunk in enumerate(chunks(data)):
                yield s.UploadCodePackageRequest(sha256=declared if index == 0 else "", chunk=chunk)

        def call(_: object, **kwargs: Any) -> s.UploadCodePackageResponse:
            # A fresh request stream per attempt: a retry after UNAVAILABLE resends everything.
            return self._stub.UploadCodePackage(requests(), **kwargs)  # type: ignore[no-any-return]

        response = self._rpc.unary(call, None, mutating=True, timeout=UPLOAD_TIMEOUT)
        return response.uri

    def submit(
        self, project: str, workflow: str, *, plan: str, code_sha256: str, identity: str
    ) -> Submission:
        request = s.SubmitWorkflowRequest(
            workflow=workflow, plan_json=plan, code_sha256=code_sha256, identity=identity
        )
        response = self._rpc.unary(self._stub.SubmitWorkflow, request, mutating=True)
        return Submission(convert.snapshot_from_pb(response.snapshot), reused=response.reused)

    def get_package(self, project: str, snapshot_id: int) -> bytes:
        request = s.GetCodePackageRequest(snapshot_id=snapshot_id)
        delays = self._rpc.retry.delays()
        while True:
            try:
                stream = self._stub.GetCodePackage(
                    request, timeout=UPLOAD_TIMEOUT, metadata=self._rpc.metadata(mutating=False)
                )
                declared = ""
                parts: list[bytes] = []
                for message in stream:
                    declared = declared or message.sha256
                    parts.append(message.chunk)
                break
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    delay = next(delays, None)
                    if delay is not None:
                        time.sleep(delay)
                        continue
                raise translate(error) from None
        data = b"".join(parts)
        actual = hashlib.sha256(data).hexdigest()
        if actual != declared:  # damaged on the way: refuse it here too
            raise FailedPreconditionError(
                f"code package of snapshot {snapshot_id} arrived with SHA-256 {actual}, "
                f"not {declared}; refused"
            )
        return data

    def create_snapshot(
        self,
        project: str,
        workflow: str,
        *,
        plan: str,
        code_uri: str = "",
        code_sha256: str = "",
        identity: str = "",
    ) -> Snapshot:
        raise FailedPreconditionError(
            "a remote client stores snapshots through submit (package upload + SubmitWorkflow)"
        )

    def get_workflow(self, project: str, name: str) -> Workflow:
        response = self._rpc.unary(
            self._stub.GetWorkflow, s.GetWorkflowRequest(name=name), mutating=False
        )
        return convert.workflow_from_pb(response.workflow)

    def list_workflows(self, project: str) -> list[Workflow]:
        response = self._rpc.unary(
            self._stub.ListWorkflows, s.ListWorkflowsRequest(), mutating=False
        )
        return [convert.workflow_from_pb(w) for w in response.workflows]

    def delete_workflow(self, project: str, name: str) -> None:
        self._rpc.unary(
            self._stub.DeleteWorkflow, s.DeleteWorkflowRequest(name=name), mutating=True
        )

    def get_snapshot(self, project: str, snapshot_id: int) -> Snapshot:
        response = self._rpc.unary(
            self._stub.GetSnapshot, s.GetSnapshotRequest(snapshot_id=snapshot_id), mutating=False
        )
        return convert.snapshot_from_pb(response.snapshot)

    def list_snapshots(self, project: str, workflow: str) -> list[Snapshot]:
        response = self._rpc.unary(
            self._stub.ListSnapshots, s.ListSnapshotsRequest(workflow=workflow), mutating=False
        )
        return [convert.snapshot_from_pb(x) for x in response.snapshots]
