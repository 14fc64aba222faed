"""Import a model into Tideflow: an MLflow model directory or a plain scikit-learn/joblib file.

``client.models.import_model(path, name=...)`` and ``tideflow model import PATH --name NAME``
register what they read as the next GENERATED version of ``name`` -- so the project's
validate/push rules (``on_model_version(..., GENERATED)``) pick it up like any trained
version -- tagged ``tideflow.origin=imported`` and ``tideflow.imported_from=<path>``: it has no
job execution, and those tags are its lineage.

- **An MLflow directory with the ``sklearn`` flavour** becomes a ``sklearn`` version: the
  estimator is loaded with MLflow once, at import, and stored as Tideflow stores any
  scikit-learn model, so serving it needs scikit-learn alone.
- **Any other MLflow directory** (a ``python_function`` model) becomes an ``mlflow`` version:
  the directory itself, zipped, is the artefact, and serving it loads it with
  ``mlflow.pyfunc.load_model`` (:class:`MlflowPyfunc`): that needs ``tideflow[mlflow]`` and the
  model's own libraries where it is served.
- **A file** is read with ``joblib.load`` (which also reads plain pickles); its flavour is
  inferred from its class as ``log_model`` does. Loading unpickles: import only files you trust.

The MLflow signature's columns become the version's signature (:mod:`tideflow.domain.signature`)
when their types are the four it knows, so the predictor checks requests against them.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import warnings
import weakref
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tideflow.client.local import Client
from tideflow.client.model_artifact import save_model
from tideflow.domain.model import ModelVersion
from tideflow.domain.signature import (
    IMPORTED_FROM_TAG,
    ORIGIN_TAG,
    SIGNATURE_TAG,
    FieldSpec,
    FieldType,
    Signature,
)
from tideflow.errors import FailedPreconditionError, InvalidArgumentError

MAX_ARCHIVE_BYTES = 2 * 1024**3
"""The largest MLflow directory stored as one artefact."""
_MLFLOW_TYPES = {
    "double": FieldType.DOUBLE,
    "float": FieldType.DOUBLE,
    "long": FieldType.LONG,
    "integer": FieldType.LONG,
    "boolean": FieldType.BOOLEAN,
    "string": FieldType.STRING,
}


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Silence warnings raised from MLflow's own modules (about MLflow, not about the model).

    MLflow 3 warns while importing ``mlflow.pyfunc`` (its type hints) and while saving an input
    example (a pandas deprecation in its own code); under ``-W error`` those would fail an
    export that is otherwise right. Its advice about a pyfunc model's type hints is a
    ``UserWarning`` raised while the model's class is rebuilt (attributed to the unpickler, not
    to MLflow), so MLflow's calls ignore user warnings too.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"mlflow(\..*)?")
        warnings.filterwarnings("ignore", category=UserWarning)
        yield


def import_mlflow() -> Any:
    """The ``mlflow`` package with its pyfunc, sklearn and models modules imported.

    MLflow 3 warns (a ``UserWarning`` about its own type hints) while importing ``mlflow.pyfunc``;
    that says nothing about the user's model, so it is silenced here.

    Raises:
        FailedPreconditionError: MLflow is not installed (names the extra to install).
    """
    try:
        with quiet_mlflow():
            import mlflow
            import mlflow.models
            import mlflow.pyfunc
            import mlflow.sklearn
    except ImportError as e:
        raise FailedPreconditionError(
            f"this needs tideflow[mlflow] ({e.name} is not installed): "
            "pip install 'tideflow[mlflow]'"
        ) from e
    return mlflow


class MlflowPyfunc:
    """An imported MLflow ``python_function`` model, the object of an ``mlflow`` version.

    Callable as the predictor calls plain models (``model(records) -> scores``): the records
    become a DataFrame for ``PyFuncModel.predict``. It is built from the zipped directory,
    unpacked into a temporary directory removed with the object.
    """

    def __init__(self, archive: bytes) -> None:
        mlflow = import_mlflow()
        self.archive = archive
        directory = tempfile.mkdtemp(prefix="tideflow-mlflow-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, directory, True)
        unzip_model(archive, Path(directory))
        with quiet_mlflow():
            self.pyfunc = mlflow.pyfunc.load_model(directory)

    def __call__(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One score per record."""
        import pandas as pd

        with quiet_mlflow():
            output = self.pyfunc.predict(pd.DataFrame(list(records)))
        if hasattr(output, "to_numpy"):  # a Series or a one-column DataFrame
            output = output.to_numpy()
            if output.ndim == 2 and output.shape[1] == 1:
                output = output[:, 0]
        values = output.tolist() if hasattr(output, "tolist") else list(output)
        return list(values)


