import numpy as np
import pandas as pd
import pytest
from river import linear_model, optim, preprocessing
from sklearn.linear_model import LinearRegression, SGDClassifier
from sklearn.preprocessing import StandardScaler as SkScaler

from tideflow.errors import FailedPreconditionError, InvalidArgumentError
from tideflow.ml import OnlineModel
from tideflow.ml.river_adapter import RiverEstimator, RiverModel
from tideflow.ml.sklearn_adapter import SklearnEstimator, SklearnModel

WEIGHTS = np.array([2.0, -3.0, 1.5, 0.0])


def stream(n: int, seed: int = 0) -> pd.DataFrame:
    """A known click model: label = 1 when w.x + noise > 0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(WEIGHTS)))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(len(WEIGHTS))])
    frame["label"] = (x @ WEIGHTS + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return frame


FEATURES = [f"x{i}" for i in range(len(WEIGHTS))]


def test_sklearn_batch_fit_adds_prediction_and_probability():
    estimator = SklearnEstimator(
        SGDClassifier(loss="log_loss", random_state=0), features=FEATURES, label="label"
    )
    model = estimator.fit(stream(3000))
    out = model.transform(stream(1000, seed=1))
    assert (out["prediction"] == out["label"]).mean() > 0.9
    assert out["probability"].between(0, 1).all()
    assert not hasattr(estimator.estimator, "coef_")  # the template stays unfitted


def test_sklearn_partial_fit_learns_batch_by_batch():
    estimator = SklearnEstimator(
        SGDClassifier(loss="log_loss", random_state=0),
        features=FEATURES,
        label="label",
        classes=[0, 1],
    )
    holdout = stream(2000, seed=9)
    train = stream(5000, seed=2)
    scores = []
    for model in estimator.fit_stream(train.iloc[i : i + 100] for i in range(0, 5000, 100)):
        scores.append((model.transform(holdout)["prediction"] == holdout["label"]).mean())
    assert scores[-1] > 0.9
    assert scores[-1] >= scores[0]


def test_sklearn_multiclass_gets_one_probability_column_per_class():
    frame = stream(600)
    frame["label"] = np.digitize(frame["x0"], [-0.5, 0.5])
    model = SklearnEstimator(
        SGDClassifier(loss="log_loss", random_state=0), features=FEATURES, label="label"
    ).fit(frame)
    out = model.transform(frame.head(5))
    assert {"probability_0", "probability_1", "probability_2"} <= set(out.columns)


def test_sklearn_transformer_without_partial_fit_is_refused():
    model = SklearnEstimator(
        LinearRegression(), features=FEATURES, label="label", probability=None
    ).fit(stream(100))
    with pytest.raises(FailedPreconditionError, match="LinearRegression has no partial_fit"):
        model.partial_fit(stream(10))
    out = model.transform(stream(3))
    assert "probability" not in out.columns


def test_sklearn_unsupervised_fit(tmp_path):
    model = SklearnEstimator(SkScaler(), features=FEATURES, output=None, probability=None).fit(
        stream(100)
    )
    loaded = SklearnModel.load(model.save(tmp_path / "m"))
    assert loaded.features == FEATURES
    np.testing.assert_allclose(loaded.estimator.mean_, model.estimator.mean_)


def river_classifier() -> object:
    return preprocessing.StandardScaler() | linear_model.LogisticRegression(optim.SGD(0.05))


def test_river_learns_online_record_by_record():
    model = RiverModel(river_classifier(), features=FEATURES, label="label")
    holdout = stream(1000, seed=8).to_dict(orient="records")

    def holdout_accuracy() -> float:
        return float(np.mean([model.predict_one(r) == r["label"] for r in holdout]))

    before = holdout_accuracy()  # an untrained model knows nothing: about the base rate
    records = stream(6000, seed=3).to_dict(orient="records")
    hits = [out["prediction"] == out["label"] for out in model.learn_records(records)]
    after = holdout_accuracy()
    # The Bayes rate of this model is about 0.96; online learning must get close to it.
    assert before < 0.65
    assert after > 0.9
    assert np.mean(hits[-2000:]) > 0.9
    assert model.learned == 6000


def test_river_micro_batches_prequential_and_holdout():
    estimator = RiverEstimator(river_classifier(), features=FEATURES, label="label")
    model = estimator.new_model()
    assert isinstance(model, OnlineModel)
    train = stream(4000, seed=4)
    list(model.learn_stream(train.iloc[i : i + 250] for i in range(0, 4000, 250)))
    holdout = stream(1000, seed=5)
    out = model.transform(holdout)
    assert ((out["probability"] > 0.5).astype(int) == out["label"]).mean() > 0.88
    # The template is cloned, never trained.
    fresh = estimator.fit(stream(10, seed=6))
    assert fresh.learned == 10


def test_river_model_saves_and_loads(tmp_path):
    model = RiverEstimator(river_classifier(), features=FEATURES, label="label").fit(stream(500))
    loaded = RiverModel.load(model.save(tmp_path / "river"))
    table = stream(50, seed=7)
    pd.testing.assert_frame_equal(model.transform(table), loaded.transform(table))


def test_river_needs_the_label_to_learn():
    model = RiverModel(river_classifier(), features=FEATURES, label="label")
    with pytest.raises(InvalidArgumentError, match="without its label column 'label'"):
        model.learn_one({name: 0.0 for name in FEATURES})
