"""Shot detectors side by side: found, missed and false boundaries, and frames per second.

    python benchmarks/shot_detectors.py [--videos ../shared/data/videos]

Three clips with known transitions, made from the sample videos:
- hard cuts: the 12 real segments of tests/test_keyframes.py joined by 11 cuts (two hard cases:
  a cut between two men in one dark room, and a fast pan that is no cut);
- dissolves: 5 segments joined by 4 half-second cross-dissolves (ffmpeg's xfade), 640x360;
- fades: scene_cuts/fades.mp4, two fades through black (the boundary: the darkest frame).
A boundary is found when a shot starts within 2 frames of a cut, inside a dissolve (or 2 frames
after it), or within 12 frames of a fade's darkest frame; any other start is false.

Detectors: `content` (PySceneDetect's, the CPU default), `transnetv2` (evr's: the network with the
content detector beside it, indexer/shots/transnetv2.py) and the network alone, as the wheel's
own `predict_frames` + `predictions_to_scenes` give it. Frames per second are of detection alone
on decoded frames held in memory, on this machine's CPU (the network is meant for a GPU).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evr.indexer.decoders import open_video  # noqa: E402
from evr.indexer.keyframes import KeyframeSelector  # noqa: E402
from evr.indexer.pixels import tiny_frame  # noqa: E402
from evr.indexer.settings import KeyframeSettings, ShotSettings  # noqa: E402
from tests.test_keyframes import CUT_FRAMES, make_cuts_clip  # noqa: E402

FPS = 25
DISSOLVES = [
    ("msrvtt/video7010.mp4", 2),
    ("intel_samples/car-detection.mp4", 2),
    ("asl_gestures/again.mkv", 0),
    ("msrvtt/video7021.mp4", 5),
    ("opencv_samples/vtest.avi", 0),
]
SEGMENT_S, DISSOLVE_S = 3.0, 0.5


def cuts_clip(videos: Path, out: Path) -> list[tuple[int, int]]:
    make_cuts_clip(videos, out)
    return [(int(c), int(c)) for c in CUT_FRAMES]


def dissolves_clip(videos: Path, out: Path) -> list[tuple[int, int]]:
    args, chains = [], []
    for i, (rel, start) in enumerate(DISSOLVES):
        args += ["-ss", str(start), "-t", str(SEGMENT_S), "-i", str(videos / rel)]
        chains.append(f"[{i}:v]fps={FPS},scale=640:360,setsar=1,format=yuv420p,setpts=PTS-STARTPTS[v{i}]")
    last, spans = "v0", []
    for i in range(1, len(DISSOLVES)):
        offset = i * (SEGMENT_S - DISSOLVE_S)
        chains.append(f"[{last}][v{i}]xfade=transition=fade:duration={DISSOLVE_S}:offset={offset}[x{i}]")
        last = f"x{i}"
        spans.append((round(offset * FPS), round((offset + DISSOLVE_S) * FPS)))
    _encode(args, ";".join(chains), out, last)
    return spans


def fades_truth(path: Path) -> list[tuple[int, int]]:
    src = open_video(str(path), ["pyav"], 720)
    levels = np.array([f.rgb.mean() for f in src.frames()])
    src.close()
    dips = [int(np.argmin(levels[a:b])) + a for a, b in ((40, 125), (125, 210))]
    return [(d - 10, d + 10) for d in dips]


def _encode(args, graph, out, label="out"):
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
            f"[{label}]",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            str(out),
        ],
        check=True,
    )


def frames_of(path: Path):
    src = open_video(str(path), ["pyav"], 720)
    frames = list(src.frames())
    src.close()
    return frames, src.info.fps


def evr_starts(frames, fps, detector: str) -> tuple[list[int], float]:
    sel = KeyframeSelector(KeyframeSettings(), ShotSettings(detector=detector), fps, "cpu")
    t = time.perf_counter()
    for frame in frames:
        sel.feed(frame)
    sel.finish()
    seconds = time.perf_counter() - t
    return [s.start_frame for s in sel.shots(0.0)][1:], seconds


def network_alone(frames) -> tuple[list[int], float]:
    import torch

    from evr.indexer.shots.transnetv2 import network

    net = network("cpu")
    t = time.perf_counter()
    tiny = torch.stack([tiny_frame(f.rgb, 48, 27) for f in frames])
    single, _ = net.predict_frames(tiny, quiet=True)
    scenes = net.predictions_to_scenes(single.numpy())
    return [int(start) for start, _ in scenes if start > 0], time.perf_counter() - t


def score(starts: list[int], truth: list[tuple[int, int]]) -> tuple[int, int, int]:
    hit = [any(a - 2 <= s <= b + 2 for s in starts) for a, b in truth]
    false = sum(not any(a - 2 <= s <= b + 2 for a, b in truth) for s in starts)
    return sum(hit), len(truth) - sum(hit), false


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=REPO.parent / "shared/data/videos")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clips = {
            "hard cuts (11)": (Path(tmp) / "cuts.mp4", cuts_clip),
            "dissolves (4)": (Path(tmp) / "dissolves.mp4", dissolves_clip),
            "fades through black (2)": (args.videos / "scene_cuts/fades.mp4", None),
        }
        rows = []
        totals: dict[str, list[float]] = {}
        for name, (path, make) in clips.items():
            truth = make(args.videos, path) if make else fades_truth(path)
            frames, fps = frames_of(path)
            for detector, run in (
                ("content", lambda: evr_starts(frames, fps, "content")),
                ("transnetv2 (evr)", lambda: evr_starts(frames, fps, "transnetv2")),
                ("network alone", lambda: network_alone(frames)),
            ):
                starts, seconds = run()
                found, missed, false = score(starts, truth)
                rows.append((name, detector, found, missed, false))
                total = totals.setdefault(detector, [0, 0.0])
                total[0] += len(frames)
                total[1] += seconds
    print(f"{'clip':26} {'detector':18} {'found':>5} {'missed':>6} {'false':>5}")
    for name, detector, found, missed, false in rows:
        print(f"{name:26} {detector:18} {found:5} {missed:6} {false:5}")
    print()
    for detector, (frames, seconds) in totals.items():
        print(f"{detector:18} {frames / seconds:8.1f} frames/s on this CPU")


if __name__ == "__main__":
    main()
