"""``ad_ctr``'s feature preparation as a Flink streaming job, feeding the Python trainer.

    features (flink, streaming) ── JSON Lines part files (local stream) ──► train (python)
    train FINISHED ──STOP──► features (stops with a savepoint)

The Flink job generates impressions (Flink's ``datagen`` source, a known click model: evening
hours and mobile devices click more), turns them into the trainer's features with SQL, and
writes them with Flink's filesystem sink into a local stream directory
(:mod:`tideflow.io.local_stream`): each checkpoint (every ``checkpoint_interval`` seconds)
commits the part files written since the last one, and only committed parts are read
(``read_in_progress=False``: Flink may roll back a part in progress on recovery). The Python
trainer reads that stream with its own consumer position, learns a logistic regression online
and logs one model version once it has seen ``samples`` examples; the rule then stops the Flink
job (with a savepoint).

Processors here are importable by reference (``tideflow.examples.ad_ctr.flink_features``), as
Flink processors must be (docs/engines.md); the workflow lives in
``examples/ad_ctr_flink/workflow.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tideflow as tide

FEATURES = ("device_mobile", "device_tablet", "evening", "morning", "premium_ad")
MODEL = "ctr_flink"


def stream_directory(ctx: Any) -> Path:
    """Where the features stream of an execution lives (both jobs compute the same path).

    The ``stream_dir`` param, else ``streams/<workflow>/<execution>/features`` in the project's
    data directory (``ctx.data_dir``, the same for the Flink and the Python job).
    """
    if ctx.params.get("stream_dir"):
        return Path(str(ctx.params["stream_dir"]))
    return Path(ctx.data_dir, "streams", ctx.workflow, str(ctx.execution_id), "features")


def impressions_location(ctx: Any) -> tuple[str, str, bool]:
    """The impressions source: Flink's datagen connector (an unbounded stream, no place)."""
    return "flink-datagen:ad_ctr_impressions", "rows", True


def features_location(ctx: Any) -> tuple[str, str, bool]:
    """The features stream of this execution (JSON Lines parts)."""
    return stream_directory(ctx).resolve().as_uri(), "jsonl", True


class Impressions(tide.Processor):
    """Flink: an unbounded impressions source with a known click model (SQL)."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> str:
        """``CREATE TABLE`` of the datagen source, then the query labelling each impression."""
        rate = int(ctx.params.get("rate", 200))
        return f"""
            CREATE TEMPORARY TABLE raw_impressions (
              user_id INT, ad_id INT, hour_of_day INT, device INT, noise DOUBLE
            ) WITH (
              'connector' = 'datagen', 'rows-per-second' = '{rate}',
              'fields.user_id.min' = '0', 'fields.user_id.max' = '9999',
              'fields.ad_id.min' = '0', 'fields.ad_id.max' = '99',
              'fields.hour_of_day.min' = '0', 'fields.hour_of_day.max' = '23',
              'fields.device.min' = '0', 'fields.device.max' = '2',
              'fields.noise.min' = '0', 'fields.noise.max' = '1');
            SELECT user_id, ad_id, hour_of_day, device,
                   CASE WHEN noise < 0.05
                        + CASE WHEN device = 1 THEN 0.25 ELSE 0 END
                        + CASE WHEN hour_of_day >= 18 THEN 0.2 ELSE 0 END
                        + CASE WHEN ad_id < 10 THEN 0.15 ELSE 0 END
                   THEN 1 ELSE 0 END AS clicked
            FROM raw_impressions
        """


class Featurize(tide.Processor):
    """Flink: one-hot features for the trainer (SQL over the upstream node's view)."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> str:
        """The feature query (reads the ``impressions`` node's view)."""
        return """
            SELECT user_id, ad_id,
                   CASE WHEN device = 1 THEN 1.0 ELSE 0.0 END AS device_mobile,
                   CASE WHEN device = 2 THEN 1.0 ELSE 0.0 END AS device_tablet,
                   CASE WHEN hour_of_day >= 18 THEN 1.0 ELSE 0.0 END AS evening,
                   CASE WHEN hour_of_day < 10 THEN 1.0 ELSE 0.0 END AS morning,
                   CASE WHEN ad_id < 10 THEN 1.0 ELSE 0.0 END AS premium_ad,
                   clicked
            FROM impressions
        """


class WriteFeatureStream(tide.Processor):
    """Flink: the filesystem sink into the local stream directory (JSON Lines parts)."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> None:
        """Declare the sink and insert the features into it."""
        directory = stream_directory(ctx)
        directory.mkdir(parents=True, exist_ok=True)
        columns = ", ".join(f"{name} DOUBLE" for name in FEATURES)
        ctx.t_env.execute_sql(
            f"CREATE TEMPORARY TABLE feature_stream (user_id INT, ad_id INT, {columns}, "
            f"clicked INT) WITH ('connector' = 'filesystem', 'path' = 'file://{directory}', "
            "'format' = 'json', 'sink.rolling-policy.rollover-interval' = '1 s', "
            "'sink.rolling-policy.check-interval' = '1 s')"
        )
        ctx.insert(inputs[0], "feature_stream")
        ctx.logger.info("writing features to the local stream %s", directory)


class FeatureStream(tide.Processor):
    """Python: the Flink-written feature stream, read from this job's committed position."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        """A reader of committed parts only (Flink may roll back a part in progress)."""
        from tideflow.io.local_stream import LocalStreamReader, consumer_name

        return LocalStreamReader(
            stream_directory(ctx),
            consumer=consumer_name("features", ctx.job, workflow=ctx.workflow),
            dataset="ad_ctr_flink_features",
            read_in_progress=False,
        )


class OnlineLogisticTrainer(tide.Processor):
    """Python: logistic regression by SGD over the feature stream; one model version."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> None:
        """Learn from ``samples`` examples, then log the model and finish."""
        reader = inputs[0]
        samples = int(ctx.params.get("samples", 3000))
        rate = float(ctx.config.get("learning_rate", 0.1))
        weights = dict.fromkeys(FEATURES, 0.0)
        bias = 0.0
        seen = 0
        loss = 0.0
        for batch in reader.batches(max_records=500, max_wait=0.5):
            for row in batch.records:
                z = bias + sum(weights[f] * float(row[f]) for f in FEATURES)
                p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
                y = float(row["clicked"])
                loss += -(y * math.log(p + 1e-9) + (1 - y) * math.log(1 - p + 1e-9))
                error = p - y
                bias -= rate * error
                for f in FEATURES:
                    weights[f] -= rate * error * float(row[f])
                seen += 1
            ctx.logger.info("trained on %d examples (mean log loss %.4f)", seen, loss / seen)
            if seen >= samples:
                break
        reader.commit()
        model = {"weights": weights, "bias": bias, "examples": seen}
        ctx.log_metric("log_loss", loss / max(seen, 1))
        version = ctx.log_model(model, model=MODEL)
        print(f"ad_ctr_flink trained on {seen} Flink-prepared examples: {model}", flush=True)
        ctx.logger.info("logged %s version %s", MODEL, getattr(version, "version", version))
