"""Every example workflow in ``examples/`` compiles, round-trips, and its processors run.

The examples double as fixtures (STYLE.md). Besides running for real (tests/test_ad_ctr.py,
tests/test_digits_examples.py, tests/test_control_edges.py), their processors are exercised
here on a small in-memory stand-in for the Model Center and ``JobContext`` (``FakeContext``
below, with the members of the real API the examples use), running each job's nodes from the
*compiled plan's payloads* in the plan's order -- so what is checked is what ships. The digits
examples need pandas and scikit-learn (the ``ml`` extra) for that part and skip it without them.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import tideflow as tide
from tideflow.compiler import WorkflowPlan, digest
from tideflow.domain.graph import NodeKind
from tideflow.domain.rules import EventMatch, RuleKind
from tideflow.domain.status import MODEL_TRANSITIONS
from tideflow.sdk import Workflow, as_processor, collect_workflows

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*/workflow.py"))
DIGITS = (
    "batch_train_batch_predict",
    "batch_train_stream_predict",
    "stream_train_batch_predict",
    "stream_train_stream_predict",
)


# -- loading and compiling -----------------------------------------------------------------


def load_workflows(path: Path) -> list[Workflow]:
    """The workflows a file declares, loaded the way ``tideflow workflow compile`` loads them."""
    if importlib.util.find_spec("tideflow.cli.loader") is not None:
        from tideflow.cli.loader import load_workflows as cli_load

        return list(cli_load(path))
    # Until the CLI loader lands: run the file as a module that is not in sys.modules, so
    # cloudpickle serialises its processors by value (the plan needs no import of the file).
    spec = importlib.util.spec_from_file_location(f"_tideflow_example_{path.parent.name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with collect_workflows() as found:
        spec.loader.exec_module(module)
    return found


_PLANS: dict[Path, list[WorkflowPlan]] = {}


def plans_of(path: Path) -> list[WorkflowPlan]:
    """Compiled plans of one example file (compiled once per test session)."""
    if path not in _PLANS:
        _PLANS[path] = [tide.compile(wf) for wf in load_workflows(path)]
    return _PLANS[path]


def only_plan(example: str) -> WorkflowPlan:
    plans = plans_of(EXAMPLES / example / "workflow.py")
    assert len(plans) == 1
    return plans[0]


def shape(plan: WorkflowPlan) -> dict[str, tuple[bool, list[tuple[str, str]]]]:
    """job -> (streaming, [(node, kind), ...]) in the order the engine runs them."""
    return {
        job.name: (job.streaming, [(node.name, str(node.kind)) for node in job.nodes])
        for job in plan.jobs
    }


def test_every_example_is_found() -> None:
    names = {path.parent.name for path in EXAMPLE_FILES}
    assert names >= {*DIGITS, "ad_ctr"}
    for path in EXAMPLE_FILES:
        assert (path.parent / "README.md").is_file(), f"{path.parent.name} has no README.md"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.parent.name)
def test_example_compiles_and_round_trips(path: Path) -> None:
    plans = plans_of(path)
    assert plans, f"{path} declares no workflow"
    for plan in plans:
        assert plan.jobs
        assert all(job.engine == "python" and job.platform == "local" for job in plan.jobs)
        assert WorkflowPlan.from_json(plan.to_json()) == plan
        assert plan.to_json() == WorkflowPlan.from_json(plan.to_json()).to_json()
        for job in plan.jobs:
            # Every node carries user code, and the plan holds exactly those payloads.
            for node in job.nodes:
                assert node.processor in plan.payloads, f"{job.name}/{node.name} has no payload"
                assert node.location is not None
                assert re.fullmatch(r".*workflow\.py:\d+", node.location), node.location
            names = [node.name for node in job.nodes]
            assert job.engine_payload["order"] == names
            done: set[str] = set()
            for node in job.nodes:  # topological: inputs come first, inside the same job
                assert {ref.node for ref in node.inputs} <= done
                done.add(node.name)
        used = {node.processor for job in plan.jobs for node in job.nodes}
        assert used == set(plan.payloads)
        assert all(digest(blob) == key for key, blob in plan.payloads.items())
        for blob in plan.payloads.values():
            assert callable(as_processor(cloudpickle.loads(blob)).process)


@pytest.mark.parametrize("example", DIGITS)
def test_digits_example_shape(example: str) -> None:
    plan = only_plan(example)
    stream_train = example.startswith("stream_train")
    stream_predict = example.endswith("stream_predict")
    train_nodes = (
        [("read_stream", "read_dataset"), ("scale_stream", "transform"), ("learn", "train")]
        if stream_train
        else [("read_train", "read_dataset"), ("scale_train", "transform"), ("fit", "train")]
    )
    read, scale = (
        ("read_requests", "scale_requests") if stream_predict else ("read_serving", "scale_serving")
    )
    assert shape(plan) == {
        "train": (stream_train, train_nodes),
        "validate": (
            False,
            [
                ("read_holdout", "read_dataset"),
                ("scale_holdout", "transform"),
                ("check_accuracy", "validate"),
            ],
        ),
        "push": (False, [("deploy", "push_model")]),
        "predict": (
            stream_predict,
            [
                (read, "read_dataset"),
                (scale, "transform"),
                ("score", "predict"),
                ("write_predictions", "write_dataset"),
            ],
        ),
    }
    models = {node.model for job in plan.jobs for node in job.nodes if node.model is not None}
    assert models == {"digits"}
    expected = [
        ("validate", EventMatch(key="digits", event_type="MODEL_GENERATED")),
        ("push", EventMatch(key="digits", event_type="MODEL_VALIDATED")),
    ]
    if not stream_predict:  # batch prediction reruns on each deployment; streaming starts at once
        expected.append(("predict", EventMatch(key="digits", event_type="MODEL_DEPLOYED")))
    assert [(rule.job, rule.condition) for rule in plan.rules] == expected
    assert all(rule.kind == RuleKind.MODEL_VERSION for rule in plan.rules)
    assert all(rule.action == tide.JobAction.START for rule in plan.rules)
    # The same preprocessing object code serves training, validation and serving.
    scalers = {
        node.processor for job in plan.jobs for node in job.nodes if node.kind == NodeKind.TRANSFORM
    }
    assert len(scalers) == 1


def test_ad_ctr_shape() -> None:
    plan = only_plan("ad_ctr")
    assert plan.workflow == "ad_ctr"
    assert not plan.per_context
    assert shape(plan) == {
        "generate": (True, [("click_stream", "user")]),
        "train": (True, [("click_streams", "read_dataset"), ("learn", "train")]),
        "validate": (False, [("judge", "validate")]),
        "push": (False, [("deploy", "push_model")]),
        "predict": (True, [("impressions", "read_dataset"), ("serve", "predict")]),
        "monitor_examples": (
            True,
            [("served", "read_dataset"), ("example_monitor", "evaluate")],
        ),
        "monitor_model": (
            True,
            [("served_to_join", "read_dataset"), ("model_monitor", "evaluate")],
        ),
    }


def test_ad_ctr_rules_are_those_of_the_design() -> None:
    plan = only_plan("ad_ctr")
    rules = [(rule.job, rule.kind, rule.action) for rule in plan.rules]
    assert [r for r in rules if r[0] == "train"][1:] == [
        ("train", RuleKind.EVENT, tide.JobAction.RESTART),
        ("train", RuleKind.EVENT, tide.JobAction.RESTART),
    ]
    assert [r for r in rules if r[0] != "train"] == [
        ("validate", RuleKind.MODEL_VERSION, tide.JobAction.START),
        ("push", RuleKind.MODEL_VERSION, tide.JobAction.START),
    ]
    by_job = {rule.job: rule for rule in plan.rules if rule.job != "train"}
    validate, push = by_job["validate"], by_job["push"]
    assert validate.condition == EventMatch(key="ctr", event_type="MODEL_GENERATED")
    assert push.condition == EventMatch(key="ctr", event_type="MODEL_VALIDATED")
    restarts = [r.condition for r in plan.rules if r.action == tide.JobAction.RESTART]
    assert restarts == [
        EventMatch(event_type="DRIFT_DETECTED"),
        EventMatch(event_type="MODEL_DEGRADED"),
    ]
    # Jobs no rule starts start with the execution; the trainer starts with the generator.
    started_by_rules = {
        rule.job
        for rule in plan.rules
        if rule.action in (tide.JobAction.START, tide.JobAction.RESTART)
    }
    assert {job.name for job in plan.jobs} - started_by_rules == {
        "generate",
        "predict",
        "monitor_examples",
        "monitor_model",
    }


def test_plans_are_self_contained_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """A plan read back in another process needs only Tideflow to unpickle its processors."""
    for path in EXAMPLE_FILES:
        for plan in plans_of(path):
            (tmp_path / f"{plan.workflow}.json").write_text(plan.to_json(), encoding="utf-8")
    script = textwrap.dedent(
        """
        import sys, pathlib, cloudpickle
        from tideflow.compiler import WorkflowPlan
        from tideflow.sdk import as_processor
        count = 0
        for file in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
            plan = WorkflowPlan.from_json(file.read_text())
            for job in plan.jobs:
                for node in job.nodes:
                    processor = as_processor(cloudpickle.loads(plan.payloads[node.processor]))
                    assert callable(processor.process), node.name
                    count += 1
        print(count)
        """
    )
    # The loader registers the file's module with cloudpickle by value, and the examples import
    # no sibling module: so not even the example's directory is needed on sys.path.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    expected = sum(
        len(job.nodes) for path in EXAMPLE_FILES for plan in plans_of(path) for job in plan.jobs
    )
    assert int(result.stdout.strip()) == expected


# -- the CLI -------------------------------------------------------------------------------


def _tideflow_command() -> list[str]:
    if importlib.util.find_spec("tideflow.cli.workflow") is None:
        pytest.skip("`tideflow workflow compile` is not built yet (no tideflow.cli.workflow)")
    script = Path(sys.executable).with_name("tideflow")
    return [str(script)] if script.exists() else [shutil.which("tideflow") or "tideflow"]


def _plans_in(data: Any) -> list[Mapping[str, Any]]:
    """Plan objects in ``--json`` output: one plan, a list of plans, or a wrapper of them."""
    if isinstance(data, list):
        return [item for entry in data for item in _plans_in(entry)]
    if isinstance(data, Mapping):
        if "jobs" in data and "workflow" in data:
            return [data]
        return [item for value in data.values() for item in _plans_in(value)]
    return []


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.parent.name)
def test_cli_compiles_example(path: Path) -> None:
    command = [*_tideflow_command(), "workflow", "compile", str(path)]
    tree = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    assert tree.returncode == 0, tree.stderr
    as_json = subprocess.run(
        [*command, "--json"], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    assert as_json.returncode == 0, as_json.stderr
    printed = {plan["workflow"]: plan for plan in _plans_in(json.loads(as_json.stdout))}
    for plan in plans_of(path):
        assert plan.workflow in tree.stdout
        for job in plan.jobs:
            assert job.name in tree.stdout
            assert all(node.name in tree.stdout for node in job.nodes)
        shown = printed[plan.workflow]
        assert [(job["name"], job["streaming"]) for job in shown["jobs"]] == [
            (job.name, job.streaming) for job in plan.jobs
        ]
        assert [[node["name"] for node in job["nodes"]] for job in shown["jobs"]] == [
            [node.name for node in job.nodes] for job in plan.jobs
        ]
        assert [(rule["job"], rule["kind"]) for rule in shown["rules"]] == [
            (rule.job, str(rule.kind)) for rule in plan.rules
        ]


# -- running the processors on a stand-in runtime ----------------------------------------


@dataclass
class FakeVersion:
    model: str
    version: int
    status: tide.ModelStatus
    blob: bytes = field(repr=False)
    metrics: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class FakePage:
    items: tuple[FakeVersion, ...]
    next_cursor: str | None


class FakeModels:
    """The Model Center calls the examples make, with DESIGN.md's status state machine."""

    def __init__(self) -> None:
        self.versions: list[FakeVersion] = []

    def create_version(self, model: str, obj: Any, metrics: Mapping[str, Any]) -> FakeVersion:
        number = 1 + sum(1 for v in self.versions if v.model == model)
        version = FakeVersion(
            model, number, tide.ModelStatus.GENERATED, cloudpickle.dumps(obj), metrics
        )
        self.versions.append(version)
        return version

    def get_version(
        self, model: str, *, status: str | None = None, version: int | None = None
    ) -> FakeVersion:
        for candidate in reversed(self.versions):
            if candidate.model != model:
                continue
            if (status is None or candidate.status == status) and version in (
                None,
                candidate.version,
            ):
                return candidate
        raise tide.NotFoundError("model version", f"{model} status={status} version={version}")

    def set_status(self, model: str, version: int, status: str) -> None:
        entry = self.get_version(model, version=version)
        new = tide.ModelStatus(status)
        if new not in MODEL_TRANSITIONS[entry.status]:
            raise tide.IllegalTransitionError(f"model version {model}/{version}", entry.status, new)
        entry.status = new

    def deploy(self, model: str, version: int) -> None:
        for entry in self.versions:
            if entry.model == model and entry.status == tide.ModelStatus.DEPLOYED:
                self.set_status(model, entry.version, tide.ModelStatus.DEPRECATED)
        self.set_status(model, version, tide.ModelStatus.DEPLOYED)

    def list_versions(
        self, model: str, *, limit: int = 100, cursor: str | None = None, **kw: Any
    ) -> FakePage:
        found = tuple(v for v in self.versions if v.model == model)
        if not found:
            raise tide.NotFoundError("model", model)
        start = int(cursor or 0)
        more = start + limit < len(found)
        return FakePage(found[start : start + limit], str(start + limit) if more else None)

    def statuses(self, model: str) -> list[str]:
        return [str(v.status) for v in self.versions if v.model == model]


