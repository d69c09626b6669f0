"""Offline persons and poses: OpenCV's HOG pedestrian detector finds people, BlazePose
(mediapipe 0.10.21, model_complexity=1, bundled) reads each one's pose and mask.

BlazePose sees one person per image, so it runs on the whole frame (close-ups, where HOG's
64x128 full-body window finds nothing) and on a crop around every HOG box (street scenes). A HOG
box counts as a person only when BlazePose finds a body in its crop: that rejects most of HOG's
false alarms on texture. The mask is the union of BlazePose's segmentation of each person found.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os

import cv2
import numpy as np

from evr.storage.features import PersonsInFrame

from ...encoders import ModelUnavailableError
from .base import Detection, merge_detections, to_stored

log = logging.getLogger(__name__)

# BlazePose's 33 landmarks -> COCO-17 order (nose, eyes, ears, shoulders, elbows, wrists, hips,
# knees, ankles). BlazePose's eye landmarks 2 and 5 are the eye centres.
BLAZEPOSE_TO_COCO = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
CROP_HEIGHT = 256  # person crops are scaled to this height before BlazePose
HOG_SHORT_SIDE = 900  # frames are upscaled (at most 2x) to about this, so small people fit HOG's window
HOG_HIT_THRESHOLD = 0.3  # SVM margin a HOG window needs (0 finds more, and more false alarms)
MIN_BODY_VISIBILITY = 0.5
# The whole-frame pass is for close-ups; small people are HOG's. Its box must be this tall (of the frame).
MIN_WHOLE_FRAME_HEIGHT = 0.25  # mean visibility of the 17 keypoints for a BlazePose result to count


def mediapipe_installed() -> bool:
    return importlib.util.find_spec("mediapipe") is not None


class MediapipePersons:
    name = "mediapipe"

    def __init__(self) -> None:
        self._pose = None
        self._hog = None
        self._noisy = True  # no person found yet: the landmark warning is still to come

    def load(self) -> None:
        if self._pose is not None:
            return
        if not mediapipe_installed():
            raise ModelUnavailableError(
                'persons.backend = "mediapipe" needs mediapipe 0.10.21, an extra that holds numpy '
                'below 2: pip install "evr[mediapipe]" (or set persons.backend = "torchvision")'
            )
        import mediapipe as mp

        pose = mp.solutions.pose.Pose(
            static_image_mode=True, model_complexity=1, enable_segmentation=True, min_detection_confidence=0.5
        )
        # Its C++ code (TensorFlow Lite, absl) writes lines such as "W0000 ...
        # inference_feedback_manager.cc:114] Feedback manager requires ..." straight to the
        # process's stderr, where no environment variable reaches them: once as its graph starts
        # (the first frame) and once when it first projects a person's landmarks. Until it has
        # done both, it runs with stderr muted, unless debugging (-vv).
        with _native_stderr_muted():
            pose.process(np.zeros((64, 64, 3), np.uint8))
        self._pose = pose
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def analyze(self, images: list[np.ndarray]) -> list[PersonsInFrame]:
        self.load()
        return [self._frame(rgb) for rgb in images]

    def _frame(self, rgb: np.ndarray) -> PersonsInFrame:
        h, w = rgb.shape[:2]
        mask = np.zeros((h, w), bool)
        dets: list[Detection] = []
        whole = self._pose_in(rgb, (0, 0, w, h), mask)
        if whole is not None:
            dets.append(whole)
        for box in self._hog_boxes(rgb):
            found = self._pose_in(rgb, box, mask, hog_box=box)
            if found is not None:
                dets.append(found)
        return to_stored(merge_detections(dets), mask, w, h)

    def _hog_boxes(self, rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
        h, w = rgb.shape[:2]
        up = min(2.0, max(1.0, HOG_SHORT_SIDE / min(h, w)))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if up > 1.0:
            gray = cv2.resize(gray, None, fx=up, fy=up, interpolation=cv2.INTER_LINEAR)
        # groupThreshold=0 returns raw windows: HOG's own grouping merges people walking side by
        # side into one box; non-maximum suppression keeps them apart (measured on vtest.avi).
        rects, weights = self._hog.detectMultiScale(
            gray, hitThreshold=HOG_HIT_THRESHOLD, winStride=(8, 8), padding=(8, 8), scale=1.05, groupThreshold=0
        )
        if len(rects) == 0:
            return []
        keep = np.ravel(cv2.dnn.NMSBoxes([list(map(int, r)) for r in rects], np.ravel(weights).tolist(), 0.0, 0.3))
        return [(x / up, y / up, (x + bw) / up, (y + bh) / up) for x, y, bw, bh in (rects[i] for i in keep)]

    def _pose_in(self, rgb, region, mask, hog_box=None) -> Detection | None:
        """BlazePose on a region (with a margin when it is a HOG box); adds the person's
        segmentation to `mask`. Returns None when no clear body is there."""
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = region
        if hog_box is not None:  # HOG boxes are tight: give BlazePose some context
            mx, my = 0.25 * (x1 - x0), 0.1 * (y1 - y0)
            x0, y0, x1, y1 = x0 - mx, y0 - my, x1 + mx, y1 + my
        x0, y0, x1, y1 = int(max(0, x0)), int(max(0, y0)), int(min(w, x1)), int(min(h, y1))
        if x1 - x0 < 8 or y1 - y0 < 16:
            return None
        crop = rgb[y0:y1, x0:x1]
        scale = CROP_HEIGHT / crop.shape[0] if hog_box is not None else 1.0
        if scale != 1.0:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        with _native_stderr_muted() if self._noisy else contextlib.nullcontext():
            result = self._pose.process(np.ascontiguousarray(crop))
        if result.pose_landmarks is None:
            return None
        self._noisy = False
        lms = result.pose_landmarks.landmark
        cw, ch = x1 - x0, y1 - y0
        kps = np.array([[x0 + lms[i].x * cw, y0 + lms[i].y * ch, lms[i].visibility] for i in BLAZEPOSE_TO_COCO])
        score = float(kps[:, 2].mean())
        if score < MIN_BODY_VISIBILITY:
            return None
        if result.segmentation_mask is not None:
            seg = cv2.resize(result.segmentation_mask, (cw, ch), interpolation=cv2.INTER_LINEAR) > 0.5
            mask[y0:y1, x0:x1] |= seg
        if hog_box is not None:
            box = hog_box
        else:  # the whole frame: the box is where the visible keypoints are, with a margin
            vis = kps[kps[:, 2] >= 0.5][:, :2]
            (bx0, by0), (bx1, by1) = vis.min(axis=0), vis.max(axis=0)
            pad = 0.15 * max(bx1 - bx0, by1 - by0)
            box = (max(0.0, bx0 - pad), max(0.0, by0 - pad), min(float(w), bx1 + pad), min(float(h), by1 + pad))
            if box[3] - box[1] < MIN_WHOLE_FRAME_HEIGHT * h:
                return None  # a "body" this small in a whole-frame pass was an object (seen: a table)
        return Detection(box=tuple(float(v) for v in box), score=score, keypoints=kps)

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None


@contextlib.contextmanager
def _native_stderr_muted():
    """File descriptor 2 goes to /dev/null for the block, unless the log level is DEBUG."""
    if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
