"""``ad_ctr_flink``: ad_ctr's feature preparation on Flink, feeding the Python online trainer.

    datasets (python) FINISHED ──START──► features (engine="flink", streaming)
    features ── local stream of JSON Lines parts ──► train (python)
    train FINISHED ──STOP──► features (a savepoint)

``datasets`` registers what the Flink job reads and writes (Flink processors have no client),
so the ``flink`` executor records the job's lineage once it runs.

Needs PyFlink's environment (``tideflow engines setup flink``); the first Flink job starts a
local cluster on loopback (docs/engines.md). Run it with::

    tideflow run src/tideflow/examples/ad_ctr/flink_workflow.py --param samples=3000 --timeout 600

Parameters: ``samples`` (examples the trainer learns from before logging its version),
``rate`` (impressions per second the Flink source generates), ``stream_dir`` (where the feature
stream goes; default ``streams/ad_ctr_flink/<execution>/features`` in the project's data
directory, ``ctx.data_dir``).
"""

import tideflow as tide
from tideflow.examples.ad_ctr.catalog import RegisterDatasets
from tideflow.examples.ad_ctr.flink_features import (
    MODEL,
    FeatureStream,
    Featurize,
    Impressions,
    OnlineLogisticTrainer,
    WriteFeatureStream,
    features_location,
    impressions_location,
)

with tide.workflow("ad_ctr_flink") as wf:
    with tide.job("datasets"):
        locations = {
            "impressions": impressions_location,
            "ad_ctr_flink_features": features_location,
        }
        tide.user_node(processor=RegisterDatasets(locations), name="register")
    with tide.job("features", engine="flink", streaming=True, config={"checkpoint_interval": 1}):
        raw = tide.read_dataset("impressions", processor=Impressions(), name="impressions")
        features = tide.transform(raw, processor=Featurize(), name="featurize")
        tide.write_dataset(
            features, "ad_ctr_flink_features", processor=WriteFeatureStream(), name="feature_stream"
        )
    with tide.job("train", streaming=True):
        stream = tide.read_dataset(
            "ad_ctr_flink_features", processor=FeatureStream(), name="feature_stream_in"
        )
        tide.train(stream, model=MODEL, processor=OnlineLogisticTrainer(), name="learn")
    wf.after("features", "train", action=tide.JobAction.STOP)
    wf.after("features", "datasets")
