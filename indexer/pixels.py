"""Frames where the decoder left them: numpy arrays in host memory (the CPU decoders) or uint8
(H, W, 3) torch tensors in GPU memory (NVDEC, indexer/decoders/torchcodec_backend.py).

The keyframe stage works on every decoded frame, so a frame in GPU memory is shrunk there and
only the small frame crosses to the host (at 720p, 1/25 of the bytes); a whole frame crosses only
once it is kept as a keyframe, for its thumbnail and the analyzers that run on the host. The
shrink on a tensor gives the host's cv2 shrink exactly where the factor divides the size (the
cases of the sample videos; tests/test_gpu_path.py), and a pixel level off by one elsewhere,
which no detector threshold notices.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np


def is_tensor(rgb: Any) -> bool:
    return not isinstance(rgb, np.ndarray)


def on_host(rgb: Any) -> np.ndarray:
    """The frame as a numpy array (a copy from the device when it is a tensor)."""
    return rgb if isinstance(rgb, np.ndarray) else rgb.cpu().numpy()


def detection_frame(rgb: Any, width: int) -> np.ndarray:
    """The frame PySceneDetect's SceneManager would hand a detector, in RGB order: shrunk by an
    integer factor to at least `width` pixels wide, linear interpolation. (The SceneManager
    swaps to BGR first; a per-channel resize commutes with that, and the detectors here read
    RGB, so no swap is made at all.) A tensor is shrunk on its device; the result is on the host."""
    h, w = rgb.shape[:2]
    factor = max(1, w // width)
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    if isinstance(rgb, np.ndarray):
        return rgb if factor == 1 else cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    if factor > 1:
        rgb = _linear_shrink(rgb, size)
    return rgb.cpu().numpy()


def _linear_shrink(rgb, size: tuple[int, int]):
    """cv2.INTER_LINEAR's shrink of a uint8 (H, W, 3) tensor: the same source positions (pixel
    centres, no antialiasing), rounded half up as cv2's fixed point rounds."""
    import torch.nn.functional as F

    x = rgb.permute(2, 0, 1).unsqueeze(0).float()
    x = F.interpolate(x, size=(size[1], size[0]), mode="bilinear", align_corners=False, antialias=False)
    return (x + 0.5).floor_().clamp_(0, 255).to(rgb.dtype).squeeze(0).permute(1, 2, 0)


def tiny_frame(rgb: Any, width: int, height: int):
    """The frame shrunk to width x height with antialiasing (area averaging on the host, bilinear
    antialiased on a device), as a uint8 (height, width, 3) tensor where the frame was."""
    import torch

    if isinstance(rgb, np.ndarray):
        return torch.from_numpy(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA))
    import torch.nn.functional as F

    x = rgb.permute(2, 0, 1).unsqueeze(0).float()
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8).squeeze(0).permute(1, 2, 0)
