"""The contest cockpit's second round in a real browser: the running task's clock, answers the
task does not take refused until forced, the picked hits sent at once, and a team's marks seen
by every browser on the index (ui/web/team.js, ui/web/clock.js) against the DRES stand-in."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect, sync_playwright

from evr.storage import Store

from .browser_app import CHROMIUM, cockpit, dialog, log_in, page, search  # noqa: F401 (cockpit and page are fixtures)
from .dres_server import Task

pytestmark = pytest.mark.e2e


def test_the_task_clock_counts_down_in_the_page_and_says_when_no_task_runs(page, cockpit):
    dres = cockpit[1]
    dres.task = None
    log_in(page, dres)
    clock = page.get_by_role("timer", name="Task clock")
    expect(clock).to_have_text("No task running (DRES: NO_TASK)")
    dres.task = Task("kis-clock", "kis", {"mediaItemName": "nothing", "start": 0, "end": 0}, duration_s=300)
    expect(clock).to_have_text(re.compile(r"^Task kis-clock \(kis, takes a video span\) · 4:\d\d left$"))
    # The sidebar asks DRES every 5 s; the page counts each second between: in 3 s it shows
    # more values than any two readings of DRES could give.
    seen = set()
    for _ in range(12):
        seen.add(int(clock.get_attribute("data-left")))
        time.sleep(0.25)
    assert len(seen) >= 3 and max(seen) - min(seen) <= 4 and min(seen) >= 290, seen


def confirm_submit(page, force: bool = False) -> None:
    dialog(page).get_by_role("button", name="Submit", exact=True).click()
    if force:
        dialog(page).get_by_role("checkbox", name="Send even if no task runs or the task takes other answers").check()
    dialog(page).get_by_role("button", name="Confirm").click()


def test_no_task_or_a_kis_answer_to_a_qa_task_is_refused_until_forced(page, cockpit):
    dres = cockpit[1]
    dres.task = None
    log_in(page, dres)
    search(page)
    page.get_by_role("button", name="Open hit #1", exact=True).click()
    dialog(page).get_by_role("radio", name="KIS").check()
    before = len(dres.submissions)
    confirm_submit(page)
    dialog(page).get_by_text("no task running in evaluation eval-final (DRES: NO_TASK): nothing was sent").wait_for()
    dres.task = Task("qa-refuse", "qa", {"text": "x"})
    confirm_submit(page)
    dialog(page).get_by_text("which takes a text answer, not a video span (KIS): nothing was sent").wait_for()
    assert len(dres.submissions) == before  # neither left the machine
    confirm_submit(page, force=True)
    dialog(page).get_by_text(re.compile("^WRONG")).wait_for()
    assert len(dres.submissions) == before + 1
    assert "mediaItemName" in dres.submissions[-1]["answerSets"][0]["answers"][0]
    assert dres.problems == []


def test_three_picked_hits_are_sent_as_three_answers_each_with_its_verdict(page, cockpit):
    dres = cockpit[1]
    dres.task = Task("avs-app", "AVS", {"mediaItemName": "counter", "start": 0, "end": 60_000})
    log_in(page, dres)
    search(page, "a person")
    for n in (1, 2, 3):
        page.get_by_role("checkbox", name=f"Pick #{n}", exact=True).click()
    submit = page.get_by_role("button", name="Submit picked")
    expect(submit).to_have_text("Submit 3 picked")
    before = len(dres.submissions)
    submit.click()
    page.get_by_text("Each wrong one costs points", exact=False).wait_for()
    assert len(dres.submissions) == before  # nothing leaves before the confirmation
    page.get_by_role("button", name="Send them").click()
    outcomes = page.locator(".card .outcome")
    expect(outcomes).to_have_count(3)
    expect(page.get_by_text("Sent 3 of 3 picked", exact=False)).to_be_visible()
    assert all(re.fullmatch(r"Submitted: (CORRECT|WRONG)", t) for t in outcomes.all_inner_texts())
    sent = [s["answerSets"][0]["answers"][0] for s in dres.submissions[before:]]
    assert len(sent) == 3 and len({(a["mediaItemName"], a["start"]) for a in sent}) == 3
    # The team sees them too: the cards carry who sent them and DRES's verdict.
    expect(page.locator(".card .team-mark", has_text="sent by team1")).to_have_count(3)


def test_a_mark_made_in_one_browser_shows_in_another_within_two_seconds(cockpit):
    url, data = cockpit[0], cockpit[3]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        first, second = (browser.new_context(viewport={"width": 1280, "height": 800}).new_page() for _ in range(2))
        for each in (first, second):
            each.set_default_timeout(60_000)
            each.goto(url)
            search(each, "a street at night")
        keyframe_id = int(first.locator(".card").first.get_attribute("data-id"))
        with Store(data) as store:
            seen_before = store.marks.since(0)
        mark_on_second = second.locator(f'.card[data-id="{keyframe_id}"] .team-mark')
        expect(mark_on_second).not_to_contain_text("not it")  # it may say who sent it (the test above)
        first.get_by_role("button", name="Open hit #1", exact=True).click()
        dialog(first).get_by_role("button", name="Not it").click()
        # From the moment the mark is in the index's database to the moment the other browser,
        # which does nothing meanwhile, shows it.
        with Store(data) as store:
            deadline = time.monotonic() + 60
            while len(store.marks.since(0)) == len(seen_before) and time.monotonic() < deadline:
                time.sleep(0.02)
            committed = time.monotonic()
            assert store.marks.since(0)[-1].kind == "not_it"
        expect(mark_on_second).to_contain_text("not it: a teammate")
        assert time.monotonic() - committed < 2.0
        expect(dialog(first).get_by_text("not it: a teammate", exact=False)).to_be_visible()
        browser.close()
