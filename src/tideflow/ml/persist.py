"""Saving stages: a directory with ``manifest.json`` and the parts it names.

Format (``format_version`` 1)::

    <dir>/
      manifest.json     {"format": "tideflow.ml.stage", "format_version": 1,
                         "class": "tideflow.ml.pipeline.PipelineModel",
                         "params": {...}, "parts": {"role": "relative/path", ...},
                         "tideflow_version": "...", "python": "3.11.7",
                         "libraries": {"numpy": "...", "scikit-learn": "...", ...},
                         "saved_at": "<UTC ISO time>"}
      stage.pkl         the default part: the stage pickled with cloudpickle
      estimator.joblib  (scikit-learn adapters) the wrapped estimator, with joblib
      stages/0/ ...     (pipelines) each stage saved the same way, recursively

``class`` is the import path of the stage's class; loading imports it, checks it is a
:class:`~tideflow.ml.stage.Stage`, and lets it rebuild itself from its parts
(``Stage.load_parts``). ``params`` are informational (what a person or the web UI shows), the
parts are the truth. ``libraries`` records the versions the parts were written with: a pickle
read by another scikit-learn or River version may not work, and this is where to look.

Parts are pickles: load only directories you trust. The manifest is written last, so a
directory without one is an unfinished save and is refused.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tideflow._version import __version__
from tideflow.errors import InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from tideflow.ml.stage import Stage

FORMAT = "tideflow.ml.stage"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

# Distribution name by import name, for the versions recorded in the manifest.
_LIBRARIES = {
    "numpy": "numpy",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "sklearn": "scikit-learn",
    "river": "river",
    "scipy": "scipy",
    "cloudpickle": "cloudpickle",
    "joblib": "joblib",
}

StageT = TypeVar("StageT", bound="Stage")


def save_stage(stage: Stage, path: str | os.PathLike[str]) -> Path:
    """Save ``stage`` into directory ``path`` (created; refused if it holds anything).

    Raises:
        InvalidArgumentError: ``path`` exists and is not an empty directory.
    """
    directory = Path(path)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InvalidArgumentError(
            f"cannot save a stage into {str(directory)!r}: it exists and is not an empty "
            "directory (choose a new path)",
            field="path",
        )
    directory.mkdir(parents=True, exist_ok=True)
    parts = stage.save_parts(directory)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": f"{type(stage).__module__}.{type(stage).__qualname__}",
        "params": stage.params(),
        "parts": parts,
        "tideflow_version": __version__,
        "python": platform.python_version(),
        "libraries": _library_versions(),
        "saved_at": datetime.now(UTC).isoformat(),
    }
    # Written last: its presence says the parts are complete.
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return directory


def load_stage(path: str | os.PathLike[str], expected: type[StageT]) -> StageT:
    """Load the stage saved in directory ``path``; it must be an instance of ``expected``.

    Raises:
        NotFoundError: No manifest in ``path``.
        InvalidArgumentError: Not a Tideflow stage manifest, a newer format version, a class
            that is not a Stage, or a stage of another type than ``expected``.
    """
    directory = Path(path)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise NotFoundError(
            "saved stage",
            str(directory),
            message=f"no {MANIFEST} in {str(directory)!r}: not a saved stage (or an unfinished save)",
        )
    manifest = json.loads(manifest_path.read_text())
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidArgumentError(f"{str(manifest_path)!r} is not a Tideflow stage manifest")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise InvalidArgumentError(
            f"{str(manifest_path)!r} has format version {manifest['format_version']}; this "
            f"Tideflow reads up to {FORMAT_VERSION} (upgrade Tideflow)"
        )
    stage_class = _import_class(str(manifest.get("class", "")))
    stage = stage_class.load_parts(directory, dict(manifest.get("parts", {})))
    if not isinstance(stage, expected):
        raise InvalidArgumentError(
            f"{str(directory)!r} holds a {type(stage).__name__}, not a {expected.__name__}"
        )
    return stage


def dump_pickle(obj: object, path: Path) -> None:
    """Pickle ``obj`` into ``path`` with cloudpickle (it handles lambdas and local classes)."""
    import cloudpickle

    with path.open("wb") as file:
        cloudpickle.dump(obj, file)


def load_pickle(path: Path) -> Any:
    """Unpickle ``path`` (trusted input only)."""
    import pickle

    with path.open("rb") as file:
        return pickle.load(file)  # trusted input only (module docstring)


def _import_class(path: str) -> type[Stage]:
    from tideflow.ml.stage import Stage

    module_name, _, name = path.rpartition(".")
    try:
        target: Any = importlib.import_module(module_name)
        for attribute in name.split("."):
            target = getattr(target, attribute)
    except (ImportError, AttributeError, ValueError) as e:
        raise InvalidArgumentError(f"cannot import stage class {path!r}: {e}") from e
    if not (isinstance(target, type) and issubclass(target, Stage)):
        raise InvalidArgumentError(f"{path!r} is not a tideflow.ml Stage class")
    return target


def _library_versions() -> dict[str, str]:
    versions = {}
    for module, distribution in _LIBRARIES.items():
        if module in sys.modules:
            try:
                versions[distribution] = importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions
