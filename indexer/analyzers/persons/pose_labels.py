"""Pose labels from COCO-17 keypoint geometry (pixel coordinates, y pointing down).

Every person gets exactly one posture label and, when it applies, "arms_raised":
    lying      the torso (mid-shoulder -> mid-hip) is 60 degrees or more from vertical
    bending    the torso leans 30-60 degrees while the thighs stay near vertical (< 50 degrees)
    sitting    the torso leans less than 60 degrees and the thighs are 50 degrees or more from vertical
    standing   the torso is within 30 degrees of vertical and the thighs within 50 degrees
    unknown    a shoulder, a hip or (for anything but lying) a knee is not visible enough
    arms_raised  a visible wrist is above its shoulder by 10% of the torso length or more
                 (of the shoulder width when the hips are out of view)
A keypoint counts as visible at visibility >= 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

COCO_KEYPOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
L_SHOULDER, R_SHOULDER, L_WRIST, R_WRIST, L_HIP, R_HIP, L_KNEE, R_KNEE = 5, 6, 9, 10, 11, 12, 13, 14
VISIBLE = 0.5

Keypoint = Sequence[float]  # x, y, visibility


def _mean(points: list[Keypoint]) -> tuple[float, float] | None:
    pts = [p for p in points if p[2] >= VISIBLE]
    if not pts:
        return None
    return sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)


def _angle_from_vertical(top: tuple[float, float], bottom: tuple[float, float]) -> float:
    """0 when `bottom` is straight below `top`, 90 when level, 180 when straight above."""
    dx, dy = bottom[0] - top[0], bottom[1] - top[1]
    return math.degrees(math.atan2(abs(dx), dy))


def pose_labels(kps: Sequence[Keypoint]) -> list[str]:
    shoulders = _mean([kps[L_SHOULDER], kps[R_SHOULDER]])
    hips = _mean([kps[L_HIP], kps[R_HIP]])
    posture = "unknown"
    torso_len = None
    if shoulders and hips:
        torso_len = math.dist(shoulders, hips)
        torso = _angle_from_vertical(shoulders, hips)
        thighs = [
            _angle_from_vertical(kps[h][:2], kps[k][:2])
            for h, k in ((L_HIP, L_KNEE), (R_HIP, R_KNEE))
            if kps[h][2] >= VISIBLE and kps[k][2] >= VISIBLE
        ]
        if torso >= 60:
            posture = "lying"
        elif thighs:
            thigh = sum(thighs) / len(thighs)
            if thigh >= 50:
                posture = "sitting"
            elif torso >= 30:
                posture = "bending"
            else:
                posture = "standing"
    labels = [posture]
    # Scale for "above": the torso, or for upper-body shots (no hips) the shoulder width.
    if torso_len is None and kps[L_SHOULDER][2] >= VISIBLE and kps[R_SHOULDER][2] >= VISIBLE:
        torso_len = math.dist(kps[L_SHOULDER][:2], kps[R_SHOULDER][:2])
    if torso_len:
        margin = 0.1 * torso_len
        for s, w in ((L_SHOULDER, L_WRIST), (R_SHOULDER, R_WRIST)):
            if kps[s][2] >= VISIBLE and kps[w][2] >= VISIBLE and kps[w][1] <= kps[s][1] - margin:
                labels.append("arms_raised")
                break
    return labels
