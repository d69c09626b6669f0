"""Time from a click (or key) to its rendered result in the app, in a real browser (Playwright
driving Debian's chromium, 1280x800): a rerun that changes nothing (the floor: ticking a hit's
"Pick" box), open a hit, the next hit (J), like in the dialog (the list re-ranked), submit (to
the confirmation, against the DRES stand-in of tests/dres_server.py).

    python benchmarks/cockpit_latency.py [--videos DIR] [--repeat 10] [--data DIR]

Indexes the folder (default: the MSR-VTT sample clips) with random-weight ViT-B-32, OCR and
persons off (or reuses the index in --data), serves the app on it with its timing log on
(`evr -v ui`: one line per script run, ui/timing.py), runs one warm-up search (CLIP loads), then
times each action `--repeat` times and prints the median and the slowest, in milliseconds. What
is timed ends when the browser shows the result (the text the action brings): the server's
script run, the transfer and the browser's drawing. The second table splits each action's
median into the server's script runs (from the app's log: what each run did, its parts) and the
rest (the websocket both ways, the browser's work).
"""

from __future__ import annotations

import argparse
import os
import re
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

RUN_LINE = re.compile(r"run (\w+): (\d+) ms \(([^)]*)\)(?:; search x(\d+))? \[([\d.]+) - ([\d.]+)\]")


class Timed:
    """Each action's wall time, and the script runs the app logged inside it."""

    def __init__(self, log: Path):
        self.log = log
        self.times: dict[str, list[float]] = {}
        self.runs: dict[str, list[list[tuple[str, float, str, int]]]] = {}

    def __call__(self, name: str, action, done) -> None:
        start = time.time()
        t = time.perf_counter()
        action()
        done()
        self.times.setdefault(name, []).append((time.perf_counter() - t) * 1000)
        time.sleep(0.3)  # the run's log line is written as it ends
        end = time.time()
        runs = []
        for line in self.log.read_text().splitlines():
            m = RUN_LINE.search(line)
            if m and start <= float(m.group(5)) <= end:
                runs.append((m.group(1), float(m.group(2)), m.group(3), int(m.group(4) or 0)))
        self.runs.setdefault(name, []).append(runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=REPO.parent / "shared/data/videos/msrvtt")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--data", type=Path, help="an index made before (with these settings) to reuse")
    args = ap.parse_args()
    env = {
        **os.environ,
        "EVR_CLIP_MODEL": "ViT-B-32",
        "EVR_CLIP_PRETRAINED": "none",
        "EVR_CLIP_DEVICE": "cpu",
        "EVR_OCR_ENABLED": "false",
        "EVR_PERSONS_ENABLED": "false",
        "EVR_SPEECH_ENABLED": "false",
        "EVR_OBJECTS_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
    }
    dres = FakeDres()
    dres_url, stop = serve(dres)
    dres.task = Task("kis-bench", "kis", {"mediaItemName": "nothing", "start": 0, "end": 0})
    env.update(EVR_DRES_URL=dres_url, EVR_DRES_USERNAME=dres.user)
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data or Path(scratch) / "data"
        if args.data is None:
            subprocess.run(
                [sys.executable, "-m", "evr.ui.cli", "--data-dir", data, "index", str(args.videos), "--no-progress"],
                cwd=REPO,
                env=env,
                check=True,
                capture_output=True,
            )
        log = Path(scratch) / "app.log"
        timed = Timed(log)
        with running_app(data, env, log=log, verbose=True) as url, sync_playwright() as p:
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
                pick = page.get_by_role("checkbox", name=f"Pick #{n + 1}", exact=True)
                timed(
                    "a rerun that changes little (tick Pick: the floor)",
                    pick.click,
                    lambda: page.get_by_text(f"{n + 1} hits: the ones you picked").wait_for(),
                )
                opener = page.get_by_role("button", name=f"Open hit #{n + 1}", exact=True)
                timed("open a hit", opener.click, lambda: dialog.get_by_text(f"Hit #{n + 1} of").wait_for())
                timed(
                    "its details (player, strip, summary)",
                    lambda: None,
                    lambda: dialog.get_by_text("What happens here").wait_for(),
                )
                timed(
                    "next hit in the dialog (J)",
                    lambda: page.keyboard.press("j"),
                    lambda: dialog.get_by_text(f"Hit #{n + 2} of").wait_for(),
                )
                dialog.get_by_text("What happens here").wait_for()
                like = dialog.get_by_role("button", name="Like L", exact=True)
                timed(
                    "like in the dialog (list re-ranked)",
                    like.click,
                    lambda: dialog.locator("button[aria-pressed=true]", has_text="Like").wait_for(),
                )
                dialog.locator("button[aria-pressed=true]", has_text="Like").click()  # undone, for the next round
                dialog.locator("button[aria-pressed=false]", has_text="Like").first.wait_for()
                submit = dialog.get_by_role("button", name="Submit", exact=True)
                timed(
                    "submit, to the confirmation",
                    submit.click,
                    lambda: dialog.get_by_text("A wrong answer costs points.", exact=False).wait_for(),
                )
                dialog.get_by_role("button", name="Cancel").click()
                page.keyboard.press("Escape")
                dialog.wait_for(state="hidden")
                time.sleep(0.5)
            browser.close()
    stop()
    print(f"{args.videos}: {args.repeat} times each, ms from the click or key to the result on screen")
    print()
    print("| action | median ms | slowest ms | server script runs (median ms, parts) | searches | rest (ms) |")
    print("|---|---:|---:|---|---:|---:|")
    for action, ms in timed.times.items():
        runs = timed.runs[action]
        server = [sum(r[1] for r in rs) for rs in runs]
        names = " + ".join(r[0] for r in runs[len(runs) // 2]) or "none"
        parts = runs[len(runs) // 2][0][2] if runs[len(runs) // 2] else ""
        searches = max(sum(r[3] for r in rs) for rs in runs)
        print(
            f"| {action} | {statistics.median(ms):.0f} | {max(ms):.0f} | {names}: {statistics.median(server):.0f}"
            f" ({parts}) | {searches} | {statistics.median(ms) - statistics.median(server):.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
