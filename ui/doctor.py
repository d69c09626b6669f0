"""`evr doctor`: what this machine offers evr (device, libraries, weights, index)."""
from __future__ import annotations

import importlib.metadata
import platform
import shutil

from .config import AppConfig


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def diagnose(config: AppConfig) -> dict:
    import faiss
    import torch

    from indexer.analyzers import resolve_device
    from indexer.analyzers.clip import weights_status
    from storage import StoreError
    from storage.vectors import gpu_available

    clip = config.index.clip
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    try:
        device = resolve_device(clip.device)
    except Exception as exc:  # e.g. device = "cuda" without a GPU
        device = f"unusable: {exc}"
    present, weights = weights_status(clip)
    decoders = {name: _version(dist) for name, dist in
                (("decord", "decord"), ("pyav", "av"), ("opencv", "opencv-python-headless"))}
    try:
        with config.open_store() as store:
            s = store.stats()
        index = (f"{s['videos']} videos, {s['keyframes']} keyframes, {s['vectors']} vectors ({s['vector_index']}), "
                 f"{'consistent' if s['consistent'] else 'INCONSISTENT (run evr index to repair)'}, "
                 f"model {s['model']} ({s['pretrained']})")
    except StoreError as exc:
        index = str(exc)
    return {
        "python": platform.python_version(),
        "torch": f"{torch.__version__} (CUDA build {torch.version.cuda or 'none'})",
        "gpu": gpu or "none visible",
        "device": f"{device} (clip.device = {clip.device})",
        "faiss": f"{faiss.__version__}, {'GPU' if gpu_available() else 'CPU'} search",
        "decoders": ", ".join(f"{n} {v}" if v else f"{n} missing" for n, v in decoders.items())
        + f" (order: {', '.join(config.index.decode.backends)})",
        "ffmpeg": shutil.which("ffmpeg") or "missing (only needed by the benchmark)",
        "clip_model": f"{clip.model} / {clip.pretrained}",
        "clip_weights": f"{'present' if present else 'MISSING'}: {weights}",
        "config": str(config.source) if config.source else "built-in defaults (no config.toml found)",
        "data_dir": str(config.data_dir),
        "index": index,
    }
