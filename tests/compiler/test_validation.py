import threading

import pytest

import tideflow as tide
from tideflow.domain import AIGraph, JobSpec, Node, NodeKind, NodeOutput, Periodic, Rule, RuleKind


def _messages(excinfo: pytest.ExceptionInfo[tide.GraphError]) -> list[str]:
    return [str(problem) for problem in excinfo.value.problems]


def test_valid_workflow_compiles(echo):
    with tide.workflow("ok") as wf, tide.job("a"):
        tide.read_dataset("d", processor=echo)
    assert [job.name for job in tide.compile(wf).jobs] == ["a"]


def test_empty_workflow(echo):
    with tide.workflow("empty") as wf:
        pass
    with pytest.raises(tide.GraphError, match="workflow 'empty': workflow is empty"):
        tide.compile(wf)


def test_data_cycle_is_reported_with_its_nodes():
    graph = AIGraph(
        workflow="loop",
        nodes=(
            Node("a", NodeKind.TRANSFORM, processor=print, inputs=(NodeOutput("c"),)),
            Node("b", NodeKind.TRANSFORM, processor=print, inputs=(NodeOutput("a"),)),
            Node("c", NodeKind.TRANSFORM, processor=print, inputs=(NodeOutput("b"),)),
        ),
    )
    with pytest.raises(tide.GraphError, match=r"cycle of data edges: a -> b -> c -> a"):
        tide.compile(graph)


def test_control_edge_cycles_are_legitimate(echo):
    with tide.workflow("loop") as wf:
        for name in ("a", "b"):
            with tide.job(name):
                tide.read_dataset(name, processor=echo)
    wf.after("b", "a")
    wf.after("a", "b")
    assert len(tide.compile(wf).rules) == 2


def test_data_edge_between_declared_jobs_names_both_and_the_fix(echo):
    with tide.workflow("w") as wf:
        with tide.job("train"):
            data = tide.read_dataset("d", processor=echo)
        with tide.job("score"):
            tide.transform(data, processor=echo, name="use")
    with pytest.raises(tide.GraphError) as excinfo:
        tide.compile(wf)
    (message,) = _messages(excinfo)
    assert "node 'read_dataset_1' (job 'train')" in message
    assert "node 'use' (job 'score')" in message
    assert "tide.write_dataset" in message
    assert "wf.after('score', 'train')" in message


def test_rule_on_unknown_job_and_after_itself(echo):
    with tide.workflow("w") as wf, tide.job("a"):
        tide.read_dataset("d", processor=echo)
    wf.after("ghost", "a")
    wf.with_start("a", "phantom")
    wf.after("a", "a")
    with pytest.raises(tide.GraphError) as excinfo:
        tide.compile(wf)
    messages = "\n".join(_messages(excinfo))
    assert "names unknown job 'ghost' (jobs: a)" in messages
    assert "waits on unknown job 'phantom'" in messages
    assert "a job cannot wait for itself" in messages


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"cron": "0 * * *"}, "has 4 fields; use 5"),
        ({"cron": "99 * * * *"}, "is not a valid expression"),
        ({"cron": "*/0 * * * *"}, "is not a valid expression"),
        ({"cron": "0 0 31 2 *"}, r"cron '0 0 31 2 \*' never fires"),
        ({"cron": "0 0 30 2 *"}, "never fires"),
        ({"cron": "0 " * 200 + "*"}, "the limit is 256"),
        ({"cron": "0 * * * *", "timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"interval": 0}, "interval must be a positive duration"),
        ({"interval": -5.0}, "interval must be a positive duration"),
        ({}, "give exactly one of cron= or interval="),
        ({"cron": "0 * * * *", "interval": 60}, "give exactly one of cron= or interval="),
    ],
)
def test_invalid_periodic_rules(echo, kwargs, expected):
    with tide.workflow("w") as wf, tide.job("a"):
        tide.read_dataset("d", processor=echo)
    wf.periodic("a", **kwargs)
    with pytest.raises(tide.GraphError, match=expected):
        tide.compile(wf)


def test_unknown_engine_lists_the_known_ones(echo):
    with tide.workflow("w") as wf, tide.job("a", engine="hadoop"):
        tide.read_dataset("d", processor=echo)
    with pytest.raises(
        tide.GraphError, match=r"job 'a': unknown engine 'hadoop' \(known engines: .*python"
    ):
        tide.compile(wf)


def test_duplicate_job_and_node_names(echo):
    with tide.workflow("w") as wf:
        with tide.job("a"):
            tide.read_dataset("d", processor=echo, name="n")
        with tide.job("a"):
            tide.read_dataset("e", processor=echo, name="n")
    with pytest.raises(tide.GraphError) as excinfo:
        tide.compile(wf)
    messages = "\n".join(_messages(excinfo))
    assert "job 'a': duplicate job name" in messages
    assert "node 'n': duplicate node name" in messages


