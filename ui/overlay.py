"""What the analyzers found in a keyframe, drawn on it: each feature's shapes (storage/features:
text boxes, people's boxes, keypoints and where people are), so a user can check what a
filter or a hit's facts rest on."""
from __future__ import annotations

import cv2
import numpy as np

from storage.features.base import Shape

COLOURS = [(255, 64, 64), (64, 160, 255), (255, 200, 0), (80, 220, 120)]  # RGB, one per feature
VISIBLE = 0.5  # keypoints seen at least this surely are drawn


def draw_shapes(image: np.ndarray, shapes: dict[str, list[Shape]]) -> np.ndarray:
    """A copy of the RGB `image` with every feature's shapes on it, one colour per feature."""
    out = image.copy()
    h, w = out.shape[:2]
    for colour, found in zip(COLOURS * 4, shapes.values()):
        for shape in found:
            if shape.mask is not None:  # tint where it is, at the image's size
                mask = cv2.resize(shape.mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
                out[mask] = (0.6 * out[mask] + 0.4 * np.array(colour)).astype(np.uint8)
            if shape.box is not None:
                x0, y0, x1, y1 = (int(round(v)) for v in (shape.box[0] * w, shape.box[1] * h,
                                                           shape.box[2] * w, shape.box[3] * h))
                cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2)
                cv2.putText(out, _ascii(shape.label), (x0 + 2, max(y0 - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                            colour, 1, cv2.LINE_AA)
            for x, y, seen in shape.points:
                if seen >= VISIBLE:
                    cv2.circle(out, (int(x * w), int(y * h)), 3, colour, -1)
    return out


def _ascii(label: str) -> str:
    """OpenCV's fonts draw ASCII only: other letters would come out as '?' (the app lists the
    full labels beside the frame)."""
    return label.encode("ascii", "replace").decode()
