"""Decoder backends on real edge-case files, checked against ffprobe's own frame timestamps."""
from __future__ import annotations

import subprocess

import pytest

from indexer.decoders import BACKENDS, DecodeError, open_video, scaled_size


def ffprobe_times(path) -> list[float]:
    """Presentation time of every frame, seconds since the file's start (as evr defines it)."""
    start = float(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=start_time", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True).stdout.strip() or 0)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
         "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True).stdout
    return [float(t.strip(",")) - start for t in out.split() if t.strip(",")]


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_vfr_timestamps_match_ffprobe_within_a_frame(videos, backend):
    path = videos / "scene_cuts/goldeneye-vfr-drop3.mp4"
    truth = ffprobe_times(path)
    src = open_video(str(path), [backend], 720)
    frames = [(f.idx, f.timestamp) for f in src.frames()]
    src.close()
    assert len(frames) == len(truth)
    # Frames were dropped from this 23.976 fps clip: frame_idx / fps drifts by whole seconds,
    # so only presentation times can pass the check below.
    nominal = 24000 / 1001
    assert max(abs(idx / nominal - t) for idx, t in enumerate(truth)) > 1.0
    for idx, ts in frames:
        assert abs(ts - truth[idx]) <= 1 / 24, (idx, ts, truth[idx])


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_rotated_video_is_upright_and_delayed_start_counts_from_zero(videos, backend):
    src = open_video(str(videos / "scene_cuts/issue-134-rotate.mp4"), [backend], 720)
    first = next(src.frames())
    src.close()
    # Stored 1280x544 with a -90 degree display matrix: shown 544 wide, 1280 tall.
    assert (src.info.width, src.info.height) == (544, 1280)
    assert first.rgb.shape == (1280, 544, 3)
    src = open_video(str(videos / "scene_cuts/delayed_start.mp4"), [backend], 720)
    times = [f.timestamp for f in src.frames()]
    src.close()
    assert times[0] == pytest.approx(0.0, abs=1e-3) and times[1] == pytest.approx(0.04, abs=1e-3)


def test_large_frames_are_scaled_to_max_short_side(videos):
    src = open_video(str(videos / "scene_cuts/issue-236-split-copy.mkv"), ["decord"], 360)
    frame = next(src.frames())
    src.close()
    assert (src.info.width, src.info.height) == (1920, 1080)  # the video's own size is kept
    assert frame.rgb.shape == (360, 640, 3)
    assert scaled_size(1920, 1080, 720) == (1280, 720)
    assert scaled_size(640, 480, 720) == (640, 480)


def test_corrupt_file_raises_decode_error_naming_every_backend(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    with pytest.raises(DecodeError) as err:
        open_video(str(bad), list(BACKENDS), 720)
    for name in BACKENDS:
        assert f"{name}:" in str(err.value)


def test_falls_back_to_next_backend_when_one_cannot_open(videos, monkeypatch):
    class Refuses:
        def __init__(self, path, max_short_side):
            raise DecodeError("cannot open")

    monkeypatch.setitem(BACKENDS, "decord", Refuses)
    src = open_video(str(videos / "msrvtt/video7010.mp4"), ["decord", "pyav", "opencv"], 720)
    assert src.info.backend == "pyav"
    assert sum(1 for _ in src.frames()) == src.info.frame_count
    src.close()
