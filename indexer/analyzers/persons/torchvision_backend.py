"""GPU persons and poses: Keypoint R-CNN (boxes + 17 COCO keypoints, many people per frame) and
DeepLabV3-ResNet50 (the person class of its 21 VOC classes) for the mask. torchvision downloads
the weights to its hub cache on first use; `weights = "none"` builds them with random weights."""
from __future__ import annotations

import logging
import os

import numpy as np

from storage.features import PersonsInFrame

from ...encoders import ModelUnavailableError
from .base import Detection, to_stored

log = logging.getLogger(__name__)

VOC_PERSON = 15
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _weights():
    from torchvision.models.detection import KeypointRCNN_ResNet50_FPN_Weights
    from torchvision.models.segmentation import DeepLabV3_ResNet50_Weights

    return KeypointRCNN_ResNet50_FPN_Weights.DEFAULT, DeepLabV3_ResNet50_Weights.DEFAULT


def weights_cached() -> bool:
    """Whether both weight files are in torch's hub cache already (no download needed)."""
    import torch

    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    return all(os.path.isfile(os.path.join(folder, os.path.basename(w.url))) for w in _weights())


class TorchvisionPersons:
    name = "torchvision"

    def __init__(self, device: str, min_score: float, random_weights: bool = False):
        self.device = device
        self.min_score = min_score
        self.random_weights = random_weights
        self._keypoints = None
        self._segment = None

    def load(self) -> None:
        if self._keypoints is not None:
            return
        from torchvision.models.detection import keypointrcnn_resnet50_fpn
        from torchvision.models.segmentation import deeplabv3_resnet50

        kp_weights, seg_weights = (None, None) if self.random_weights else _weights()
        try:
            # weights_backbone=None: with full weights it is unused, and random tests must not download.
            kp = keypointrcnn_resnet50_fpn(weights=kp_weights, weights_backbone=None)
            seg = deeplabv3_resnet50(weights=seg_weights, weights_backbone=None)
        except Exception as exc:
            raise ModelUnavailableError(
                f"torchvision person weights could not be loaded ({type(exc).__name__}: {exc}). Run once "
                f"with network access so they download to {self._cache_hint()}, or set persons.backend = "
                f"\"mediapipe\" (works offline)."
            ) from exc
        self._keypoints = kp.eval().to(self.device)
        self._segment = seg.eval().to(self.device)

    @staticmethod
    def _cache_hint() -> str:
        import torch

        return os.path.join(torch.hub.get_dir(), "checkpoints")

    def analyze(self, images: list[np.ndarray]) -> list[PersonsInFrame]:
        import torch

        self.load()
        tensors = [torch.from_numpy(im).permute(2, 0, 1).float().div(255).to(self.device) for im in images]
        with torch.inference_mode():
            detections = self._keypoints(tensors)
            masks = [self._person_mask(t) for t in tensors]
        out = []
        for im, det, mask in zip(images, detections, masks):
            keep = (det["labels"] == 1) & (det["scores"] >= self.min_score)
            boxes = det["boxes"][keep].cpu().numpy()
            scores = det["scores"][keep].cpu().numpy()
            kps = det["keypoints"][keep].cpu().numpy()
            # keypoints_scores are logits; a sigmoid turns them into a 0-1 visibility.
            vis = torch.sigmoid(det["keypoints_scores"][keep]).cpu().numpy()
            dets = [
                Detection(box=tuple(map(float, b)), score=float(s), keypoints=np.column_stack([k[:, :2], v]))
                for b, s, k, v in zip(boxes, scores, kps, vis)
            ]
            out.append(to_stored(dets, mask, im.shape[1], im.shape[0]))
        return out

    def _person_mask(self, image) -> np.ndarray:
        import torch

        mean = torch.tensor(_IMAGENET_MEAN, device=self.device).view(3, 1, 1)
        std = torch.tensor(_IMAGENET_STD, device=self.device).view(3, 1, 1)
        logits = self._segment(((image - mean) / std)[None])["out"][0]
        return (logits.argmax(0) == VOC_PERSON).cpu().numpy()

    def close(self) -> None:
        self._keypoints = self._segment = None
