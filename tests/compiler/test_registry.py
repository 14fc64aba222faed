"""Engine plugins are found through the ``tideflow.engines`` entry-point group."""

import sys
import textwrap

import pytest

import tideflow as tide
from tideflow.compiler import GeneratedJob, GeneratorRegistry, JobGenerator, PlanNode

PLUGIN = """
from tideflow.compiler import GeneratedJob, JobGenerator, PlanNode


class EchoEngineGenerator(JobGenerator):
    def generate(self, workflow, job, nodes):
        return GeneratedJob(
            nodes=tuple(PlanNode(n.name, n.kind) for n in nodes),
            engine_payload={"program": f"{workflow}/{job.name}: " + ",".join(n.name for n in nodes)},
        )
"""


@pytest.fixture
def third_party_engine(tmp_path, monkeypatch):
    """Install a real distribution (dist-info + module) declaring an engine entry point."""
    (tmp_path / "echo_engine_plugin.py").write_text(textwrap.dedent(PLUGIN))
    dist = tmp_path / "echo_engine_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: echo-engine-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[tideflow.engines]\n"
        "echo = echo_engine_plugin:EchoEngineGenerator\n"
        "broken = echo_engine_plugin_missing:Nothing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("echo_engine_plugin", None)


def test_third_party_engine_is_discovered_and_used(third_party_engine, echo):
    registry = GeneratorRegistry()
    assert {"echo", "python"} <= set(registry.names())
    assert "echo_engine_plugin" not in sys.modules  # discovery does not import plugins
    with tide.workflow("w") as wf, tide.job("j", engine="echo"):
        tide.read_dataset("d", processor=echo, name="r")
    plan = tide.compile(wf, registry=registry)
    assert plan.job("j").engine_payload == {"program": "w/j: r"}
    assert "echo_engine_plugin" in sys.modules


def test_plugin_that_fails_to_import_is_named(third_party_engine, echo):
    with tide.workflow("w") as wf, tide.job("j", engine="broken"):
        tide.read_dataset("d", processor=echo)
    with pytest.raises(
        tide.GraphError,
        match=r"engine 'broken' plugin 'echo_engine_plugin_missing:Nothing' failed to load",
    ):
        tide.compile(wf, registry=GeneratorRegistry())


def test_programmatic_registration(echo):
    class Counting(JobGenerator):
        calls = 0

        def generate(self, workflow, job, nodes):
            Counting.calls += 1
            return GeneratedJob(nodes=tuple(PlanNode(n.name, n.kind) for n in nodes))

    registry = GeneratorRegistry()
    registry.register("counting", Counting())
    with tide.workflow("w") as wf, tide.job("j", engine="counting"):
        tide.read_dataset("d", processor=echo)
    tide.compile(wf, registry=registry)
    assert Counting.calls == 1
    assert "counting" in registry.names()
