"""ad_ctr's batch feature preparation on Spark -- workflow ``ad_ctr_spark_features``.

    datasets (python) ──► features (spark, batch): impressions + click labels ──► CTR per (segment, category, device) ──► Parquet

A small Python job registers the datasets the Spark job reads and writes (Spark processors have
no client), so the ``spark`` executor records the job's lineage. Then one ``spark`` job, submitted by the ``spark`` executor with ``spark-submit`` (``local[*]`` unless
the job's ``spark_master`` says otherwise). It reads the part files the flagship ``ad_ctr``
workflow's generator wrote in the project's data directory, or draws a batch from the same seeded market
when there are none (see ``spark_features.py``)::

    tideflow run src/tideflow/examples/ad_ctr/spark_workflow.py --param output=/tmp/ctr_features --timeout 600
"""

import tideflow as tide
from tideflow.examples.ad_ctr.catalog import RegisterDatasets
from tideflow.examples.ad_ctr.jobs import IMPRESSIONS
from tideflow.examples.ad_ctr.spark_features import (
    CtrFeatures,
    LabelledImpressions,
    WriteFeatures,
    features_location,
    impressions_location,
)

SPARK_CONF = {"spark.sql.shuffle.partitions": "4"}
"""A few shuffle partitions: the aggregate is small (Spark's default of 200 only adds tasks)."""

FEATURES = tide.job("features", engine="spark", config={"spark_conf": SPARK_CONF})

with tide.workflow("ad_ctr_spark_features") as wf:
    with tide.job("datasets"):
        locations = {IMPRESSIONS: impressions_location, "ctr_features": features_location}
        tide.user_node(processor=RegisterDatasets(locations), name="register")
    with FEATURES:
        impressions = tide.read_dataset(
            IMPRESSIONS,
            processor=LabelledImpressions(),
            name="labelled_impressions",
            config={"generate_rows": 5000, "seed": 11},
        )
        features = tide.transform(impressions, processor=CtrFeatures(), name="ctr_features")
        tide.write_dataset(features, "ctr_features", processor=WriteFeatures(), name="write")
    wf.after("features", "datasets")
