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

from evr.storage.types import ModelInfo

from ..settings import ClipSettings
from .base import ModelUnavailableError, resolve_device

log = logging.getLogger(__name__)

RANDOM_WEIGHTS = "none"
_RANDOM_SEED = 0  # every process must build the same random model, or queries miss the index


class _MutedHere(logging.Filter):
    """Drops the root logger's records made in a thread that is loading a model (open_clip logs
    through the root logger: "No pretrained weights loaded...", each download retry), and only
    there: other threads (the app's other sessions) log as ever, and nothing global is switched
    and switched back, which two threads loading at once would leave switched for good."""

    here = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.here, "muted", False)


_MUTED = _MutedHere()
logging.getLogger().addFilter(_MUTED)


@contextlib.contextmanager
def _library_logs_muted():
    """open_clip and huggingface_hub log every download retry and their own 'random weights'
    warning; unless debugging (root level INFO or lower) say it once, in our own words."""
    if logging.getLogger().level <= logging.INFO:
        yield
        return
    # huggingface_hub logs through loggers of its own, which no root filter sees: they are set
    # to say errors only, once (a level set and never reset: no race).
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    _MUTED.here.muted = True
    try:
        yield
    finally:
        _MUTED.here.muted = False


def _local_weights(pretrained: str) -> Path | None:
    """The file a clip.pretrained value names, when it names a file rather than a tag."""
    if os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):
        return Path(pretrained).expanduser()
    return None


def _load_mapped(model, path: Path, open_clip) -> None:
    """A local checkpoint into `model` (made without random fills), mapped rather than read: a
    state dict in open_clip's own layout (every name and shape the model's) becomes the model's
    parameters where the file lies, so only the pages a query touches are read (a text query:
    the text tower, a quarter of ViT-L-14's 1.7 GB) and nothing is copied. Any other layout
    goes through open_clip's own loader, which converts it."""
    import torch

    state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    own = model.state_dict()
    if (
        isinstance(state, dict)
        and state.keys() == own.keys()
        and all(state[k].shape == v.shape and state[k].dtype == v.dtype for k, v in own.items())
    ):
        model.load_state_dict(state, strict=True, assign=True)
    else:
        open_clip.load_checkpoint(model, str(path))


