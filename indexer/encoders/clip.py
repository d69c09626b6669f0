"""CLIP image and text encoder (open_clip): lazy load, batched, L2-normalised float32 vectors.

Search uses the same object for text and image queries: one embedding space, one model id.
"""
from __future__ import annotations

import contextlib
import difflib
import functools
import importlib.util
import json
import logging
import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from storage.types import ModelInfo

from ..settings import ClipSettings
from .base import ModelUnavailableError, resolve_device

log = logging.getLogger(__name__)

RANDOM_WEIGHTS = "none"
_RANDOM_SEED = 0  # every process must build the same random model, or queries miss the index


@contextlib.contextmanager
def _library_logs_muted():
    """open_clip and huggingface_hub log every download retry and their own 'random weights'
    warning; unless debugging (root level INFO or lower) say it once, in our own words."""
    root = logging.getLogger()
    if root.level <= logging.INFO:
        yield
        return
    hub = logging.getLogger("huggingface_hub")
    saved = root.level, hub.level
    root.setLevel(logging.CRITICAL)
    hub.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.setLevel(saved[0])
        hub.setLevel(saved[1])


def _local_weights(pretrained: str) -> Path | None:
    """The file a clip.pretrained value names, when it names a file rather than a tag."""
    if os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):
        return Path(pretrained).expanduser()
    return None


@functools.cache
def model_config(name: str) -> dict | None:
    """open_clip's configuration of a model by name (embed_dim, vision_cfg, text_cfg), None for
    a name it does not know. Read from the JSON files open_clip ships (its registry is built from
    them), not through `import open_clip`, which imports torch: seconds that a search by a stored
    keyframe, `evr stats` or `evr models` need not pay."""
    if name.startswith(("hf-hub:", "local-dir:")):  # configs open_clip fetches or reads elsewhere
        import open_clip

        try:
            return open_clip.get_model_config(name)
        except Exception:  # not downloadable here, or no such folder
            return None
    spec = importlib.util.find_spec("open_clip")
    folder = Path(spec.submodule_search_locations[0]) / "model_configs" if spec else None
    if folder is None or os.sep in name or not (folder / f"{name}.json").is_file():
        return None
    config = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    return config if all(k in config for k in ("embed_dim", "vision_cfg", "text_cfg")) else None


def unknown_model(name: str) -> str:
    """What to say of a model name open_clip does not know: the names closest to it."""
    spec = importlib.util.find_spec("open_clip")
    names = [p.stem for p in (Path(spec.submodule_search_locations[0]) / "model_configs").glob("*.json")] \
        if spec else []
    close = difflib.get_close_matches(name, names, n=3) or ["ViT-B-32", "ViT-B-16", "ViT-L-14"]
    return f"open_clip has no model {name!r} (did you mean {', '.join(close)}?)"


