import json
import pickle

import pytest

import tideflow as tide
from tideflow.compiler import SCHEMA_VERSION, WorkflowPlan


class Doubler(tide.Processor):
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def process(self, ctx, inputs):
        return [value * self.factor for value in inputs[0]]


def _plan(echo):
    with tide.workflow("ctr", per_context=True) as wf:
        with tide.job("train", streaming=True, config={"window": 5}, retries=1, timeout=2.5):
            clicks = tide.read_dataset("clicks", processor=echo)
            tide.train(tide.transform(clicks, processor=Doubler(3)), model="ctr", processor=echo)
        with tide.job("validate"):
            tide.validate(model="ctr", processor=lambda ctx, inputs: "ok")
    wf.on_model_version("validate", model="ctr", event=tide.ModelVersionEvent.GENERATED)
    wf.after("validate", "train", action=tide.JobAction.RESTART)
    wf.periodic("train", interval=90, timezone="Asia/Tokyo")
    wf.start_on(
        tide.any_of(
            tide.EventMatch(key="go", life="repeated"), tide.EventMatch(event_type="X", value="1")
        )
    )
    return tide.compile(wf)


def test_plan_round_trips_exactly_through_json(echo):
    plan = _plan(echo)
    text = plan.to_json()
    again = WorkflowPlan.from_json(text)
    assert again == plan
    assert again.payloads == plan.payloads
    assert again.to_json() == text


def test_plan_exposes_jobs_nodes_and_rules(echo):
    plan = _plan(echo)
    assert plan.per_context == tide.context_from(field="context")
    train = plan.job("train")
    assert (train.engine, train.platform, train.streaming) == ("python", "local", True)
    assert [(n.name, str(n.kind)) for n in train.nodes] == [
        ("read_dataset_1", "read_dataset"),
        ("transform_1", "transform"),
        ("train_1", "train"),
    ]
    assert [r.kind for r in plan.rules_for("validate")] == ["model_version", "after"]
    assert len(plan.rules_for(None)) == 1
    with pytest.raises(KeyError):
        plan.job("nope")


def test_payloads_hold_working_processors(echo):
    plan = _plan(echo)
    node = plan.job("train").node("transform_1")
    processor = pickle.loads(plan.payloads[node.processor])
    assert processor.process(None, [[1, 2]]) == [3, 6]
    validator = pickle.loads(plan.payloads[plan.job("validate").node("validate_1").processor])
    assert validator(None, []) == "ok"


def test_shared_processor_object_is_stored_once(echo):
    plan = _plan(echo)
    digests = [n.processor for n in plan.job("train").nodes]
    assert digests[0] == digests[2]
    assert len(set(digests)) == 2


def test_plan_json_has_schema_version_and_refuses_others(echo):
    data = json.loads(_plan(echo).to_json())
    assert data["schema_version"] == SCHEMA_VERSION
    data["schema_version"] = 999
    with pytest.raises(tide.InvalidArgumentError, match="schema version 999 is not supported"):
        WorkflowPlan.from_json(json.dumps(data))


def test_malformed_plan_json_is_a_clear_error():
    with pytest.raises(tide.InvalidArgumentError, match="not valid JSON"):
        WorkflowPlan.from_json("{nope")
    with pytest.raises(tide.InvalidArgumentError, match="must be an object"):
        WorkflowPlan.from_json("[]")
    with pytest.raises(tide.InvalidArgumentError, match="malformed workflow plan"):
        WorkflowPlan.from_json(json.dumps({"schema_version": SCHEMA_VERSION, "workflow": "w"}))


def test_readable_dict_omits_payloads(echo):
    data = _plan(echo).to_dict(include_payloads=False)
    assert "payloads" not in data
    assert data["jobs"][0]["nodes"][0]["processor"]