@contextlib.contextmanager
def skip_random_fills():
    """Within the block, in this thread only, the random fills that initialise a new model's
    parameters (torch.nn.init's, and the Tensor methods they use) leave the tensors as they are.
    For a model whose every parameter is then loaded from a checkpoint (open_clip loads strictly:
    a missing one is an error), the result is the same model, made without the cost of drawing
    hundreds of millions of random numbers. A torch function mode, not a patch of torch.nn.init:
    modes are per thread, so a model made at the same time in another thread is untouched."""
    import torch
    from torch.overrides import TorchFunctionMode

    skipped = {
        torch.Tensor.uniform_,
        torch.Tensor.normal_,
        torch.Tensor.random_,
        torch.nn.init.uniform_,
        torch.nn.init.normal_,
        torch.nn.init.trunc_normal_,
        torch.nn.init.kaiming_uniform_,
        torch.nn.init.kaiming_normal_,
        torch.nn.init.xavier_uniform_,
        torch.nn.init.xavier_normal_,
        torch.nn.init.orthogonal_,
    }

    class SkipFills(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in skipped:
                return args[0] if args else kwargs.get("tensor")
            return func(*args, **(kwargs or {}))

    with SkipFills():
        yield


def open_clip_for(model: str):
    """open_clip, imported for `model`. Its package imports Hugging Face transformers whatever
    the model (its text towers of other families live in one module), which costs a cold `evr
    search "text"` three seconds of a 2-core machine; a model whose text tower and tokenizer are
    open_clip's own needs none of it, so open_clip is then imported as where transformers is
    not installed (it says so itself: `transformers = None`). A later model that does need it
    (or the multilingual encoders, which import transformers themselves) gets it: the module
    that wraps it is imported again then."""
    import importlib
    import sys

    text = (model_config(model) or {}).get("text_cfg", {})
    needs = model.startswith("hf-hub:") or "hf_model_name" in text or "hf_tokenizer_name" in text
    if "open_clip" in sys.modules:
        import open_clip

        if needs and open_clip.hf_model.transformers is None:
            importlib.reload(open_clip.hf_model)  # its classes read transformers' names from this module
        return open_clip
    if needs or "transformers" in sys.modules:
        import open_clip

        return open_clip
    sys.modules["transformers"] = None  # `import transformers` raises ImportError, as when it is not installed
    try:
        import open_clip
    finally:
        del sys.modules["transformers"]
    return open_clip


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
    names = (
        [p.stem for p in (Path(spec.submodule_search_locations[0]) / "model_configs").glob("*.json")] if spec else []
    )
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
        _ = self.info  # raises for a model open_clip does not have
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
        import torch

        open_clip = open_clip_for(self.settings.model)

        s = self.settings
        pretrained = None if self.random_weights else s.pretrained
        local = _local_weights(s.pretrained)
        if local is not None:
            if not local.is_file():
                raise ModelUnavailableError(f"CLIP weights file {local} does not exist")
            pretrained = str(local)
        _ = self.info  # raises for a model open_clip does not have
        # Said at the default verbosity (the edges show evr.progress): seconds pass before a result.
        logging.getLogger("evr.progress").info(
            "loading CLIP %s (%s) on %s, once for this process...", s.model, s.pretrained, self.device
        )
        try:
            # Trained weights replace every parameter: drawing random ones first would only cost
            # time (seconds for ViT-L-14 on a CPU). Random weights (tests) are drawn from one seed.
            fills = contextlib.nullcontext() if self.random_weights else skip_random_fills()
            mapped = local is not None and local.suffix in (".pt", ".pth", ".bin") and self.device == "cpu"
            with _library_logs_muted(), torch.random.fork_rng(devices=[]), fills:
                torch.manual_seed(_RANDOM_SEED)
                model, _, preprocess = open_clip.create_model_and_transforms(
                    s.model, pretrained=None if mapped else pretrained, device=self.device
                )
            if mapped:
                _load_mapped(model, local, open_clip)
        except Exception as exc:
            raise ModelUnavailableError(
                f"CLIP weights {s.model}/{s.pretrained} could not be loaded ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}). Run once with network access so "
                f"they download to the cache, or set clip.pretrained to a local weights file "
                f"(EVR_CLIP_PRETRAINED=/path/to/weights.bin)."
            ) from exc
        if self.random_weights:
            log.warning(
                'CLIP %s has RANDOM weights (clip.pretrained = "none"): indexing and search run, '
                "but text rankings are not meaningful without trained weights",
                s.model,
            )
        model.eval()
        if self.device == "cuda":  # half-precision weights: faster than fp32 weights under autocast
            model = model.half()
        return model, self._frames_to_batch(model, preprocess)

    def _frames_to_batch(self, model, pil_transform):
        """The preprocessing the settings ask for, as a function of a list of RGB arrays."""
        import torch

        from ..pixels import on_host
        from .preprocess import TensorPreprocess, supports

        dtype = next(model.parameters()).dtype
        cfg = getattr(model.visual, "preprocess_cfg", None)
        if self.settings.preprocess != "pil" and cfg and supports(cfg):
            return TensorPreprocess(cfg, self.device, dtype)
        if self.settings.preprocess == "torch":
            log.warning(
                "clip.preprocess = \"torch\" cannot reproduce %s's preprocessing (%s): using open_clip's",
                self.settings.model,
                cfg,
            )
        return lambda images: torch.stack([pil_transform(Image.fromarray(on_host(im))) for im in images]).to(
            self.device, dtype
        )

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
                open_clip = open_clip_for(self.settings.model)
                try:
                    with _library_logs_muted():
                        self._tokenizer = open_clip.get_tokenizer(self.settings.model)
                except Exception as exc:
                    raise ModelUnavailableError(
                        f"the tokenizer of {self.settings.model} could not be loaded ({type(exc).__name__}); run "
                        f"once with network access so it downloads to the cache"
                    ) from exc
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
        return True, 'random weights (clip.pretrained = "none"): rankings are not meaningful'
    local = _local_weights(pretrained)
    if local is not None:
        return (True, f"local file {local}") if local.is_file() else (False, f"local file {local} is missing")
    open_clip = open_clip_for(settings.model)

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
