"""What a second image-text model costs ([[models]]): keyframes/s of each model's image tower
through evr's own encoder (ClipEncoder: preprocessing, batching, the device), and the bytes each
keyframe's vector takes, beside the default ViT-L-14 measured in the same run.

    python benchmarks/models.py [--videos DIR] [--frames 16] [--device cpu] [MODEL ...]

Random weights (clip.pretrained = "none"): the same compute as trained ones. Frames are real
720p frames of scene_cuts/counter.mp4 (1080p, decoded at most 720 on the short side as `evr index`
does). The default models are the image towers of the README's recommendations:
ViT-H-14 (that of xlm-roberta-large-ViT-H-14, which reads Vietnamese), PE-Core-L-14-336 and
ViT-SO400M-14-SigLIP-384 (that of nllb-clip-large-siglip). Their text towers only matter at
query time (one text per query).

Bytes per keyframe: SQLite keeps each vector as float16 (2 bytes a dimension), a flat FAISS
file as float32 (4), an IVF one as 8-bit codes (1) plus its id.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from evr.indexer.decoders import open_video
from evr.indexer.encoders import ClipEncoder
from evr.indexer.settings import ClipSettings

REPO = Path(__file__).resolve().parents[1]

DEFAULT = "ViT-L-14"
OTHERS = ["ViT-H-14", "PE-Core-L-14-336", "ViT-SO400M-14-SigLIP-384"]


def frames(videos: Path, n: int) -> list:
    source = open_video(str(videos / "scene_cuts" / "counter.mp4"), ["decord", "pyav", "opencv"], 720)
    out = []
    try:
        for frame in source.frames():
            out.append(frame.rgb)
            if len(out) == n:
                break
    finally:
        source.close()
    while len(out) < n:  # a short clip: its frames again
        out += out[: n - len(out)]
    return out


def measure(model: str, images: list, device: str, batch: int) -> tuple[float, int, int]:
    """(keyframes/s after a warm-up batch, embedding dimension, parameters of the image tower)."""
    encoder = ClipEncoder(ClipSettings(model, "none", device, batch))
    encoder.load()
    encoder.encode_images(images[:batch])  # warm-up: first-call allocations and kernel choices
    t = time.perf_counter()
    encoder.encode_images(images)
    seconds = time.perf_counter() - t
    visual = sum(p.numel() for p in encoder._model.visual.parameters())
    return len(images) / seconds, encoder.info.dim, visual


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=OTHERS, help=f"open_clip models beside {DEFAULT}")
    parser.add_argument("--videos", type=Path, default=REPO.parent / "shared" / "data" / "videos")
    parser.add_argument("--frames", type=int, default=16, help="keyframes timed per model")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    import torch

    images = frames(args.videos, args.frames)
    print(
        f"{len(images)} frames of {images[0].shape[1]}x{images[0].shape[0]}, device {args.device}, "
        f"{torch.get_num_threads()} torch threads, random weights",
        file=sys.stderr,
    )
    rows = []
    for model in [DEFAULT, *args.models]:
        rate, dim, params = measure(model, images, args.device, args.batch)
        rows.append((model, rate, dim, params))
        print(f"  {model}: {rate:.2f} keyframes/s", file=sys.stderr)
    base = rows[0][1]
    print(
        "| image tower | parameters | keyframes/s | time per keyframe vs ViT-L-14 | dim | bytes/keyframe "
        "(SQLite + flat FAISS) | (SQLite + IVF) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for model, rate, dim, params in rows:
        print(
            f"| {model} | {params / 1e6:.0f} M | {rate:.2f} | {base / rate:.2f}x | {dim} | {dim * 2 + dim * 4:,} | "
            f"{dim * 2 + dim + 8:,} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
