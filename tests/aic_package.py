"""Builds an AI Challenge-shaped data package from the shared videos (../shared/contest/AIC_DATA.md):
JPEG keyframes at known, irregular frames, a map CSV per video, float16 features from the
random-weight test encoder (not normalised, as real packages may be), media-info JSON, and the
videos themselves for playback."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evr.indexer.encoders import ClipEncoder
from evr.indexer.settings import ClipSettings

from .conftest import TEST_ENV

MODEL = TEST_ENV["EVR_CLIP_MODEL"]
FRAMES = [0, 37, 90, 161, 240]  # irregular spacing, as real keyframes are


@dataclass(frozen=True)
class PackagedVideo:
    video_id: str
    frames: list[int]  # frame_idx of keyframe n = 1, 2, ...
    pts: list[float]
    fps: float
    vectors: np.ndarray  # unit vectors, float32, as evr should store them (before float16 rounding)
    title: str
    keyframe_dir: Path


def encoder() -> ClipEncoder:
    return ClipEncoder(ClipSettings(model=MODEL, pretrained="none", device="cpu"))


def read_frames(video: Path, frames: list[int]) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS)
    images = []
    for idx in frames:
        cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
        ok, bgr = cap.read()
        assert ok, f"{video}: no frame {idx}"
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return images, fps


def add_video(
    root: Path,
    batch: str,
    number: int,
    source: Path,
    *,
    old_layout: bool = False,
    frames: list[int] = FRAMES,
    clip: ClipEncoder | None = None,
    media_info: dict | None = None,
) -> PackagedVideo:
    """One video of batch `batch` (e.g. "L01") as the package holds it; returns what was written.
    `media_info`: keys that replace the media-info's own (author, publish_date, ...)."""
    video_id = f"{batch}_V{number:03d}"
    images, fps = read_frames(source, frames)
    keyframe_dir = (
        (root / f"Keyframes_{batch}" / video_id)
        if old_layout
        else (root / f"Keyframes_{batch}" / "keyframes" / video_id)
    )
    keyframe_dir.mkdir(parents=True, exist_ok=True)
    digits = 4 if old_layout else 3
    for n, rgb in enumerate(images, start=1):
        cv2.imwrite(str(keyframe_dir / f"{n:0{digits}d}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    pts = [round(f / fps, 4) for f in frames]
    (root / "map-keyframes").mkdir(exist_ok=True)
    with open(root / "map-keyframes" / f"{video_id}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["n", "pts_time", "fps", "frame_idx"])
        for n, (t, idx) in enumerate(zip(pts, frames), start=1):
            w.writerow([n, t, fps, idx])
    vectors = (clip or encoder()).encode_images(images)
    (root / "clip-features-32").mkdir(exist_ok=True)
    scale = np.linspace(3.0, 7.0, len(vectors))[:, None]  # rows of other lengths: evr normalises
    np.save(root / "clip-features-32" / f"{video_id}.npy", (vectors * scale).astype(np.float16))
    title = f"Bản tin {video_id}"
    (root / "media-info").mkdir(exist_ok=True)
    (root / "media-info" / f"{video_id}.json").write_text(
        json.dumps(
            {
                "author": "60 Giây Official",
                "channel_id": "UC0",
                "channel_url": "https://www.youtube.com/channel/UC0",
                "description": "test",
                "keywords": ["tin tức"],
                "length": 10,
                "publish_date": "02/08/2024",
                "thumbnail_url": "https://i.ytimg.com/x.jpg",
                "title": title,
                "watch_url": f"https://youtube.com/watch?v={video_id}",
                **(media_info or {}),
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    videos = root / f"Videos_{batch}_a"
    videos.mkdir(exist_ok=True)
    (videos / f"{video_id}.mp4").symlink_to(source)
    return PackagedVideo(video_id, frames, pts, fps, vectors, title, keyframe_dir)
