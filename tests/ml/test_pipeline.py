import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tideflow.errors import InvalidArgumentError, NotFoundError
from tideflow.ml import (
    FeatureHasher,
    FunctionTransformer,
    OneHotEncoder,
    Pipeline,
    PipelineModel,
    StandardScaler,
    Transformer,
)
from tideflow.ml.sklearn_adapter import SklearnEstimator


def clicks(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n),
            "price": rng.exponential(20, n),
            "device": rng.choice(["ios", "android", "web"], n),
            "ad": rng.choice([f"ad{i}" for i in range(50)], n),
        }
    )
    logit = (
        0.2 * (frame["age"] - 40) - 0.15 * (frame["price"] - 20) + (frame["device"] == "ios") * 3
    )
    frame["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def pipeline() -> Pipeline:
    hashed = [f"h{i}" for i in range(8)]
    return Pipeline(
        [
            FunctionTransformer(lambda f: f.assign(log_price=np.log1p(f["price"])), name="log"),
            StandardScaler(["age", "log_price"]),
            OneHotEncoder(["device"]),
            FeatureHasher(["ad"], n_features=8),
            SklearnEstimator(
                __import__("sklearn.linear_model").linear_model.LogisticRegression(),
                features=[
                    "age",
                    "log_price",
                    "device=android",
                    "device=ios",
                    "device=web",
                    *hashed,
                ],
                label="label",
            ),
        ]
    )


def test_fit_gives_a_pipeline_model_that_predicts():
    model = pipeline().fit(clicks(2000))
    assert isinstance(model, PipelineModel)
    out = model.transform(clicks(500, seed=1))
    assert {"prediction", "probability"} <= set(out.columns)
    assert out["probability"].between(0, 1).all()
    accuracy = (out["prediction"] == out["label"]).mean()
    assert accuracy > 0.8  # the majority class alone scores about 0.62


def test_batch_and_micro_batches_give_identical_rows():
    model = pipeline().fit(clicks(2000))
    table = clicks(1000, seed=2)
    whole = model.transform(table).reset_index(drop=True)
    # Uneven micro-batches, one of a single row: a category absent from a batch must still
    # get its column, and nothing may depend on batch statistics.
    bounds = [0, 1, 7, 250, 251, 600, 1000]
    batches = [table.iloc[a:b] for a, b in itertools.pairwise(bounds)]
    streamed = pd.concat(list(model.transform_stream(batches)), ignore_index=True)
    pd.testing.assert_frame_equal(whole, streamed)


def test_records_micro_batches_match_the_table():
    model = pipeline().fit(clicks(1000))
    table = clicks(40, seed=3)
    records = table.to_dict(orient="records")
    batches = [records[i : i + 6] for i in range(0, len(records), 6)]
    streamed = [row for batch in model.transform_stream(batches) for row in batch]
    whole = model.transform(table).to_dict(orient="records")
    assert len(streamed) == len(whole) == 40
    # Same rows and columns; numbers equal up to rounding, since BLAS may sum a 6-row batch
    # in another order than the 40-row table (seen: a last-ulp difference in one probability).
    for streamed_row, whole_row in zip(streamed, whole, strict=True):
        assert list(streamed_row) == list(whole_row)
        assert streamed_row == pytest.approx(whole_row, rel=1e-12, abs=1e-15)
    assert model.transform([]) == []


def test_arrow_in_arrow_out():
    model = pipeline().fit(pa.Table.from_pandas(clicks(500), preserve_index=False))
    out = model.transform(pa.Table.from_pandas(clicks(20, seed=4), preserve_index=False))
    assert isinstance(out, pa.Table)
    assert "probability" in out.column_names


def test_save_and_load_round_trip(tmp_path):
    model = pipeline().fit(clicks(1000))
    path = model.save(tmp_path / "model")
    manifest = (path / "manifest.json").read_text()
    assert '"class": "tideflow.ml.pipeline.PipelineModel"' in manifest
    assert (path / "stages" / "4" / "estimator.joblib").is_file()
    loaded = PipelineModel.load(path)
    table = clicks(200, seed=5)
    pd.testing.assert_frame_equal(model.transform(table), loaded.transform(table))


def test_an_unfitted_pipeline_saves_too(tmp_path):
    loaded = Pipeline.load(pipeline().save(tmp_path / "p"))
    assert [type(s).__name__ for s in loaded.stages] == [
        "FunctionTransformer",
        "StandardScaler",
        "OneHotEncoder",
        "FeatureHasher",
        "SklearnEstimator",
    ]
    assert isinstance(loaded.fit(clicks(300)), PipelineModel)


def test_load_refuses_the_wrong_class_and_missing_manifests(tmp_path):
    path = StandardScaler(["age"]).save(tmp_path / "scaler")
    with pytest.raises(InvalidArgumentError, match="not a PipelineModel"):
        PipelineModel.load(path)
    with pytest.raises(NotFoundError, match=r"no manifest\.json"):
        Transformer.load(tmp_path)
    with pytest.raises(InvalidArgumentError, match="not an empty directory"):
        StandardScaler(["age"]).save(path)


def test_missing_columns_are_named():
    model = StandardScaler(["age", "height"]).fit(
        pd.DataFrame({"age": [1.0, 2.0], "height": [3.0, 5.0]})
    )
    with pytest.raises(InvalidArgumentError, match="no column\\(s\\) 'height'"):
        model.transform(pd.DataFrame({"age": [1.0]}))


def test_online_scaler_matches_the_batch_fit():
    table = clicks(1000)
    batch = StandardScaler(["age", "price"]).fit(table)
    models = list(
        StandardScaler(["age", "price"]).fit_stream(
            table.iloc[i : i + 37] for i in range(0, 1000, 37)
        )
    )
    online = models[-1]
    assert all(m is online for m in models)  # one model, updated in place
    np.testing.assert_allclose(online.mean, batch.mean)
    np.testing.assert_allclose(online.std, batch.std)
    np.testing.assert_allclose(batch.mean, table[["age", "price"]].mean().to_numpy())
    np.testing.assert_allclose(batch.std, table[["age", "price"]].std(ddof=0).to_numpy())
