"""The flink job generator: by-reference pickles, and a GraphError naming each node otherwise."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import tideflow as tide
from tideflow.engines.flink.context import FlinkContext, FlinkJobState, split_statements
from tideflow.engines.flink.generator import FlinkJobGenerator, referenced_globals
from tideflow.errors import FailedPreconditionError, GraphError
from tideflow.examples.digits import __name__ as digits_module  # an importable module


class Importable(tide.Processor):
    """Defined at a module's top level: pickles by reference."""

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        return inputs[0]


def test_a_flink_job_compiles_with_by_reference_payloads() -> None:
    with tide.workflow("gen_ok") as wf, tide.job("features", engine="flink", streaming=True):
        a = tide.read_dataset("a", processor=Importable(2))
        tide.write_dataset(
            tide.transform(a, processor=Importable(3), name="t"), "b", processor=Importable(4)
        )
    plan = tide.compile(wf)
    job = plan.job("features")
    assert job.engine == "flink"
    assert job.engine_payload["order"] == [n.name for n in job.nodes]
    assert job.engine_payload["pickle"] == "standard"
    for node in job.nodes:
        assert node.processor is not None
        loaded = pickle.loads(plan.payloads[node.processor])
        assert type(loaded) is Importable
        assert (__name__, "Importable") in referenced_globals(plan.payloads[node.processor])


def test_unimportable_processors_are_one_graph_error_naming_each_node() -> None:
    class Local(tide.Processor):
        def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
            return None

    with tide.workflow("gen_bad") as wf, tide.job("features", engine="flink"):
        a = tide.read_dataset("a", processor=Local(), name="local_class")
        tide.transform(a, processor=lambda ctx, inputs: inputs[0], name="a_lambda")
    with pytest.raises(GraphError) as caught:
        tide.compile(wf)
    text = str(caught.value)
    assert "local_class" in text
    assert "a_lambda" in text
    assert "by reference" in text


def test_a_class_from_the_workflow_file_itself_is_refused() -> None:
    namespace: dict[str, Any] = {"__name__": "tideflow_user_0123456789ab", "tide": tide}
    exec(
        "class InFile(tide.Processor):\n    def process(self, ctx, inputs):\n        return None\n",
        namespace,
    )
    import sys
    import types

    module = types.ModuleType("tideflow_user_0123456789ab")
    module.__dict__.update(namespace)
    sys.modules[module.__name__] = module
    try:
        with tide.workflow("gen_file") as wf, tide.job("j", engine="flink"):
            tide.read_dataset("a", processor=namespace["InFile"](), name="in_file")
        with pytest.raises(GraphError, match="defined in the workflow file itself"):
            tide.compile(wf)
    finally:
        del sys.modules[module.__name__]


def test_the_generator_is_the_flink_engine_plugin() -> None:
    from tideflow.compiler.generator import default_registry

    assert isinstance(default_registry.get("flink"), FlinkJobGenerator)
    assert FlinkJobGenerator.runtime == "tideflow.engines.flink.driver:main"
    assert digits_module  # tideflow's own modules import in the Flink environment too


def test_sql_statements_split_outside_quotes() -> None:
    text = "CREATE TABLE t (a STRING) WITH ('x' = 'a;b'); INSERT INTO t SELECT ';' ;"
    parts = [p.strip() for p in split_statements(text) if p.strip()]
    assert parts == [
        "CREATE TABLE t (a STRING) WITH ('x' = 'a;b')",
        "INSERT INTO t SELECT ';'",
    ]


def test_a_flink_processor_gets_the_project_data_dir(tmp_path: Path) -> None:
    def context(data_dir: str | None) -> FlinkContext:
        state = FlinkJobState(
            t_env=None,
            statements=None,
            streaming=True,
            project="p",
            workflow="wf",
            job="features",
            execution_id=1,
            attempt=1,
            data_dir=data_dir,
        )
        return FlinkContext(state, "sink", {})

    given = tmp_path / "data" / "p"
    assert context(str(given)).data_dir == given
    assert given.is_dir()  # made on first use, as for Python jobs
    with pytest.raises(FailedPreconditionError, match="this Flink job has no data directory"):
        _ = context(None).data_dir
