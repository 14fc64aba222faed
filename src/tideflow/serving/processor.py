"""The predictor inside a job: :class:`PredictProcessor`, on the same hot-swapping holder.

    tide.predict(features, model="ctr", processor=PredictProcessor())

``open`` starts a :class:`~tideflow.serving.holder.ModelHolder` on the job's client (the
model is the node's ``model=`` unless given), ``close`` stops it. ``process`` scores its one
input:

- a batch table -- a list of records or a pandas DataFrame -- is scored at once and returned as
  a list of records;
- a stream -- any other iterable, of records or of micro-batches (lists of records) -- becomes
  a generator of scored records (or micro-batches), each micro-batch scored by one version;
  a swap between micro-batches takes effect on the next one.

Each output record is the input record plus ``score`` and ``model_version``. When no version is
deployed the processor waits for one (checking ``ctx.stopping``) rather than dropping data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from tideflow.errors import InvalidArgumentError
from tideflow.sdk.context import JobContext
from tideflow.sdk.processor import Processor
from tideflow.serving.holder import ModelHolder, Served
from tideflow.serving.scorer import Scorer, default_scorer, plain


class PredictProcessor(Processor):
    """Scores records with the DEPLOYED version of a model, swapped as versions are deployed.

    Args:
        model: The model; the node's ``model=`` when ``None``.
        scorer: ``scorer(model_object, records) -> scores``; the default scorer otherwise.
        features: Column order for models fitted on arrays.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        scorer: Scorer | None = None,
        features: Sequence[str] | None = None,
    ) -> None:
        self.model = model
        self.scorer = scorer
        self.features = list(features) if features is not None else None
        self._holder: ModelHolder | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_holder": None}  # a running holder never travels

    def open(self, ctx: JobContext) -> None:
        """Start following the model's deployed version."""
        model = self.model or ctx.model
        if not model:
            raise InvalidArgumentError(
                "PredictProcessor needs a model: PredictProcessor('ctr') or tide.predict(..., "
                "model='ctr')",
                field="model",
            )
        self._holder = ModelHolder(ctx.client, model).start()

    def close(self, ctx: JobContext) -> None:
        """Stop following."""
        if self._holder is not None:
            self._holder.stop()
            self._holder = None

    def process(self, ctx: JobContext, inputs: Sequence[Any]) -> Any:
        """Score the one input (see the module docstring)."""
        (source,) = inputs
        if _is_frame(source):
            return self.score(ctx, source.to_dict("records"))
        if isinstance(source, list | tuple) and all(isinstance(r, Mapping) for r in source):
            return self.score(ctx, list(source))
        return self._stream(ctx, source)

    def _stream(self, ctx: JobContext, source: Iterable[Any]) -> Iterator[Any]:
        for item in source:
            if isinstance(item, Mapping):
                yield from self.score(ctx, [item])
            elif _is_frame(item):
                yield self.score(ctx, item.to_dict("records"))
            else:
                yield self.score(ctx, list(item))

    def score(self, ctx: JobContext, records: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Score ``records`` with one version; each comes back with ``score``, ``model_version``."""
        served = self._served(ctx)
        if self.scorer is not None:
            scores = [plain(s) for s in self.scorer(served.model, records)]
        else:
            scores = default_scorer(served.model, records, features=self.features)
        version = served.version.version
        return [
            {**r, "score": s, "model_version": version}
            for r, s in zip(records, scores, strict=True)
        ]

    def _served(self, ctx: JobContext) -> Served:
        holder = self._holder
        if holder is None:
            raise InvalidArgumentError("PredictProcessor.open was not called", field="processor")
        while True:
            served = holder.current
            if served is not None:
                return served
            if getattr(ctx, "stopping", False):
                holder.require()  # raises: nothing deployed, and the job is stopping
            ctx.logger.info("waiting for a deployed version of model %r", holder.model)
            holder.wait_for(lambda s: s is not None, timeout=1.0)


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_dict")
