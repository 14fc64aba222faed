"""Export a model version out of Tideflow: an MLflow model directory, or an ONNX file.

``client.models.export(name, version, format=..., out=...)`` and ``tideflow model export``.

- **mlflow** (needs ``tideflow[mlflow]``): an MLflow model directory -- ``MLmodel``, the
  environment files (``requirements.txt``, ``python_env.yaml``, ``conda.yaml``) pinned to the
  library versions the artefact was saved with, the signature and input example when the
  version has one, the model as ``data/model/model.pkl`` and the scoring code as
  ``code/tideflow_pyfunc.py`` (:mod:`tideflow.client.pyfunc_scorer`, which imports nothing
  from Tideflow). ``mlflow.pyfunc.load_model(DIR).predict(frame)`` gives what the Tideflow
  predictor gives for the same records. A scikit-learn model also gets MLflow's ``sklearn``
  flavour, so ``mlflow.sklearn.load_model(DIR)`` returns the estimator itself.
- **onnx** (needs ``tideflow[onnx]``): scikit-learn models and pipelines over numeric
  features, converted by skl2onnx with one ``float`` input of shape ``[N, features]`` (the
  columns in the model's order, written beside it in ``tideflow.json``). Before anything is
  kept, onnxruntime scores the version's input example (or seeded random rows) and the export
  is refused unless it agrees with the predictor within :data:`ONNX_TOLERANCE`.

What cannot be exported is refused with the reason (:class:`~tideflow.errors.FailedPreconditionError`):
a River model to ONNX, a model with string features to ONNX, a missing extra. Nothing is left
in ``out`` when an export fails.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tideflow.client.flavour import get_flavour
from tideflow.client.local import Client
from tideflow.client.pyfunc_scorer import score
from tideflow.domain.model import ModelVersion
from tideflow.domain.signature import LIBRARIES_TAG, FieldType, Signature
from tideflow.errors import FailedPreconditionError, InvalidArgumentError

FORMATS = ("mlflow", "onnx")
"""What ``export`` writes."""
ONNX_TOLERANCE = 1e-5
"""Largest difference allowed between onnxruntime's scores and the predictor's."""
LOADER_MODULE = "tideflow_pyfunc"


def _missing(extra: str, error: ImportError) -> FailedPreconditionError:
    return FailedPreconditionError(
        f"this export needs tideflow[{extra}] ({error.name} is not installed): "
        f"pip install 'tideflow[{extra}]'"
    )


def _fresh(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidArgumentError(f"{out} exists and is not an empty directory", field="out")


def export_model(client: Client, model: str, version: int, *, format: str, out: str | Path) -> Path:
    """Write version ``version`` of ``model`` to ``out`` as ``format`` (module docstring).

    Returns:
        The directory written.

    Raises:
        InvalidArgumentError: An unknown format; ``out`` is not an empty directory.
        NotFoundError: No such model or version.
        FailedPreconditionError: The version cannot be written in that format (the message
            says why), or the extra it needs is not installed.
    """
    if format not in FORMATS:
        raise InvalidArgumentError(
            f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}", field="format"
        )
    target = Path(out)
    _fresh(target)
    chosen = client.models.get_version(model, version=version)
    if not chosen.uri:
        raise FailedPreconditionError(
            f"version {version} of {model!r} has no artefact (registered without one)"
        )
    obj = get_flavour(chosen.flavour or "pickle").load(client.blobs.get(chosen.uri))
    if format == "onnx":
        _check_onnx(chosen, obj)
    # Written next to the target and moved into place: a failure leaves nothing in ``out``.
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tideflow-export-", dir=target.parent) as tmp:
        built = Path(tmp) / "model"
        if format == "mlflow":
            _write_mlflow(chosen, obj, built)
        else:
            _write_onnx(chosen, obj, built)
        if target.exists():
            target.rmdir()
        shutil.move(str(built), target)
    return target


def _libraries(version: ModelVersion) -> dict[str, str]:
    try:
        found = json.loads(version.tags.get(LIBRARIES_TAG, "{}"))
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _features(obj: Any, signature: Signature | None) -> list[str] | None:
    names = getattr(obj, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return signature.names if signature is not None else None


# -- MLflow ----------------------------------------------------------------------------------------


def _write_mlflow(version: ModelVersion, obj: Any, path: Path) -> None:
    if version.flavour == "mlflow":  # imported from MLflow: its own directory, as it came
        from tideflow.client.model_import import unzip_model

        path.mkdir()
        unzip_model(obj.archive, path)
        return
    from tideflow.client.model_import import import_mlflow, quiet_mlflow

    mlflow = import_mlflow()
    from mlflow.models import Model
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    signature = Signature.of(version.tags)
    libraries = _libraries(version)
    with tempfile.TemporaryDirectory(prefix="tideflow-mlflow-") as tmp:
        data = Path(tmp) / "model"  # MLflow copies it to DIR/data/model
        data.mkdir()
        # The pickle flavour's dump: Tideflow's own classes by value, so no tideflow is needed.
        (data / "model.pkl").write_bytes(get_flavour("pickle").dump(obj))
        meta = {
            "model": version.model,
            "version": version.version,
            "flavour": version.flavour,
            "features": _features(obj, signature),
            "libraries": libraries,
        }
        (data / "tideflow.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        code = Path(tmp) / f"{LOADER_MODULE}.py"
        shutil.copyfile(Path(__file__).with_name("pyfunc_scorer.py"), code)
        mlflow_model = Model()
        if version.flavour == "sklearn" and "scikit-learn" in libraries:
            mlflow_model.add_flavor(
                "sklearn",
                pickled_model="data/model/model.pkl",
                sklearn_version=libraries["scikit-learn"],
                serialization_format="cloudpickle",
                code=None,
            )
        requirements = [
            f"{name}=={number}" for name, number in sorted(libraries.items()) if name != "python"
        ]
        requirements = [r for r in requirements if not r.startswith("tideflow==")] + (
            ["tideflow"] if version.flavour == "tideflow" else []
        )
        mlflow_signature = None
        example = None
        if signature is not None:
            mlflow_signature = ModelSignature(
                inputs=Schema(
                    [ColSpec(f.type.value, f.name, required=f.required) for f in signature.inputs]
                )
            )
            if signature.example:
                import pandas as pd

                example = pd.DataFrame(list(signature.example), columns=signature.names)
        with quiet_mlflow():
            mlflow.pyfunc.save_model(
                str(path),
                loader_module=LOADER_MODULE,
                data_path=str(data),
                code_paths=[str(code)],
                mlflow_model=mlflow_model,
                pip_requirements=requirements or None,
                signature=mlflow_signature,
                input_example=example,
            )


# -- ONNX ------------------------------------------------------------------------------------------


def _check_onnx(version: ModelVersion, obj: Any) -> None:
    where = f"version {version.version} of {version.model!r}"
    if version.flavour != "sklearn":
        raise FailedPreconditionError(
            f"{where} is a {version.flavour or 'pickle'} model: ONNX export covers scikit-learn "
            "models and pipelines (skl2onnx); export it with --format mlflow instead"
        )
    if not hasattr(obj, "n_features_in_"):
        raise FailedPreconditionError(f"{where}: the scikit-learn model is not fitted")
    signature = Signature.of(version.tags)
    if signature is not None:
        text = [f.name for f in signature.inputs if f.type is FieldType.STRING]
        if text:
            raise FailedPreconditionError(
                f"{where} reads string features ({', '.join(text)}): ONNX export takes one "
                "numeric tensor; export it with --format mlflow instead"
            )


def _write_onnx(version: ModelVersion, obj: Any, path: Path) -> None:
    try:
        import numpy as np
        import onnxruntime
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as e:
        raise _missing("onnx", e) from e

    signature = Signature.of(version.tags)
    features = _features(obj, signature)
    width = int(obj.n_features_in_)
    try:
        onnx_model = to_onnx(
            obj,
            initial_types=[("input", FloatTensorType([None, width]))],
            options={"zipmap": False} if hasattr(obj, "predict_proba") else None,
            target_opset=None,
        )
    except Exception as e:  # skl2onnx names the estimator it has no converter for
        raise FailedPreconditionError(
            f"version {version.version} of {version.model!r} cannot be converted to ONNX: {e}"
        ) from e
    if signature is not None and signature.example and features is not None:
        rows = np.asarray([[r[c] for c in features] for r in signature.example], dtype=np.float32)
    else:
        rows = np.random.default_rng(0).normal(size=(8, width)).astype(np.float32)
    names = features or [f"f{i}" for i in range(width)]
    records = [dict(zip(names, map(float, r), strict=True)) for r in rows]
    expected = score(obj, records, names)  # what the predictor's default scorer gives
    session = onnxruntime.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    got = onnx_scores(session, rows)
    worst = max(
        (
            float(np.max(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))
            for a, b in zip(got, expected, strict=True)
        ),
        default=0.0,
    )
    if worst > ONNX_TOLERANCE:
        raise FailedPreconditionError(
            f"version {version.version} of {version.model!r}: onnxruntime's scores differ from "
            f"the predictor's by {worst:.3g} (> {ONNX_TOLERANCE}); not exported"
        )
    path.mkdir()
    (path / "model.onnx").write_bytes(onnx_model.SerializeToString())
    meta = {
        "model": version.model,
        "version": version.version,
        "input": "input",
        "features": names,
        "libraries": _libraries(version),
        "max_difference": worst,
    }
    (path / "tideflow.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def onnx_scores(session: Any, rows: Any) -> list[Any]:
    """Scores of ``rows`` (float32, ``[N, features]``) from an exported ONNX model's session.

    Shaped as the predictor's: the positive class's probability for a binary classifier.
    """
    outputs = session.run(None, {"input": rows})
    names = [o.name for o in session.get_outputs()]
    if "probabilities" in names:
        proba = outputs[names.index("probabilities")]
        if proba.shape[1] == 2:
            return [float(p) for p in proba[:, 1]]
        return [row.tolist() for row in proba]
    return [v.item() if hasattr(v, "item") and v.size == 1 else v.tolist() for v in outputs[0]]
