"""Model Center: registered models, versions, their status lifecycle and aliases."""

from tideflow.modelcenter.lifecycle import SENDER
from tideflow.modelcenter.service import ModelCenter

__all__ = ["SENDER", "ModelCenter"]
