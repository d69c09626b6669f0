"""Frames per second of each indexing stage, and our decode+keyframe stage against ffmpeg.

    python benchmarks/index_stages.py --videos ../shared/data/videos [--model ViT-B-32 --pretrained none]
    python benchmarks/index_stages.py --memory    # peak RSS per decoder, 1-minute vs 16-minute video

Stages are timed one after another on the same files (not overlapped, so each number is that
stage alone): ffmpeg's pure decode (`ffmpeg -i X -f null -`) as the reference, our decode, our
decode + shot detection + keyframe selection (the keyframe stage), CLIP on the keyframes, OCR and
persons/poses on the first --analyzer-frames kept keyframes, and writing (thumbnails + SQLite +
FAISS). Then the real pipeline end to end (decode, keyframes, CLIP, write; stages overlap).
Prints a table; on a CPU-only machine compare the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evr.indexer.analyzers import features_off
from evr.indexer.analyzers.ocr import OcrAnalyzer, OcrSettings
from evr.indexer.analyzers.persons import PersonAnalyzer, PersonSettings
from evr.indexer.decoders import HOST_BACKENDS, open_video
from evr.indexer.encoders import ClipEncoder
from evr.indexer.keyframes import KeyframeSelector
from evr.indexer.run import run
from evr.indexer.scan import find_videos
from evr.indexer.settings import ClipSettings, DecodeSettings, IndexSettings, RunSettings
from evr.indexer.sources import VideoFiles
from evr.indexer.thumbnails import encode_thumbnail
from evr.storage import NewKeyframe, NewShot, Store, VideoInfo


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def ffmpeg_decode(files, *extra: str) -> float:
    def run():
        for f in files:
            subprocess.run(["ffmpeg", "-v", "quiet", "-nostdin", "-i", str(f), *extra, "-f", "null", "-"], check=True)

    return timed(run)[0]


def decode_only(files, backends, max_side) -> tuple[float, int]:
    def run():
        n = 0
        for f in files:
            src = open_video(str(f), backends, max_side)
            for _ in src.frames():
                n += 1
            src.close()
        return n

    return timed(run)


def decode_and_select(files, backends, max_side, settings: IndexSettings):
    """The keyframe stage; keeps the keyframes (per video) for the next stages."""

    def run():
        per_video = []
        for f in files:
            src = open_video(str(f), backends, max_side)
            selector = KeyframeSelector(settings.keyframes, settings.shots, src.info.fps)
            picks = [kf for frame in src.frames() for kf in selector.feed(frame)] + selector.finish()
            per_video.append((f, src.info, picks, selector))
            src.close()
        return per_video

    return timed(run)


# -- memory: peak RSS of indexing a short and a long video, per decoder ------------------------


def rss_child(video: Path, backend: str, model: str, decode_workers: int) -> int:
    """Index one video in this process (a child of --memory) and print its peak RSS in MB: the
    larger of this process's and its decode workers' (each one's own peak)."""
    settings = IndexSettings(
        decode=DecodeSettings(backends=[backend]),
        clip=ClipSettings(model=model, pretrained="none", device="cpu"),
        run=RunSettings(decode_workers=decode_workers),
        features=features_off(),
    )
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp), writer=True) as store:
        report = run(store, settings, VideoFiles(settings, [video]), progress=False)
    assert report.videos_indexed == 1, report.videos_failed
    print(max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) // 1024)
    return 0


