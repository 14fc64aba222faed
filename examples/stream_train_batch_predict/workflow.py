"""Streaming training, batch prediction: online learning feeding an offline scorer.

    train (streaming) ──MODEL_GENERATED (every N micro-batches)──► validate
        ──MODEL_VALIDATED──► push ──MODEL_DEPLOYED──► predict (batch)

- ``train`` (streaming) learns from a stream of labelled digits with ``partial_fit`` and logs a
  GENERATED version of ``digits`` every ``publish_every`` micro-batches and once at the end of
  its bounded stream (one pass over the training part); then it FINISHES.
- Each new version is validated on the holdout part, and a validated one is deployed.
- ``predict`` (batch) scores the serving part each time a version is deployed.

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
    BatchPredictor,
    DeployValidated,
    HoldoutValidator,
    OnlineTrainer,
    ReadDigits,
    ScalePixels,
    StreamDigits,
    WritePredictions,
)

with tide.workflow("digits_stream_batch") as wf:
    with tide.job("train", streaming=True):
        stream = tide.read_dataset(
            "digits_stream",
            processor=StreamDigits("train"),
            name="read_stream",
            config={"batch_size": 32, "interval_seconds": 0.1},
        )
        tide.train(
            tide.transform(stream, processor=ScalePixels(), name="scale_stream"),
            model=MODEL,
            processor=OnlineTrainer(MODEL),
            name="learn",
            config={"publish_every": 20},  # and once at the end of the stream
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
            config={"min_accuracy": 0.85, "tolerance": 0.01},
        )
    with tide.job("push"):
        tide.push_model(model=MODEL, processor=DeployValidated(MODEL), name="deploy")
    with tide.job("predict"):
        serving = tide.read_dataset(
            "digits_serving", processor=ReadDigits("serving"), name="read_serving"
        )
        scored = tide.predict(
            tide.transform(serving, processor=ScalePixels(), name="scale_serving"),
            model=MODEL,
            processor=BatchPredictor(MODEL),
            name="score",
        )
        tide.write_dataset(
            scored,
            "digits_predictions",
            processor=WritePredictions(),
            name="write_predictions",
            config={"path": "digits_stream_batch_predictions.jsonl"},
        )

    # A new version is validated; a validated one is pushed (deployed).
    wf.on_model_version("validate", model=MODEL, event=tide.ModelVersionEvent.GENERATED)
    wf.on_model_version("push", model=MODEL, event=tide.ModelVersionEvent.VALIDATED)
    # Batch prediction runs again each time a version is deployed.
    wf.on_model_version("predict", model=MODEL, event=tide.ModelVersionEvent.DEPLOYED)
