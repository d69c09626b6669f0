"""Model encoders shared by indexing and search: CLIP (images and text, one embedding space),
the device choice and the error for missing weights. Importing this loads no model and none of
the index pipeline, so `search/` uses it freely."""

from .base import ModelUnavailableError, resolve_device
from .clip import ClipEncoder, weights_status

__all__ = ["ClipEncoder", "ModelUnavailableError", "resolve_device", "weights_status"]