def memory(videos: Path, model: str) -> int:
    """1 minute and 16 minutes of the same SD street video (vtest.avi, copied end to end)."""
    source = videos / "opencv_samples/vtest.avi"
    with tempfile.TemporaryDirectory() as tmp:
        short, long = Path(tmp) / "one-minute.avi", Path(tmp) / "sixteen-minutes.avi"
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-t", "60", "-c", "copy", str(short)], check=True)
        (Path(tmp) / "list.txt").write_text(f"file '{source.resolve()}'\n" * 12)
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                str(Path(tmp) / "list.txt"),
                "-c",
                "copy",
                str(long),
            ],
            check=True,
        )
        print("\n| decoder | decode workers | peak RSS, 1 min (MB) | peak RSS, 16 min (MB) | 16 min / 1 min |")
        print("|---|---:|---:|---:|---:|")
        # Every decoder in the writer's process; PyAV also in 2 decode worker processes (the
        # streaming run: its queue bounds the keyframes in flight).
        for backend, workers in [*((b, 1) for b in HOST_BACKENDS), ("pyav", 2)]:
            peaks = []
            for video in (short, long):
                out = subprocess.run(
                    [sys.executable, __file__, "--rss-child", str(video), backend, str(workers), "--model", model],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "HF_HUB_OFFLINE": "1"},
                )
                peaks.append(int(out.stdout.split()[-1]))
            print(f"| {backend} | {workers} | {peaks[0]} | {peaks[1]} | {peaks[1] / peaks[0]:.2f} |", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=Path("../shared/data/videos"))
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--pretrained", default="none")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--backend", default="decord", help="decoder to time (falls back as the indexer does)")
    ap.add_argument("--max-short-side", type=int, default=720)
    ap.add_argument("--analyzer-frames", type=int, default=40, help="keyframes OCR and persons are timed on")
    ap.add_argument("--persons-backend", default="auto")
    ap.add_argument("--memory", action="store_true", help="only the peak-RSS table (short vs long video)")
    ap.add_argument("--rss-child", nargs=3, metavar=("VIDEO", "BACKEND", "WORKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        return rss_child(Path(args.rss_child[0]), args.rss_child[1], args.model, int(args.rss_child[2]))
    if args.memory:
        return memory(args.videos, args.model)

    settings = IndexSettings(
        clip=ClipSettings(model=args.model, pretrained=args.pretrained, device=args.device),
        features=features_off(),  # OCR and persons are timed on their own below, speech in benchmarks/speech.py
    )
    files, _ = find_videos([args.videos], settings.run.extensions)
    backends = [args.backend] + [b for b in settings.decode.backends if b != args.backend]
    print(f"{len(files)} videos under {args.videos}", file=sys.stderr)

    t_ffmpeg = ffmpeg_decode(files)  # the reference the target is set against (decodes audio too)
    t_ffmpeg_video = ffmpeg_decode(files, "-an")  # video only: the stricter comparison
    t_decode, frames = decode_only(files, backends, args.max_short_side)
    t_keyframe_stage, per_video = decode_and_select(files, backends, args.max_short_side, settings)
    candidates = sum(len(p) for _, _, p, _ in per_video)

    clip = ClipEncoder(settings.clip)
    t_load, _ = timed(clip.load)
    clip.encode_images([per_video[0][2][0].rgb])  # warm-up
    t_clip, vectors = timed(lambda: [clip.encode_images([f.rgb for f in p]) for _, _, p, _ in per_video])

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "w", writer=True)
        store.bind_model(clip.info)

        def write():
            kept = 0
            for (f, info, picks, selector), vecs in zip(per_video, vectors):
                rows = [
                    NewKeyframe(
                        kf.idx,
                        kf.timestamp,
                        selector.shot_of(kf.idx),
                        encode_thumbnail(kf.rgb, settings.keyframes.thumbnail_width),
                        v,
                    )
                    for kf, v in zip(picks, vecs)
                ]
                shots = [NewShot(s.start_frame, s.start, s.end) for s in selector.shots(info.duration)]
                vid = store.writes.start_video(str(f), 0, 0)
                kept += store.writes.save_video(
                    vid,
                    VideoInfo(info.backend, info.duration, info.fps, len(picks), info.width, info.height),
                    rows,
                    shots=shots,
                )
            store.vectors.flush()
            return kept

        t_write, kept = timed(write)
        store.close()

    # OCR and persons run per keyframe; time them on a sample spread over all videos' keyframes.
    keyframes = [f.rgb for _, _, picks, _ in per_video for f in picks]
    sample = keyframes[:: max(1, len(keyframes) // args.analyzer_frames)][: args.analyzer_frames]
    ocr = OcrAnalyzer(OcrSettings(languages=["en"], device=args.device))
    persons = PersonAnalyzer(PersonSettings(backend=args.persons_backend, device=args.device))
    for analyzer in (ocr, persons):
        analyzer.load()
        analyzer.analyze(sample[:1])  # warm-up
    t_ocr, _ = timed(lambda: ocr.analyze(sample))
    t_persons, _ = timed(lambda: persons.analyze(sample))

    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp) / "e2e", writer=True) as e2e:
            t_e2e, report = timed(
                lambda: run(e2e, settings, VideoFiles(settings, [args.videos], clip=clip), progress=False)
            )

    rows = [
        ("ffmpeg -i X -f null - (reference)", t_ffmpeg, frames, "frames"),
        ("ffmpeg -i X -an -f null - (video only)", t_ffmpeg_video, frames, "frames"),
        ("decode", t_decode, frames, "frames"),
        ("keyframe stage (decode + shots + select)", t_keyframe_stage, frames, "frames"),
        (f"clip {args.model} on {clip.device}", t_clip, candidates, "keyframes"),
        (f"ocr ({ocr.signature})", t_ocr, len(sample), "keyframes"),
        (f"persons + poses ({persons.signature})", t_persons, len(sample), "keyframes"),
        ("write (thumbnails, SQLite, FAISS)", t_write, kept, "keyframes"),
        ("end to end: decode, keyframes, clip, write (overlapped)", t_e2e, report.frames_decoded, "frames"),
    ]
    print("\n| stage | seconds | items | items/s | x ffmpeg time |")
    print("|---|---:|---:|---:|---:|")
    for name, secs, n, unit in rows:
        print(f"| {name} | {secs:.2f} | {n} {unit} | {n / secs:.1f} | {secs / t_ffmpeg:.2f} |")
    print(
        f"\nkeyframe stage / ffmpeg pure decode: {t_keyframe_stage / t_ffmpeg:.2f}x (target <= 1.5x); "
        f"/ ffmpeg video-only decode: {t_keyframe_stage / t_ffmpeg_video:.2f}x"
    )
    print(
        f"selection alone: {(t_keyframe_stage - t_decode) / t_ffmpeg:.2f}x ffmpeg time; "
        f"{candidates} keyframes from {frames} frames; CLIP load {t_load:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
