"""Keyframe selection on synthetic frame sequences with known cuts, and on a real clip."""
from __future__ import annotations

import numpy as np

from indexer.decoders import Frame, open_video
from indexer.keyframes import KeyframeSelector, NearDuplicateFilter, select_keyframes
from indexer.settings import KeyframeSettings


def synthetic(colors_per_shot: list[tuple[int, int, int]], frames_per_shot: int, fps: float = 25.0):
    """Shots of flat colour with a little noise; a cut between each."""
    rng = np.random.default_rng(0)
    idx = 0
    for color in colors_per_shot:
        for _ in range(frames_per_shot):
            img = np.clip(np.array(color) + rng.integers(-3, 4, (72, 128, 3)), 0, 255).astype(np.uint8)
            yield Frame(idx, idx / fps, img)
            idx += 1


def test_one_keyframe_per_shot_at_the_cut():
    frames = synthetic([(220, 40, 40), (20, 120, 20), (40, 40, 230)], frames_per_shot=25)
    picks = list(select_keyframes(frames, KeyframeSettings(max_gap_s=10.0)))
    assert [(c.frame.idx, c.shot) for c in picks] == [(0, 0), (25, 1), (50, 2)]


def test_long_shot_gets_a_keyframe_every_max_gap():
    frames = synthetic([(120, 120, 120)], frames_per_shot=250)  # 10 s, one shot
    picks = list(select_keyframes(frames, KeyframeSettings(max_gap_s=2.0)))
    assert [c.frame.idx for c in picks] == [0, 50, 100, 150, 200]
    assert {c.shot for c in picks} == {0}


def test_flicker_faster_than_min_shot_is_not_a_cut():
    # The picture flips every frame (25 fps); cuts may come at most every min_shot_s = 0.4 s,
    # so over 20 frames only frame 0 (start) and frame 10 (0.4 s later) start shots.
    sel = KeyframeSelector(KeyframeSettings(max_gap_s=100.0, min_shot_s=0.4))
    picks = []
    for i in range(20):
        color = (250, 250, 250) if i % 2 else (5, 5, 5)
        c = sel.feed(Frame(i, i / 25, np.full((36, 64, 3), color, np.uint8)))
        if c:
            picks.append((c.frame.idx, c.shot))
    assert picks == [(0, 0), (10, 1)]


def test_near_duplicate_filter_works_within_a_shot_only():
    a = np.array([1.0, 0.0])
    b = np.array([0.99, np.sqrt(1 - 0.99**2)])  # cos(a, b) = 0.99
    c = np.array([0.0, 1.0])
    f = NearDuplicateFilter(0.95)
    assert [f.keep(0, a), f.keep(0, b), f.keep(0, c), f.keep(1, c)] == [True, False, True, True]


def test_real_clip_with_hard_cuts(videos):
    src = open_video(str(videos / "scene_cuts/testvideo.mp4"), ["decord"], 720)
    picks = list(select_keyframes(src.frames(), KeyframeSettings()))
    src.close()
    shots = [c.shot for c in picks]
    times = [c.frame.timestamp for c in picks]
    assert shots == sorted(shots) and max(shots) >= 2  # the clip has several shots
    frame_time = 1 / src.info.fps
    assert all(b - a <= 2.0 + frame_time + 1e-6 for a, b in zip(times, times[1:]))  # max_gap_s holds