def test_missing_input(echo):
    with tide.workflow("other") as other:
        foreign = tide.read_dataset("d", processor=echo)
    with tide.workflow("w") as wf:
        tide.transform(None, processor=echo, name="orphan")
        tide.train(foreign, model="m", processor=echo, name="stranger")
        tide.predict(["not a handle"], model="m", processor=echo, name="odd")
    assert other.problems == ()
    with pytest.raises(tide.GraphError) as excinfo:
        tide.compile(wf)
    messages = "\n".join(_messages(excinfo))
    assert (
        "node 'orphan': missing input: tide.transform() needs the output of another node"
        in messages
    )
    assert (
        "node 'stranger': missing input: input 0 is node 'read_dataset_1' of workflow 'other'"
        in messages
    )
    assert "node 'odd': missing input: input 0 is a str" in messages


def test_missing_and_invalid_processor():
    with tide.workflow("w") as wf:
        src = tide.read_dataset("d")
        tide.transform(src, processor=None, name="none")
        tide.transform(src, processor=42, name="number")
    with pytest.raises(tide.GraphError) as excinfo:
        tide.compile(wf)
    messages = "\n".join(_messages(excinfo))
    assert "node 'none': missing processor" in messages
    assert "node 'number': a processor must be an object with process(ctx, inputs)" in messages


def test_unserialisable_processor_names_node_and_reason(echo):
    class Locked(tide.Processor):
        def __init__(self) -> None:
            self.lock = threading.Lock()

    with tide.workflow("w") as wf, tide.job("a"):
        tide.read_dataset("d", processor=Locked(), name="reader")
    with pytest.raises(
        tide.GraphError,
        match=r"node 'reader': processor Locked cannot be serialised .*_thread.lock",
    ):
        tide.compile(wf)


def test_invalid_names_and_settings(echo):
    with (
        tide.workflow("bad name") as wf,
        tide.job("j.1", retries=-1, timeout=0, config={"x": object()}),
    ):
        tide.read_dataset("d", processor=echo, name="has space")
    with pytest.raises(tide.GraphError) as excinfo:
        tide.compile(wf)
    messages = "\n".join(_messages(excinfo))
    assert "workflow name 'bad name' is not valid" in messages
    assert "job name 'j.1' is not valid" in messages
    assert "node name 'has space' is not valid" in messages
    assert "retries must be a whole number >= 0" in messages
    assert "timeout must be a positive number of seconds" in messages
    assert "config must be JSON-serialisable" in messages


def test_empty_job_block_and_empty_all_of(echo):
    with tide.workflow("w") as wf:
        with tide.job("idle"):
            pass
        with tide.job("a"):
            tide.read_dataset("d", processor=echo)
    wf.on_events("a", tide.all_of())
    with pytest.raises(tide.GraphError) as excinfo:
        tide.compile(wf)
    messages = "\n".join(_messages(excinfo))
    assert "job 'idle': job block declares no nodes" in messages
    assert "all_of() needs at least one condition" in messages


def test_every_problem_is_reported_at_once_with_locations(echo):
    with tide.workflow("w") as wf:
        with tide.job("a", engine="nope"):
            tide.read_dataset("d", processor=echo)
        tide.transform(None, processor=echo)
    wf.after("zzz", "a")
    wf.periodic("a", cron="bad")
    with pytest.raises(tide.GraphError) as excinfo:
        tide.compile(wf)
    problems = excinfo.value.problems
    assert len(problems) == 4
    assert all(p.location and "test_validation.py:" in p.location for p in problems)
    assert str(excinfo.value).startswith("workflow graph has 4 problems:")


def test_workflow_rule_with_a_job_kind_but_no_job_is_reported():
    graph = AIGraph(
        workflow="w",
        nodes=(Node("a", NodeKind.READ_DATASET, processor=print),),
        rules=(Rule(job=None, condition=Periodic(interval_seconds=5), kind=RuleKind.PERIODIC),),
        jobs=(JobSpec("j"),),
    )
    with pytest.raises(tide.GraphError) as excinfo:
        tide.compile(graph)
    messages = "\n".join(_messages(excinfo))
    assert "a job rule must name a job" in messages
    assert "job 'j': job block declares no nodes" in messages


def test_config_that_would_not_round_trip_is_reported(echo):
    with tide.workflow("w") as wf, tide.job("a"):
        tide.read_dataset("d", processor=echo, config={"shape": (8, 8)}, name="tupled")
        tide.read_dataset("e", processor=echo, config={1: "x"}, name="int_key")
    with pytest.raises(tide.GraphError) as excinfo:
        tide.compile(wf)
    messages = _messages(excinfo)
    assert len(messages) == 2
    assert all("must be plain JSON data" in m for m in messages)


def test_after_without_upstreams_is_one_problem(echo):
    with tide.workflow("w") as wf, tide.job("a"):
        tide.read_dataset("d", processor=echo)
    wf.after("a")
    with pytest.raises(tide.GraphError) as excinfo:
        tide.compile(wf)
    assert _messages(excinfo) == [
        "workflow 'w', job 'a': after rule: needs at least one upstream job (at "
        + excinfo.value.problems[0].location
        + ")"
    ]
