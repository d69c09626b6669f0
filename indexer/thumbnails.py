"""Thumbnail images of keyframes (JPEG bytes; storage decides where they live)."""
from __future__ import annotations

import cv2
import numpy as np


def encode_thumbnail(rgb: np.ndarray, width: int, quality: int = 85) -> bytes:
    h, w = rgb.shape[:2]
    if w > width:
        rgb = cv2.resize(rgb, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
