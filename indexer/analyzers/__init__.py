"""Frame analyzers: each turns a batch of keyframe images into one kind of stored signal."""
from .base import ModelUnavailableError, resolve_device
from .clip import ClipEncoder

__all__ = ["ClipEncoder", "ModelUnavailableError", "resolve_device"]
