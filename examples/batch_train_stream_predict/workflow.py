"""Batch training, streaming prediction: an offline model served online with hot swap.

    train ──MODEL_GENERATED──► validate ──MODEL_VALIDATED──► push ──MODEL_DEPLOYED┐
    predict (streaming, starts with the execution) ◄── switches to the new version ┘

- ``train`` (batch) fits a logistic regression on the training part of the digits data set and
  registers it as a GENERATED version of ``digits`` with ``ctx.log_model``.
- ``validate`` / ``push`` move the version to VALIDATED (or REJECTED) and then DEPLOYED.
- ``predict`` (streaming) scores a stream of unlabelled digit images from the moment the
  execution starts; it waits until a version is deployed, then scores its bounded stream (one
  pass over the serving part), picking up each newly
  deployed version without a restart.

The processors are shared by the four digits examples and ship inside the package
(:mod:`tideflow.examples.digits`); this file declares only the workflow: jobs, rules and node
config. The data set is split deterministically (60 % train, 20 % holdout, 20 % serving), so
runs are reproducible. pandas and scikit-learn are imported inside the processors: compiling
this file needs only Tideflow, running it needs ``pip install 'tideflow[ml]'``.
"""

from __future__ import annotations

import tideflow as tide
from tideflow.examples.digits import (
    MODEL,
    DeployValidated,
    HoldoutValidator,
    ReadDigits,
    ScalePixels,
    StreamDigits,
    StreamingPredictor,
    TrainClassifier,
    WritePredictions,
)

with tide.workflow("digits_batch_stream") as wf:
    with tide.job("train"):
        rows = tide.read_dataset("digits_train", processor=ReadDigits("train"), name="read_train")
        tide.train(
            tide.transform(rows, processor=ScalePixels(), name="scale_train"),
            model=MODEL,
            processor=TrainClassifier(MODEL),
            name="fit",
            config={"max_iter": 1000},
        )
    with tide.job("validate"):
        holdout = tide.read_dataset(
            "digits_holdout", processor=ReadDigits("holdout"), name="read_holdout"
        )
        tide.validate(
            tide.transform(holdout, processor=ScalePixels(), name="scale_holdout"),
            model=MODEL,
            processor=HoldoutValidator(MODEL),
            name="check_accuracy",
            config={"min_accuracy": 0.9, "tolerance": 0.01},
        )
    with tide.job("push"):
        tide.push_model(model=MODEL, processor=DeployValidated(MODEL), name="deploy")
    with tide.job("predict", streaming=True):
        requests = tide.read_dataset(
            "digits_requests",
            processor=StreamDigits("serving", labelled=False),
            name="read_requests",
            config={"batch_size": 16, "interval_seconds": 0.1},
        )
        scored = tide.predict(
            tide.transform(requests, processor=ScalePixels(), name="scale_requests"),
            model=MODEL,
            processor=StreamingPredictor(MODEL),
            name="score",
            config={"wait_seconds": 120},
        )
        tide.write_dataset(
            scored,
            "digits_predictions",
            processor=WritePredictions(),
            name="write_predictions",
            config={"path": "digits_batch_stream_predictions.jsonl"},
        )

    # A new version is validated; a validated one is pushed (deployed).
    wf.on_model_version("validate", model=MODEL, event=tide.ModelVersionEvent.GENERATED)
    wf.on_model_version("push", model=MODEL, event=tide.ModelVersionEvent.VALIDATED)
    # "predict" has no START rule: it starts with the execution and hot-swaps versions.
