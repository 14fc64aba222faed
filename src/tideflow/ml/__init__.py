"""Transformers, Estimators and Pipelines for batch tables and micro-batch streams (Flink ML style).

Needs the ``ml`` extra (pandas, NumPy; pyarrow for Arrow tables; scikit-learn and River for
their adapters). Nothing here is imported by ``import tideflow``; the adapters import their
library only when their module is imported::

    from tideflow.ml import Pipeline, StandardScaler, OneHotEncoder
    from tideflow.ml.sklearn_adapter import SklearnEstimator
    from tideflow.ml.river_adapter import RiverModel

Layering: this package sits below the store and may import only ``tideflow.domain``,
``tideflow.errors``, ``tideflow.settings`` (and the version) plus third-party libraries.
See docs/ml.md.
"""

from tideflow.ml.feature import (
    FeatureHasher,
    FunctionTransformer,
    OneHotEncoder,
    OneHotEncoderModel,
    StandardScaler,
    StandardScalerModel,
)
from tideflow.ml.pipeline import Pipeline, PipelineModel
from tideflow.ml.stage import Estimator, Model, OnlineEstimator, OnlineModel, Stage, Transformer
from tideflow.ml.table import TableKind, TableLike

__all__ = [
    "Estimator",
    "FeatureHasher",
    "FunctionTransformer",
    "Model",
    "OneHotEncoder",
    "OneHotEncoderModel",
    "OnlineEstimator",
    "OnlineModel",
    "Pipeline",
    "PipelineModel",
    "Stage",
    "StandardScaler",
    "StandardScalerModel",
    "TableKind",
    "TableLike",
    "Transformer",
]
