"""Save a PNG of the app's results page: starts `evr ui` on an index, opens it with Playwright in
Debian's headless chromium and captures the page once the thumbnails are there, with the first
hit opened over the grid (--no-open: the grid alone).

    python scripts/screenshot_ui.py --data-dir data --query "people walking" --out docs/screenshot.png

Not part of the test run: it needs a built index (and chromium, which `make setup` installs).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"  # Debian's; `playwright install` would download another


def wait_http(url: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
                return
        except OSError:
            if time.time() > deadline:
                raise TimeoutError(f"nothing answered at {url} in {timeout:.0f} s") from None
            time.sleep(0.3)


def capture(page_url: str, width: int, height: int, min_images: int, timeout: float, open_first: bool) -> bytes:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(page_url)
        page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=\"stImage\"] img').length >= n && "
            "!document.querySelector('[data-testid=\"stSpinner\"]') && "
            "Array.from(document.images).every(i => i.complete)",
            arg=min_images,
            timeout=timeout * 1000,
        )
        broken = page.evaluate("Array.from(document.images).filter(i => i.naturalWidth === 0).map(i => i.src)")
        if broken:  # a picture of broken thumbnails is worse than none
            raise RuntimeError(f"{len(broken)} images failed to load (see the app's log): {broken}")
        if open_first:
            page.locator("[class*='st-key-open_'] button").first.click()
            page.get_by_role("dialog").get_by_text("What happens here").wait_for(timeout=timeout * 1000)
            page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=timeout * 1000)
        page.wait_for_timeout(1000)  # let the layout settle
        png = page.screenshot()
        browser.close()
        return png


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, help="index to show (default: storage.data_dir)")
    ap.add_argument("--query", default="people walking on a street")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png")
    ap.add_argument("--port", type=int, default=8599)
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--height", type=int, default=1400)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--no-open", action="store_true", help="the grid alone, no hit opened")
    args = ap.parse_args()
    app_cmd = [sys.executable, "-m", "evr.ui.cli"] + (["--data-dir", str(args.data_dir)] if args.data_dir else [])
    app = subprocess.Popen(
        app_cmd + ["ui", "--port", str(args.port)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(f"http://127.0.0.1:{args.port}/_stcore/health", 60)
        page = f"http://127.0.0.1:{args.port}/?q={urllib.parse.quote(args.query)}"
        png = capture(page, args.width, args.height, 4, args.timeout, not args.no_open)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(png)
        print(f"saved {args.out} ({len(png) // 1024} KB)")
        return 0
    finally:
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()


if __name__ == "__main__":
    sys.exit(main())
