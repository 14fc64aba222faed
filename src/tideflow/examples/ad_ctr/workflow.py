"""Online click-through-rate prediction -- workflow ``ad_ctr`` (what ``tideflow quickstart`` runs).

    generate (streaming, bounded) ── impressions / clicks / holdout streams ──► train (streaming)
    train ──MODEL_GENERATED──► validate ──MODEL_VALIDATED──► push ──MODEL_DEPLOYED──► predict
    predict (streaming) ── predictions stream ──► monitor_examples (DRIFT_DETECTED)
    predictions + clicks (late labels) ─────────► monitor_model (MODEL_DEGRADED)
    DRIFT_DETECTED | MODEL_DEGRADED ──RESTART──► train (learns faster for a while: it adapts)

``generate``, ``train``, ``predict`` and both monitors start with the execution; ``generate``
ends after ``duration`` seconds and the others once their input stream has been idle for
``idle_timeout`` seconds, so the execution ends FINISHED by itself (when at least one version
was validated: ``push`` must run once). ``predict`` is the online predictor over the
impressions stream; ``tideflow serve ctr`` (or the one ``tideflow quickstart`` starts) serves
the same deployed version over HTTP.

No rollback job: the market's drift is a change of the world, not a bad version -- the
previously deployed version was trained before the drift too and is no better, so rolling back
would only undo the catching up. Retraining faster is the answer here (docs/monitor.md).

    tideflow run examples/ad_ctr/workflow.py --param duration=40 --timeout 180
"""

import tideflow as tide
from tideflow.examples.ad_ctr.jobs import (
    CLICKS,
    IMPRESSIONS,
    MODEL,
    GenerateClicks,
    OnlineTrainer,
    Pusher,
    StreamDirectories,
    Validator,
)
from tideflow.examples.ad_ctr.monitoring import (
    PREDICTIONS,
    WATCHED,
    ServeImpressions,
    StreamDirectory,
    StreamExampleMonitor,
    StreamModelMonitor,
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

    with tide.job("predict", streaming=True):
        impressions = tide.read_dataset(
            IMPRESSIONS, processor=StreamDirectory("impressions"), name="impressions"
        )
        tide.predict(impressions, model=MODEL, processor=ServeImpressions(), name="serve")
    with tide.job("monitor_examples", streaming=True):
        tide.evaluate(
            tide.read_dataset(PREDICTIONS, processor=StreamDirectory("predictions"), name="served"),
            model=MODEL,
            processor=StreamExampleMonitor(
                features=WATCHED, kinds=dict.fromkeys(WATCHED, "categorical")
            ),
            name="example_monitor",
            # One DRIFT_DETECTED per served version at most (a new version re-arms it), so a
            # lasting shift restarts the trainer once, not every window; and none about a
            # version older than the last finding (either monitor's): the trainer restarted for
            # that one is still adapting, and another restart would only interrupt it.
            config={
                "window": 500,
                "alpha": 0.001,
                "rearm": 1_000_000,
                "ignore_older_versions": True,
                "ends_with": "predict",  # not 20 s of idle timeout after the last prediction
            },
        )
    with tide.job("monitor_model", streaming=True):
        tide.evaluate(
            tide.read_dataset(
                PREDICTIONS, processor=StreamDirectory("predictions"), name="served_to_join"
            ),
            model=MODEL,
            processor=StreamModelMonitor(),
            name="model_monitor",
            config={
                "window": 1000,
                "detector": "adwin",
                "cooldown": 5000,
                "ignore_older_versions": True,
                "ends_with": "predict",
            },
        )

    # A job that rules restart starts only by a rule, so train starts with the generator.
    wf.with_start("train", "generate")
    wf.on_event("train", event_type="DRIFT_DETECTED", action=tide.JobAction.RESTART)
    wf.on_event("train", event_type="MODEL_DEGRADED", action=tide.JobAction.RESTART)
    wf.on_model_version("validate", model=MODEL, event=tide.ModelVersionEvent.GENERATED)
    wf.on_model_version("push", model=MODEL, event=tide.ModelVersionEvent.VALIDATED)
