"""Where a query-side model's files are: a local folder, or the Hugging Face cache. Never a download:
a query must answer in seconds, so weights are fetched ahead (`hf download NAME`) or given as a folder."""

from __future__ import annotations

import threading
from pathlib import Path

from evr.indexer.encoders import ModelUnavailableError


class LazyModel:
    """A model built on first use (`_build`), once, whatever the number of threads asking."""

    def __init__(self):
        self._model = None
        self._lock = threading.Lock()

    def load(self):
        with self._lock:
            if self._model is None:
                self._model = self._build()
        return self._model

    def _build(self):
        raise NotImplementedError


class LocalTextEncoder(LazyModel):
    """A text encoder of the table (search/multilingual/table.py), loaded from `folder` or the
    Hugging Face cache on first use."""

    def __init__(self, name: str, folder: str, device: str):
        super().__init__()
        self.name = name
        self.folder = folder
        self.device = device

    def model_folder(self) -> Path:
        return model_folder(self.name, self.folder, "query.text_encoder_path")


def model_folder(name: str, folder: str = "", setting: str = "") -> Path:
    """The folder holding `name`'s files: `folder` when given, else its snapshot in the Hugging Face
    cache. ModelUnavailableError says how to get it."""
    if folder:
        path = Path(folder).expanduser()
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise ModelUnavailableError(f"{setting or 'the model folder'} {path} holds no model (no config.json)")
        return path
    from huggingface_hub import constants, snapshot_download

    try:
        path = Path(snapshot_download(name, local_files_only=True))
    except Exception:  # LocalEntryNotFoundError, or a cache entry without a snapshot
        path = None
    if path is None or not any(path.glob("*.json")):
        raise ModelUnavailableError(
            f"{name} is not downloaded (looked in the Hugging Face cache, {constants.HF_HUB_CACHE}): "
            f"run `hf download {name}` once with network access"
            + (f", or put its files in a folder and set {setting} to it" if setting else "")
        )
    return path


def weights_file(folder: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise ModelUnavailableError(f"{folder} has no model.safetensors or pytorch_model.bin")


def load_state_dict(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
