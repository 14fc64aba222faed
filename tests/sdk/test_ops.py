import pytest

import tideflow as tide
from tideflow.domain import NodeKind, NodeOutput
from tideflow.sdk import Handle


def test_every_op_adds_a_node_of_its_kind(echo):
    with tide.workflow("w") as wf:
        src = tide.read_dataset("clicks", processor=echo)
        feats = tide.transform(src, processor=echo)
        trained = tide.train(feats, model="ctr", processor=echo)
        scored = tide.predict(feats, model="ctr", processor=echo)
        tide.evaluate(scored, model="ctr", processor=echo)
        tide.validate(model="ctr", processor=echo)
        tide.push_model(model="ctr", processor=echo)
        tide.write_dataset(scored, "predictions")
        tide.user_node(trained, scored, processor=echo)
    kinds = [node.kind for node in wf.graph.nodes]
    assert kinds == [
        NodeKind.READ_DATASET,
        NodeKind.TRANSFORM,
        NodeKind.TRAIN,
        NodeKind.PREDICT,
        NodeKind.EVALUATE,
        NodeKind.VALIDATE,
        NodeKind.PUSH_MODEL,
        NodeKind.WRITE_DATASET,
        NodeKind.USER,
    ]
    graph = wf.graph
    assert graph.node("read_dataset_1").dataset == "clicks"
    assert graph.node("train_1").model == "ctr"
    assert graph.node("train_1").inputs == (NodeOutput("transform_1", 0),)
    assert graph.node("user_1").inputs == (NodeOutput("train_1", 0), NodeOutput("predict_1", 0))
    assert graph.node("write_dataset_1").dataset == "predictions"


def test_default_names_count_per_kind_and_name_overrides(echo):
    with tide.workflow("w") as wf:
        a = tide.read_dataset("a", processor=echo)
        tide.transform(a, processor=echo)
        tide.transform(a, processor=echo, name="clean")
        tide.transform(a, processor=echo)
    assert [n.name for n in wf.graph.nodes] == [
        "read_dataset_1",
        "transform_1",
        "clean",
        "transform_2",
    ]


def test_outputs_returns_a_tuple_of_handles(echo):
    with tide.workflow("w") as wf:
        left, right = tide.read_dataset("a", processor=echo, outputs=2)
        tide.transform([left, right], processor=echo, name="join")
    assert isinstance(left, Handle)
    assert (left.index, right.index) == (0, 1)
    assert wf.graph.node("join").inputs == (
        NodeOutput("read_dataset_1", 0),
        NodeOutput("read_dataset_1", 1),
    )


def test_config_and_job_membership_and_location(echo):
    with tide.workflow("w") as wf:
        with tide.job("prep", streaming=True, retries=2, timeout=30, config={"p": 1}):
            tide.read_dataset("a", processor=echo, config={"batch": 64})
        tide.read_dataset("b", processor=echo)
    first, second = wf.graph.nodes
    assert first.job == "prep"
    assert first.config == {"batch": 64}
    assert second.job is None
    assert first.location is not None
    assert first.location.endswith(
        f"test_ops.py:{test_config_and_job_membership_and_location.__code__.co_firstlineno + 3}"
    )
    (spec,) = wf.graph.jobs
    assert (spec.streaming, spec.retries, spec.timeout, dict(spec.config)) == (
        True,
        2,
        30,
        {"p": 1},
    )


def test_plain_function_is_accepted_as_processor():
    with tide.workflow("w") as wf:
        tide.read_dataset("a", processor=lambda ctx, inputs: [1, 2])
    assert wf.problems == ()


def test_op_outside_a_workflow_raises(echo):
    with pytest.raises(
        tide.GraphError, match=r"tide.transform\(\) must be called inside `with tide.workflow"
    ):
        tide.transform(None, processor=echo)


def test_nested_blocks_raise(echo):
    with (
        tide.workflow("outer"),
        pytest.raises(tide.GraphError, match="workflows cannot be nested"),
        tide.workflow("inner"),
    ):
        pass
    with (
        tide.workflow("w"),
        tide.job("a"),
        pytest.raises(tide.GraphError, match="jobs cannot be nested"),
        tide.job("b"),
    ):
        pass


def test_job_outside_workflow_raises():
    with (
        pytest.raises(tide.GraphError, match=r"tide.job\('x'\) must be called inside"),
        tide.job("x"),
    ):
        pass
