"""The app in a real browser (Playwright driving Debian's chromium): hostile Markdown in a file
name and in on-screen text stays text, and the page fetches nothing from outside hosts.

AppTest sees only the Markdown source the app hands to Streamlit; only a browser shows what
that source becomes (an <img> that loads, a link, bold text)."""
from __future__ import annotations

import contextlib
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

from ui.text import WORD_JOINER

from .conftest import REPO, TEST_ENV
from .test_app import planted_hostile_index

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"  # Debian's; `playwright install` would download another
# Streamlit applies a rerun's changes one element at a time: every check of what the page shows
# after an action retries (expect) until it holds or a minute passes, as a busy machine needs.
expect.set_options(timeout=60_000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(data, env):
    """`evr ui` on the index in `data`, serving until the block ends; its address."""
    port = free_port()
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
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


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
    with running_app(data, {**os.environ, **TEST_ENV}) as url:
        yield url


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


def test_markdown_typed_into_the_object_picker_and_labels_on_cards_stay_text(app_url, outside_host):
    """A Markdown image typed as an object label shows as typed in the "Add" button, under the
    picker and in the filter chip, and the browser asks nothing of any other host; an imported
    label "' or 1=1 --" shows on the card as is, not with its "--" made an em dash."""
    host, outside_requests = outside_host
    label = f"![x](http://{host}/pwn.png)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        page.goto(app_url)
        page.get_by_text("Objects (each must be there)").click()
        picker = page.locator(".st-key-object_label input")
        picker.click()
        picker.fill(label)
        picker.press("Enter")
        add = page.locator(".st-key-object_add button")
        page.wait_for_function("([text, joiner]) => document.querySelector('.st-key-object_add button')"
                               ".innerText.replaceAll(joiner, '').trim() == text",
                               arg=[f"Add {label.lower()}", WORD_JOINER], timeout=60_000)
        add.click()
        shown = "([text, joiner]) => document.body.innerText.replaceAll(joiner, '').split(text).length - 1"
        # The caption under the picker and the chip ("Objects ...: LABEL (remove)") as well as the button.
        page.wait_for_function(f"{shown} >= 3", arg=[label.lower(), WORD_JOINER], timeout=60_000)
        expect(page.locator(".st-key-chip_object button")).to_contain_text("(remove)")
        # The card of the planted keyframe: its object's label as typed.
        page.locator(".st-key-chip_object button").click()
        box = page.get_by_role("textbox", name="On-screen text (all words; accents optional)")
        box.fill("bold")
        box.press("Enter")
        page.get_by_text("#1", exact=False).first.wait_for(timeout=120_000)
        page.wait_for_function("([text, joiner]) => document.body.innerText.replaceAll(joiner, '').includes(text)",
                               arg=["objects ' or 1=1 --", WORD_JOINER], timeout=60_000)
        assert "\u2014" not in page.inner_text("body")  # no em dash made of the label's "--"
        page.wait_for_load_state("networkidle")
        browser.close()
    assert all(url.startswith(app_url) or url.startswith(("data:", "blob:")) for url in asked), \
        [url for url in asked if not url.startswith(app_url)]
    assert outside_requests == []


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


# -- the contest cockpit (issue 23): a real index of two clips, a DRES stand-in, one app server ---


@pytest.fixture(scope="module")
def cockpit(videos, tmp_path_factory):
    """(app address, DRES stand-in): vtest12 (keyframes every 2 s, one shot) and counter (three
    one-second shots), indexed for real; the app's DRES address is the stand-in's."""
    from .dres_server import FakeDres, serve

    folder = tmp_path_factory.mktemp("cockpit-videos")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(videos / "opencv_samples/vtest.avi"), "-t", "12",
                    "-c", "copy", str(folder / "vtest12.avi")], check=True)
    (folder / "counter.mp4").symlink_to(videos / "scene_cuts/counter.mp4")
    data = tmp_path_factory.mktemp("cockpit-index")
    env = {**os.environ, **TEST_ENV}
    subprocess.run([sys.executable, "-m", "ui.cli", "--data-dir", str(data), "index", str(folder), "--no-progress"],
                   cwd=REPO, env=env, check=True, capture_output=True)
    dres = FakeDres()
    dres_url, stop = serve(dres)
    env.update(EVR_DRES_URL=dres_url, EVR_DRES_USERNAME=dres.user)
    with running_app(data, env) as url:
        yield url, dres
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
    page.get_by_text("#1 ", exact=False).first.wait_for(timeout=120_000)  # CLIP loads on the first query
    page.evaluate("document.activeElement.blur()")  # keys typed into the query box are the query's


def dialog(page):
    return page.get_by_role("dialog")


def player_time(page) -> float:
    """Where the opened hit's player stands once it has loaded, in seconds."""
    page.wait_for_function("() => { const v = document.querySelector('[role=dialog] video');"
                           " return v && v.readyState >= 1; }")
    return page.eval_on_selector("[role=dialog] video", "v => v.currentTime")


