import pytest

import tideflow as tide


def _jobs(plan):
    return {job.name: [node.name for node in job.nodes] for job in plan.jobs}


def test_nodes_outside_blocks_group_by_connectivity(echo):
    with tide.workflow("w") as wf:
        a = tide.read_dataset("a", processor=echo, name="a")
        b = tide.read_dataset("b", processor=echo, name="b")
        tide.transform(a, processor=echo, name="a2")
        tide.transform([b], processor=echo, name="b2")
        tide.transform(b, processor=echo, name="b3")
        tide.read_dataset("c", processor=echo, name="c")
    plan = tide.compile(wf)
    assert _jobs(plan) == {"a": ["a", "a2"], "b": ["b", "b2", "b3"], "c": ["c"]}
    assert all(
        (job.engine, job.platform, job.streaming) == ("python", "local", False) for job in plan.jobs
    )
    assert all(job.location is None for job in plan.jobs)


def test_free_node_joins_the_declared_job_it_is_connected_to(echo):
    with tide.workflow("w") as wf:
        with tide.job("train", streaming=True):
            data = tide.read_dataset("a", processor=echo, name="src")
        tide.write_dataset(data, "copy", name="sink")
    assert _jobs(tide.compile(wf)) == {"train": ["src", "sink"]}


def test_declared_jobs_keep_their_spec(echo):
    with (
        tide.workflow("w") as wf,
        tide.job(
            "s",
            engine="python",
            platform="ray",
            streaming=True,
            retries=3,
            timeout=9.5,
            resources={"cpus": 2},
        ),
    ):
        tide.read_dataset("a", processor=echo)
    (job,) = tide.compile(wf).jobs
    assert (job.platform, job.streaming, job.retries, job.timeout, dict(job.resources)) == (
        "ray",
        True,
        3,
        9.5,
        {"cpus": 2},
    )


def test_formed_job_name_clash_with_declared_job(echo):
    with tide.workflow("w") as wf:
        with tide.job("a"):
            tide.read_dataset("x", processor=echo)
        tide.read_dataset("y", processor=echo, name="a")
    with pytest.raises(tide.GraphError, match="clashes with the declared job"):
        tide.compile(wf)


def test_nodes_run_in_topological_order_with_declaration_tie_break(echo):
    with tide.workflow("w") as wf, tide.job("j"):
        a = tide.read_dataset("a", processor=echo, name="a")
        b = tide.read_dataset("b", processor=echo, name="b")
        tide.user_node(a, b, processor=echo, name="join")
    job = tide.compile(wf).job("j")
    assert [node.name for node in job.nodes] == ["a", "b", "join"]
    assert job.engine_payload == {"order": ["a", "b", "join"]}
    assert [(e.source.node, e.target, e.target_index) for e in job.edges] == [
        ("a", "join", 0),
        ("b", "join", 1),
    ]


def test_topological_order_puts_inputs_first_whatever_the_declaration_order():
    from tideflow.domain import Node, NodeKind, NodeOutput
    from tideflow.engines.python.generator import topological_order

    nodes = [
        Node("sink", NodeKind.WRITE_DATASET, inputs=(NodeOutput("mid"),)),
        Node("mid", NodeKind.TRANSFORM, inputs=(NodeOutput("src"),)),
        Node("src", NodeKind.READ_DATASET),
    ]
    assert topological_order(nodes) == ["src", "mid", "sink"]
