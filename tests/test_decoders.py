"""Decoder backends on real edge-case files, checked against ffprobe's own frame timestamps."""

from __future__ import annotations

import subprocess

import pytest

from evr.indexer.decoders import BACKENDS, HOST_BACKENDS, DecodeError, open_video, scaled_size
from evr.indexer.decoders.base import presentation_times

pytestmark = pytest.mark.integration


def ffprobe_times(path) -> list[float | None]:
    """ffmpeg's own time of every frame ("best effort": the pts, else the decode time when a
    file gives no pts), seconds since the file's start (as evr defines it); None where ffmpeg
    has none either."""
    start = float(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=start_time", "-of", "csv=p=0", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        or 0
    )
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=best_effort_timestamp_time",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [None if t.strip(",") == "N/A" else float(t.strip(",")) - start for t in out.split() if t.strip(",")]


def check_times(times: list[float], truth: list[float | None], fps: float, path) -> None:
    """Every frame at ffmpeg's time (to 1 ms); one ffmpeg has no time for one frame later than the
    previous one (evr's documented fallback: the previous time plus 1 / fps)."""
    assert len(times) == len(truth), path
    assert all(b >= a for a, b in zip(times, times[1:])), f"{path}: times go back"
    for i, (ts, want) in enumerate(zip(times, truth)):
        want = want if want is not None else times[i - 1] + 1 / fps
        assert abs(ts - want) <= 1e-3, (path, i, ts, want)


def sample_videos(videos) -> list:
    return sorted(p for p in videos.rglob("*") if p.suffix in (".mp4", ".mkv", ".avi"))


@pytest.mark.e2e  # every frame of every sample video, with each decoder
def test_every_sample_video_decodes_at_ffmpegs_frame_times(videos):
    """The decoders as configured by default (the first that opens a file decodes it): every
    frame of every sample video at its true time, never a sentinel or a time counted from
    elsewhere (Megamind.avi's packed B-frames gave -3.85e17 s and times 7.5 s early)."""
    for path in sample_videos(videos):
        src = open_video(str(path), ["decord", "pyav", "opencv"], 96)
        times = [f.timestamp for f in src.frames()]
        src.close()
        check_times(times, ffprobe_times(path), src.info.fps, path)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_an_avi_without_presentation_times_gets_true_times_or_is_left_to_the_next_decoder(videos, backend):
    path = videos / "opencv_samples/Megamind.avi"
    truth = ffprobe_times(path)
    assert sum(t is None for t in truth) == 1  # ffmpeg itself has no time for its last frame
    if backend == "decord":  # decord gives no time to most frames: it declines the file
        with pytest.raises(DecodeError, match="frame times are missing or out of order"):
            open_video(str(path), [backend], 720)
        return
    src = open_video(str(path), [backend], 720)
    times = [f.timestamp for f in src.frames()]
    src.close()
    if backend == "torchcodec":  # its decoder gives no picture for the last packet, which has no time
        assert len(times) == len(truth) - 1
        truth = truth[:-1]
    check_times(times, truth, src.info.fps, path)
    assert times[182] == pytest.approx(7.6326, abs=1e-3)


def test_times_a_demuxer_attached_to_the_wrong_frames_are_put_back_in_order():
    # Packed B-frames: the right times, two of every three swapped; one frame without a time.
    given = [(i, t) for i, t in enumerate([0.04, 0.08, 0.12, 0.20, 0.16, 0.24, 0.32, 0.28, None, 0.40])]
    out = [t for _, t in presentation_times(iter(given), fps=25)]
    assert out == pytest.approx([0.04, 0.08, 0.12, 0.16, 0.20, 0.24, 0.28, 0.32, 0.36, 0.40])
    sentinel = [(0, -3.846918712862966e17), (1, float("nan")), (2, -0.5), (3, 0.12)]
    assert [t for _, t in presentation_times(iter(sentinel), fps=25)] == pytest.approx([0.0, 0.04, 0.04, 0.12])


@pytest.mark.parametrize("backend", HOST_BACKENDS)
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


@pytest.mark.parametrize("backend", HOST_BACKENDS)
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
    """Every backend that tried says why; one that cannot run on this machine at all (NVDEC
    without a GPU) is no reason the file failed, unless it was the only one."""
    from evr.indexer.decoders.torchcodec_backend import _nvidia_driver

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    with pytest.raises(DecodeError) as err:
        open_video(str(bad), list(BACKENDS), 720)
    for name in HOST_BACKENDS:
        assert f"{name}:" in str(err.value)
    if not _nvidia_driver():
        assert "nvdec" not in str(err.value)
        with pytest.raises(DecodeError, match="^nvdec: no CUDA device$"):
            open_video(str(bad), ["nvdec"], 720)


def test_falls_back_to_next_backend_when_one_cannot_open(videos, monkeypatch):
    class Refuses:
        def __init__(self, path, max_short_side):
            raise DecodeError("cannot open")

    monkeypatch.setitem(BACKENDS, "decord", Refuses)
    src = open_video(str(videos / "msrvtt/video7010.mp4"), ["decord", "pyav", "opencv"], 720)
    assert src.info.backend == "pyav"
    assert sum(1 for _ in src.frames()) == src.info.frame_count
    src.close()