def test_an_opened_hit_shows_beside_the_grid_and_its_strip_moves_the_player(page):
    search(page)
    last = page.locator("[class*='st-key-open_'] button").last
    last.scroll_into_view_if_needed()  # the user is at the bottom of the grid
    last.click()
    dialog(page).wait_for()
    box = dialog(page).bounding_box()
    assert box and 0 <= box["y"] < 800 and box["height"] > 200  # in view, where the user is
    heading = dialog(page).get_by_role("heading").filter(has_text=" at ").first.inner_text()
    start = player_time(page)
    assert f"{int(start) // 60}:{int(start) % 60:02d}" in heading
    # A keyframe of the strip other than the hit: the player jumps there and it becomes the hit.
    other = dialog(page).locator("[class*='st-key-strip_'] button[kind='secondary']").first
    label = other.inner_text()
    other.click()
    dialog(page).get_by_role("heading", name=f" at {label} ", exact=False).wait_for()
    page.wait_for_function(f"() => Math.abs(document.querySelector('[role=dialog] video').currentTime - "
                           f"{int(label.split(':')[0]) * 60 + int(label.split(':')[1])}) < 1")
    expect(dialog(page).get_by_text("A neighbouring keyframe (picked in the strip)")).to_have_count(1)


def test_keys_move_through_the_hits_and_open_them(page):
    search(page)
    page.get_by_role("button", name=re.compile(r"^Open #1\b")).wait_for()
    page.keyboard.press("j")
    page.get_by_role("button", name=re.compile(r"^Open #2\b")).wait_for()
    page.keyboard.press("j")
    page.get_by_role("button", name=re.compile(r"^Open #3\b")).wait_for()
    page.keyboard.press("k")
    page.get_by_role("button", name=re.compile(r"^Open #2\b")).wait_for()
    page.keyboard.press("o")
    dialog(page).get_by_text("Hit #2 of", exact=False).wait_for()
    page.keyboard.press("j")  # in the opened hit: the next one is shown there
    dialog(page).get_by_text("Hit #3 of", exact=False).wait_for()


def test_a_two_event_chain_shows_both_thumbnails_and_opens_each_event(page):
    page.get_by_text("Temporal", exact=True).click()
    page.get_by_role("textbox", name="First event").fill("a person")
    then = page.get_by_role("textbox", name="then (2)")
    then.fill("a street")
    then.press("Enter")
    card = page.locator(".st-key-card_0")
    card.get_by_text("#1 ", exact=False).wait_for(timeout=120_000)
    expect(card.locator("img")).to_have_count(2)
    expect(card.locator("[data-testid='stImageCaption']")).to_have_count(2)
    captions = card.locator("[data-testid='stImageCaption']").all_inner_texts()
    assert [c.split(".")[0] for c in captions] == ["1", "2"]
    card.locator("[class*='st-key-open_'] button").click()
    events = dialog(page).locator("[class*='st-key-event_'] button")
    expect(events).to_have_count(2)
    second = events.nth(1).inner_text()  # "2. 0:04"
    events.nth(1).click()
    dialog(page).get_by_role("heading", name=f" at {second.split(' ')[1]} ", exact=False).wait_for()


def test_filters_show_as_chips_and_clear_at_once(page):
    search(page)
    start = page.get_by_label("From (s)", exact=True)
    start.fill("3")
    start.press("Enter")
    chip = page.get_by_role("button", name="From (s): 3.0 (remove)")
    chip.wait_for()
    page.get_by_role("button", name="Clear filters").first.click()
    chip.wait_for(state="detached")
    expect(page.get_by_label("From (s)", exact=True)).to_have_value("")


def test_the_kis_span_edited_in_the_app_is_what_dres_receives(page, cockpit):
    from .dres_server import Task

    _, dres = cockpit
    dres.task = Task("kis-app", "kis", {"mediaItemName": "nothing", "start": 0, "end": 0})
    page.get_by_text("DRES (contest server)").click()
    password = page.get_by_label("Password", exact=True)
    password.fill(dres.password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Logged in to", exact=False).wait_for()
    search(page)
    page.locator("[class*='st-key-open_'] button").first.click()
    start, end = dialog(page).get_by_label("From (s)"), dialog(page).get_by_label("To (s)")
    start.wait_for()
    start.fill("1.5")
    start.press("Enter")
    end.fill("2.25")
    end.press("Enter")
    submit = dialog(page).get_by_role("button", name="Submit ", exact=False)
    dialog(page).get_by_text("1500-2250 ms", exact=False).wait_for()
    before = len(dres.submissions)
    submit.click()
    dialog(page).get_by_role("button", name="Confirm").click()
    dialog(page).get_by_text(re.compile("^WRONG")).wait_for()
    assert len(dres.submissions) == before + 1
    sent = dres.submissions[-1]["answerSets"][0]["answers"][0]
    assert (sent["start"], sent["end"]) == (1500, 2250)
    assert dres.problems == []


def test_the_qa_file_is_named_after_the_query_and_holds_the_answer(page):
    search(page, "Người đi bộ trên phố")
    answer = page.get_by_role("textbox", name="QA answer")
    answer.fill("3 people")
    answer.press("Enter")
    button = page.get_by_role("button", name="QA CSV")
    with page.expect_download() as download:
        button.click()
    assert download.value.suggested_filename == "nguoi-di-bo-tren-pho-qa.csv"
    lines = open(download.value.path(), encoding="utf-8").read().splitlines()
    assert lines and all(line.count(",") == 2 and line.endswith(",3 people") for line in lines)
    video, frame, _ = lines[0].split(",")
    assert video in ("vtest12", "counter") and int(frame) >= 0
