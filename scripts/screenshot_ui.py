"""Save a PNG of the app's results page: starts `evr ui` on an index, opens it in Debian's
headless chromium and captures the page through the DevTools protocol once the thumbnails are
there (`chromium --screenshot` alone captures only the loading skeleton).

    python scripts/screenshot_ui.py --data-dir data --query "people walking" --out docs/screenshot.png

Not part of the test run: it needs chromium (apt-get install chromium) and a built index.
"""
from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[1]


def wait_http(url: str, timeout: float) -> str:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.time() > deadline:
                raise TimeoutError(f"nothing answered at {url} in {timeout:.0f} s") from None
            time.sleep(0.3)


class DevTools:
    """A minimal Chrome DevTools Protocol client: send a command, wait for its answer."""

    def __init__(self, ws_url: str):
        self.conn, self.next_id = connect(ws_url, max_size=None), 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.conn.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:  # events arrive in between; skip them
            msg = json.loads(self.conn.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")


def capture(ws_url: str, page_url: str, width: int, height: int, min_images: int, timeout: float) -> bytes:
    cdp = DevTools(ws_url)
    cdp.call("Page.enable")
    cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
    cdp.call("Page.navigate", url=page_url)
    deadline = time.time() + timeout
    ready = ("document.querySelectorAll('[data-testid=\"stImage\"] img').length >= %d && "
             "!document.querySelector('[data-testid=\"stSpinner\"]') && "
             "Array.from(document.images).every(i => i.complete)") % min_images
    while not cdp.evaluate(ready):
        if time.time() > deadline:
            raise TimeoutError(f"the results did not render within {timeout:.0f} s")
        time.sleep(0.5)
    broken = cdp.evaluate("Array.from(document.images).filter(i => i.naturalWidth === 0).length")
    if broken:  # a picture of broken thumbnails is worse than none
        raise RuntimeError(f"{broken} images failed to load (see the app's log)")
    time.sleep(1.0)  # let the layout settle
    shot = cdp.call("Page.captureScreenshot", format="png")
    cdp.conn.close()
    return base64.b64decode(shot["data"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, help="index to show (default: storage.data_dir)")
    ap.add_argument("--query", default="people walking on a street")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png")
    ap.add_argument("--port", type=int, default=8599)
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--height", type=int, default=1400)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    app_cmd = [sys.executable, "-m", "ui.cli"] + (["--data-dir", str(args.data_dir)] if args.data_dir else [])
    app = subprocess.Popen(app_cmd + ["ui", "--port", str(args.port)], cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profile = tempfile.mkdtemp(prefix="evr-chromium-")
    browser = None
    try:
        wait_http(f"http://127.0.0.1:{args.port}/_stcore/health", 60)
        debug_port = args.port + 1
        # The flags keep chromium from reaching for Google's services (this machine has no network).
        browser = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--remote-debugging-port={debug_port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        targets = json.loads(wait_http(f"http://127.0.0.1:{debug_port}/json/list", 30))
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        page = f"http://127.0.0.1:{args.port}/?q={urllib.parse.quote(args.query)}"
        png = capture(ws_url, page, args.width, args.height, 4, args.timeout)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(png)
        print(f"saved {args.out} ({len(png) // 1024} KB)")
        return 0
    finally:
        for proc in (browser, app):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
