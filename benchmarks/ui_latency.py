"""Time from pressing search to the results page, on a 10,000-keyframe index, model loaded.

    python benchmarks/ui_latency.py [--keyframes 10000] [--model ViT-B-32]

Builds an index of planted keyframes through the real storage code (random unit vectors, a real
JPEG thumbnail each, person counts and OCR text on some), then drives the Streamlit app with
streamlit.testing.v1.AppTest: a warm-up query loads CLIP, then each timed run types a new query
and measures the app's script run, which is everything the server does for a search (encode the
query, search, read hit rows, lay out the page of thumbnails). The browser's own drawing of the
page is not included. Also times SearchEngine.search alone, for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from evr.indexer.encoders import ClipEncoder
from evr.indexer.settings import ClipSettings
from evr.search import Query, SearchEngine
from evr.storage import KeyframeFilter, NewKeyframe, PersonsInFrame, Store, TextBox, VideoInfo

QUERIES = [
    "people walking on a street",
    "a man riding a bicycle",
    "a flooded road",
    "a news studio",
    "children playing football",
    "a car at night",
    "a woman cooking",
    "a crowd at a concert",
]


def build_index(data: Path, clip: ClipEncoder, n: int, per_video: int = 200) -> None:
    rng = np.random.default_rng(0)
    thumb = cv2.imencode(".jpg", rng.integers(0, 255, (180, 320, 3), dtype=np.uint8))[1].tobytes()
    with Store(data, writer=True, checkpoint_s=3600) as store:
        store.bind_model(clip.info)
        for v in range(n // per_video):
            vectors = rng.normal(size=(per_video, clip.info.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            kfs = [
                NewKeyframe(
                    i * 50,
                    i * 2.0,
                    i // 3,
                    thumb,
                    vectors[i],
                    {
                        "ocr": [TextBox(f"TIN TUC {v} {i}", (0.1, 0.8, 0.9, 0.9), 0.9)] if i % 10 == 0 else [],
                        **({"persons": PersonsInFrame([], 0.0, None)} if i % 4 else {}),
                    },
                )
                for i in range(per_video)
            ]
            vid = store.writes.start_video(f"/bench/video{v:04d}.mp4", 1, 1)
            store.writes.save_video(vid, VideoInfo("decord", per_video * 2.0, 25.0, per_video * 50, 1280, 720), kfs)


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.0f} ms (min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keyframes", type=int, default=10_000)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--page-size", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=len(QUERIES) - 1)
    args = ap.parse_args()
    from streamlit.testing.v1 import AppTest

    clip = ClipEncoder(ClipSettings(model=args.model, pretrained="none"))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "index"
        t = time.perf_counter()
        build_index(data, clip, args.keyframes)
        print(f"built a {args.keyframes}-keyframe index in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        os.environ.update(
            EVR_STORAGE_DATA_DIR=str(data),
            EVR_CLIP_MODEL=args.model,
            EVR_CLIP_PRETRAINED="none",
            EVR_UI_PAGE_SIZE=str(args.page_size),
        )
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "ui" / "app.py"), default_timeout=300)
        at.run()
        at.text_input(key="query").input(QUERIES[0]).run()  # loads CLIP: not part of the timing
        assert not at.exception and len(at.session_state["hits"]) == args.page_size
        app_runs = []
        for q in QUERIES[1 : 1 + args.repeat]:
            t = time.perf_counter()
            at.text_input(key="query").input(q).run()
            app_runs.append(time.perf_counter() - t)
            assert not at.exception and len(at.session_state["hits"]) == args.page_size
        at.sidebar.number_input(key="max_persons").set_value(0).run()  # a filter over the whole index
        filtered = []
        for q in QUERIES[1 : 1 + args.repeat]:
            t = time.perf_counter()
            at.text_input(key="query").input(q + " today").run()
            filtered.append(time.perf_counter() - t)

        with Store(data) as store:
            engine = SearchEngine(store, clip)
            engine.search(Query(text=QUERIES[0], k=args.page_size))
            core = []
            for q in QUERIES[1 : 1 + args.repeat]:
                t = time.perf_counter()
                engine.search(Query(text=q, k=args.page_size))
                core.append(time.perf_counter() - t)
            engine.search(Query(text=QUERIES[0], k=args.page_size, filters=KeyframeFilter.of(max_persons=0)))

    print(
        f"\n| {args.keyframes} keyframes, CLIP {args.model} on {clip.device}, {args.page_size} hits a page | median |"
    )
    print("|---|---|")
    print(f"| app: search pressed -> results page laid out | {median_ms(app_runs)} |")
    print(f"| app, with a person-count filter | {median_ms(filtered)} |")
    print(f"| SearchEngine.search alone (encode + search + rows) | {median_ms(core)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
