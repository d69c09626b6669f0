"""The app in a real browser (Playwright driving Debian's chromium): hostile Markdown in a file
name and in on-screen text stays text, the page fetches nothing from outside hosts, and the
results and the opened hit (ui/web/results.js) do what a contest user does with them.

AppTest sees only the Markdown source the app hands to Streamlit; only a browser shows what
that source becomes (an <img> that loads, a link, bold text)."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from evr.ui.text import WORD_JOINER

from .browser_app import (  # noqa: F401 (cockpit and page are fixtures)
    CHROMIUM,
    clock_seconds,
    cockpit,
    dialog,
    log_in,
    page,
    player_time,
    running_app,
    search,
)
from .conftest import TEST_ENV
from .test_app import planted_hostile_index

pytestmark = pytest.mark.e2e

# All the text a user sees, the results' and the opened hit's (in shadow roots) included.
SEEN_TEXT = (
    "() => [document.body.innerText, ...[...document.querySelectorAll('*')].filter(e => e.shadowRoot)"
    ".map(e => e.shadowRoot.textContent)].join('\\n')"
)


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
        page.get_by_role("button", name="Open hit #1", exact=True).click(timeout=120_000)
        page.get_by_text("What happens here").wait_for(timeout=120_000)
        # Seen exactly as written: the image syntax, the asterisks, the URL, the file name.
        # Streamlit sends a rerun's elements one by one, so wait for each text (a timeout fails).
        for written in (f"![o](http://{host}/x.png) **bold** http://{host}/link :red[x]", "**star** [x](y), _u_"):
            page.wait_for_function(
                f"([written, joiner]) => ({SEEN_TEXT})().replaceAll(joiner, '').includes(written)",
                arg=[written, WORD_JOINER],
                timeout=60_000,
            )  # the joiner is invisible: it keeps URLs from linking
        page.wait_for_load_state("networkidle")
        # Nothing became an image, a link or bold text; every image comes from the app itself.
        assert page.locator(f'a[href*="{host}"], a[href="y"]').count() == 0
        assert page.locator("strong", has_text="bold").count() == 0
        assert page.locator("strong", has_text="star").count() == 0
        sources = page.locator("img").evaluate_all("imgs => imgs.map(i => i.src)")
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
        page.wait_for_function(
            "([text, joiner]) => document.querySelector('.st-key-object_add button')"
            ".innerText.replaceAll(joiner, '').trim() == text",
            arg=[f"Add {label.lower()}", WORD_JOINER],
            timeout=60_000,
        )
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
        page.get_by_role("button", name="Open hit #1", exact=True).wait_for(timeout=120_000)
        page.wait_for_function(
            f"([text, joiner]) => ({SEEN_TEXT})().replaceAll(joiner, '').includes(text)",
            arg=["objects ' or 1=1 --", WORD_JOINER],
            timeout=60_000,
        )
        assert "\u2014" not in page.evaluate(SEEN_TEXT)  # no em dash made of the label's "--"
        page.wait_for_load_state("networkidle")
        browser.close()
    assert all(url.startswith(app_url) or url.startswith(("data:", "blob:")) for url in asked), [
        url for url in asked if not url.startswith(app_url)
    ]
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


def test_an_opened_hit_shows_over_the_grid_and_its_strip_moves_the_player(page):
    search(page)
    last = page.get_by_role("button", name=re.compile(r"^Open hit #\d+$")).last
    last.scroll_into_view_if_needed()  # the user is at the bottom of the grid
    last.click()
    dialog(page).wait_for()
    box = dialog(page).bounding_box()
    assert box and 0 <= box["y"] < 800 and box["height"] > 200  # in view, where the user is
    dialog(page).get_by_text("What happens here").wait_for()
    heading = dialog(page).get_by_role("heading").first.inner_text()
    start = player_time(page)  # the hit's own time, to the frame: not the whole second before it
    assert 0 <= start - clock_seconds(heading.split(" at ")[1].split(" ")[0]) < 0.1, (heading, start)
    # A keyframe of the strip other than the hit: the player jumps there and it becomes the hit.
    other = dialog(page).get_by_role("button", name=re.compile("^Keyframe at ")).first
    label = other.get_attribute("aria-label").removeprefix("Keyframe at ")
    other.click()
    dialog(page).get_by_role("heading", name=f" at {label} ", exact=False).wait_for()
    page.wait_for_function(
        "([label, at]) => { const v = document.querySelector('#evr-opened-hit').shadowRoot"
        ".querySelector('video'); return v && Math.abs(v.currentTime - at) < 0.05; }",
        arg=[label, clock_seconds(label)],
    )
    expect(dialog(page).get_by_text("A neighbouring keyframe (picked in the strip)")).to_have_count(1)


def test_the_storyboard_shows_every_keyframe_by_shot_and_a_click_moves_the_player(page, cockpit):
    search(page)
    page.get_by_role("button", name="Open hit #1", exact=True).click()
    dialog(page).get_by_text("What happens here").wait_for()
    heading = dialog(page).get_by_role("heading").first.inner_text()  # "VIDEO at 0:02.0 (frame 50, keyframe 7)"
    video_id, hit_id = heading.split(" at ")[0], int(heading.rsplit("keyframe ", 1)[1].rstrip(")"))
    board = json.loads(
        subprocess.run(
            [sys.executable, "-m", "evr.ui.cli", "--data-dir", str(cockpit[3]), "storyboard", video_id, "--json"],
            env={**os.environ, **TEST_ENV},
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout
    )
    region = dialog(page).get_by_role("region", name="The whole video")
    shown = region.get_by_role("button", name=re.compile("^Storyboard keyframe at "))
    expect(shown).to_have_count(board["keyframes"])  # every keyframe of the video
    expect(region.locator(".board-shot")).to_have_count(len(board["shots"]))  # one group per shot
    expect(region.locator(".board-shot.here button.here")).to_have_count(1)  # the hit, in its shot
    # Another keyframe, the farthest from the hit: the player goes to its time and it is opened.
    frames = [k for s in board["shots"] for k in s["keyframes"]]
    hit_time = next(k["timestamp"] for k in frames if k["keyframe_id"] == hit_id)
    target = max(frames, key=lambda k: abs(k["timestamp"] - hit_time))
    at = target["timestamp"]
    region.get_by_role("button", name=re.compile("^Storyboard keyframe at ")).nth(frames.index(target)).click()
    # The board stays while the picked keyframe's details come (drawn by the click itself).
    shown_now = page.evaluate(
        "() => document.querySelector('#evr-opened-hit').shadowRoot.querySelectorAll('.board-shot button').length"
    )
    assert shown_now == board["keyframes"]
    page.wait_for_function(
        "at => { const v = document.querySelector('#evr-opened-hit').shadowRoot.querySelector('video');"
        " return v && Math.abs(v.currentTime - at) < 0.05; }",
        arg=at,
    )
    dialog(page).get_by_role("heading", name=f"keyframe {target['keyframe_id']})", exact=False).wait_for()


CURRENT_CARD = (
    "() => { const root = [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)"
    ".map(r => r.querySelector('.cards')).find(Boolean); const c = root.querySelector('.card.current');"
    " const r = c.getBoundingClientRect(); return [Number(c.dataset.index), r.top, r.bottom,"
    " root.children.length]; }"
)


def test_keys_move_through_the_hits_scroll_the_page_and_open_them(page):
    page.set_viewport_size({"width": 1280, "height": 500})  # a row of cards and a bit: the rest below
    search(page)
    last = page.evaluate(CURRENT_CARD)[3] - 1
    assert last >= 4  # a second row at least
    for _ in range(last):
        page.keyboard.press("j")
    page.wait_for_function(f"({CURRENT_CARD})()[0] === {last}")
    index, top, bottom, _ = page.evaluate(CURRENT_CARD)
    assert 0 <= top and bottom <= 500, (top, bottom)  # the page followed the current card
    page.keyboard.press("k")
    page.wait_for_function(f"({CURRENT_CARD})()[0] === {last - 1}")
    page.keyboard.press("o")
    dialog(page).get_by_text(f"Hit #{last} of", exact=False).wait_for()
    page.keyboard.press("j")  # in the opened hit: the next one is shown there
    dialog(page).get_by_text(f"Hit #{last + 1} of", exact=False).wait_for()
    page.keyboard.press("Escape")
    expect(dialog(page)).to_be_hidden()


def test_a_two_event_chain_shows_both_thumbnails_and_opens_each_event(page):
    page.get_by_text("Temporal", exact=True).click()
    page.get_by_role("textbox", name="First event").fill("a person")
    then = page.get_by_role("textbox", name="then (2)")
    then.fill("a street")
    then.press("Enter")
    opener = page.get_by_role("button", name="Open hit #1", exact=True)
    opener.wait_for(timeout=120_000)
    card = page.locator(".card").first
    expect(card.locator("img")).to_have_count(2)
    captions = card.locator("figcaption").all_inner_texts()
    assert [c.split(".")[0] for c in captions] == ["1", "2"]
    opener.click()
    events = dialog(page).get_by_role("button", name=re.compile(r"^Keyframe at \d\. "))
    expect(events).to_have_count(2)
    second = events.nth(1).get_attribute("aria-label").removeprefix("Keyframe at ")  # "2. 0:04.0"
    events.nth(1).click()
    dialog(page).get_by_role("heading", name=f" at {second.split(' ')[1]} ", exact=False).wait_for()


def test_filters_show_as_chips_and_clear_at_once(page):
    search(page)
    start = page.get_by_label("Frames from (s)", exact=True)
    start.fill("3")
    start.press("Enter")
    chip = page.get_by_role("button", name="Frames from (s): 3.0 (remove)")
    chip.wait_for()
    page.get_by_role("button", name="Clear filters").first.click()
    chip.wait_for(state="detached")
    expect(page.get_by_label("Frames from (s)", exact=True)).to_have_value("")


def test_a_submission_asks_first_sends_the_span_edited_and_the_prompt_goes_with_the_verdict(page, cockpit):
    from .dres_server import Task

    dres = cockpit[1]
    dres.task = Task("kis-app", "kis", {"mediaItemName": "nothing", "start": 0, "end": 0})
    log_in(page, dres)
    search(page)
    page.get_by_role("button", name="Open hit #1", exact=True).click()
    start, end = dialog(page).get_by_label("Answer from (s)"), dialog(page).get_by_label("Answer to (s)")
    start.fill("1.5")
    end.fill("0.5")  # backwards: Submit stays, greyed, with the reason
    submit = dialog(page).get_by_role("button", name="Submit", exact=True)
    expect(submit).to_be_disabled()
    dialog(page).get_by_text("runs backwards", exact=False).wait_for()
    end.fill("2.25")
    dialog(page).get_by_text("1500-2250 ms", exact=False).wait_for()
    before = len(dres.submissions)
    submit.click()
    prompt = dialog(page).get_by_text("A wrong answer costs points", exact=False)
    prompt.wait_for()
    assert len(dres.submissions) == before  # nothing leaves before the confirmation
    dialog(page).get_by_role("button", name="Confirm").click()
    dialog(page).get_by_text(re.compile("^WRONG")).wait_for()
    expect(prompt).to_have_count(0)  # the question is answered: it goes with the verdict
    assert len(dres.submissions) == before + 1
    sent = dres.submissions[-1]["answerSets"][0]["answers"][0]
    assert (sent["start"], sent["end"]) == (1500, 2250)
    assert dres.problems == []


def test_the_first_screen_holds_the_results_and_the_opened_hits_player_and_submit(page, cockpit):
    dres = cockpit[1]
    log_in(page, dres)
    search(page)
    first = page.locator(".card").first.bounding_box()
    assert first and first["y"] + first["height"] <= 800, first  # a whole first row of results
    page.get_by_role("button", name="Open hit #1", exact=True).click()
    dialog(page).get_by_text("What happens here").wait_for()
    for part in (dialog(page).locator("video"), dialog(page).get_by_role("button", name="Submit", exact=True)):
        box = part.bounding_box()
        assert box and box["y"] + box["height"] <= 800, box


def test_find_similar_frames_in_an_opened_hit_searches_by_it(page):
    search(page)
    page.get_by_role("button", name="Open hit #3", exact=True).click()
    dialog(page).get_by_role("button", name="Find similar frames").click()
    expect(page.get_by_role("spinbutton", name="Keyframe id")).to_be_visible()
    page.get_by_role("button", name="Open hit #1", exact=True).wait_for()
    assert page.get_by_text("AttributeError").count() == 0 and page.get_by_text("Traceback").count() == 0


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


def searches_logged(log) -> int:
    """How many searches the app ran so far: its timing log counts them (ui/timing.py)."""
    return sum(int(n) for n in re.findall(r"; search x(\d+)", Path(log).read_text()))


def test_opening_and_moving_run_no_search_and_a_like_runs_one_keeping_the_opened_hit(page, cockpit):
    log = cockpit[2]
    size = page.get_by_label("Results per page", exact=True)
    size.fill("4")
    size.press("Enter")
    page.get_by_text("Every hit", exact=True).click()
    search(page, "a person walking")
    page.get_by_role("button", name="More results", exact=True).click()  # a second page: 8 hits
    page.get_by_role("button", name="Open hit #8", exact=True).wait_for()
    time.sleep(1)  # the search's run has written its line
    before = searches_logged(log)
    assert before >= 1
    page.get_by_role("button", name="Open hit #2", exact=True).click()
    dialog(page).get_by_text("What happens here").wait_for()
    page.keyboard.press("j")
    dialog(page).get_by_text("Hit #3 of", exact=False).wait_for()
    heading = dialog(page).get_by_role("heading").first.inner_text()
    time.sleep(1)
    assert searches_logged(log) == before  # opening, the details, the next hit: no search
    dialog(page).get_by_role("button", name="Like L", exact=True).click()
    dialog(page).locator("button[aria-pressed=true]", has_text="Like").wait_for()
    time.sleep(1)
    assert searches_logged(log) == before + 1  # the like: the list re-ranked once
    assert dialog(page).get_by_role("heading").first.inner_text() == heading  # the same hit stays open
    where = dialog(page).locator("p.caption").first.inner_text()
    assert where.endswith(" of 8") or " of 8 " in where  # both pages kept
    rank = int(re.search(r"Hit #(\d+) of", where).group(1))
    page.keyboard.press("j")  # the next one in the new order, not the old one's
    dialog(page).get_by_text(f"Hit #{rank + 1} of", exact=False).wait_for()
