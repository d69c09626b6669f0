"""`make demo` from a fresh clone, timed to the first search result drawn in the app.

    python benchmarks/demo_time.py [--videos DIR] [--keep DIR]

Clones this repository's committed HEAD into a new folder, runs `make demo` there (set-up
included: the clone makes its own .venv), and times each part from the lines the demo prints:
set-up (until the demo starts indexing its first set), the first set's indexing, the example
searches, the app answering; then drives chromium (Playwright) to the app as a user would, types
a query and waits for the first thumbnail to be drawn. Prints a table; the demo's background
indexing keeps running meanwhile, as it does for a user, and is stopped at the end. Port 8501
must be free (the demo's app serves there).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
URL = "http://127.0.0.1:8501"
# The demo's lines that end each part, in the order they come.
MARKS = [
    ("set-up (venv, torch, the project, the weights check)", "demo: indexing a first set now"),
    ("the first set indexed", "the first set took"),
    ("example searches (evr stats, search, --ocr, --like, shots)", "indexing the rest of"),
]


def watch(proc: subprocess.Popen, log: Path, seen: dict[str, float], started: float) -> None:
    """Copy the demo's output to `log`, noting when each mark's line first shows."""
    with log.open("w") as out:
        for line in proc.stdout:
            out.write(line)
            out.flush()
            for name, text in MARKS:
                if text in line and name not in seen:
                    seen[name] = time.perf_counter() - started


def app_up(deadline: float) -> bool:
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(URL + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=REPO.parent / "shared/data/videos")
    ap.add_argument("--keep", type=Path, help="clone here and leave it (default: a temporary folder)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the first result")
    args = ap.parse_args()
    scratch = tempfile.TemporaryDirectory() if args.keep is None else None
    clone = args.keep or Path(scratch.name) / "evr"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    log = clone.parent / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVR_") and k != "VIRTUAL_ENV"}
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if not p.startswith(str(REPO)))
    seen: dict[str, float] = {}
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["make", "demo", f"VIDEOS={args.videos.resolve()}"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    reader = threading.Thread(target=watch, args=(proc, log, seen, started), daemon=True)
    reader.start()
    try:
        if not app_up(started + args.timeout):
            print(f"the app did not answer at {URL}; the demo's output: {log}", file=sys.stderr)
            return 1
        seen["the app answering"] = time.perf_counter() - started
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(args.timeout * 1000)
            page.goto(URL)
            box = page.get_by_role("textbox", name="Describe the moment (English or Vietnamese)")
            box.fill("people walking on a street")
            box.press("Enter")
            page.get_by_role("button", name="Open hit #1", exact=True).wait_for()
            thumb = page.locator("figure img").first.element_handle()  # CSS locators reach into shadow roots
            page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=thumb)
            seen["the first search result drawn (typed, CLIP loaded, thumbnail)"] = time.perf_counter() - started
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        if scratch is not None:
            scratch.cleanup()
    print("| `make demo` on a fresh clone: part | ends at (min) | took (min) |")
    print("|---|---:|---:|")
    before = 0.0
    for name, at in sorted(seen.items(), key=lambda kv: kv[1]):
        print(f"| {name} | {at / 60:.1f} | {(at - before) / 60:.1f} |")
        before = at
    return 0


if __name__ == "__main__":
    sys.exit(main())
