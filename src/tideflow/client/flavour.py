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
``tideflow`` ``tideflow.ml`` pipelines and models                cloudpickle (until
                                                               ``tideflow.ml`` registers its
                                                               own format)
``pickle``  anything else (the default)                        cloudpickle
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


def _cloudpickle_dump(obj: Any) -> bytes:
    import cloudpickle

    data: bytes = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return data


def _pickle_load(data: bytes) -> Any:
    # cloudpickle output is read by the standard unpickler.
    return pickle.loads(data)


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
    Flavour("tideflow", _cloudpickle_dump, _pickle_load, ("tideflow.ml",)),
    Flavour("sklearn", _joblib_dump, _joblib_load, ("sklearn",)),
    Flavour("river", _cloudpickle_dump, _pickle_load, ("river",)),
    Flavour(PICKLE, _cloudpickle_dump, _pickle_load),
):
    register_flavour(_builtin)
