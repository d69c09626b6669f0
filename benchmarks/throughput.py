"""Index throughput: decoding in the writer's process against decode workers feeding one batched
model stage (indexer/runners/streaming.py), on the same archive in one run of this script.

The archive is a folder of videos (default: every sample video), copied under several names
(--repeat) to make a longer one. Each configuration indexes it into a fresh data directory in a
child process of its own (so each has its own peak memory), CLIP only unless --persons; then
the model's own ceiling is measured in this process: CLIP on batches of already preprocessed
tensors, the most the model stage could do. Printed per configuration: keyframes, keyframes/s
of the model stage (keyframes / CLIP seconds), x real time of the whole run (seconds of video
per second), wall seconds, each stage's share of the stage time, peak RSS of the run (its
decode workers included) and peak GPU memory.

    python benchmarks/throughput.py [--videos DIR] [--repeat 2] [--workers 1 0] [--model ViT-B-32]
        [--pretrained none] [--device auto] [--batch-size 64] [--persons] [--detect-size 800]

A realistic archive (--sizes 1280x720 1920x1080): the sample videos are first transcoded to
H.264 at that size (scaled to fit, padded), 25 fps, into a cache folder (--cache, kept between
runs), so that decoding costs what a real AIC or news archive's does; "native" is the sample
videos as they are (320x240 to 1920x1080). --decoders picks the decoding of each configuration:
"cpu" (decord, PyAV, OpenCV, with the shot detector `auto` picks) and "gpu" (NVDEC first). One
table row per size x decoders x decode workers, all from one call.

    python benchmarks/throughput.py [--videos DIR] [--repeat 2] [--workers 1 0] [--model ViT-B-32]
        [--pretrained none] [--device auto] [--batch-size 64] [--persons] [--colors] [--detect-size 800]
        [--sizes native 1280x720] [--decoders cpu gpu] [--cache ~/.cache/evr/transcoded]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evr.indexer.analyzers import features_off
from evr.indexer.analyzers.persons import PersonSettings
from evr.indexer.encoders import ClipEncoder
from evr.indexer.settings import ClipSettings, DecodeSettings, IndexSettings, RunSettings

DECODERS = {"cpu": ["decord", "pyav", "opencv"], "gpu": ["nvdec", "decord", "pyav", "opencv"]}


def transcoded(videos: Path, size: str, cache: Path) -> Path:
    """The sample videos as H.264 at `size` (WxH), 25 fps, in `cache`/`size` (made once)."""
    if size == "native":
        return videos
    width, height = (int(n) for n in size.split("x"))
    into = cache / size
    files = sorted(p for p in videos.rglob("*") if p.suffix.lower() in RunSettings().extensions and p.is_file())
    for f in files:
        out = into / f.relative_to(videos).with_suffix(".mp4")
        if out.exists():
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".part.mp4")
        scale = (
            f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=25,format=yuv420p"
        )
        done = subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-i",
                str(f),
                "-vf",
                scale,
                "-an",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "23",
                str(partial),
            ],
            capture_output=True,
        )
        if done.returncode:  # a sample the encoder cannot read is left out, as indexing would skip it
            print(f"skipped {f.name}: {done.stderr.decode(errors='replace').strip()[-200:]}", file=sys.stderr)
            partial.unlink(missing_ok=True)
            continue
        partial.rename(out)
    return into


def archive(videos: Path, repeat: int, into: Path) -> Path:
    """`repeat` copies of every video file under `videos`, under distinct names: hard links where
    the file system allows, else copies (the scan resolves symlinks, so symlinked names would be
    indexed once)."""
    files = sorted(p for p in videos.rglob("*") if p.suffix.lower() in RunSettings().extensions and p.is_file())
    for copy in range(repeat):
        for i, f in enumerate(files):
            name = into / f"r{copy}_{i:03d}_{f.name}"
            try:
                os.link(f.resolve(), name)
            except OSError:
                shutil.copyfile(f, name)
    return into


def settings_of(args, decode_workers: int, decoders: str = "cpu") -> IndexSettings:
    from evr.indexer.analyzers.colors import ColorSettings

    return IndexSettings(
        clip=ClipSettings(model=args.model, pretrained=args.pretrained, device=args.device, batch_size=args.batch_size),
        run=RunSettings(decode_workers=decode_workers),
        decode=DecodeSettings(backends=DECODERS[decoders]),
        features={
            **features_off(),
            "persons": PersonSettings(
                enabled=args.persons, device=args.device, weights=args.person_weights, detect_size=args.detect_size
            ),
            "colors": ColorSettings(enabled=args.colors),
        },
    )


def one_run(args) -> dict:
    """Index the archive once (in this child process); the figures as JSON."""
    from evr.indexer.run import run
    from evr.indexer.shots import chosen
    from evr.indexer.sources import VideoFiles
    from evr.storage import Store

    settings = settings_of(args, args.one, args.decoder)
    with tempfile.TemporaryDirectory() as data, Store(Path(data), writer=True) as store:
        t = time.perf_counter()
        report = run(store, settings, VideoFiles(settings, [args.archive]), progress=False)
        wall = time.perf_counter() - t
        rows = store.catalog.videos()
        seconds_of_video = sum(v.duration or 0 for v in rows)
        used: dict[str, int] = {}
        for v in rows:  # which decoder each video was read by: nvdec falls back per file
            used[v.decoder or "-"] = used.get(v.decoder or "-", 0) + 1
    gpu_mb = 0
    if settings.clip.device != "cpu":
        import torch

        if torch.cuda.is_available():
            gpu_mb = torch.cuda.max_memory_allocated() // 2**20
    rss_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    return {
        "videos": report.videos_indexed,
        "failed": len(report.videos_failed),
        "keyframes": report.keyframes_added,
        "wall": wall,
        "video_s": seconds_of_video,
        "stages": dict(report.stage_seconds),
        "rss_mb": rss_kb // 1024,
        "gpu_mb": gpu_mb,
        "workers": settings.run.decoders,
        "decoded_by": used,
        "shots": chosen(settings.shots, settings.clip.device)[0],
    }


def _rate(fn, items: int) -> float:
    """Items/s of fn, run for at least 5 s (3 runs) after one warm-up run."""
    import torch

    fn()
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < 5 or n < 3:
        fn()
        n += 1
    sync()
    return n * items / (time.perf_counter() - t)


def ceiling(args) -> tuple[float, float]:
    """Keyframes/s of CLIP alone on preprocessed batches (the model stage's upper bound), and of
    the encoder's whole path on 1280x720 RGB frames."""
    import numpy as np
    import torch

    clip = ClipEncoder(settings_of(args, 1).clip)
    clip.load()
    model = clip._model
    size = model.visual.preprocess_cfg["size"]
    h, w = (size, size) if isinstance(size, int) else size
    dtype = next(model.parameters()).dtype
    batch = torch.randn(clip.batch_size, 3, h, w, device=clip.device, dtype=dtype)
    with torch.inference_mode():
        model_only = _rate(lambda: model.encode_image(batch), clip.batch_size)
    frames = list(np.random.default_rng(0).integers(0, 256, (clip.batch_size, 720, 1280, 3), dtype=np.uint8))
    return model_only, _rate(lambda: clip.encode_images(frames), len(frames))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/videos")
    ap.add_argument("--repeat", type=int, default=2, help="links to each video, to make a longer archive")
    ap.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 0],
        help="decode_workers per configuration (1: in the writer's process; 0: one per core)",
    )
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--pretrained", default="none")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=0, help="0: 256 on a GPU, 64 on a CPU")
    ap.add_argument("--persons", action="store_true", help="persons on (torchvision on a GPU, else mediapipe)")
    ap.add_argument("--detect-size", type=int, default=800, help="persons.detect_size (torchvision)")
    ap.add_argument("--person-weights", default="none", help="torchvision weights: none (random) or default")
    ap.add_argument("--colors", action="store_true", help="colours on")
    ap.add_argument("--sizes", nargs="+", default=["native"], help="native, or WxH: the samples transcoded to H.264")
    ap.add_argument(
        "--decoders",
        nargs="+",
        choices=sorted(DECODERS),
        default=["cpu"],
        help="cpu: decord, PyAV, OpenCV; gpu: NVDEC first (torchcodec)",
    )
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache/evr/transcoded",
        help="where transcoded archives are kept between runs",
    )
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child: one configuration
    ap.add_argument("--decoder", default="cpu", help=argparse.SUPPRESS)
    ap.add_argument("--archive", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.one is not None:
        print(json.dumps(one_run(args)))
        return 0
    results = []
    for size in args.sizes:
        source = transcoded(args.videos, size, args.cache)
        with tempfile.TemporaryDirectory() as tmp:
            folder = archive(source, args.repeat, Path(tmp))
            for decoders in args.decoders:
                for workers in args.workers:
                    child = [
                        sys.executable,
                        __file__,
                        *sys.argv[1:],
                        "--one",
                        str(workers),
                        "--decoder",
                        decoders,
                        "--archive",
                        str(folder),
                    ]
                    out = subprocess.run(child, capture_output=True, text=True)
                    if out.returncode:
                        sys.exit(
                            f"the run at {size}, {decoders} decoding, {workers} decode workers failed:\n"
                            f"{out.stderr[-3000:]}"
                        )
                    results.append(
                        {**json.loads(out.stdout.strip().splitlines()[-1]), "size": size, "decoding": decoders}
                    )
    top, encoder_720p = ceiling(args)
    clip = ClipEncoder(settings_of(args, 1).clip)
    print(
        f"{results[0]['videos']} videos ({args.repeat} names each), "
        f"{results[0]['video_s']:.0f} s of video; CLIP {args.model} ({args.pretrained}) on {clip.device}, batch "
        f"{clip.batch_size}; persons {'on (detect_size ' + str(args.detect_size) + ')' if args.persons else 'off'}; "
        f"colours {'on' if args.colors else 'off'}; {os.cpu_count()} CPUs"
    )
    print(f"model ceiling (preprocessed batches, this process): {top:,.0f} keyframes/s")
    print(
        f"encoder on 1280x720 frames (upload, preprocessing, model): {encoder_720p:,.0f} keyframes/s "
        f"= {100 * encoder_720p / top:.0f}% of the ceiling"
    )
    print()
    stages = [s for s in results[0]["stages"] if any(r["stages"].get(s, 0) > 0 for r in results)]
    head = [
        "size",
        "decoding (videos by decoder)",
        "shots",
        "decode workers",
        "keyframes",
        "model stage kf/s",
        "% of ceiling",
        "x real time",
        "wall s",
        *[f"{s} %" for s in stages],
        "peak RSS MB",
        "peak GPU MB",
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    first = {}  # the first configuration of each size: the others' baseline
    for r in results:
        total = sum(r["stages"].values()) or 1
        kfs = r["keyframes"] / r["stages"].get("clip", 0) if r["stages"].get("clip") else 0
        by = ", ".join(f"{n} {d}" for d, n in sorted(r["decoded_by"].items()))
        cells = [
            r["size"],
            f"{r['decoding']} ({by})",
            r["shots"],
            f"{r['workers']}"
            + ("" if first.setdefault(r["size"], r) is r else f" ({first[r['size']]['wall'] / r['wall']:.2f}x faster)"),
            f"{r['keyframes']:,}",
            f"{kfs:,.0f}",
            f"{100 * kfs / top:.0f}%",
            f"{r['video_s'] / r['wall']:.1f}x",
            f"{r['wall']:.1f}",
            *[f"{100 * r['stages'].get(s, 0) / total:.0f}" for s in stages],
            f"{r['rss_mb']:,}",
            f"{r['gpu_mb']:,}",
        ]
        print("| " + " | ".join(cells) + " |")
    if any(r["failed"] for r in results):
        print("\nsome videos failed: " + ", ".join(str(r["failed"]) for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
