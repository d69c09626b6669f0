"""The app in a real browser (Playwright driving Debian's chromium): hostile Markdown in a file
name and in on-screen text stays text, and the page fetches nothing from outside hosts.

AppTest sees only the Markdown source the app hands to Streamlit; only a browser shows what
that source becomes (an <img> that loads, a link, bold text)."""
from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from playwright.sync_api import sync_playwright

from ui.text import WORD_JOINER

from .conftest import REPO, TEST_ENV
from .test_app import planted_hostile_index

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"  # Debian's; `playwright install` would download another


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def outside_host():
    """A web server standing for any host on the internet: it records every request it gets."""
    requests: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()


@pytest.fixture
def app_url(tmp_path, outside_host):
    host, _ = outside_host
    data = tmp_path / "data"
    planted_hostile_index(data, text=f"![o](http://{host}/x.png) **bold** http://{host}/link :red[x]")
    port = free_port()
    env = {**os.environ, **TEST_ENV}
    server = subprocess.Popen([sys.executable, "-m", "ui.cli", "--data-dir", str(data), "ui", "--port", str(port)],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read()
            break
        except OSError:
            assert server.poll() is None and time.time() < deadline, "the app did not start"
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)


def test_hostile_markdown_stays_text_and_nothing_is_fetched_from_outside(app_url, outside_host):
    host, requests = outside_host
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(app_url)
        box = page.get_by_role("textbox", name="On-screen text (all words; accents optional)")
        box.fill("bold")
        box.press("Enter")
        page.get_by_text("#1", exact=False).first.wait_for(timeout=120_000)
        # By its key: the language box's arrow is a button named "open" too.
        page.locator("[class*='st-key-open_'] button").first.click()
        page.get_by_text("What happens here").wait_for(timeout=120_000)
        # Seen exactly as written: the image syntax, the asterisks, the URL, the file name.
        # Streamlit sends a rerun's elements one by one, so wait for each text (a timeout fails).
        for written in (f"![o](http://{host}/x.png) **bold** http://{host}/link :red[x]", "**star** [x](y), _u_"):
            page.wait_for_function(
                "([written, joiner]) => document.body.innerText.replaceAll(joiner, '').includes(written)",
                arg=[written, WORD_JOINER], timeout=60_000)  # the joiner is invisible: it keeps URLs from linking
        page.wait_for_load_state("networkidle")
        # Nothing became an image, a link or bold text; every image comes from the app itself.
        assert page.locator(f'a[href*="{host}"], a[href="y"]').count() == 0
        assert page.locator("strong", has_text="bold").count() == 0
        assert page.locator("strong", has_text="star").count() == 0
        sources = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.src)")
        assert sources and all(src.startswith(app_url) or src.startswith("data:") for src in sources), sources
        browser.close()
    assert requests == []  # the browser never asked the outside host for anything


def test_dres_login_works_when_the_password_field_is_left_with_tab(app_url):
    """Typing the password and pressing Tab, then clicking "Log in" (3 of 3 tries failed with
    "DRES needs a user name and a password" while each field reran the page as it was left)."""
    from .dres_server import FakeDres, serve

    dres = FakeDres()
    url, stop = serve(dres)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(app_url)
            page.get_by_text("DRES (contest server)").click()
            for label, value in (("Server", url), ("User", dres.user), ("Password", dres.password)):
                field = page.get_by_label(label, exact=True)
                field.fill(value)
                field.press("Tab")  # leaves the field, as a user moving to the button does
            page.get_by_role("button", name="Log in").click()
            page.get_by_text("Logged in to", exact=False).wait_for(timeout=60_000)
            assert page.get_by_text("needs a user name and a password").count() == 0
            browser.close()
        assert len(dres.sessions) == 1
    finally:
        stop()
