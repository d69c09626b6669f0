"""Typed settings of the indexer. The edges (ui/config.py) fill them from config.toml, env and flags."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DecodeSettings:
    # Tried in this order; a file the first cannot open goes to the next.
    backends: list[str] = field(default_factory=lambda: ["decord", "pyav", "opencv"])
    # Frames are decoded at most this tall on their short side: enough for OCR of captions,
    # and CLIP (224 px) and thumbnails (320 px) need far less.
    max_short_side: int = 720


@dataclass(frozen=True)
class KeyframeSettings:
    max_gap_s: float = 2.0  # at least one keyframe this often inside long shots
    dedup_threshold: float = 0.95  # drop a keyframe this CLIP-similar to the last kept one of its shot
    cut_threshold: float = 27.0  # mean HSV difference (0-255) between frames that counts as a cut
    min_shot_s: float = 0.4  # a cut closer than this to the previous one is flicker, not a new shot
    thumbnail_width: int = 320


@dataclass(frozen=True)
class ClipSettings:
    model: str = "ViT-L-14"
    # An open_clip tag ("openai", "laion2b_s32b_b82k", ...), a local weights file, or "none":
    # random weights (seeded, so every process builds the same model) for tests and offline demos.
    pretrained: str = "openai"
    device: str = "auto"  # auto | cpu | cuda
    batch_size: int = 64


@dataclass(frozen=True)
class IndexSettings:
    decode: DecodeSettings = field(default_factory=DecodeSettings)
    keyframes: KeyframeSettings = field(default_factory=KeyframeSettings)
    clip: ClipSettings = field(default_factory=ClipSettings)
    # Files taken when a folder is indexed (a file named explicitly is always tried).
    extensions: list[str] = field(
        default_factory=lambda: [
            ".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp",
        ]
    )
