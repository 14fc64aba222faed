import importlib
import subprocess
import sys

import pytest

import tideflow

# DESIGN.md's public names that exist once the foundation has landed.
DESIGN_NAMES = {
    "EventMatch",
    "ExecutionStatus",
    "GraphError",
    "JobAction",
    "JobContext",
    "JobStatus",
    "ModelStatus",
    "ModelVersionEvent",
    "Processor",
    "TideflowError",
    "WorkflowPlan",
    "all_of",
    "any_of",
    "compile",
    "connect",
    "evaluate",
    "init",
    "job",
    "predict",
    "push_model",
    "read_dataset",
    "start",
    "stop",
    "submit",
    "train",
    "transform",
    "user_node",
    "validate",
    "workflow",
    "write_dataset",
}


def test_all_is_sorted_and_unique():
    assert tideflow.__all__ == sorted(tideflow.__all__)
    assert len(set(tideflow.__all__)) == len(tideflow.__all__)


def test_all_names_are_importable():
    for name in tideflow.__all__:
        assert getattr(tideflow, name) is not None, name


def test_all_holds_the_design_names():
    missing = DESIGN_NAMES - set(tideflow.__all__)
    assert not missing


def test_event_is_the_domain_event_jobs_receive_as_their_trigger():
    from tideflow.domain.events import Event

    assert "Event" in tideflow.__all__
    assert tideflow.Event is Event
    assert "triggers" in dir(tideflow.JobContext)


def test_unknown_attribute_raises_attribute_error():
    module = importlib.import_module("tideflow")
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018


def test_import_does_not_pull_in_heavy_libraries():
    code = (
        "import sys, tideflow\n"
        "heavy = [m for m in ('sqlalchemy', 'grpc', 'typer', 'cloudpickle', 'croniter', 'pandas') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
