"""Typed settings of the indexer, each with its rules (storage/rules.py). The edges (ui/config.py)
fill them from config.toml, the environment and flags; each feature's settings live with its
analyzer (indexer/analyzers/<name>/settings.py) and travel in `IndexSettings.features`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from evr.storage.rules import between, one_of, rule, some_of, text
from evr.storage.types import PRIMARY_MODEL

DEVICES = ("auto", "cpu", "cuda")
DECODERS = ("nvdec", "decord", "pyav", "opencv", "torchcodec")  # indexer/decoders, one file each
SHOT_DETECTORS = ("auto", "content", "transnetv2")  # indexer/shots, one file each


@dataclass(frozen=True)
class DecodeSettings:
    """[decode]"""

    # Tried in this order; a file the first cannot open goes to the next. "nvdec" decodes on the
    # GPU (torchcodec) and opens nothing where no CUDA device is, or a codec the chip lacks;
    # "torchcodec" is the same library on the CPU (benchmarks/RESULTS.md: slower than decord
    # when frames are scaled, so not in the default order).
    backends: list[str] = rule(some_of(DECODERS), default_factory=lambda: ["nvdec", "decord", "pyav", "opencv"])
    # Frames are decoded at most this tall on their short side: enough for OCR of captions,
    # and CLIP (224 px) and thumbnails (320 px) need far less.
    max_short_side: int = rule(between(0), default=720)


@dataclass(frozen=True)
class KeyframeSettings:
    """[keyframes]: which frames become keyframes (indexer/keyframes.py states the rule)."""

    sample_s: float = rule(between(0, above=True), default=0.5)  # a frame is a candidate this often
    # Consecutive keyframes are never further apart than this (+ one frame).
    max_gap_s: float = rule(between(0, above=True), default=2.0)
    # A candidate is kept when at least this fraction of the frame changed since the last kept
    # keyframe (64x36 grey, a pixel counts when it moved by more than 20 of 255).
    min_change: float = rule(between(0, 1), default=0.05)
    thumbnail_width: int = rule(between(16, 4096), default=320)


@dataclass(frozen=True)
class ShotSettings:
    """[shots]: shot boundaries (indexer/shots/): TransNetV2, or PySceneDetect's AdaptiveDetector
    for cuts with its ThresholdDetector for fades through black (the content detector, whose
    defaults are PySceneDetect's own)."""

    # "auto": TransNetV2 where the models run on a GPU, the content detector on a CPU.
    detector: str = rule(one_of(SHOT_DETECTORS), default="auto")
    transition_threshold: float = rule(between(0, 1), default=0.5)  # TransNetV2's score of a transition

    adaptive_threshold: float = rule(between(0, above=True), default=3.0)  # a frame's change over its neighbours'
    min_content_val: float = rule(between(0, 255), default=15.0)  # the least change (mean HSV, 0-255) of a cut
    fade_threshold: float = rule(between(0, 255), default=12.0)  # mean pixel value under which a frame is black
    min_shot_s: float = rule(between(0), default=0.4)  # boundaries closer than this to the last are flicker
    # Frames are shrunk to this width for detection (PySceneDetect's own default downscale
    # keeps them at least 256 wide): cheaper than full frames, same cuts.
    detect_width: int = rule(between(16, 4096), default=256)

    def signature(self, detector: str) -> dict[str, float]:
        """What the shots of `detector` ("content" or "transnetv2") depend on, for a video's plan.
        The content detector's is what it was before there were two (indexes made then stay)."""
        if detector == "transnetv2":
            return {"transnetv2_threshold": float(self.transition_threshold), "min_shot_s": float(self.min_shot_s)}
        return {
            name: float(getattr(self, name))
            for name in ("adaptive_threshold", "min_content_val", "fade_threshold", "min_shot_s", "detect_width")
        }


@dataclass(frozen=True)
class ClipSettings:
    """[clip]"""

    model: str = "ViT-L-14"
    # An open_clip tag ("openai", "laion2b_s32b_b82k", ...), a local weights file, or "none":
    # random weights (seeded, so every process builds the same model) for tests and offline demos.
    pretrained: str = "openai"
    device: str = rule(one_of(DEVICES), default="auto")
    batch_size: int = rule(between(0, 4096), default=0)  # images per CLIP batch; 0: 256 on a GPU, 64 on a CPU
    # How frames become the model's input: "torch" resizes, crops and normalises them where the
    # model runs, as open_clip's transform does (indexer/encoders/preprocess.py; faster on a GPU
    # and on a CPU alike); "pil" is open_clip's own transform; "auto" is torch where it can
    # reproduce the model's preprocess config, else pil.
    preprocess: str = rule(one_of(("auto", "torch", "pil")), default="auto")


def _model_name(value: str) -> str | None:
    if value == PRIMARY_MODEL:
        return f"cannot be {PRIMARY_MODEL!r}, the name of the [clip] model"
    if re.fullmatch(r"[a-z][a-z0-9_]{0,31}", value):
        return None
    return "must be a short name: lower-case letters, digits and _, starting with a letter (it names files)"


@dataclass(frozen=True)
class ModelSettings:
    """One entry of [[models]]: another image-text model whose vectors every keyframe gets beside
    [clip]'s, searched in its own vector index; rankings are fused (search/fusion.py). It runs
    on [clip]'s device, batch size and preprocessing."""

    name: str = rule(_model_name, default="")  # how queries (`--models`), hits and files name it
    model: str = rule(text("an open_clip model (ViT-B-32, xlm-roberta-base-ViT-B-32, ...)"), default="")
    # An open_clip tag, a local weights file, or "none" (random weights: tests and offline demos).
    pretrained: str = rule(text('an open_clip tag, a weights file or "none"'), default="")

    def clip_settings(self, clip: ClipSettings) -> ClipSettings:
        """This model as an encoder's settings, on [clip]'s device, batches and preprocessing."""
        return ClipSettings(self.model, self.pretrained, clip.device, clip.batch_size, clip.preprocess)


def _extensions(values: list[str]) -> str | None:
    return None if values and all(e.strip(".") for e in values) else "must name file extensions"


def _ray_address(value: str) -> str | None:
    if value in ("", "auto") or re.fullmatch(r"(ray://)?[^\s:/]+:\d{1,5}", value):
        return None
    return 'must be "", "auto", HOST:PORT or ray://HOST:PORT'


@dataclass(frozen=True)
class RunSettings:
    """[index]: which files an index run takes, and where the work on each video runs
    (indexer/runners/); one writer commits either way."""

    # Files taken when a folder is indexed (a file named explicitly is always tried).
    extensions: list[str] = rule(
        _extensions,
        default_factory=lambda: [
            ".mp4",
            ".mkv",
            ".avi",
            ".mov",
            ".webm",
            ".m4v",
            ".mpg",
            ".mpeg",
            ".ts",
            ".flv",
            ".wmv",
            ".3gp",
        ],
    )
    # 0: in this process, or with a ray_address as many workers as the cluster has room for.
    # 1: in this process. N > 1: N workers on a local Ray cluster (or on ray_address).
    workers: int = rule(between(0, 4096), default=0)
    # "" = no cluster; "auto" = the cluster this machine is part of; "host:6379" or
    # "ray://host:10001" = that cluster. Every worker must see the videos at the same paths.
    ray_address: str = rule(_ray_address, default="")
    cpus_per_worker: float = rule(between(0, 1024, above=True), default=1.0)
    gpus_per_worker: float = rule(between(0, 64), default=1.0)  # asked for only where the cluster has GPUs
    max_attempts: int = rule(between(1, 100), default=3)  # a video whose worker dies this often fails
    # Processes that decode videos and choose their keyframes side by side, feeding one batched
    # model stage in the writer's process (indexer/runners/streaming.py). 0: one per core;
    # 1: decoding in a thread beside the models, one video at a time. On Ray, each worker runs
    # that pipeline with this many (0: one per CPU it asks for, cpus_per_worker).
    decode_workers: int = rule(between(0, 1024), default=0)

    @property
    def decoders(self) -> int:
        """decode_workers, with 0 read as the cores this process may use."""
        if self.decode_workers:
            return self.decode_workers
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    @property
    def decoders_per_ray_worker(self) -> int:
        """decode_workers, with 0 read as the CPUs each Ray worker asks for."""
        return self.decode_workers or max(1, int(self.cpus_per_worker))

    def __post_init__(self):
        # ".mp4" and "mp4" name the same files.
        object.__setattr__(self, "extensions", [e if e.startswith(".") else f".{e}" for e in self.extensions])


@dataclass(frozen=True)
class IndexSettings:
    decode: DecodeSettings = field(default_factory=DecodeSettings)
    keyframes: KeyframeSettings = field(default_factory=KeyframeSettings)
    shots: ShotSettings = field(default_factory=ShotSettings)
    clip: ClipSettings = field(default_factory=ClipSettings)
    run: RunSettings = field(default_factory=RunSettings)
    models: tuple[ModelSettings, ...] = ()  # [[models]]: the image-text models beside [clip]
    # Each feature's settings by its name (its analyzer's `settings` class; [ocr], [persons],
    # [speech], ...): a feature missing here runs with its defaults.
    features: dict[str, Any] = field(default_factory=dict)

    @property
    def image_models(self) -> dict[str, ClipSettings]:
        """Every image-text model by name: [clip]'s first (as "clip"), then [[models]] in order."""
        return {PRIMARY_MODEL: self.clip, **{m.name: m.clip_settings(self.clip) for m in self.models}}

    def feature(self, name: str) -> Any:
        """The settings of a feature's analyzer."""
        if name in self.features:
            return self.features[name]
        from .analyzers import analyzer_class  # the registry names the analyzer (and so its settings)

        return analyzer_class(name).settings_class()
