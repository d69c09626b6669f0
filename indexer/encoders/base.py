"""What every model shares: the device it runs on and the error for missing weights."""

from __future__ import annotations

from ..settings import DEVICES


class ModelUnavailableError(Exception):
    """A model's weights cannot be loaded (offline, missing file). The message says how to fix it."""


def resolve_device(requested: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; an explicit 'cuda' without one is an error."""
    import torch

    requested = requested.lower()
    if requested not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {requested!r}")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailableError('device = "cuda" but torch sees no CUDA GPU; use "auto" or "cpu"')
    return requested
