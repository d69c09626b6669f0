"""What the analyzers found in a keyframe, drawn on it: each feature's shapes (storage/features:
text boxes, people's boxes, keypoints and where people are), so a user can check what a
filter or a hit's facts rest on."""

from __future__ import annotations

import cv2
import numpy as np

from evr.storage.features.base import Shape

COLOURS = [(255, 64, 64), (64, 160, 255), (255, 200, 0), (80, 220, 120)]  # RGB, one per feature
VISIBLE = 0.5  # keypoints seen at least this surely are drawn
LABEL_SCALE = 0.4  # OpenCV's font scale of the labels (about 9 pixels high)


def draw_shapes(image: np.ndarray, shapes: dict[str, list[Shape]]) -> np.ndarray:
    """A copy of the RGB `image` with every feature's shapes on it, one colour per feature."""
    out = image.copy()
    h, w = out.shape[:2]
    labels: list[tuple[int, int, int, int]] = []  # where labels went: the next one goes clear of them
    for colour, found in zip(COLOURS * 4, shapes.values()):
        for shape in found:
            if shape.mask is not None:  # tint where it is, at the image's size
                mask = cv2.resize(shape.mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
                out[mask] = (0.6 * out[mask] + 0.4 * np.array(colour)).astype(np.uint8)
            if shape.box is not None:
                x0, y0, x1, y1 = (
                    int(round(v)) for v in (shape.box[0] * w, shape.box[1] * h, shape.box[2] * w, shape.box[3] * h)
                )
                cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2)
                _label(out, _ascii(shape.label), x0, y0, colour, labels)
            for x, y, seen in shape.points:
                if seen >= VISIBLE:
                    cv2.circle(out, (int(x * w), int(y * h)), 3, colour, -1)
    return out


def _label(out: np.ndarray, text: str, x0: int, y0: int, colour, taken: list) -> None:
    """A box's label above its top left corner, inside the frame (never cut at an edge) and below
    any label already there (never over it), on a dark band so it reads on any picture."""
    h, w = out.shape[:2]
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, LABEL_SCALE, 1)
    x = max(0, min(x0, w - tw - 5))  # the band spans tw + 5 pixels, both of its edges filled
    y = y0 - 3 - base if y0 - 3 - base - th - 3 >= 0 else y0 + th + 5  # the baseline: above the box, else inside
    while any(x < bx1 and bx0 < x + tw + 4 and y - th - 3 < by1 and by0 < y + base for bx0, by0, bx1, by1 in taken):
        y += th + base + 4  # the band's height: rectangle() fills both of its edges
    y = min(y, h - base - 1)
    taken.append((x, y - th - 3, x + tw + 4, y + base))
    cv2.rectangle(out, (x, y - th - 3), (x + tw + 4, y + base), (0, 0, 0), -1)
    cv2.putText(out, text, (x + 2, y), cv2.FONT_HERSHEY_SIMPLEX, LABEL_SCALE, colour, 1, cv2.LINE_AA)


def _ascii(label: str) -> str:
    """OpenCV's fonts draw ASCII only: other letters would come out as '?' (the app lists the
    full labels beside the frame)."""
    return label.encode("ascii", "replace").decode()
