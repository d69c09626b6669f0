"""Time from a click (or key) to its rendered result in the app, in a real browser (Playwright
driving Debian's chromium): open a hit, the next hit (J), like, and submit (to the confirmation,
against the DRES stand-in of tests/dres_server.py).

    python benchmarks/cockpit_latency.py [--videos DIR] [--repeat 5]

Indexes the folder (default: the MSR-VTT sample clips) with random-weight ViT-B-32, OCR and
persons off, serves the app on it, runs one warm-up search (CLIP loads), then times each action
`--repeat` times and prints the median and the slowest, in milliseconds. What is timed ends when
the browser shows the result (the text the action brings), so it includes the server's script
run, the transfer and the browser's drawing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.dres_server import FakeDres, Task, serve  # noqa: E402
from tests.test_browser import CHROMIUM, running_app  # noqa: E402


def timed(action, done) -> float:
    t = time.perf_counter()
    action()
    done()
    return (time.perf_counter() - t) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=REPO.parent / "shared/data/videos/msrvtt")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    env = {**os.environ, "EVR_CLIP_MODEL": "ViT-B-32", "EVR_CLIP_PRETRAINED": "none", "EVR_CLIP_DEVICE": "cpu",
           "EVR_OCR_ENABLED": "false", "EVR_PERSONS_ENABLED": "false", "EVR_SPEECH_ENABLED": "false",
           "HF_HUB_OFFLINE": "1"}
    dres = FakeDres()
    dres_url, stop = serve(dres)
    dres.task = Task("kis-bench", "kis", {"mediaItemName": "nothing", "start": 0, "end": 0})
    env.update(EVR_DRES_URL=dres_url, EVR_DRES_USERNAME=dres.user)
    times: dict[str, list[float]] = {"open": [], "next hit (J)": [], "like": [], "submit (to the confirmation)": []}
    with tempfile.TemporaryDirectory() as data:
        subprocess.run([sys.executable, "-m", "ui.cli", "--data-dir", data, "index", str(args.videos), "--no-progress"],
                       cwd=REPO, env=env, check=True, capture_output=True)
        with running_app(Path(data), env) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.get_by_text("DRES (contest server)").click()
            page.get_by_label("Password", exact=True).fill(dres.password)
            page.get_by_role("button", name="Log in").click()
            page.get_by_text("Logged in to", exact=False).wait_for()
            box = page.get_by_role("textbox", name="Describe the moment (English or Vietnamese)")
            box.fill("people walking on a street")
            box.press("Enter")
            page.get_by_text("#1 ", exact=False).first.wait_for()  # CLIP loaded
            dialog = page.get_by_role("dialog")
            for n in range(args.repeat):
                opener = page.locator("[class*='st-key-open_'] button").nth(n)
                times["open"].append(timed(opener.click, lambda: dialog.get_by_text(f"Hit #{n + 1} of").wait_for()))
                times["next hit (J)"].append(timed(lambda: page.keyboard.press("j"),
                                                   lambda: dialog.get_by_text(f"Hit #{n + 2} of").wait_for()))
                like = page.locator(".st-key-hit_like button")
                times["like"].append(timed(like.click, lambda: page.locator(
                    ".st-key-hit_like button[kind='primary']").wait_for()))
                like.click()  # undone, for the next round
                page.locator(".st-key-hit_like button[kind='secondary']").wait_for()
                submit = dialog.get_by_role("button", name="Submit ", exact=False)
                times["submit (to the confirmation)"].append(timed(submit.click, lambda: dialog.get_by_text(
                    "A wrong answer costs points.", exact=False).wait_for()))
                dialog.get_by_role("button", name="Cancel").click()
                page.keyboard.press("Escape")
                dialog.wait_for(state="detached")
            browser.close()
    stop()
    print(f"{args.videos}: {args.repeat} times each, ms from the click or key to the result on screen")
    print()
    print("| action | median ms | slowest ms |")
    print("|---|---:|---:|")
    for action, ms in times.items():
        print(f"| {action} | {statistics.median(ms):.0f} | {max(ms):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
