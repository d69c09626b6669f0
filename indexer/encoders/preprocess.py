"""open_clip's image transform done in torch, where the model runs: frames go to the device as
uint8, are resized (bicubic or bilinear, antialiased), center-cropped and normalised there.

open_clip's own transform runs PIL on one CPU thread per image, which caps a GPU at about 76
720p frames/s (issue 21); this one runs on the GPU with the model. The settings (size,
interpolation, mean, std, resize mode) are read from the model's own preprocess config, never
written here. It follows torchvision's Resize(int) and CenterCrop, which open_clip's transform
uses: the short side scaled to the size, the long side truncated, the crop rounded to the middle.
PIL resamples in 8 bits, so the output is rounded and clipped to 0-255 before normalising as
PIL's is; tests/test_preprocess.py bounds the difference from open_clip's PIL transform.

On CUDA the frames are copied by a few threads into one page-locked buffer and uploaded in one
asynchronous transfer: 256 frames of 720p are 708 MB, and stacking them in ordinary memory and
uploading from there (two copies on one thread) took longer than the model (issue 21's GPU run).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

SUPPORTED = {"interpolation": ("bicubic", "bilinear"), "resize_mode": ("shortest",)}


def supports(cfg: dict) -> bool:
    """Whether this transform reproduces a model's preprocess config (else use open_clip's)."""
    return all(cfg.get(key, values[0]) in values for key, values in SUPPORTED.items())


class TensorPreprocess:
    def __init__(self, cfg: dict, device: str, dtype=None):
        import torch

        size = cfg["size"]
        self.height, self.width = (size, size) if isinstance(size, int) else size
        self.mode = cfg.get("interpolation", "bicubic")
        self.device = device
        self.dtype = dtype or torch.float32
        self.mean = torch.tensor(cfg["mean"], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg["std"], device=device).view(1, 3, 1, 1)

    def __call__(self, images: list):
        """RGB uint8 arrays or (H, W, 3) tensors (any sizes) -> one normalised (n, 3, height,
        width) tensor on the device."""
        import torch

        out = [None] * len(images)
        by_shape: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            by_shape.setdefault(tuple(im.shape), []).append(i)
        for at in by_shape.values():  # frames of one size are resized together
            batch = self._upload([images[i] for i in at])
            done = self._resize_crop(batch.permute(0, 3, 1, 2).float())
            for j, i in enumerate(at):
                out[i] = done[j]
        batch = torch.stack(out)
        batch = batch.clamp_(0, 255).round_().div_(255)
        return ((batch - self.mean) / self.std).to(self.dtype)

    def _upload(self, images: list):
        """Frames of one shape -> one uint8 (n, h, w, 3) tensor on the device. Frames already in
        tensors (NVDEC's, in GPU memory) are stacked where they are."""
        import torch

        if not isinstance(images[0], np.ndarray):
            return torch.stack(images).to(self.device)
        if self.device != "cuda":
            return torch.from_numpy(np.stack(images))
        staged = torch.empty((len(images), *images[0].shape), dtype=torch.uint8, pin_memory=True)
        rows = staged.numpy()
        # numpy lets go of the GIL while it copies, so the threads copy at once.
        list(_copiers().map(lambda i: np.copyto(rows[i], images[i]), range(len(images))))
        # The host allocator keeps `staged` until this copy is done, even once it is freed here.
        return staged.to(self.device, non_blocking=True)

    def _resize_crop(self, batch):
        import torch.nn.functional as F

        h, w = batch.shape[-2:]
        short = min(self.height, self.width)  # torchvision's Resize(int): the short side to this size
        if h <= w:
            nh, nw = short, int(short * w / h)
        else:
            nh, nw = int(short * h / w), short
        if (nh, nw) != (h, w):
            batch = F.interpolate(batch, size=(nh, nw), mode=self.mode, antialias=True, align_corners=False)
        top = int(round((nh - self.height) / 2.0))
        left = int(round((nw - self.width) / 2.0))
        return batch[..., top : top + self.height, left : left + self.width]


@functools.cache
def _copiers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(min(8, os.cpu_count() or 1), thread_name_prefix="evr-upload")
