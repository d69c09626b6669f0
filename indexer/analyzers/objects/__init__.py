"""Objects: a COCO detector from torchvision (Faster R-CNN), on whole batches of keyframes, on the
GPU when there is one (fp16 autocast). torchvision downloads its weights to the hub cache on first
use; where they are neither cached nor downloadable the analyzer is off for the run, said once
(the rest is indexed). `weights = "none"` builds it with random weights (tests).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import numpy as np

from evr.storage.features.objects import DetectedObject, ObjectsInFrame
from evr.storage.rules import between, one_of, rule

from ...encoders import resolve_device
from ...settings import DEVICES
from ..base import FrameAnalyzer

log = logging.getLogger(__name__)

DETECTORS = ("fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn")
# "auto": the accurate one on a GPU, the light one (about a tenth of the compute) on a CPU.
AUTO = {"cuda": DETECTORS[0], "cpu": DETECTORS[1]}


@dataclass(frozen=True)
class ObjectSettings:
    """[objects]"""

    enabled: bool = True
    # torchvision's COCO detectors (box AP on COCO val2017, torchvision's tables): resnet50_fpn_v2
    # (46.7), mobilenet_v3_large_fpn (32.8, far less compute); auto: the first on a GPU, else the second
    detector: str = rule(one_of(("auto", *DETECTORS)), default="auto")
    weights: str = rule(one_of(("default", "none")), default="default")  # "none": random weights (tests)
    min_score: float = rule(between(0, 1), default=0.5)  # detections (and imported ones) below this are dropped
    detect_size: int = rule(between(160, 1600), default=640)  # the detector's short side in pixels
    device: str = rule(one_of(DEVICES), default="auto")
    batch_size: int = rule(between(1, 256), default=8)  # keyframes per detector call


def _weights(detector: str):
    from torchvision.models import detection

    name = {
        "fasterrcnn_resnet50_fpn_v2": "FasterRCNN_ResNet50_FPN_V2_Weights",
        "fasterrcnn_mobilenet_v3_large_fpn": "FasterRCNN_MobileNet_V3_Large_FPN_Weights",
    }[detector]
    return getattr(detection, name).DEFAULT


def weights_cached(detector: str) -> bool:
    import torch

    return os.path.isfile(os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(_weights(detector).url)))


class ObjectAnalyzer(FrameAnalyzer):
    name = "objects"
    settings_class = ObjectSettings

    def __init__(self, settings: ObjectSettings):
        super().__init__(settings)
        self._model = None
        self._labels: list[str] = []
        self._off: str | None = None  # why it cannot run in this process
        self._device: str | None = None

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(self.settings.device)
        return self._device

    @property
    def detector(self) -> str:
        return AUTO[self.device] if self.settings.detector == "auto" else self.settings.detector

    @property
    def signature(self) -> str:
        s = self.settings
        if self._model is None and self._off is None and s.weights != "none" and not weights_cached(self.detector):
            self.load()  # a download: where none can be made, the analyzer is off for the run
        return "" if self._off else f"{self.detector}:{'random' if s.weights == 'none' else 'coco'}@{s.detect_size}"

    def load(self) -> None:
        if self._model is not None or self._off is not None:
            return
        import torch
        from torchvision.models import detection

        s = self.settings
        weights = _weights(self.detector)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)  # random weights (tests): the same model in every process and run
                model = getattr(detection, self.detector)(
                    weights=None if s.weights == "none" else weights,
                    weights_backbone=None,
                    num_classes=len(weights.meta["categories"]),
                    min_size=s.detect_size,
                    max_size=round(s.detect_size * 1333 / 800),
                    box_score_thresh=s.min_score,
                )
        except Exception as exc:  # no network, no cache: the run goes on without objects
            self._off = (
                f"objects are off for this run: torchvision's {self.detector} weights could not be loaded "
                f"({type(exc).__name__}); run once with network access so they download, or set "
                f"objects.enabled = false"
            )
            log.warning("%s", self._off)
            return
        self._model = model.eval().to(self.device)
        self._labels = [label.lower() for label in weights.meta["categories"]]

    def close(self) -> None:
        self._model, self._off = None, None

    def analyze(self, images: list[np.ndarray]) -> list[ObjectsInFrame | None]:
        self.load()
        if self._model is None:
            return [None] * len(images)
        import torch

        out = []
        step = self.settings.batch_size
        for start in range(0, len(images), step):
            batch = images[start : start + step]
            tensors = [
                torch.from_numpy(np.ascontiguousarray(im)).to(self.device).permute(2, 0, 1).float() / 255
                for im in batch
            ]
            autocast = (
                torch.autocast("cuda", dtype=torch.float16) if self.device == "cuda" else contextlib.nullcontext()
            )
            with torch.inference_mode(), autocast:
                found = self._model(tensors)
            for image, result in zip(batch, found):
                h, w = image.shape[:2]
                objects = []
                for box, label, score in zip(
                    result["boxes"].float().cpu().numpy(),
                    result["labels"].cpu().numpy(),
                    result["scores"].float().cpu().numpy(),
                ):
                    name = self._labels[int(label)] if int(label) < len(self._labels) else "n/a"
                    if score < self.settings.min_score or name in ("__background__", "n/a"):
                        continue
                    x0, y0, x1, y1 = (float(v) for v in box)
                    objects.append(
                        DetectedObject(
                            name,
                            round(float(score), 4),
                            (
                                round(max(0.0, x0 / w), 4),
                                round(max(0.0, y0 / h), 4),
                                round(min(1.0, x1 / w), 4),
                                round(min(1.0, y1 / h), 4),
                            ),
                        )
                    )
                out.append(ObjectsInFrame(objects))
        return out


__all__ = ["ObjectAnalyzer", "ObjectSettings", "weights_cached"]
