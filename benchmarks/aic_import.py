"""`evr import aic` throughput on an AIC-shaped package built from the sample videos.

Keyframes are written as 1280x720 JPEGs, the size of the organisers' keyframes; features are
random (import does not look at their values). Prints a table: keyframes per second of the whole
import, and of its thumbnail step with and without JPEG draft decoding (Pillow's reduced-scale
DCT), measured in this run on this machine.

    python benchmarks/aic_import.py --videos ../shared/data/videos --keyframes 600
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from evr.indexer.aic import find_package
from evr.indexer.run import run
from evr.indexer.settings import IndexSettings
from evr.indexer.sources import AicPackage
from evr.indexer.thumbnails import encode_thumbnail, image_thumbnail
from evr.storage import ModelInfo, Store

PER_VIDEO = 200  # keyframes per video, about an AIC news video's


def frames(videos: Path, count: int):
    """`count` frames from the sample videos, 1280x720."""
    made = 0
    for path in sorted(videos.rglob("*.mp4")):
        cap = cv2.VideoCapture(str(path))
        while made < count:
            ok, bgr = cap.read()
            if not ok:
                break
            for _ in range(4):  # keep every 5th frame
                cap.grab()
            yield cv2.resize(bgr, (1280, 720), interpolation=cv2.INTER_LINEAR)
            made += 1
        cap.release()
        if made >= count:
            return


def build(root: Path, videos: Path, count: int) -> list[Path]:
    images: list[Path] = []
    for i, bgr in enumerate(frames(videos, count)):
        video_id, n = f"L01_V{i // PER_VIDEO + 1:03d}", i % PER_VIDEO + 1
        folder = root / "Keyframes_L01" / "keyframes" / video_id
        folder.mkdir(parents=True, exist_ok=True)
        images.append(folder / f"{n:03d}.jpg")
        cv2.imwrite(str(images[-1]), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    (root / "map-keyframes").mkdir()
    (root / "clip-features-32").mkdir()
    rng = np.random.default_rng(0)
    for folder in sorted((root / "Keyframes_L01" / "keyframes").iterdir()):
        n = len(list(folder.iterdir()))
        with open(root / "map-keyframes" / f"{folder.name}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["n", "pts_time", "fps", "frame_idx"])
            w.writerows([k, k * 2.0, 25.0, k * 50] for k in range(1, n + 1))
        np.save(root / "clip-features-32" / f"{folder.name}.npy", rng.normal(size=(n, 512)).astype(np.float16))
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/videos")
    parser.add_argument("--keyframes", type=int, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pkg"
        images = build(root, args.videos, args.keyframes)
        t = time.perf_counter()
        for p in images:
            image_thumbnail(p, 320)
        draft = time.perf_counter() - t
        t = time.perf_counter()
        for p in images:
            rgb = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
            encode_thumbnail(rgb, 320)
        full = time.perf_counter() - t
        with Store(Path(tmp) / "data", writer=True) as store:
            t = time.perf_counter()
            package = AicPackage(IndexSettings(), find_package(root, [".mp4"]), ModelInfo("ViT-B-32", "openai", 512))
            report = run(store, IndexSettings(), package, progress=False)
            total = time.perf_counter() - t
    n = len(images)
    print(f"AIC import, {n} keyframes of 1280x720 in {report.videos_imported} videos")
    print(f"{'step':<36}{'keyframes/s':>12}")
    print(f"{'whole import (commit included)':<36}{n / total:>12.0f}")
    print(f"{'thumbnails, JPEG draft decode':<36}{n / draft:>12.0f}")
    print(f"{'thumbnails, full decode':<36}{n / full:>12.0f}")
    print(f"draft / full decode speed: {full / draft:.1f}x")


if __name__ == "__main__":
    main()
