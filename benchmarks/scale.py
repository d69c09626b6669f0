"""Search, start-up, disk and memory at archive scale, on keyframes planted through the real storage.

    python benchmarks/scale.py --keyframes 100000 [--dim 768] [--kind auto|flat|ivf] [--data-dir DIR]

Plants N keyframes through `storage.Store.save_video` (500 per video, thumbnails included, people
with pose labels on a third of them, on-screen text on a tenth: see VOCABULARY) with clustered vectors: unit
vectors around a few thousand random centres, two members of a cluster at cosine 0.6-0.8, as CLIP
vectors of one archive are (uniform random vectors are the worst case of any approximate index and
say nothing about CLIP). Queries are drawn like the data. The vector index is then built as
`evr index` builds it at the end of a run (`--kind`, default as `[index] kind = "auto"`). Prints
the figures of issue 9: search p50 in a loaded process (plain, with broad person and pose filters
and with a selective one), on-screen text search (a word, and a word misread by one letter that
only near matching finds, with the time of finding the near terms), `evr search --like` and
`evr stats` as new processes (page cache warm), their peak memory, disk per keyframe, recall@10
against exact search over the stored (float16) vectors, and the planting and build times. The
model is bound as ViT-L-14 with random weights, so `evr search "text"` works offline too (its
CLIP load is timed apart).

On a CPU-only machine compare ratios between runs on the same machine, not absolute times.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from evr.search import Query, SearchEngine
from evr.storage import (
    KeyframeFilter,
    ModelInfo,
    NewKeyframe,
    NewShot,
    PersonPose,
    PersonsInFrame,
    Store,
    TextBox,
    VectorIndexSettings,
    VideoInfo,
)

REPO = Path(__file__).resolve().parents[1]

PER_VIDEO = 500
# On-screen text: 8 words a frame from a vocabulary of 50,000 made-up words of 3 to 10 letters,
# drawn by Zipf's law as words of news captions are, 3% of them misread by one letter as OCR
# does: the terms that matching words a letter off (storage/fulltext.py) must search grow with
# the archive as a real one's do.
VOCABULARY = 50_000
WORDS_PER_TEXT = 8
MISREAD = 0.03
# A keyframe's vector is (centre + s * noise) / norm with s^2 in this range: two members of a
# cluster then meet at cosine 1 / (1 + s^2), between 0.6 and 0.8.
NOISE_SQUARED = (0.25, 0.667)


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    dim = centres.shape[1]
    own = centres[rng.integers(0, len(centres), n)]
    noise = rng.standard_normal((n, dim)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    scale = np.sqrt(rng.uniform(*NOISE_SQUARED, n)).astype(np.float32)[:, None]
    v = own + scale * noise
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def planted_vectors(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.random.Generator]:
    """The n vectors a run with this seed plants (row i is keyframe id i + 1), and the generator
    that then draws the rest (text, people)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(50, n // 300), dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return clustered(rng, centres, n), rng


def plant(data: Path, n: int, dim: int, seed: int, index: VectorIndexSettings) -> tuple[np.ndarray, float, float]:
    """Write n keyframes, then build the vector index; returns their vectors, the seconds
    planting took and the seconds the build took."""
    vectors, rng = planted_vectors(n, dim, seed)
    jpeg = _tiny_jpeg()
    started = time.perf_counter()
    with Store(data, writer=True, checkpoint_s=60, index=index) as store:
        store.bind_model(ModelInfo("ViT-L-14", "none", dim))
        for video, start in enumerate(range(0, n, PER_VIDEO)):
            rows = range(start, min(n, start + PER_VIDEO))
            vid = store.writes.start_video(f"/archive/v{video:05d}.mp4", 1, 1)
            keyframes = [
                NewKeyframe(
                    frame_idx=i * 25,
                    timestamp=float(i),
                    shot=0,
                    jpeg=jpeg,
                    vector=vectors[row],
                    analyses=_analyses(rng),
                )
                for i, row in enumerate(rows)
            ]
            store.writes.save_video(
                vid,
                VideoInfo("planted", len(rows), 25.0, 25 * len(rows), 1280, 720),
                keyframes,
                shots=[NewShot(0, 0.0, float(len(rows)))],
            )
            if video % 100 == 0:
                print(f"  planted {rows.stop:,} / {n:,}", file=sys.stderr)
        planted = time.perf_counter()
        store.vectors.build()
        built = time.perf_counter()
    return vectors, planted - started, built - planted


def _tiny_jpeg() -> bytes:
    import cv2

    return cv2.imencode(".jpg", np.full((18, 32, 3), 90, np.uint8))[1].tobytes()


def vocabulary(seed: int) -> tuple[list[str], np.ndarray]:
    """The made-up words of on-screen text and the cumulative Zipf probabilities to draw them by."""
    rng = np.random.default_rng(seed + 7)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, int(rng.integers(3, 11)))) for _ in range(VOCABULARY)]
    p = 1 / np.arange(1, VOCABULARY + 1)
    return words, np.cumsum(p / p.sum())


def misread(rng, word: str) -> str:
    i = int(rng.integers(len(word)))
    return word[:i] + chr(ord("a") + int(rng.integers(26))) + word[i + 1 :]


