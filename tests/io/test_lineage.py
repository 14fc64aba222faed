import json

import pytest

from tideflow.client import Client
from tideflow.errors import InvalidArgumentError
from tideflow.io.file import FileSink
from tideflow.io.lineage import record_lineage, register_dataset
from tideflow.io.local_stream import LocalStreamReader, LocalStreamWriter
from tideflow.metadata import ExecutionService, WorkflowService


@pytest.fixture
def job_id(client: Client) -> int:
    plan = json.dumps({"workflow": "ctr", "jobs": []})
    WorkflowService(client.store).create_snapshot(client.project, "ctr", plan=plan)
    executions = ExecutionService(client.store)
    run = executions.create_execution(client.project, "ctr")
    return executions.create_job_execution(
        client.project, run.execution_id, "train"
    ).job_execution_id


def test_offsets_read_and_written_are_recorded(client: Client, job_id: int, tmp_path):
    writer = LocalStreamWriter(tmp_path / "clicks")
    clicks = register_dataset(client, "clicks", writer)
    assert (clicks.format, clicks.stream) == ("jsonl", True)
    assert clicks.uri.startswith("file://")
    writer.write([{"i": i} for i in range(10)])
    writer.close()
    # Registering again (a restarted job) changes nothing.
    assert register_dataset(client, "clicks", LocalStreamReader(tmp_path / "clicks")).version == 1

    reader = LocalStreamReader(tmp_path / "clicks", consumer="ctr-train-clicks", dataset="clicks")
    for batch in reader.batches(max_records=4, idle_timeout=0):
        if batch.end_offset >= 8:
            break
    reader.commit()
    features = FileSink(tmp_path / "features.parquet")
    register_dataset(client, "features", features)
    features.write([{"i": 1}])
    features.close()

    record = record_lineage(client, job_id, inputs=[reader], outputs=[writer, features])
    (read,) = record.inputs
    assert (read.name, read.version, read.start_offset, read.end_offset) == ("clicks", 1, 1, 8)
    wrote = {ref.name: ref for ref in record.outputs}
    assert (wrote["clicks"].start_offset, wrote["clicks"].end_offset) == (1, 10)
    assert (wrote["features"].start_offset, wrote["features"].end_offset) == (None, None)
    assert [r.job_execution_id for r in client.lineage.downstream(dataset="clicks")] == [job_id]


def test_a_source_without_a_dataset_name_is_refused(client: Client, job_id: int, tmp_path):
    reader = LocalStreamReader(tmp_path)
    with pytest.raises(InvalidArgumentError, match="has no dataset name"):
        record_lineage(client, job_id, inputs=[reader])
