"""How well a person backend counts people, against counts made by hand on the sample videos.

    python benchmarks/person_counts.py [--backend mediapipe|torchvision] [--videos DIR]

The truth below was counted by eye on the listed frames (every `step`-th frame of each clip),
counting every person at least partly visible. vtest.avi is a street seen from above with many
small walkers; one-by-one-person-detection.mp4 has one person at a time walking in and out;
the ASL clip is one signer in close-up; the scene_cuts clips have nobody in them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evr.indexer.analyzers.persons import PersonAnalyzer, PersonSettings
from evr.indexer.decoders import open_video

# clip: (every step-th frame, hand counts of those frames in order)
TRUTH = {
    "opencv_samples/vtest.avi": (40, [3, 6, 7, 8, 7, 8, 7, 7, 6, 6, 3, 3, 4, 6, 6, 6, 6, 7, 8, 7]),
    "intel_samples/one-by-one-person-detection.mp4": (87, [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1]),
    "asl_gestures/book.mkv": (20, [1, 1, 1, 1]),
    "scene_cuts/counter.mp4": (10, [0, 0, 0]),
    "scene_cuts/testvideo.mp4": (48, [0] * 6),
    "scene_cuts/fades.mp4": (40, [0] * 6),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=Path("../shared/data/videos"))
    ap.add_argument("--backend", default="mediapipe", choices=["mediapipe", "torchvision"])
    args = ap.parse_args()
    analyzer = PersonAnalyzer(PersonSettings(backend=args.backend))
    print("| clip | frames | people (truth) | people found | exact | within 1 | mean abs error |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    totals = [0, 0, 0, 0, 0, 0.0]
    for clip, (step, truth) in TRUTH.items():
        src = open_video(str(args.videos / clip), ["decord", "pyav", "opencv"], 720)
        frames = [f.rgb for f in src.frames() if f.idx % step == 0][: len(truth)]
        src.close()
        found = [len(r.persons) for r in analyzer.analyze(frames)]
        errors = [abs(f - t) for f, t in zip(found, truth)]
        row = [
            len(truth),
            sum(truth),
            sum(found),
            sum(e == 0 for e in errors),
            sum(e <= 1 for e in errors),
            sum(errors),
        ]
        totals = [a + b for a, b in zip(totals, row)]
        print(f"| {Path(clip).name} | {row[0]} | {row[1]} | {row[2]} | {row[3]} | {row[4]} | {row[5] / row[0]:.2f} |")
    n = totals[0]
    print(
        f"| all ({analyzer.signature}) | {n} | {totals[1]} | {totals[2]} | {totals[3]} | {totals[4]} | "
        f"{totals[5] / n:.2f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
