"""Decoding speed of each backend: frames per second, at the sample videos' own sizes and on
the samples transcoded to H.264 at 1280x720 and 1920x1080 (benchmarks/throughput.py's cache),
with frames scaled to `[decode] max_short_side` as indexing scales them.

    python benchmarks/decoders.py [--videos DIR] [--sizes native 1280x720 1920x1080] [--repeats 3]

Each backend decodes every file of a size in turn, the order of backends alternating between
repeats; the median of the repeats is printed, beside decord's (the default CPU decoder) in the
same run. `nvdec` is timed only where an NVIDIA driver is loaded.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import transcoded  # noqa: E402

from evr.indexer.decoders import HOST_BACKENDS, open_video  # noqa: E402
from evr.indexer.decoders.torchcodec_backend import _nvidia_driver  # noqa: E402
from evr.indexer.settings import RunSettings  # noqa: E402


def decode_all(files: list[Path], backend: str, max_short_side: int) -> int:
    frames = 0
    for f in files:
        src = open_video(str(f), [backend], max_short_side)
        for _ in src.frames():
            frames += 1
        src.close()
    return frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/videos/msrvtt")
    ap.add_argument("--sizes", nargs="+", default=["native", "1280x720", "1920x1080"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-short-side", type=int, default=720)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/evr/transcoded")
    args = ap.parse_args()
    backends = [b for b in ("decord", "pyav", "torchcodec", "opencv") if b in HOST_BACKENDS]
    if _nvidia_driver():
        backends.append("nvdec")
    import torch  # noqa: F401  (loaded once here, not inside the first backend's time)

    print(f"| size | backend | frames | frames/s (median of {args.repeats}) | x decord |")
    print("|---|---|---:|---:|---:|")
    for size in args.sizes:
        folder = transcoded(args.videos, size, args.cache)
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in RunSettings().extensions and p.is_file())
        rates: dict[str, list[float]] = {b: [] for b in backends}
        counts: dict[str, int] = {}
        for repeat in range(args.repeats):
            for backend in backends if repeat % 2 == 0 else reversed(backends):
                t = time.perf_counter()
                counts[backend] = decode_all(files, backend, args.max_short_side)
                rates[backend].append(counts[backend] / (time.perf_counter() - t))
        base = statistics.median(rates["decord"])
        for backend in backends:
            rate = statistics.median(rates[backend])
            print(f"| {size} | {backend} | {counts[backend]:,} | {rate:,.0f} | {rate / base:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
