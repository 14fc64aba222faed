"""Models as artifacts: save a model object as a new version, load a version back.

One implementation, used by ``ctx.log_model`` / ``ctx.load_model`` in jobs and by
``tideflow.serving.models.save_model`` / ``load_model`` elsewhere.

:func:`save_model` serialises the object by its flavour (:mod:`tideflow.client.flavour`), puts
the bytes in the blob store (kind ``models``, content-addressed), registers the next version of
the model as GENERATED -- creating the registered model on first use -- with the blob's URI,
the flavour, metrics, params and the job execution, and then records the job execution's
lineage: ``inputs`` (dataset versions with stream offset ranges) -> the new model version.
That is three calls to the server: the blob upload, the version, the lineage. The version is
the commit point: if the lineage call fails the version still exists (and the error is raised);
an orphaned blob is harmless, being content-addressed.

:class:`ModelLoader` resolves a selector (``version=``, ``status=``, ``alias=``) to one version
and caches deserialised models by ``(model, version)``: a version's blob never changes, so a
cached object stays right for as long as the version exists. The cache is small (LRU) because
models can be large.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tideflow.client.flavour import get_flavour, infer_flavour, library_versions
from tideflow.client.local import Client
from tideflow.domain.lineage import LineageRef
from tideflow.domain.model import ModelVersion
from tideflow.domain.signature import LIBRARIES_TAG, SIGNATURE_TAG, infer_signature
from tideflow.domain.status import ModelStatus
from tideflow.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError

MODEL_BLOBS = "models"
"""The blob kind models are stored as."""


@dataclass(frozen=True)
class LoadedModel:
    """A deserialised model and the version it is.

    Attributes:
        version: The model version (name, number, status when loaded, URI, flavour, metrics).
        model: The object, as it was saved.
    """

    version: ModelVersion
    model: Any


def save_model(
    client: Client,
    obj: Any,
    *,
    model: str,
    flavour: str | None = None,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    description: str = "",
    job_execution_id: int | None = None,
    inputs: Sequence[LineageRef | str] = (),
    input_example: Any = None,
) -> ModelVersion:
    """Save ``obj`` as the next GENERATED version of ``model`` (see the module docstring).

    The version's tags also record the library versions it was saved with
    (``tideflow.libraries``) and, given ``input_example``, its signature
    (``tideflow.signature``, :mod:`tideflow.domain.signature`), which the predictor checks.

    Args:
        client: The project's client.
        obj: The model object.
        model: The registered model's name (created if it does not exist).
        flavour: ``sklearn``, ``river``, ``tideflow``, ``pickle`` ...; inferred when ``None``.
        metrics: Numbers measured when it was made.
        params: The parameters it was trained with (JSON-serialisable).
        tags: String labels of the version.
        description: Free text.
        job_execution_id: The job execution that produced it; with it, lineage is recorded.
        inputs: What it was trained on: ``LineageRef.dataset(name, version, start_offset=,
            end_offset=)`` or dataset names. Needs ``job_execution_id``.
        input_example: A record, a list of records or a DataFrame the model reads: the
            signature (field names, types, which are required) is inferred from it.

    Returns:
        The new version (status GENERATED).

    Raises:
        InvalidArgumentError: Unknown flavour; ``inputs`` without a job execution; bad fields.
        NotFoundError: The job execution or an input dataset does not exist.
    """
    inputs = list(inputs)
    if inputs and job_execution_id is None:
        raise InvalidArgumentError(
            "inputs= are recorded as the lineage of a job execution: give job_execution_id= "
            "too (ctx.log_model does)",
            field="inputs",
        )
    chosen = get_flavour(flavour) if flavour is not None else get_flavour(infer_flavour(obj))
    all_tags = dict(tags or {})
    all_tags[LIBRARIES_TAG] = json.dumps(library_versions(chosen), sort_keys=True)
    if input_example is not None:  # before the upload: a bad example writes nothing
        all_tags[SIGNATURE_TAG] = infer_signature(input_example).to_json()
    data = chosen.dump(obj)
    uri = client.blobs.put(data, kind=MODEL_BLOBS)

    def create() -> ModelVersion:
        return client.models.create_version(
            model,
            uri=uri,
            flavour=chosen.name,
            metrics=metrics,
            params=params,
            tags=all_tags,
            description=description,
            job_execution_id=job_execution_id,
        )

    try:
        version = create()
    except NotFoundError as error:
        if error.entity != "model":
            raise
        with contextlib.suppress(AlreadyExistsError):  # created meanwhile by another writer
            client.models.create(model)
        version = create()
    if job_execution_id is not None:
        client.lineage.record(
            job_execution_id,
            inputs=inputs,
            outputs=[LineageRef.model_version(model, version.version)],
        )
    return version


class ModelLoader:
    """Loads model versions through a client, with an LRU cache by ``(model, version)``.

    Args:
        client: The project's client.
        capacity: How many deserialised models to keep.
    """

    def __init__(self, client: Client, *, capacity: int = 4) -> None:
        self._client = client
        self._capacity = max(0, capacity)
        self._cache: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._lock = threading.Lock()

    def load(
        self,
        model: str,
        *,
        version: int | None = None,
        status: ModelStatus | str | None = None,
        alias: str | None = None,
    ) -> LoadedModel:
        """The version chosen by exactly one selector (none: the DEPLOYED one), deserialised.

        Raises:
            NotFoundError: No such model or version; the blob is missing.
            InvalidArgumentError: Several selectors; a version without a blob URI.
            FailedPreconditionError: The blob was changed after it was saved.
        """
        if version is None and status is None and alias is None:
            status = ModelStatus.DEPLOYED
        chosen = self._client.models.get_version(model, version=version, status=status, alias=alias)
        return self.load_version(chosen)

    def load_version(self, version: ModelVersion) -> LoadedModel:
        """Deserialise ``version`` (from the cache when it was loaded before)."""
        key = (version.model, version.version)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return LoadedModel(version, self._cache[key])
        if not version.uri:
            raise InvalidArgumentError(
                f"version {version.version} of model {version.model!r} has no artefact URI "
                "(it was registered without one, not saved with log_model)",
                field="uri",
            )
        obj = get_flavour(version.flavour or "pickle").load(self._client.blobs.get(version.uri))
        with self._lock:
            if self._capacity:
                self._cache[key] = obj
                self._cache.move_to_end(key)
                while len(self._cache) > self._capacity:
                    self._cache.popitem(last=False)
        return LoadedModel(version, obj)


def load_model(
    client: Client,
    model: str,
    *,
    version: int | None = None,
    status: ModelStatus | str | None = None,
    alias: str | None = None,
) -> Any:
    """The object of one version of ``model`` (uncached; the DEPLOYED one by default)."""
    loader = ModelLoader(client, capacity=0)
    return loader.load(model, version=version, status=status, alias=alias).model