def _text(rng) -> list[TextBox]:
    words, cdf = _VOCABULARY
    said = [words[i] for i in np.minimum(np.searchsorted(cdf, rng.random(WORDS_PER_TEXT)), VOCABULARY - 1)]
    said = [misread(rng, w) if rng.random() < MISREAD else w for w in said]
    return [TextBox(" ".join(said), (0.1, 0.8, 0.9, 0.9), 0.9)]


_VOCABULARY = vocabulary(0)


def _analyses(rng) -> dict:
    """A keyframe's analyses: on-screen text on one in ten, people counted on one in three (a
    keyframe the person analyzer did not see has no "persons" result, not None)."""
    found = {"ocr": _text(rng)} if rng.random() < 0.1 else {}
    if rng.random() < 1 / 3:
        found["persons"] = _persons(rng)
    return found


def _persons(rng) -> PersonsInFrame:
    people = [
        PersonPose((0.1, 0.1, 0.3, 0.9), 0.9, [(0.2, 0.5, 1.0)] * 17, [str(rng.choice(["standing", "sitting"]))])
        for _ in range(int(rng.integers(0, 5)))
    ]
    return PersonsInFrame(people, 0.1 * len(people), None)


def p50_ms(engine: SearchEngine, queries: list[Query]) -> float:
    times = []
    for q in queries:
        t = time.perf_counter()
        engine.search(q)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


@contextlib.contextmanager
def exact_words_only():
    """Searches as they ran before near matching: no term is near any word."""
    import evr.storage.fulltext

    saved = evr.storage.fulltext.near_terms
    evr.storage.fulltext.near_terms = lambda word, terms: []
    try:
        yield
    finally:
        evr.storage.fulltext.near_terms = saved


def near_terms_ms(store: Store, words: list[str]) -> tuple[float, int]:
    """p50 of matching each word in the OCR text, exact and near (reading the terms of its
    length and measuring their distances: storage/fulltext.py), and how many OCR terms the index
    keeps."""
    from sqlalchemy import func, select

    from evr.storage.schema import FtsTerm

    times = []
    for w in words:
        t = time.perf_counter()
        store.words.matches(["ocr_fts"], w)
        times.append((time.perf_counter() - t) * 1000)
    with store.db.session() as s:
        terms = s.scalar(select(func.count()).select_from(FtsTerm).where(FtsTerm.source == "ocr_fts"))
    return statistics.median(times), terms


def recall_at_10(engine: SearchEngine, vectors: np.ndarray, query_ids: list[int]) -> float:
    """Share of the exact top 10 (brute force over the vectors as stored: float16) that the
    index returns."""
    vectors = vectors.astype(np.float16).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    found = 0
    for kid in query_ids:
        scores = vectors @ vectors[kid - 1]
        exact = set((np.argpartition(-scores, 10)[:10] + 1).tolist())
        got = {h.keyframe_id for h in engine.search(Query(like=kid, k=10))}
        found += len(exact & got)
    return found / (10 * len(query_ids))


def new_process(data: Path, kind: str, *args: str) -> tuple[float, int]:
    """(wall seconds, peak RSS MB) of `evr ARGS` in a fresh process, the second of two runs: the
    first only warms the page cache (right after planting, the files are mostly not in it)."""
    _run_evr(data, kind, *args)
    return _run_evr(data, kind, *args)


def _run_evr(data: Path, kind: str, *args: str) -> tuple[float, int]:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent, this large process.
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['evr', *{list(args)!r}]\n"
        "try:\n    runpy.run_module('evr.ui.cli', run_name='__main__')\n"
        "finally:\n    hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "    print('RSS', int(hwm.split()[1]) // 1024, file=sys.stderr)"
    )
    env = {
        **os.environ,
        "EVR_STORAGE_DATA_DIR": str(data),
        "EVR_CLIP_MODEL": "ViT-L-14",
        "EVR_VECTORS_KIND": kind,
        "EVR_CLIP_PRETRAINED": "none",
        "EVR_CLIP_DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1",
    }
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"evr {' '.join(args)} failed: {out.stderr[-500:]}")
    rss = int(next(line.split()[1] for line in out.stderr.splitlines() if line.startswith("RSS ")))
    return seconds, rss


