"""A workflow directory on disk, as a user would submit it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

FLOW = """
import tideflow as tide
from steps import Reader


with tide.workflow("clicks") as wf:
    with tide.job("ingest"):
        tide.read_dataset("clicks", processor=Reader(THRESHOLD))
    with tide.job("report"):
        tide.read_dataset("summary", processor=Reader(1))
    wf.after("report", "ingest")
"""

STEPS = """
class Reader:
    def __init__(self, threshold):
        self.threshold = threshold

    def process(self, ctx, inputs):
        return self.threshold
"""


def write_flow(
    root: Path, *, threshold: int = 3, rule: str = 'wf.after("report", "ingest")'
) -> Path:
    """(Re)write the workflow directory's code; returns the workflow file."""
    root.mkdir(parents=True, exist_ok=True)
    flow = textwrap.dedent(FLOW).replace("THRESHOLD", str(threshold))
    flow = flow.replace('wf.after("report", "ingest")', rule)
    (root / "flow.py").write_text(flow)
    (root / "steps.py").write_text(textwrap.dedent(STEPS))
    (root / "requirements.txt").write_text("numpy>=1.26\n")
    return root / "flow.py"


@pytest.fixture
def flow_dir(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write_flow(root)
    return root