def _zip(directory: Path) -> bytes:
    buffer = io.BytesIO()
    size = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in directory.rglob("*") if p.is_file()):
            size += file.stat().st_size
            if size > MAX_ARCHIVE_BYTES:
                raise InvalidArgumentError(
                    f"{directory} is over {MAX_ARCHIVE_BYTES} bytes", field="path"
                )
            archive.write(file, file.relative_to(directory).as_posix())
    return buffer.getvalue()


def unzip_model(data: bytes, directory: Path) -> None:
    """Unpack an ``mlflow`` version's archive into ``directory``, refusing paths that leave it."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():  # refuse paths that leave the directory
            if name.startswith("/") or ".." in Path(name).parts:
                raise InvalidArgumentError(f"unsafe path {name!r} in an MLflow model archive")
        archive.extractall(directory)


def dump_mlflow(obj: Any) -> bytes:
    """The ``mlflow`` flavour's dump: the zipped directory the object was built from."""
    if not isinstance(obj, MlflowPyfunc):
        raise InvalidArgumentError(
            f"the mlflow flavour stores imported MLflow models, not a {type(obj).__name__}",
            field="flavour",
        )
    return obj.archive


def _signature(meta: Mapping[str, Any]) -> Signature | None:
    """The MLmodel's input signature in Tideflow's terms, if every column has a known type."""
    inputs = (meta.get("signature") or {}).get("inputs")
    if not inputs:
        return None
    columns = json.loads(inputs) if isinstance(inputs, str) else inputs
    fields = []
    for column in columns:
        kind = _MLFLOW_TYPES.get(str(column.get("type")))
        if column.get("name") is None or kind is None:
            return None  # tensors or types the predictor cannot check: no signature
        required = bool(column.get("required", not column.get("optional", False)))
        fields.append(FieldSpec(str(column["name"]), kind, required))
    return Signature(tuple(fields))


def import_model(
    client: Client, path: str | Path, *, name: str, description: str = ""
) -> ModelVersion:
    """Register ``path`` as the next GENERATED version of ``name`` (module docstring).

    Raises:
        InvalidArgumentError: ``path`` does not exist, is a directory without ``MLmodel``, or
            a file that is not a joblib/pickle model.
        FailedPreconditionError: An MLflow directory without tideflow[mlflow] installed.
    """
    source = Path(path).expanduser().resolve()
    tags = {ORIGIN_TAG: "imported", IMPORTED_FROM_TAG: str(source)}
    if not source.exists():
        raise InvalidArgumentError(f"{source} does not exist", field="path")
    if source.is_dir():
        return _import_mlflow(client, source, name=name, tags=tags, description=description)
    try:
        import joblib

        obj = joblib.load(source)
    except ImportError as e:
        raise FailedPreconditionError("importing a model file needs tideflow[ml]") from e
    except Exception as e:  # whatever the file holds, the caller learns it is not a model
        raise InvalidArgumentError(
            f"{source} is not a joblib or pickle file: {type(e).__name__}: {e}", field="path"
        ) from e
    return save_model(
        client,
        obj,
        model=name,
        tags=tags,
        description=description or f"imported from {source.name}",
    )


def _import_mlflow(
    client: Client, source: Path, *, name: str, tags: dict[str, str], description: str
) -> ModelVersion:
    manifest = source / "MLmodel"
    if not manifest.is_file():
        raise InvalidArgumentError(
            f"{source} is a directory without an MLmodel file: not an MLflow model", field="path"
        )
    import yaml

    try:
        meta = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
        flavors = meta.get("flavors") or {}
        signature = _signature(meta)
    except (yaml.YAMLError, ValueError, AttributeError, TypeError) as e:
        raise InvalidArgumentError(
            f"{manifest} is not a readable MLmodel: {e}", field="path"
        ) from e
    if signature is not None:
        tags[SIGNATURE_TAG] = signature.to_json()
    description = description or f"imported from the MLflow model {source.name}"
    if "sklearn" in flavors:
        mlflow = import_mlflow()
        try:
            with quiet_mlflow():
                estimator = mlflow.sklearn.load_model(str(source))
        except ImportError as e:  # e.g. a skops-serialised model without skops installed
            raise FailedPreconditionError(
                f"{source} needs {e.name} to load ({e}); install it and import again"
            ) from e
        return save_model(
            client, estimator, model=name, flavour="sklearn", tags=tags, description=description
        )
    if "python_function" not in flavors:
        raise InvalidArgumentError(
            f"{source} has no python_function or sklearn flavour (it has "
            f"{', '.join(sorted(flavors)) or 'none'}): Tideflow cannot serve it",
            field="path",
        )
    loaded = MlflowPyfunc(_zip(source))  # loads once here: a broken model is refused now
    return save_model(
        client, loaded, model=name, flavour="mlflow", tags=tags, description=description
    )
