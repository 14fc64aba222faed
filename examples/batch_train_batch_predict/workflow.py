"""Batch training, batch prediction: the classic offline loop on scikit-learn's digits.

    train ──MODEL_GENERATED──► validate ──MODEL_VALIDATED──► push ──MODEL_DEPLOYED──► predict

- ``train`` (batch) reads the training part of the digits data set, scales the pixels and fits
  a logistic regression; ``ctx.log_model`` registers it as a GENERATED version of ``digits``.
- ``validate`` scores the newest GENERATED version on the holdout part and marks it VALIDATED
  when it is accurate enough and not worse than the deployed version, REJECTED otherwise.
- ``push`` deploys the newest VALIDATED version (the previous one becomes DEPRECATED).
- ``predict`` (batch) scores the serving part with the DEPLOYED version and writes the
  predictions; it runs again whenever another version is deployed.

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
    ReadDigits,
    ScalePixels,
    TrainClassifier,
    WritePredictions,
)

with tide.workflow("digits_batch_batch") as wf:
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
            config={"path": "digits_batch_batch_predictions.jsonl"},
        )

    # A new version is validated; a validated one is pushed (deployed).
    wf.on_model_version("validate", model=MODEL, event=tide.ModelVersionEvent.GENERATED)
    wf.on_model_version("push", model=MODEL, event=tide.ModelVersionEvent.VALIDATED)
    # Batch prediction runs again each time a version is deployed.
    wf.on_model_version("predict", model=MODEL, event=tide.ModelVersionEvent.DEPLOYED)
