"""Index time with the work in this process, on 1 local Ray worker and on 2.

Indexes the same folder three times into fresh data directories (ViT-B-32 with random weights
unless told otherwise; OCR and persons as --analyzers says) and prints a table: wall seconds,
videos per minute, and each run's time as a ratio of the in-process run. Ray's start
(`ray.init` took 6.9 s in one try here) and each worker's model load are inside the times, as a
user sees them.

    python benchmarks/workers.py --videos ../shared/data/videos/msrvtt [--analyzers] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile
import time
from pathlib import Path

from evr.indexer.analyzers import features_off
from evr.indexer.analyzers.ocr import OcrSettings
from evr.indexer.analyzers.persons import PersonSettings
from evr.indexer.run import run
from evr.indexer.runners import RayRunner
from evr.indexer.settings import ClipSettings, IndexSettings
from evr.indexer.sources import VideoFiles
from evr.storage import Store


def index_with(paths: list[Path], settings: IndexSettings, workers: int) -> tuple[float, int, int]:
    """(seconds, videos indexed, keyframes) of one index run into a fresh data directory."""
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp), writer=True) as store:
        settings = dataclasses.replace(settings, run=dataclasses.replace(settings.run, workers=workers))
        t = time.perf_counter()
        # workers=0: the Indexer's own in-process runner; else Ray, even for one worker.
        runner = RayRunner(settings) if workers else None
        report = run(store, settings, VideoFiles(settings, paths, runner=runner), progress=False)
        return time.perf_counter() - t, report.videos_indexed, report.keyframes_added


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=Path("../shared/data/videos/msrvtt"))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts to time")
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--pretrained", default="none")
    ap.add_argument("--analyzers", action="store_true", help="OCR (tesseract) and persons (mediapipe) on")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    settings = IndexSettings(
        clip=ClipSettings(model=args.model, pretrained=args.pretrained, device="cpu"),
        features={
            **features_off(),
            "ocr": OcrSettings(enabled=args.analyzers, backend="tesseract"),
            "persons": PersonSettings(enabled=args.analyzers, backend="mediapipe"),
        },
    )
    print(
        f"{args.videos}: CLIP {args.model} ({args.pretrained}), analyzers {'on' if args.analyzers else 'off'}, "
        f"{os.cpu_count()} CPUs"
    )
    rows = [("in this process", *index_with([args.videos], settings, 0))]
    for n in args.workers:
        rows.append((f"{n} Ray worker{'s' if n > 1 else ''}", *index_with([args.videos], settings, n)))
    base = rows[0][1]
    print("\n| where the work ran | seconds | videos | keyframes | videos/min | time / in-process |")
    print("|---|---|---|---|---|---|")
    for name, seconds, n_videos, keyframes in rows:
        per_minute = 60 * n_videos / seconds
        print(f"| {name} | {seconds:.1f} | {n_videos} | {keyframes} | {per_minute:.1f} | {seconds / base:.2f} |")


if __name__ == "__main__":
    main()
