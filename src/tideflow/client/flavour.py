"""Model flavours: how a model object becomes bytes in the blob store, and back.

A flavour is a name recorded on the model version (``ModelVersion.flavour``) and a pair of
functions. The blob holds the flavour's plain serialisation -- a ``joblib`` file for
scikit-learn, a (cloud)pickle otherwise -- with no Tideflow wrapper, so a blob can also be read
without Tideflow (``joblib.load(fsspec.open(uri))``).

=========== ================================================== ===========================
flavour     objects                                            format
=========== ================================================== ===========================
``sklearn`` anything whose class (or a base) is from ``sklearn`` ``joblib.dump``
``river``   anything whose class (or a base) is from ``river``   cloudpickle
``mlflow``  an imported MLflow pyfunc model                     the model directory, zipped
``tideflow`` ``tideflow.ml`` pipelines and models                the stage's save directory
                                                               (manifest + parts), zipped
``pickle``  anything else (the default)                        cloudpickle, Tideflow's own
                                                               classes by value
=========== ================================================== ===========================

The flavour is inferred from the object's class and its bases when none is given. Libraries
(or users) add flavours with :func:`register_flavour`; a registered flavour replaces the
built-in one of the same name. Loading unpickles: only load models from a blob store you trust
(the blob's SHA-256 is verified, so the bytes are the ones that were saved).
"""

from __future__ import annotations

import io
import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tideflow.errors import InvalidArgumentError


@dataclass(frozen=True)
class Flavour:
    """A named way to serialise models.

    Attributes:
        name: What is recorded on the model version.
        dump: Object -> bytes.
        load: Bytes -> object.
        modules: Top-level packages whose classes (or subclasses of them) infer this flavour.
    """

    name: str
    dump: Callable[[Any], bytes]
    load: Callable[[bytes], Any]
    modules: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()
    """Distributions whose versions are recorded with a saved artefact (see :func:`library_versions`)."""


def library_versions(flavour: Flavour) -> dict[str, str]:
    """The versions of Python and of ``flavour``'s libraries installed here (missing ones left out).

    Recorded with every saved version (tag ``tideflow.libraries``) and pinned in exported
    environments, so a reader knows what the artefact needs to load.
    """
    import platform
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name in flavour.libraries:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _cloudpickle_dump(obj: Any) -> bytes:
    import cloudpickle

    data: bytes = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return data


_by_value = threading.Lock()


def _portable_dump(obj: Any) -> bytes:
    """The ``pickle`` flavour: cloudpickle, with Tideflow's own classes and functions by value.

    An object of a class defined in ``tideflow`` (the ad_ctr example's ``CtrModel`` and the
    feature function it calls) would otherwise be pickled by reference and need Tideflow to
    load; by value, the artefact loads with ``pickle`` and the model's own libraries alone.
    Classes from other packages (scikit-learn, the user's) stay by reference. The registration
    is process-wide while the dump runs, hence the lock.
    """
    import cloudpickle

    import tideflow

    with _by_value:
        registered = "tideflow" in cloudpickle.list_registry_pickle_by_value()
        if not registered:
            cloudpickle.register_pickle_by_value(tideflow)
        try:
            data: bytes = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            if not registered:
                cloudpickle.unregister_pickle_by_value(tideflow)
    return data


def _pickle_load(data: bytes) -> Any:
    # cloudpickle output is read by the standard unpickler.
    return pickle.loads(data)


def _stage_dump(obj: Any) -> bytes:
    """A ``tideflow.ml`` stage's own save format (a directory), zipped."""
    import tempfile
    import zipfile
    from pathlib import Path

    if not hasattr(obj, "save"):  # some other tideflow.ml object: pickle it
        return _cloudpickle_dump(obj)
    with tempfile.TemporaryDirectory(prefix="tideflow-stage-") as tmp:
        root = Path(obj.save(Path(tmp) / "stage"))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(p for p in root.rglob("*") if p.is_file()):
                archive.write(file, file.relative_to(root).as_posix())
        return buffer.getvalue()


def _stage_load(data: bytes) -> Any:
    if data[:2] != b"PK":  # pickled (not a stage)
        return _pickle_load(data)
    import tempfile
    import zipfile
    from pathlib import Path

    from tideflow.ml.persist import load_stage
    from tideflow.ml.stage import Stage

    with tempfile.TemporaryDirectory(prefix="tideflow-stage-") as tmp:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():  # refuse paths that leave the directory
                if name.startswith("/") or ".." in Path(name).parts:
                    raise InvalidArgumentError(f"unsafe path {name!r} in a saved stage")
            archive.extractall(tmp)
        return load_stage(Path(tmp), Stage)


def _joblib_dump(obj: Any) -> bytes:
    try:
        import joblib
    except ImportError:  # joblib comes with scikit-learn; without it, pickle is as good
        return _cloudpickle_dump(obj)
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def _joblib_load(data: bytes) -> Any:
    try:
        import joblib  # it also reads plain pickles (written where joblib was missing)
    except ImportError:
        return _pickle_load(data)

    return joblib.load(io.BytesIO(data))


def _mlflow_dump(obj: Any) -> bytes:
    from tideflow.client.model_import import dump_mlflow

    return dump_mlflow(obj)


def _mlflow_load(data: bytes) -> Any:
    from tideflow.client.model_import import MlflowPyfunc

    return MlflowPyfunc(data)


PICKLE = "pickle"
_flavours: dict[str, Flavour] = {}
_lock = threading.Lock()


def register_flavour(flavour: Flavour) -> None:
    """Add ``flavour`` (replacing one of the same name)."""
    with _lock:
        _flavours[flavour.name] = flavour


def get_flavour(name: str) -> Flavour:
    """The flavour called ``name``.

    Raises:
        InvalidArgumentError: No such flavour.
    """
    with _lock:
        found = _flavours.get(name)
        known = sorted(_flavours)
    if found is None:
        raise InvalidArgumentError(
            f"unknown model flavour {name!r}; known flavours: {', '.join(known)}",
            field="flavour",
        )
    return found


def infer_flavour(obj: Any) -> str:
    """The flavour of ``obj``: the first flavour owning its class or one of its bases.

    ``tideflow.ml`` objects are ``tideflow``, scikit-learn ``sklearn``, River ``river``; anything
    else ``pickle``.
    """
    with _lock:
        owners = [(f.name, f.modules) for f in _flavours.values() if f.modules]
    for cls in type(obj).__mro__:
        module = cls.__module__ or ""
        for name, modules in owners:
            if any(module == m or module.startswith(m + ".") for m in modules):
                return name
    return PICKLE


for _builtin in (
    # Most specific first: tideflow.ml pipelines may wrap scikit-learn or River objects.
    Flavour("tideflow", _stage_dump, _stage_load, ("tideflow.ml",), ("tideflow", "numpy")),
    Flavour(
        "sklearn", _joblib_dump, _joblib_load, ("sklearn",), ("scikit-learn", "joblib", "numpy")
    ),
    Flavour("river", _cloudpickle_dump, _pickle_load, ("river",), ("river", "cloudpickle")),
    # Imported MLflow pyfunc models: the zipped model directory (tideflow.client.model_import).
    Flavour(
        "mlflow",
        _mlflow_dump,
        _mlflow_load,
        ("tideflow.client.model_import",),
        ("mlflow", "mlflow-skinny"),
    ),
    Flavour(PICKLE, _portable_dump, _pickle_load, (), ("cloudpickle",)),
):
    register_flavour(_builtin)
