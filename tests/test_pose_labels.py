"""Pose labels on hand-made COCO-17 skeletons (pixel coordinates, y down)."""

from __future__ import annotations

import pytest

from evr.indexer.analyzers.persons.pose_labels import pose_labels

pytestmark = pytest.mark.unit

HIDDEN = (0.0, 0.0, 0.0)


def skeleton(**points) -> list[tuple[float, float, float]]:
    names = [
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
    ]
    return [(*points[n], 1.0) if n in points else HIDDEN for n in names]


def body(shoulder_y=100, hip=(100, 200), knee=(100, 300), wrist=(100, 190), dx_torso=0):
    """Both sides at the same place: enough for the geometry."""
    sx = hip[0] - dx_torso
    return skeleton(
        left_shoulder=(sx - 20, shoulder_y),
        right_shoulder=(sx + 20, shoulder_y),
        left_hip=(hip[0] - 15, hip[1]),
        right_hip=(hip[0] + 15, hip[1]),
        left_knee=(knee[0] - 15, knee[1]),
        right_knee=(knee[0] + 15, knee[1]),
        left_wrist=(sx - 25, wrist[1]),
        right_wrist=(sx + 25, wrist[1]),
    )


@pytest.mark.parametrize(
    "kps, expected",
    [
        (body(), ["standing"]),
        (body(wrist=(100, 40)), ["standing", "arms_raised"]),
        (body(knee=(200, 210)), ["sitting"]),  # thighs level
        (body(dx_torso=80), ["bending"]),  # torso leans ~39 degrees, legs straight
        (
            skeleton(left_shoulder=(100, 200), right_shoulder=(100, 210), left_hip=(220, 205), right_hip=(220, 215)),
            ["lying"],
        ),
        (skeleton(left_shoulder=(80, 100), right_shoulder=(120, 100), left_wrist=(70, 150)), ["unknown"]),
        (skeleton(left_shoulder=(80, 100), right_shoulder=(120, 100), left_wrist=(70, 50)), ["unknown", "arms_raised"]),
        (skeleton(left_shoulder=(80, 100), left_hip=(80, 200)), ["unknown"]),  # no knees: cannot tell
        ([HIDDEN] * 17, ["unknown"]),
    ],
)
def test_labels(kps, expected):
    assert pose_labels(kps) == expected


def test_weak_keypoints_do_not_count():
    kps = body(knee=(200, 210))
    weak = [(x, y, 0.3) if i in (13, 14) else (x, y, v) for i, (x, y, v) in enumerate(kps)]
    assert pose_labels(weak) == ["unknown"]
