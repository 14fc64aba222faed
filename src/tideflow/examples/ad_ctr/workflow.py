"""Online click-through-rate prediction -- workflow ``ad_ctr`` (what ``tideflow quickstart`` runs).

    generate (streaming, bounded) ── impressions / clicks / holdout streams ──► train (streaming)
    train ──MODEL_GENERATED──► validate ──MODEL_VALIDATED──► push ──MODEL_DEPLOYED──► predictor

``generate`` and ``train`` start with the execution; ``generate`` ends after ``duration``
seconds and ``train`` once the clicks stream has been idle for ``idle_timeout`` seconds, so the
execution ends FINISHED by itself (when at least one version was validated: ``push`` must run
once). The online predictor is ``tideflow serve ctr`` or the one ``tideflow quickstart`` starts.

    tideflow run examples/ad_ctr/workflow.py --param duration=20 --timeout 120
"""

import tideflow as tide
from tideflow.examples.ad_ctr.jobs import (
    CLICKS,
    MODEL,
    GenerateClicks,
    OnlineTrainer,
    Pusher,
    StreamDirectories,
    Validator,
)

with tide.workflow("ad_ctr") as wf:
    with tide.job("generate", streaming=True):
        tide.user_node(
            processor=GenerateClicks(),
            name="click_stream",
            config={"duration": 30.0, "rate": 400.0, "label_delay": 0.25, "drift_fraction": 0.5},
        )
    with tide.job("train", streaming=True):
        streams = tide.read_dataset(CLICKS, processor=StreamDirectories(), name="click_streams")
        tide.train(
            streams,
            model=MODEL,
            processor=OnlineTrainer(),
            name="learn",
            config={"version_every_samples": 4000, "version_every_seconds": 5.0},
        )
    with tide.job("validate"):
        tide.validate(
            None,
            model=MODEL,
            processor=Validator(),
            name="judge",
            config={"min_auc": 0.6, "tolerance": 0.01, "holdout_size": 600},
        )
    with tide.job("push"):
        tide.push_model(model=MODEL, processor=Pusher(), name="deploy")

    wf.on_model_version("validate", model=MODEL, event=tide.ModelVersionEvent.GENERATED)
    wf.on_model_version("push", model=MODEL, event=tide.ModelVersionEvent.VALIDATED)
