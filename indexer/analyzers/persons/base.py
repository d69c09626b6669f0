"""What both person backends share: the detection record, box merging, and mask encoding."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from evr.storage.features import PersonPose, PersonsInFrame

from .pose_labels import pose_labels

MASK_WIDTH = 160  # stored masks are this wide: enough to show where people are, ~1 KB as PNG


@dataclass
class Detection:
    """A person in pixel coordinates, before it is stored."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    keypoints: np.ndarray  # (17, 3): x, y, visibility

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


def overlap(a: Detection, b: Detection) -> tuple[float, float]:
    """(intersection over union, intersection over the smaller box)."""
    x0, y0 = max(a.box[0], b.box[0]), max(a.box[1], b.box[1])
    x1, y1 = min(a.box[2], b.box[2]), min(a.box[3], b.box[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    if inter == 0:
        return 0.0, 0.0
    return inter / (a.area + b.area - inter), inter / max(1e-9, min(a.area, b.area))


def merge_detections(dets: list[Detection], iou: float = 0.3, containment: float = 0.6) -> list[Detection]:
    """One detection per person: drop boxes that enclose a group (they hold the centres of two
    or more other boxes), then keep the best of boxes that overlap or nest."""

    def centre_in(inner: Detection, outer: Detection) -> bool:
        cx, cy = (inner.box[0] + inner.box[2]) / 2, (inner.box[1] + inner.box[3]) / 2
        return outer.box[0] <= cx <= outer.box[2] and outer.box[1] <= cy <= outer.box[3]

    singles = [d for d in dets if sum(centre_in(o, d) for o in dets if o is not d and o.area < d.area) < 2]
    kept: list[Detection] = []
    for d in sorted(singles, key=lambda d: d.score, reverse=True):
        if not any(i >= iou or c >= containment for i, c in (overlap(d, k) for k in kept)):
            kept.append(d)
    return sorted(kept, key=lambda d: (d.box[0], d.box[1]))


def to_stored(dets: list[Detection], mask: np.ndarray | None, width: int, height: int) -> PersonsInFrame:
    """Pixel detections + full-frame boolean mask -> the stored, resolution-free record."""
    persons = []
    for d in dets:
        kps = d.keypoints
        persons.append(
            PersonPose(
                box=(d.box[0] / width, d.box[1] / height, d.box[2] / width, d.box[3] / height),
                score=float(d.score),
                keypoints=[(float(x / width), float(y / height), float(v)) for x, y, v in kps],
                labels=pose_labels(kps.tolist()),
            )
        )
    if mask is None or not mask.any():
        return PersonsInFrame(persons, 0.0, None)
    return PersonsInFrame(persons, float(mask.mean()), encode_mask(mask))


def encode_mask(mask: np.ndarray) -> bytes:
    h, w = mask.shape
    small = cv2.resize(
        mask.astype(np.uint8) * 255, (MASK_WIDTH, max(1, round(h * MASK_WIDTH / w))), interpolation=cv2.INTER_NEAREST
    )
    ok, buf = cv2.imencode(".png", small, [cv2.IMWRITE_PNG_BILEVEL, 1])
    if not ok:
        raise ValueError("PNG encoding of a person mask failed")
    return buf.tobytes()
