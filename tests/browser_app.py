"""What the browser tests share: the app served by `evr ui` on an index, Debian's chromium, and
the contest cockpit (a real index of two clips, a DRES stand-in, one app server) with the steps
a contest user takes in it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

from .conftest import REPO, TEST_ENV

CHROMIUM = "/usr/bin/chromium"  # Debian's; `playwright install` would download another
# Streamlit applies a rerun's changes one element at a time: every check of what the page shows
# after an action retries (expect) until it holds or a minute passes, as a busy machine needs.
expect.set_options(timeout=60_000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(data, env, log=None, verbose: bool = False):
    """`evr ui` on the index in `data`, serving until the block ends; its address. `log`: a file
    for its stderr (with `verbose`, a line per script run: ui/timing.py)."""
    port = free_port()
    stderr = open(log, "w") if log else subprocess.DEVNULL
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evr.ui.cli",
            "--data-dir",
            str(data),
            *(["-v"] if verbose else []),
            "ui",
            "--port",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read()
            break
        except OSError:
            assert server.poll() is None and time.time() < deadline, "the app did not start"
            time.sleep(0.5)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        if log:
            stderr.close()


@pytest.fixture(scope="session")
def cockpit(videos, tmp_path_factory):
    """(app address, DRES stand-in, the app's log, its data folder): vtest12 (keyframes every 2 s, one shot) and
    counter (three one-second shots), indexed for real; the app's DRES address is the stand-in's."""
    from .dres_server import FakeDres, serve

    folder = tmp_path_factory.mktemp("cockpit-videos")
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(videos / "opencv_samples/vtest.avi"),
            "-t",
            "12",
            "-c",
            "copy",
            str(folder / "vtest12.avi"),
        ],
        check=True,
    )
    (folder / "counter.mp4").symlink_to(videos / "scene_cuts/counter.mp4")
    data = tmp_path_factory.mktemp("cockpit-index")
    env = {**os.environ, **TEST_ENV}
    subprocess.run(
        [sys.executable, "-m", "evr.ui.cli", "--data-dir", str(data), "index", str(folder), "--no-progress"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    dres = FakeDres()
    dres_url, stop = serve(dres)
    env.update(EVR_DRES_URL=dres_url, EVR_DRES_USERNAME=dres.user)
    log = tmp_path_factory.mktemp("cockpit-log") / "app.log"
    with running_app(data, env, log=log, verbose=True) as url:  # its log: a line per script run (ui/timing.py)
        yield url, dres, log, data
    stop()


@pytest.fixture
def page(cockpit):
    """A new browser (its own Streamlit session) on the cockpit app, 1280x800."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        page.set_default_timeout(60_000)
        page.goto(cockpit[0])
        yield page
        browser.close()


def search(page, text: str = "people on a street") -> None:
    box = page.get_by_role("textbox", name="Describe the moment (English or Vietnamese)")
    box.fill(text)
    box.press("Enter")
    page.get_by_role("button", name="Open hit #1", exact=True).wait_for(timeout=120_000)  # CLIP loads first
    page.evaluate("document.activeElement.blur()")  # keys typed into the query box are the query's


def dialog(page):
    return page.get_by_role("dialog", name="Opened hit")


def player_time(page) -> float:
    """Where the opened hit's player stands once it has loaded, in seconds."""
    return (
        dialog(page)
        .locator("video")
        .evaluate(
            "v => new Promise(done => { const at = () => v.readyState >= 1 && v.seeking === false ? done(v.currentTime)"
            " : setTimeout(at, 50); at(); })"
        )
    )


def clock_seconds(label: str) -> float:
    minutes, seconds = label.split(":")
    return int(minutes) * 60 + float(seconds)


def log_in(page, dres) -> None:
    page.get_by_text("DRES (contest server)").click()
    page.get_by_label("Password", exact=True).fill(dres.password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Logged in to", exact=False).wait_for()
