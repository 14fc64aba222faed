"""Self-contained artefacts: the flagship ctr model loads with pickle alone."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.serving.conftest import unique
from tideflow.serving.models import load_model, save_model
from tideflow.testing import TideflowTestServer


def test_the_ctr_model_loads_without_tideflow(server: TideflowTestServer, tmp_path: Path) -> None:
    from tideflow.examples.ad_ctr.market import MARKET
    from tideflow.examples.ad_ctr.model import CtrModel

    rng = random.Random(5)
    model = CtrModel()
    rows = [MARKET.impression(rng, str(i)) for i in range(500)]
    model.learn(rows, [MARKET.clicked(rng, r, drifted=False) for r in rows])
    with server.client(unique("portable")) as client:
        version = save_model(client, model, model="ctr")
        assert version.flavour == "pickle"
        libraries = json.loads(version.tags["tideflow.libraries"])
        assert set(libraries) >= {"python", "cloudpickle"}
        blob = client.blobs.get(version.uri)
        reloaded = load_model(client, "ctr", version=version.version)  # and still with Tideflow
        exported = None
        if importlib.util.find_spec("mlflow") is not None:
            exported = client.models.export(
                "ctr", version.version, format="mlflow", out=tmp_path / "m"
            )
    expected = model.scores(rows[:5])
    assert reloaded.scores(rows[:5]) == expected
    (tmp_path / "ctr.pkl").write_bytes(blob)
    (tmp_path / "rows.json").write_text(json.dumps(rows[:5]))
    rows_file = str(tmp_path / "rows.json")
    script = (
        "import sys, json, pickle; sys.modules['tideflow'] = None\n"  # any import of it fails
        f"model = pickle.loads(open({str(tmp_path / 'ctr.pkl')!r}, 'rb').read())\n"
        f"print(json.dumps(model(json.load(open({rows_file!r})))))\n"
    )
    assert run_alone(script) == pytest.approx(expected, abs=1e-12)
    if exported is not None:  # the MLflow export of it too
        script = (
            "import sys, json; sys.modules['tideflow'] = None\n"
            "import pandas as pd, mlflow.pyfunc\n"
            f"model = mlflow.pyfunc.load_model({str(exported)!r})\n"
            f"frame = pd.DataFrame(json.load(open({rows_file!r})))\n"
            "print(json.dumps(model.predict(frame).tolist()))\n"
        )
        assert run_alone(script) == pytest.approx(expected, abs=1e-12)


def run_alone(script: str) -> Any:
    """What ``script`` prints last (JSON), run in a fresh interpreter."""
    alone = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert alone.returncode == 0, alone.stderr
    return json.loads(alone.stdout.strip().splitlines()[-1])
