"""CLIP's input made in torch (indexer/encoders/preprocess.py) matches open_clip's own PIL
transform on real frames of several sizes and aspect ratios."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from evr.indexer.decoders import open_video
from evr.indexer.encoders import ClipEncoder
from evr.indexer.encoders.preprocess import TensorPreprocess, supports

pytestmark = pytest.mark.integration

# Landscape 4:3 at two sizes, portrait (a rotated phone video), 11:9, and a 17x9 file.
CLIPS = [
    "msrvtt/video7010.mp4",
    "opencv_samples/vtest.avi",
    "scene_cuts/issue-134-rotate.mp4",
    "scene_cuts/issue-195-aspect-ratio.mp4",
    "asl_gestures/again.mkv",
]
# One 8-bit grey level is 1 / 255 / std = about 0.015 in normalised units: on average the two
# transforms differ by well under a third of one (PIL resamples in fixed point, torch in float).
MEAN_BOUND = 0.005


@pytest.fixture(scope="module")
def frames(videos) -> list[np.ndarray]:
    out = []
    for rel in CLIPS:
        source = open_video(str(videos / rel), ["pyav"], 0)
        try:
            out += [f.rgb for i, f in zip(range(41), source.frames()) if i % 20 == 0]
        finally:
            source.close()
    return out


def test_the_torch_transform_matches_open_clip_s(clip, frames):
    import open_clip

    clip.load()
    cfg = clip._model.visual.preprocess_cfg
    transform = open_clip.image_transform(
        cfg["size"],
        is_train=False,
        mean=cfg["mean"],
        std=cfg["std"],
        interpolation=cfg["interpolation"],
        resize_mode=cfg["resize_mode"],
    )
    ours = TensorPreprocess(cfg, "cpu")
    shapes = {f.shape for f in frames}
    assert len(shapes) >= 5
    for shape in shapes:
        same = [f for f in frames if f.shape == shape]
        want = torch.stack([transform(Image.fromarray(f)) for f in same])
        got = ours(same)
        assert got.shape == want.shape
        diff = (got - want).abs()
        assert float(diff.mean()) < MEAN_BOUND, (shape, float(diff.mean()))
        assert float(diff.max()) < 0.5, (shape, float(diff.max()))


def test_both_paths_give_the_same_vectors(clip, frames):
    torch_clip = ClipEncoder(dataclasses.replace(clip.settings, preprocess="torch"))
    pil_clip = ClipEncoder(dataclasses.replace(clip.settings, preprocess="pil"))
    a, b = torch_clip.encode_images(frames), pil_clip.encode_images(frames)
    assert float((a * b).sum(axis=1).min()) > 0.999


def test_a_config_it_cannot_reproduce_is_left_to_open_clip():
    cfg = {"size": 224, "mean": (0.5,) * 3, "std": (0.5,) * 3, "interpolation": "bicubic"}
    assert supports(cfg) and supports({**cfg, "resize_mode": "shortest"})
    assert not supports({**cfg, "resize_mode": "squash"}) and not supports({**cfg, "interpolation": "lanczos"})
