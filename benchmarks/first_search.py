"""How long a new `evr` process takes to answer: a text search, which loads CLIP ViT-L-14 from a
local weights file (random values saved once: loading costs the same as trained ones), a search
by a stored keyframe and `evr stats`, each a cold process, end to end.

    python benchmarks/first_search.py [--runs 5] [--before DIR] [--cache DIR]

Makes (once, in --cache) the weights file and an index of two sample clips bound to it, then
runs each command --runs times and prints the median and the slowest. With --before DIR (a
checkout of an older evr, say `git worktree add /tmp/evr-before HEAD~3`), each command also runs
from there, the two in turn (A B A B ...), and the table gives each side's median and the ratio
of the medians: the same machine, the same minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "ViT-L-14"


def weights_file(cache: Path) -> Path:
    path = cache / f"{MODEL}-random.pt"
    if not path.is_file():
        import open_clip
        import torch

        cache.mkdir(parents=True, exist_ok=True)
        print(f"making {path} (random {MODEL} values, saved once)...", file=sys.stderr)
        torch.save(open_clip.create_model(MODEL, pretrained=None).state_dict(), path)
    return path


def run(repo: Path, env: dict, *args: str) -> float:
    """Seconds of one cold `evr ARGS` process from `repo`'s code (its exit code checked)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "evr.ui.cli", *args],
        cwd=repo,
        env={**env, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{repo}: evr {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()[-400:]}")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--before", type=Path, help="a checkout of an older evr to time beside this one")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "evr-bench")
    ap.add_argument("--videos", type=Path, default=REPO.parent / "shared" / "data" / "videos" / "msrvtt")
    args = ap.parse_args()
    weights = weights_file(args.cache)
    data = args.cache / "first-search-index"
    env = {
        **os.environ,
        "EVR_CLIP_MODEL": MODEL,
        "EVR_CLIP_PRETRAINED": str(weights),
        "EVR_CLIP_DEVICE": "cpu",
        "EVR_OCR_ENABLED": "false",
        "EVR_PERSONS_ENABLED": "false",
        "EVR_SPEECH_ENABLED": "false",
        "EVR_OBJECTS_ENABLED": "false",
        "EVR_COLORS_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
        "EVR_STORAGE_DATA_DIR": str(data),
    }
    if not (data / "evr.sqlite").is_file():
        clips = args.cache / "first-search-clips"
        clips.mkdir(parents=True, exist_ok=True)
        for name in ("video7010.mp4", "video7011.mp4"):
            if not (clips / name).exists():
                (clips / name).symlink_to(args.videos / name)
        print(f"indexing two clips with {MODEL} (minutes on a CPU, once)...", file=sys.stderr)
        run(REPO, env, "index", str(clips), "--no-progress")
    commands = {
        'evr search "a person" (CLIP loads)': ["search", "a person", "--k", "5"],
        "evr search --like 1": ["search", "--like", "1", "--k", "5"],
        "evr stats": ["stats"],
    }
    sides = {"now": REPO, **({"before": args.before.resolve()} if args.before else {})}
    times: dict[tuple[str, str], list[float]] = {}
    for label, command in commands.items():
        for repo in sides.values():
            run(repo, env, *command)  # a warm-up: the file cache, not the process, is warm after it
        for _ in range(args.runs):
            for side, repo in sides.items():
                times.setdefault((label, side), []).append(run(repo, env, *command))
    print(
        f"{MODEL} from a local file ({weights.stat().st_size / 2**30:.1f} GB), {args.runs} cold processes each, "
        "seconds (median, slowest)"
    )
    print()
    header = "| command | " + " | ".join(f"{side} median | {side} slowest" for side in sides)
    print(header + (" | before / now |" if args.before else " |"))
    print("|---|" + "---:|---:|" * len(sides) + ("---:|" if args.before else ""))
    for label in commands:
        cells = []
        for side in sides:
            t = times[(label, side)]
            cells += [f"{statistics.median(t):.2f}", f"{max(t):.2f}"]
        ratio = (
            f" | {statistics.median(times[(label, 'before')]) / statistics.median(times[(label, 'now')]):.2f}x"
            if args.before
            else ""
        )
        print(f"| {label} | " + " | ".join(cells) + ratio + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