def clip_load_seconds() -> float:
    from evr.indexer.encoders import ClipEncoder
    from evr.indexer.settings import ClipSettings

    encoder = ClipEncoder(ClipSettings(model="ViT-L-14", pretrained="none", device="cpu"))
    t = time.perf_counter()
    encoder.load()
    encoder.encode_texts(["warm up"])
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keyframes", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--data-dir", type=Path, help="plant here (default: a temporary folder, removed after)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kind", choices=["auto", "flat", "ivf"], default="auto", help="[index] kind")
    ap.add_argument(
        "--planted",
        action="store_true",
        help="--data-dir already holds a run with these "
        "--keyframes, --dim and --seed: only build the vector index again (as `evr reindex`) and measure",
    )
    args = ap.parse_args()
    index = VectorIndexSettings(kind=args.kind)
    tmp = None
    if args.data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="evr-scale-")
        args.data_dir = Path(tmp.name)
    n = args.keyframes
    if args.planted:
        vectors, plant_s = planted_vectors(n, args.dim, args.seed)[0], None
        started = time.perf_counter()
        with Store(args.data_dir, writer=True, index=index) as store:
            store.vectors.build(force=True)
        build_s = time.perf_counter() - started
    else:
        print(f"planting {n:,} keyframes of {args.dim} dims in {args.data_dir}", file=sys.stderr)
        vectors, plant_s, build_s = plant(args.data_dir, n, args.dim, args.seed, index)
    rng = np.random.default_rng(args.seed + 1)
    query_ids = [int(i) for i in rng.integers(1, n + 1, args.queries)]
    from evr.indexer.encoders import ClipEncoder
    from evr.indexer.settings import ClipSettings

    with Store(args.data_dir, index=index) as store:
        engine = SearchEngine(store, ClipEncoder(ClipSettings(model="ViT-L-14", pretrained="none", device="cpu")))
        engine.search(Query(like=query_ids[0], k=10))  # load the index
        kind = store.vectors.index.kind
        plain = p50_ms(engine, [Query(like=i, k=10) for i in query_ids])
        persons = p50_ms(engine, [Query(like=i, k=10, filters=KeyframeFilter.of(min_persons=2)) for i in query_ids])
        pose = p50_ms(engine, [Query(like=i, k=10, filters=KeyframeFilter.of(pose=("standing",))) for i in query_ids])
        few = p50_ms(engine, [Query(like=i, k=10, filters=KeyframeFilter.of(min_persons=4)) for i in query_ids])
        by_video = p50_ms(engine, [Query(like=i, k=10, group="video", per_video=2) for i in query_ids])
        recall = recall_at_10(engine, vectors, query_ids[:20])
        words, _ = _VOCABULARY
        picked = [words[int(i)] for i in rng.integers(100, 5000, args.queries)]  # found on tens to hundreds
        ocr_exact = p50_ms(engine, [Query(filters=KeyframeFilter.of(ocr=w), k=10) for w in picked])
        typos = [misread(rng, w) for w in picked]
        ocr_typo = p50_ms(engine, [Query(filters=KeyframeFilter.of(ocr=w), k=10) for w in typos])
        near_ms, terms = near_terms_ms(store, typos)
        with exact_words_only():  # the same searches as before near matching existed
            ocr_exact_only = p50_ms(engine, [Query(filters=KeyframeFilter.of(ocr=w), k=10) for w in picked])
    like_s, like_mb = new_process(
        args.data_dir, args.kind, "search", "--like", str(query_ids[0]), "--k", "10", "--json"
    )
    stats_s, stats_mb = new_process(args.data_dir, args.kind, "stats", "--json")
    text_s, text_mb = new_process(args.data_dir, args.kind, "search", "a flooded street", "--k", "10", "--json")
    clip_s = clip_load_seconds()
    sqlite_b = sum(p.stat().st_size for p in args.data_dir.glob("evr.sqlite*"))
    faiss_b = (args.data_dir / "vectors.faiss").stat().st_size
    rows = [
        ("keyframes", f"{n:,} ({kind} vector index)"),
        ("search, index loaded, --like, p50", f"{plain:.1f} ms"),
        ("  with --min-persons 2 (a fifth pass)", f"{persons:.1f} ms ({persons / plain:.1f}x)"),
        ("  with --pose standing (a quarter pass)", f"{pose:.1f} ms ({pose / plain:.1f}x)"),
        ("  with --min-persons 4 (1 in 15 pass)", f"{few:.1f} ms ({few / plain:.1f}x)"),
        ("  --group video --per-video 2 (10 videos)", f"{by_video:.1f} ms ({by_video / plain:.1f}x)"),
        ("recall@10 against exact", f"{recall:.3f}"),
        ("`--ocr WORD` alone, p50 (exact and near)", f"{ocr_exact:.1f} ms (exact words only: {ocr_exact_only:.1f} ms)"),
        ("`--ocr` a word misread by a letter, p50", f"{ocr_typo:.1f} ms"),
        ("  of which finding its near terms, p50", f"{near_ms:.1f} ms among {terms:,} OCR terms"),
        ("`evr search --like ID`, new process", f"{like_s:.2f} s, peak {like_mb:,} MB"),
        ("`evr stats`, new process", f"{stats_s:.2f} s, peak {stats_mb:,} MB"),
        (
            '`evr search "text"`, new process',
            f"{text_s:.2f} s (CLIP ViT-L-14 load {clip_s:.2f} s), peak {text_mb:,} MB",
        ),
        (
            "disk: SQLite + vector index",
            f"{(sqlite_b + faiss_b) / 1e9:.2f} GB ({sqlite_b / 1e9:.2f} + "
            f"{faiss_b / 1e9:.2f}), {(sqlite_b + faiss_b) / n / 1024:.2f} KB per keyframe",
        ),
        ("planting", f"{plant_s:.0f} s" if plant_s is not None else "(planted before)"),
        ("building the vector index", f"{build_s:.0f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
