"""``attempt.json``: the spec an executor writes and the runtime reads, triggers included."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tideflow.domain.attempt import AttemptSpec
from tideflow.domain.events import Event


def spec(**fields: object) -> AttemptSpec:
    return AttemptSpec(
        project="p",
        workflow="wf",
        execution_id=3,
        snapshot_id=2,
        job="validate",
        attempt=1,
        job_execution_id=7,
        **fields,  # type: ignore[arg-type]
    )


def test_triggers_round_trip_as_whole_events() -> None:
    generated = Event(
        key="ctr",
        value=json.dumps({"model": "ctr", "version": 4, "status": "GENERATED", "previous": None}),
        event_type="MODEL_GENERATED",
        sender="model_center",
        namespace="p",
        context={"nested": {"a": [1, 2]}},
        offset=41,
        create_time=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        idempotency_key="k-1",
    )
    periodic = Event(key="wf.tick", value="0", event_type="PERIODIC", offset=42)
    written = spec(params={"lr": 0.1}, triggers=(generated, periodic))
    read = AttemptSpec.from_json(written.to_json())
    assert read == written
    assert read.triggers[0].create_time == generated.create_time


def test_a_spec_written_before_triggers_existed_has_none() -> None:
    data = json.loads(spec().to_json())
    del data["triggers"]
    assert AttemptSpec.from_json(json.dumps(data)).triggers == ()