class FakeDatasets:
    """Dataset registration (the digits readers register the part they read)."""

    def __init__(self) -> None:
        self.registered: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **fields: Any) -> None:
        if name in self.registered:
            raise tide.AlreadyExistsError("dataset", name)
        self.registered[name] = fields


@dataclass
class FakeClient:
    models: FakeModels = field(default_factory=FakeModels)
    datasets: FakeDatasets = field(default_factory=FakeDatasets)


@dataclass
class FakeContext:
    """Implements the ``JobContext`` members the examples use."""

    workflow: str
    job: str
    config: Mapping[str, Any]
    client: FakeClient
    events: list[tuple[str, str, str]]
    metrics: list[tuple[str, float]]
    execution_id: str = "exec-1"
    attempt: int = 1
    node: str = ""
    model: str | None = None
    dataset: str | None = None
    trigger: Any = None
    triggers: tuple[Any, ...] = ()
    stopping: bool = False
    context: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("tideflow.example"))
    data_dir: Path = Path("/nonexistent/data")  # the runner gives one inside the test's directory
    inputs: list[Any] = field(default_factory=list)

    def send_event(
        self, key: str, value: str, *, event_type: str = "UNDEFINED", **kwargs: Any
    ) -> None:
        self.events.append((key, value, event_type))

    def listen(self, **filters: Any) -> Iterator[Any]:
        raise NotImplementedError

    def log_metric(self, name: str, value: float, **kwargs: Any) -> None:
        self.metrics.append((name, float(value)))

    def record_input(self, ref: Any) -> None:
        self.inputs.append(ref)

    def log_model(
        self,
        obj: Any,
        *,
        model: str,
        flavour: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> FakeVersion:
        assert flavour in (None, "sklearn", "river", "tideflow", "pickle")
        return self.client.models.create_version(model, obj, metrics or {})

    def load_model(self, model: str, **selector: Any) -> Any:
        return cloudpickle.loads(self.client.models.get_version(model, **selector).blob)


class FakeRuntime:
    """Runs a job of a compiled plan: processors from its payloads, nodes in its order."""

    def __init__(self, plan: WorkflowPlan, tmp_path: Path) -> None:
        self.plan = plan
        self.tmp_path = tmp_path
        self.client = FakeClient()
        self.events: list[tuple[str, str, str]] = []
        self.metrics: list[tuple[str, float]] = []

    def run(self, job_name: str, **overrides: Mapping[str, Any]) -> Any:
        job = self.plan.job(job_name)
        outputs: dict[tuple[str, int], Any] = {}
        result: Any = None
        for node in job.nodes:
            assert node.processor is not None
            processor = as_processor(cloudpickle.loads(self.plan.payloads[node.processor]))
            config = {**job.config, **node.config, **overrides.get(node.name, {})}
            if "path" in config:  # keep output files inside the test's directory
                config["path"] = str(self.tmp_path / Path(config["path"]).name)
            ctx = FakeContext(
                self.plan.workflow,
                job_name,
                config,
                self.client,
                self.events,
                self.metrics,
                node=node.name,
                model=node.model,
                dataset=node.dataset,
                data_dir=self.tmp_path / "data",
            )
            assert isinstance(ctx, tide.JobContext)
            processor.open(ctx)
            try:
                result = processor.process(
                    ctx, [outputs[(ref.node, ref.index)] for ref in node.inputs]
                )
            finally:
                processor.close(ctx)
            outputs[(node.name, 0)] = result
        return result

    def lines(self, name: str) -> list[dict[str, Any]]:
        text = (self.tmp_path / name).read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("example", DIGITS)
def test_digits_example_runs_train_validate_push_predict(example: str, tmp_path: Path) -> None:
    pytest.importorskip("pandas", reason="running the digits examples needs the ml extra")
    pytest.importorskip("sklearn", reason="running the digits examples needs the ml extra")
    plan = only_plan(example)
    runtime = FakeRuntime(plan, tmp_path)
    models = runtime.client.models
    stream = {"interval_seconds": 0, "max_batches": 60}

    runtime.run("train", read_stream=stream)
    # One pass over the 1,078 training rows: 34 micro-batches, a version after 20 and at the end.
    generated = 2 if example.startswith("stream_train") else 1
    assert models.statuses("digits") == ["GENERATED"] * generated
    assert runtime.run("validate") == tide.ModelStatus.VALIDATED
    # The newest is judged; older GENERATED versions are superseded (REJECTED).
    assert models.statuses("digits") == ["REJECTED"] * (generated - 1) + ["VALIDATED"]
    assert runtime.run("push") == generated
    assert models.get_version("digits", status="DEPLOYED").version == generated

    # The predictors are PredictProcessors: they follow deploys pushed over the server's event
    # stream, which this stand-in has not (tests/test_digits_examples.py runs them for real).
    # What they score with ships in the plan, and is checked on the deployed version.
    from tideflow.examples.digits import ScalePixels, load_part
    from tideflow.serving.processor import PredictProcessor

    score = plan.job("predict").node("score")
    assert score.processor is not None
    predictor = cloudpickle.loads(plan.payloads[score.processor])
    assert isinstance(predictor, PredictProcessor)
    assert predictor.scorer is not None
    deployed = cloudpickle.loads(models.get_version("digits", status="DEPLOYED").blob)
    serving = ScalePixels.scale(load_part("serving"))
    predicted = predictor.scorer(deployed, serving.drop(columns=["target"]).to_dict("records"))
    assert len(predicted) == 359
    assert all(0 <= label <= 9 for label in predicted)
    assert (serving["target"].to_numpy() == predicted).mean() >= 0.75  # chance is 0.1
    assert runtime.run("push") is None  # nothing newer to deploy
    accuracy = {name: value for name, value in runtime.metrics}["holdout_accuracy"]
    assert accuracy >= 0.85
