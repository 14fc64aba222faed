"""Streaming training, streaming prediction: the online loop of the AI Flow design.

    train (streaming) ──MODEL_GENERATED──► validate ──MODEL_VALIDATED──► push ──MODEL_DEPLOYED┐
    predict (streaming, starts with the execution) ◄── switches to the new version ─────────┘

- ``train`` (streaming) learns from a stream of labelled digits with ``partial_fit`` and logs a
  GENERATED version of ``digits`` every ``publish_every`` micro-batches.
- Each new version is validated on the holdout part, and a validated one is deployed.
- ``predict`` (streaming) scores a stream of unlabelled digit images and switches to each newly
  deployed version without a restart. Both streams are bounded (one pass over their part of
  the data set), so both streaming jobs, and the execution, FINISH on their own.

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
    OnlineTrainer,
    ReadDigits,
    ScalePixels,
    StreamDigits,
    StreamingPredictor,
    WritePredictions,
)

with tide.workflow("digits_stream_stream") as wf:
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
            config={"path": "digits_stream_stream_predictions.jsonl"},
        )

    # A new version is validated; a validated one is pushed (deployed).
    wf.on_model_version("validate", model=MODEL, event=tide.ModelVersionEvent.GENERATED)
    wf.on_model_version("push", model=MODEL, event=tide.ModelVersionEvent.VALIDATED)
    # "predict" has no START rule: it starts with the execution and hot-swaps versions.
