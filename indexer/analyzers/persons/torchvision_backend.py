"""GPU persons and poses: Keypoint R-CNN (boxes + 17 COCO keypoints, many people per frame) and
DeepLabV3-ResNet50 (the person class of its 21 VOC classes) for the mask. torchvision downloads
the weights to its hub cache on first use; `weights = "none"` builds them with random weights.

Both run on whole batches: Keypoint R-CNN takes a list of frames and resizes them itself (its
short side to `detect_size`, torchvision's 800 by default, the size it was trained at); DeepLabV3
runs on frames of one size stacked, scaled down to `mask_size` on the short side, since the stored
mask is only 160 pixels wide (base.MASK_WIDTH). On CUDA both run under fp16 autocast."""

from __future__ import annotations

import logging
import os

import numpy as np

from evr.storage.features import PersonsInFrame

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

    def __init__(
        self,
        device: str,
        min_score: float,
        random_weights: bool = False,
        detect_size: int = 800,
        mask_size: int = 320,
        batch_size: int = 16,
    ):
        self.device = device
        self.min_score = min_score
        self.random_weights = random_weights
        self.detect_size = detect_size
        self.mask_size = mask_size
        self.batch_size = batch_size  # frames per model call: bounds the GPU memory of a 256-frame CLIP batch
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
            # box_score_thresh: the model drops boxes scoring min_score or less before its keypoint
            # head runs, instead of computing keypoints for every box over torchvision's 0.05 and
            # dropping them after. The persons kept are the same: NMS only suppresses a box by a
            # higher-scoring one, and the keypoint head works on each box alone.
            kp = keypointrcnn_resnet50_fpn(
                weights=kp_weights,
                weights_backbone=None,
                min_size=self.detect_size,
                max_size=round(self.detect_size * 1333 / 800),
                box_score_thresh=self.min_score,
            )
            seg = deeplabv3_resnet50(weights=seg_weights, weights_backbone=None)
        except Exception as exc:
            raise ModelUnavailableError(
                f"torchvision person weights could not be loaded ({type(exc).__name__}: {exc}). Run once "
                f"with network access so they download to {self._cache_hint()}, or install the mediapipe "
                f'extra (pip install "evr[mediapipe]"; works offline) and set persons.backend = '
                f'"mediapipe".'
            ) from exc
        self._keypoints = kp.eval().to(self.device)
        self._segment = seg.eval().to(self.device)

    @staticmethod
    def _cache_hint() -> str:
        import torch

        return os.path.join(torch.hub.get_dir(), "checkpoints")

    def analyze(self, images: list[np.ndarray]) -> list[PersonsInFrame]:
        self.load()
        out: list[PersonsInFrame] = []
        for start in range(0, len(images), self.batch_size):
            out.extend(self._analyze_batch(images[start : start + self.batch_size]))
        return out

    def _analyze_batch(self, images: list) -> list[PersonsInFrame]:
        """One call of each model for the batch, and the results brought to the host in two
        transfers for the whole batch (not four per frame: each one waits for the GPU). The
        person mask is made only for frames where people were found: on the others it is unused
        (a frame without a person stores none)."""
        import torch

        tensors = [_on_device(im, self.device).permute(2, 0, 1).float().div_(255) for im in images]
        with torch.inference_mode(), torch.autocast("cuda", torch.float16, enabled=self.device == "cuda"):
            detections = self._keypoints(tensors)
            people = [det["labels"] == 1 for det in detections]  # the model kept only scores over min_score
            counts = torch.stack([keep.sum() for keep in people]).tolist()  # one transfer
            rows = (
                torch.cat(
                    [
                        torch.cat(
                            [
                                det["boxes"][keep].float(),
                                det["scores"][keep].float()[:, None],
                                det["keypoints"][keep][..., :2].float().flatten(1),
                                # keypoints_scores are logits; a sigmoid turns them into a 0-1 visibility.
                                torch.sigmoid(det["keypoints_scores"][keep].float()),
                            ],
                            1,
                        )
                        for det, keep in zip(detections, people)
                    ]
                )
                .cpu()
                .numpy()
            )  # and one more
            found = [i for i, n in enumerate(counts) if n]
            masks = dict(zip(found, self._person_masks([tensors[i] for i in found]))) if found else {}
        out, at = [], 0
        for i, (im, n) in enumerate(zip(images, counts)):
            dets = [
                Detection(
                    box=tuple(map(float, r[:4])),
                    score=float(r[4]),
                    keypoints=np.column_stack([r[5:39].reshape(17, 2), r[39:56]]),
                )
                for r in rows[at : at + n]
            ]
            at += n
            out.append(to_stored(dets, masks.get(i), im.shape[1], im.shape[0]))
        return out

    def _person_masks(self, tensors: list) -> list[np.ndarray]:
        """The person mask of each frame, at `mask_size` on the short side; frames of one size in
        one call, brought to the host in one transfer."""
        import torch
        import torch.nn.functional as F

        mean = torch.tensor(_IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(_IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        masks: list[np.ndarray | None] = [None] * len(tensors)
        by_shape: dict[tuple, list[int]] = {}
        for i, t in enumerate(tensors):
            by_shape.setdefault(tuple(t.shape), []).append(i)
        for (_, h, w), at in by_shape.items():
            batch = torch.stack([tensors[i] for i in at])
            scale = min(1.0, self.mask_size / min(h, w))
            if scale < 1:
                batch = F.interpolate(
                    batch,
                    size=(round(h * scale), round(w * scale)),
                    mode="bilinear",
                    antialias=True,
                    align_corners=False,
                )
            person = (self._segment((batch - mean) / std)["out"].argmax(1) == VOC_PERSON).cpu().numpy()
            for j, i in enumerate(at):
                masks[i] = person[j]
        return masks

    def close(self) -> None:
        self._keypoints = self._segment = None


def _on_device(image, device: str):
    """An RGB frame as a uint8 (H, W, 3) tensor on `device`: a numpy frame is uploaded, a tensor
    already there (NVDEC's frames) is used as it is."""
    import torch

    if isinstance(image, np.ndarray):
        return torch.from_numpy(image).to(device, non_blocking=True)
    return image.to(device)
