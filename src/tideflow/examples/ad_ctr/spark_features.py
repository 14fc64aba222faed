"""Batch CTR features on Spark: the processors of ``spark_workflow.py``.

A data-only Spark job (DataFrames in, DataFrames out; no Tideflow client) over what the ad_ctr
click generator wrote: the impressions stream's part files joined with the clicks stream's labels
(``streams/ad_ctr/{impressions,clicks}`` in the project's data directory, ``ctx.data_dir`` --
JSON Lines parts, the layout Spark's JSON reader reads as it is). Without those parts (ad_ctr
never ran in this project) it draws a batch of labelled impressions from the same seeded market,
so the example runs anywhere.

Output: per (segment, category, device), the number of impressions and clicks and a smoothed
click-through rate -- the kind of aggregate a batch trainer or a feature store takes -- written
as Parquet to ``ctx.params["output"]`` (default ``datasets/ad_ctr_features`` in the data
directory).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tideflow as tide
from tideflow.examples.ad_ctr.market import MARKET

WORKFLOW = "ad_ctr"
"""Whose streams are read (the flagship workflow's)."""
PART_FILES = "part-*"


def _has_parts(directory: Path) -> bool:
    return directory.is_dir() and any(directory.rglob(PART_FILES))


def _output(ctx: Any) -> str:
    return str(ctx.params.get("output") or ctx.data_dir / "datasets" / "ad_ctr_features")


def impressions_location(ctx: Any) -> tuple[str, str, bool]:
    """Where the impressions the feature job reads are (the flagship's stream parts)."""
    root = Path(ctx.params.get("stream_root") or ctx.data_dir / "streams" / WORKFLOW)
    return (root / "impressions").resolve().as_uri(), "jsonl", True


def features_location(ctx: Any) -> tuple[str, str, bool]:
    """Where the feature job writes its Parquet output."""
    return Path(_output(ctx)).resolve().as_uri(), "parquet", False


class LabelledImpressions(tide.Processor):
    """Impressions with their ``clicked`` label: from the ad_ctr streams, or generated.

    Config / params: ``stream_root`` (default ``streams/ad_ctr`` in ``ctx.data_dir``),
    ``generate_rows`` (rows drawn when the streams hold nothing), ``seed``.
    """

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        """The labelled impressions as a DataFrame."""
        root = Path(
            ctx.params.get("stream_root")
            or ctx.config.get("stream_root")
            or ctx.data_dir / "streams" / WORKFLOW
        )
        impressions, clicks = root / "impressions", root / "clicks"
        if _has_parts(impressions):
            ctx.logger.info("reading impressions and clicks part files under %s", root)
            shown = self._read(ctx, impressions)
            if _has_parts(clicks):
                labels = self._read(ctx, clicks).select("request_id", "clicked")
                return shown.join(labels, "request_id", "left").fillna(0, ["clicked"])
            return shown.withColumn("clicked", shown["position"] * 0)
        rows = int(ctx.params.get("generate_rows") or ctx.config.get("generate_rows", 5000))
        ctx.logger.info("no ad_ctr part files under %s: drawing %d impressions", root, rows)
        return ctx.spark.createDataFrame(self._draw(rows, int(ctx.config.get("seed", 11))))

    @staticmethod
    def _read(ctx: Any, directory: Path) -> Any:
        reader = ctx.spark.read.option("recursiveFileLookup", "true")
        return reader.option("pathGlobFilter", PART_FILES).json(str(directory))

    @staticmethod
    def _draw(rows: int, seed: int) -> list[dict[str, Any]]:
        rng = random.Random(seed)
        drawn = []
        for i in range(rows):
            row = MARKET.impression(rng, f"batch-{i}")
            row["clicked"] = MARKET.clicked(rng, row, drifted=False)
            drawn.append(row)
        return drawn


class CtrFeatures(tide.Processor):
    """Impressions, clicks and a smoothed CTR per (segment, category, device)."""

    keys = ("segment", "category", "device")

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        """The aggregate, ordered by its keys."""
        from pyspark.sql import functions as F

        prior = float(ctx.config.get("prior_ctr", 0.15))
        weight = float(ctx.config.get("prior_weight", 10.0))
        grouped = (
            inputs[0]
            .groupBy(*self.keys)
            .agg(
                F.count(F.lit(1)).alias("impressions"),
                F.sum(F.col("clicked").cast("long")).alias("clicks"),
                F.avg("position").alias("mean_position"),
            )
        )
        smoothed = (F.col("clicks") + F.lit(prior * weight)) / (F.col("impressions") + weight)
        return grouped.withColumn("ctr", smoothed).orderBy(*self.keys)


class WriteFeatures(tide.Processor):
    """Writes the features as Parquet (overwriting): ``params["output"]`` or the data dir's."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        """Write; return where."""
        output = _output(ctx)
        frame = inputs[0].coalesce(1)
        frame.write.mode("overwrite").parquet(output)
        ctx.logger.info("wrote %d feature rows to %s", frame.count(), output)
        return output