class ClipEncoder:
    name = "clip"

    def __init__(self, settings: ClipSettings):
        self.settings = settings
        self._model = None
        self._preprocess = None  # RGB arrays -> the model's input batch on its device
        self._tokenizer = None
        self._lock = threading.Lock()  # the UI may call from several script threads
        self._device: str | None = None

    @property
    def device(self) -> str:
        if self._device is None:  # resolved on first use: importing torch costs seconds
            self._device = resolve_device(self.settings.device)
        return self._device

    @property
    def batch_size(self) -> int:
        """Images per batch: clip.batch_size, or by device (a GPU's throughput keeps growing to
        a few hundred; a CPU's stops at a few dozen, where memory would keep growing)."""
        return self.settings.batch_size or (256 if self.device == "cuda" else 64)

    @property
    def random_weights(self) -> bool:
        return self.settings.pretrained.lower() == RANDOM_WEIGHTS

    @property
    def info(self) -> ModelInfo:
        """The model's identity as stored in the index; known without loading the weights."""
        config = model_config(self.settings.model)
        if config is None:
            raise ModelUnavailableError(f"unknown CLIP model: {unknown_model(self.settings.model)}")
        return ModelInfo(self.settings.model, self.settings.pretrained, int(config["embed_dim"]))

    @property
    def image_size(self) -> int:
        """The side of the square the model sees (its input), known without loading the weights."""
        self.info  # validates the model name
        size = model_config(self.settings.model)["vision_cfg"]["image_size"]
        return int(max(size) if isinstance(size, (list, tuple)) else size)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                self._model, self._preprocess = self._build()

    def close(self) -> None:
        with self._lock:
            self._model = self._preprocess = self._tokenizer = None

    def _build(self):
        import open_clip
        import torch

        s = self.settings
        pretrained = None if self.random_weights else s.pretrained
        local = _local_weights(s.pretrained)
        if local is not None:
            if not local.is_file():
                raise ModelUnavailableError(f"CLIP weights file {local} does not exist")
            pretrained = str(local)
        self.info  # validates the model name
        log.info("loading CLIP %s (%s) on %s", s.model, s.pretrained, self.device)
        try:
            with _library_logs_muted(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(_RANDOM_SEED)
                model, _, preprocess = open_clip.create_model_and_transforms(
                    s.model, pretrained=pretrained, device=self.device
                )
        except Exception as exc:
            raise ModelUnavailableError(
                f"CLIP weights {s.model}/{s.pretrained} could not be loaded ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}). Run once with network access so "
                f"they download to the cache, or set clip.pretrained to a local weights file "
                f"(EVR_CLIP_PRETRAINED=/path/to/weights.bin)."
            ) from exc
        if self.random_weights:
            log.warning(
                "CLIP %s has RANDOM weights (clip.pretrained = \"none\"): indexing and search run, "
                "but text rankings are not meaningful without trained weights", s.model
            )
        model.eval()
        if self.device == "cuda":  # half-precision weights: faster than fp32 weights under autocast
            model = model.half()
        return model, self._frames_to_batch(model, preprocess)

    def _frames_to_batch(self, model, pil_transform):
        """The preprocessing the settings ask for, as a function of a list of RGB arrays."""
        import torch

        from .preprocess import TensorPreprocess, supports

        dtype = next(model.parameters()).dtype
        cfg = getattr(model.visual, "preprocess_cfg", None)
        if self.settings.preprocess != "pil" and cfg and supports(cfg):
            return TensorPreprocess(cfg, self.device, dtype)
        if self.settings.preprocess == "torch":
            log.warning("clip.preprocess = \"torch\" cannot reproduce %s's preprocessing (%s): using open_clip's",
                        self.settings.model, cfg)
        return lambda images: torch.stack([pil_transform(Image.fromarray(im)) for im in images]).to(
            self.device, dtype)

    def _run(self, fn, batch):
        import torch

        with torch.inference_mode():
            out = fn(batch).float()
        out = torch.nn.functional.normalize(out, dim=-1)
        return out.cpu().numpy().astype(np.float32)

    def encode_images(self, images: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 arrays -> (n, dim) unit vectors, in batches of `batch_size`."""
        import torch

        self.load()
        out = []
        for start in range(0, len(images), self.batch_size):
            with torch.inference_mode():
                batch = self._preprocess(images[start : start + self.batch_size])
            out.append(self._run(self._model.encode_image, batch))
        return np.concatenate(out) if out else np.zeros((0, self.info.dim), np.float32)

    def tokenizer(self):
        """The text tower's tokenizer, loaded on the first text: indexing never needs it (some
        models' tokenizers are Hugging Face files of their own)."""
        with self._lock:
            if self._tokenizer is None:
                import open_clip

                try:
                    with _library_logs_muted():
                        self._tokenizer = open_clip.get_tokenizer(self.settings.model)
                except Exception as exc:
                    raise ModelUnavailableError(
                        f"the tokenizer of {self.settings.model} could not be loaded ({type(exc).__name__}); run "
                        f"once with network access so it downloads to the cache") from exc
            return self._tokenizer

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.load()
        tokens = self.tokenizer()(texts).to(self.device)
        return self._run(self._model.encode_text, tokens)


def weights_status(settings: ClipSettings) -> tuple[bool, str]:
    """(present, description) of the configured weights, without downloading anything; a model
    open_clip does not know has none."""
    if model_config(settings.model) is None:
        return False, unknown_model(settings.model)
    pretrained = settings.pretrained
    if pretrained.lower() == RANDOM_WEIGHTS:
        return True, "random weights (clip.pretrained = \"none\"): rankings are not meaningful"
    local = _local_weights(pretrained)
    if local is not None:
        return (True, f"local file {local}") if local.is_file() else (False, f"local file {local} is missing")
    import open_clip

    cfg = open_clip.get_pretrained_cfg(settings.model, pretrained)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(settings.model)) or "none"
        return False, f"open_clip has no tag {pretrained!r} for {settings.model} (known: {tags})"
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        # open_clip's form: "org/model/" (default file names) or "org/model/file".
        repo_id, filename = os.path.split(hub)
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for name in names:
            cached = try_to_load_from_cache(repo_id, name)
            if isinstance(cached, str):
                return True, f"cached at {cached}"
    return False, "not downloaded yet (fetched on first use with network access)"
