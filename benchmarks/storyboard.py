"""How long the whole-video storyboard takes for a one-hour video: 1,800 keyframes (one every 2 s)
in 300 shots, planted through the real storage with real 320 px thumbnails (a frame of a sample
clip) and random vectors of the app's random-weight CLIP.

    python benchmarks/storyboard.py [--keyframes 1800] [--runs 5] [--frame VIDEO]

Prints the median and the slowest of `--runs` for:
- `evr videos --json` on the same index as a new process: the floor of a command;
- `evr storyboard hour --json` as a new process (imports included; page cache warm);
- the app server's storyboard route alone (the JSON the opened hit fetches once per video);
- in a real browser (Debian's chromium through Playwright, a fresh page each run), from the click
  on "Open hit #1": until the hit's details are shown (the floor: the dialog without the
  storyboard), and until they and every keyframe of the video, by shot, are shown (the route's
  fetch and the drawing beside the details' script run; images load lazily as they scroll in).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402

from evr.storage import ModelInfo, NewKeyframe, NewShot, Store, VideoInfo  # noqa: E402
from tests.conftest import TEST_ENV  # noqa: E402
from tests.test_browser import CHROMIUM, running_app  # noqa: E402

SHOT_S, EVERY_S = 12.0, 2.0
# In the page: from the click (its event) to the details' text and to the whole storyboard, as
# drawn frames see them (milliseconds in window.evrShown).
SHOWN_AFTER_CLICK = """n => {
  const shown = window.evrShown = {};
  document.addEventListener("click", () => {
    const start = performance.now();
    const look = () => {
      const root = document.querySelector("#evr-opened-hit")?.shadowRoot;
      if (root && !shown.details && root.textContent.includes("What happens here"))
        shown.details = performance.now() - start;
      if (root && !shown.board && root.querySelectorAll(".board .board-shot button").length === n)
        shown.board = performance.now() - start;
      if (!(shown.details && shown.board)) requestAnimationFrame(look);
    };
    requestAnimationFrame(look);
  }, { capture: true, once: true });
}"""
DIM = 256  # ViT-S-32-alt's, the random-weight CLIP of TEST_ENV


def plant(data: Path, n: int, frame_of: Path) -> None:
    cap = cv2.VideoCapture(str(frame_of))
    ok, frame = cap.read()
    cap.release()
    assert ok, f"cannot read a frame of {frame_of}"
    jpeg = cv2.imencode(".jpg", cv2.resize(frame, (320, 180)))[1].tobytes()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    length = n * EVERY_S
    with Store(data, writer=True) as store:
        store.bind_model(ModelInfo("ViT-S-32-alt", "none", DIM))
        vid = store.writes.start_video("/archive/hour.mp4", 1, 1)
        keyframes = [
            NewKeyframe(
                frame_idx=int(i * EVERY_S * 25),
                timestamp=i * EVERY_S,
                shot=int(i * EVERY_S // SHOT_S),
                jpeg=jpeg,
                vector=vectors[i],
            )
            for i in range(n)
        ]
        shots = [NewShot(int(s * 25), s, min(length, s + SHOT_S)) for s in np.arange(0, length, SHOT_S)]
        store.writes.save_video(
            vid, VideoInfo("planted", length, 25.0, int(length * 25), 1280, 720), keyframes, shots=shots
        )
        store.vectors.build()


def timed(runs: int, once) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        once()
        times.append((time.perf_counter() - t) * 1000)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keyframes", type=int, default=1800)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--frame",
        type=Path,
        default=REPO.parent / "shared/data/videos/msrvtt/video7010.mp4",
        help="a video whose first frame every thumbnail shows",
    )
    args = ap.parse_args()
    env = {**os.environ, **TEST_ENV}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        plant(data, args.keyframes, args.frame)
        cli = [sys.executable, "-m", "evr.ui.cli", "--data-dir", str(data), "storyboard", "hour", "--json"]
        shown = json.loads(subprocess.run(cli, env=env, capture_output=True, text=True, check=True).stdout)
        assert shown["keyframes"] == args.keyframes, shown["keyframes"]
        floor = [sys.executable, "-m", "evr.ui.cli", "--data-dir", str(data), "videos", "--json"]
        rows.append(
            (
                "evr videos --json (the floor: a new process, the same index)",
                timed(args.runs, lambda: subprocess.run(floor, env=env, capture_output=True, check=True)),
            )
        )
        rows.append(
            (
                "evr storyboard --json (a new process)",
                timed(args.runs, lambda: subprocess.run(cli, env=env, capture_output=True, check=True)),
            )
        )
        with running_app(data, env) as url, sync_playwright() as p:
            route = f"{url}/evr/storyboard/1"
            urllib.request.urlopen(route).read()  # the route's store opened once, as the app's first open does
            rows.append(("the storyboard route alone", timed(args.runs, lambda: urllib.request.urlopen(route).read())))
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            times, details = [], []  # ms after the click
            for _ in range(args.runs):
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(180_000)
                page.goto(url)
                box = page.get_by_role("textbox", name="Describe the moment (English or Vietnamese)")
                box.fill("a street")
                box.press("Enter")
                opener = page.get_by_role("button", name="Open hit #1", exact=True)
                opener.wait_for()  # CLIP loaded, the results shown
                board = page.get_by_role("dialog", name="Opened hit").get_by_role("region", name="The whole video")
                page.evaluate(SHOWN_AFTER_CLICK, args.keyframes)
                opener.click()
                page.wait_for_function("() => window.evrShown.board && window.evrShown.details")
                shown_at = page.evaluate("() => window.evrShown")
                details.append(shown_at["details"])
                times.append(shown_at["board"])
                assert board.locator(".board-shot.here").count() == 1
                page.close()
            rows.append(("open a hit: click to its details shown (the floor)", details))
            rows.append(("open a hit: click to every keyframe shown, by shot", times))
            browser.close()
    print(
        f"storyboard of one video: {args.keyframes} keyframes in {len(shown['shots'])} shots, "
        f"median of {args.runs} (ms)"
    )
    print(f"{'what':<56}{'median':>8}{'slowest':>9}")
    for name, times in rows:
        print(f"{name:<56}{statistics.median(times):>8.0f}{max(times):>9.0f}")


if __name__ == "__main__":
    main()
