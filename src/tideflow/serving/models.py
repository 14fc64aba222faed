"""Save and load models outside jobs: the same implementation as ``ctx.log_model`` / ``load_model``.

    from tideflow.serving.models import save_model, load_model

    v = save_model(client, clf, model="ctr", metrics={"auc": 0.71})
    clf = load_model(client, "ctr", status="DEPLOYED")

See :mod:`tideflow.client.model_artifact` (what is stored, flavours, lineage, caching).
"""

from tideflow.client.flavour import Flavour, infer_flavour, register_flavour
from tideflow.client.model_artifact import LoadedModel, ModelLoader, load_model, save_model

__all__ = [
    "Flavour",
    "LoadedModel",
    "ModelLoader",
    "infer_flavour",
    "load_model",
    "register_flavour",
    "save_model",
]
