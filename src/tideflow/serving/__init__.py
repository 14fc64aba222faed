"""Online serving: models as artifacts and the hot-swapping online predictor.

- :mod:`tideflow.serving.models`: ``save_model`` / ``load_model`` outside jobs (the
  implementation behind ``ctx.log_model`` / ``ctx.load_model``).
- :class:`~tideflow.serving.holder.ModelHolder`: the DEPLOYED version of a model, swapped
  atomically on ``MODEL_DEPLOYED``.
- :class:`~tideflow.serving.predictor.Predictor`: micro-batched scoring on a holder, every
  prediction written to a :class:`~tideflow.serving.sink.PredictionSink`.
- :mod:`tideflow.serving.http`: the FastAPI app and server of ``tideflow serve``.
- :class:`~tideflow.serving.processor.PredictProcessor`: the same model holder inside a
  streaming predict job.

See docs/serving.md.
"""
