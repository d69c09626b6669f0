"""Submitting to DRES through a local stand-in that checks every call against the client API
(tests/dres_server.py): the session, the answers' exact bodies, the duplicate guard, the task's
state and clock, refusals, many answers at once, and the query logs."""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path

import pytest

from evr.storage import Store

from .conftest import evr, run
from .dres_server import FakeDres, Task, serve

pytestmark = pytest.mark.integration


@pytest.fixture
def dres(monkeypatch):
    server = FakeDres()
    url, stop = serve(server)
    server.url = url
    monkeypatch.setenv("EVR_DRES_URL", url)
    monkeypatch.setenv("EVR_DRES_USERNAME", server.user)
    monkeypatch.setenv("EVR_DRES_PASSWORD", server.password)
    monkeypatch.setenv("EVR_DRES_TIMEOUT_S", "2")
    yield server
    stop()
    for data in LOGGED_IN:  # shared indexes: later searches on them must not log to a server that is gone
        (data / "dres" / "session.json").unlink(missing_ok=True)
    LOGGED_IN.clear()
    assert server.problems == []  # no body, ours or the server's, broke the API's schemas


LOGGED_IN: list[Path] = []


def login(data: Path, capsys) -> None:
    code, _ = evr("--data-dir", data, "dres", "login", capsys=capsys)
    assert code == 0
    LOGGED_IN.append(Path(data))


def answers(server: FakeDres) -> list[dict]:
    return [s["answerSets"][0]["answers"][0] for s in server.submissions]


def test_login_keeps_the_session_private_and_lists_evaluations(dres, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EVR_DRES_PASSWORD", "wrong")
    code, _, err = run(capsys, "--data-dir", tmp_path, "dres", "login")
    assert code == 1 and "refused the user name or password (401): Invalid credentials" in err
    monkeypatch.setenv("EVR_DRES_PASSWORD", dres.password)
    login(tmp_path, capsys)
    session_file = tmp_path / "dres" / "session.json"
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert json.loads(session_file.read_text())["session_id"] in dres.sessions
    code, evaluations = evr("--data-dir", tmp_path, "dres", "evaluations", "--json", capsys=capsys)
    assert code == 0 and [e["id"] for e in evaluations] == ["eval-final", "eval-old"]
    dres.sessions.clear()  # the server restarted: the kept session is gone
    code, _, err = run(capsys, "--data-dir", tmp_path, "dres", "evaluations")
    assert code == 1 and "does not know this session (401)" in err and "evr dres login" in err


def test_kis_qa_and_trake_send_the_exact_bodies(dres, imported, package, capsys, monkeypatch):
    _, made = package
    login(imported, capsys)
    with Store(imported) as store:
        rows = {(r.video_id, r.frame_idx): r for r in store.catalog.keyframes(range(1, 100)).values()}
    v = made["L02_V001"]
    hit = rows[(v.video_id, v.frames[2])]
    ms = round(v.pts[2] * 1000)
    dres.task = Task("kis-01", "kis", {"mediaItemName": v.video_id, "start": ms - 500, "end": ms + 500})
    code, verdict = evr("--data-dir", imported, "dres", "submit", hit.keyframe_id, "--json", capsys=capsys)
    assert code == 0 and verdict["verdict"] == "CORRECT" and verdict["task"] == "kis-01"
    sent = dres.submissions[-1]["answerSets"][0]["answers"][0]  # an imported keyframe has no shot: 2 s either side
    assert sent["mediaItemName"] == v.video_id
    assert [sent["start"], sent["end"]] == pytest.approx([max(0, ms - 2000), ms + 2000], abs=1)
    dres.task = Task("qa-01", "qa", {"text": f"QA-42-{v.video_id}-{ms}"})
    code, verdict = evr(
        "--data-dir",
        imported,
        "dres",
        "submit",
        hit.keyframe_id,
        "--task",
        "qa",
        "--answer",
        "42",
        "--json",
        capsys=capsys,
    )
    assert verdict["verdict"] == "CORRECT" and answers(dres)[-1] == {"text": f"QA-42-{v.video_id}-{ms}"}
    # VBS's QA tasks take the answer alone ([dres] qa_format = "text").
    monkeypatch.setenv("EVR_DRES_QA_FORMAT", "text")
    dres.task = Task("qa-02", "qa", {"text": "42 people"})
    code, verdict = evr(
        "--data-dir",
        imported,
        "dres",
        "submit",
        hit.keyframe_id,
        "--task",
        "qa",
        "--answer",
        " 42  people ",
        "--json",
        capsys=capsys,
    )
    assert verdict["verdict"] == "CORRECT" and answers(dres)[-1] == {"text": "42 people"}
    monkeypatch.delenv("EVR_DRES_QA_FORMAT")
    chain = [rows[(v.video_id, f)].keyframe_id for f in v.frames[1:4]]
    dres.task = Task("trake-01", "trake", {"text": f"TR-{v.video_id}-{v.frames[1]},{v.frames[2]},{v.frames[4]}"})
    code, out = evr("--data-dir", imported, "dres", "submit", *chain, "--task", "trake", capsys=capsys)
    assert code == 0 and out.startswith("WRONG")
    assert answers(dres)[-1] == {"text": f"TR-{v.video_id}-{v.frames[1]},{v.frames[2]},{v.frames[3]}"}
    # A chain across videos, or a QA without its answer, never leaves the machine.
    other = rows[("L02_V002", made["L02_V002"].frames[0])].keyframe_id
    sent = len(dres.submissions)
    code, _, err = run(capsys, "--data-dir", imported, "dres", "submit", chain[0], other, "--task", "trake")
    assert code == 2 and "one video" in err
    code, _, err = run(capsys, "--data-dir", imported, "dres", "submit", chain[0], "--task", "qa")
    assert code == 2 and "--answer" in err and len(dres.submissions) == sent


def test_kis_of_a_decoded_video_sends_a_window_within_its_shot(dres, indexed, capsys, monkeypatch):
    login(indexed, capsys)
    code, hits = evr("--data-dir", indexed, "search", "a street", "--k", "1", "--json", capsys=capsys)
    hit = hits[0]
    t, shot = hit["timestamp"], (hit["shot_start"], hit["shot_end"])
    dres.task = Task("kis-02", "kis", {"mediaItemName": "nothing", "start": 0, "end": 0})
    code, verdict = evr("--data-dir", indexed, "dres", "submit", hit["keyframe_id"], "--json", capsys=capsys)
    assert code == 0 and verdict["verdict"] == "WRONG"
    sent = answers(dres)[-1]
    assert sent["mediaItemName"] == hit["video_id"] and sent["start"] < sent["end"]
    # 2 s either side, cut to the shot, in ms (the JSON's seconds are rounded to 1 ms).
    assert [sent["start"], sent["end"]] == pytest.approx(
        [max(shot[0], t - 2) * 1000, min(shot[1], t + 2) * 1000], abs=1
    )
    monkeypatch.setenv("EVR_DRES_KIS_WINDOW_S", "3600")  # a window wider than any shot: the whole shot
    code, _ = evr("--data-dir", indexed, "dres", "submit", hit["keyframe_id"], "--again", "--json", capsys=capsys)
    sent = answers(dres)[-1]
    assert [sent["start"], sent["end"]] == pytest.approx([shot[0] * 1000, shot[1] * 1000], abs=1)


def test_the_same_answer_is_never_sent_twice_by_accident(dres, imported, capsys, monkeypatch):
    login(imported, capsys)
    dres.task = Task("kis-03", "kis", {"mediaItemName": "L01_V001", "start": 0, "end": 10})
    code, _ = evr("--data-dir", imported, "dres", "submit", "1", capsys=capsys)
    assert code == 0 and len(dres.submissions) == 1
    code, _, err = run(capsys, "--data-dir", imported, "dres", "submit", "1")
    assert code == 2 and "not sent again" in err and len(dres.submissions) == 1
    code, _ = evr("--data-dir", imported, "dres", "submit", "1", "--again", capsys=capsys)
    assert code == 0 and len(dres.submissions) == 2
    dres.task = Task("kis-04", "kis", {"mediaItemName": "L01_V001", "start": 0, "end": 10})  # a new task
    code, _ = evr("--data-dir", imported, "dres", "submit", "1", capsys=capsys)
    assert code == 0 and len(dres.submissions) == 3


def test_rejections_and_timeouts_give_one_line(dres, imported, capsys, monkeypatch):
    login(imported, capsys)
    dres.task = Task("kis-05", "kis", {"mediaItemName": "L01_V001", "start": 0, "end": 10})
    dres.reject = "Duplicate submission received."
    code, _, err = run(capsys, "--data-dir", imported, "dres", "submit", "2")
    assert code == 1 and err.strip().splitlines() == [
        "evr: error: DRES rejected the submission (412): Duplicate submission received."
    ]
    monkeypatch.setenv("EVR_DRES_TIMEOUT_S", "0.5")
    dres.delay_s = 1.5
    code, _, err = run(capsys, "--data-dir", imported, "dres", "submit", "3")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "did not answer within 0.5 s" in err and "counts as sent" in err
    dres.delay_s = 0
    code, _, err = run(capsys, "--data-dir", imported, "dres", "submit", "3")  # it may have arrived: not again
    assert code == 2 and "not sent again" in err
    monkeypatch.setenv("EVR_DRES_URL", "http://127.0.0.1:9")  # nothing listens there
    code, _, err = run(capsys, "--data-dir", imported, "dres", "login")
    assert code == 1 and "cannot reach DRES" in err


def test_each_search_logs_its_query_and_results_to_dres(dres, imported, capsys):
    """Bodies the stand-in checks against the API's QueryEventLog and QueryResultLog schemas."""
    login(imported, capsys)
    code, hits = evr(
        "--data-dir",
        imported,
        "search",
        "a man",
        "--video",
        "L02_V001",
        "--from",
        "1",
        "--k",
        "5",
        "--json",
        capsys=capsys,
    )
    assert code == 0 and hits
    (kind, events), (kind2, results) = dres.logs[-2:]
    assert (kind, kind2) == ("query", "result")
    assert [(e["category"], e["type"], e["value"]) for e in events["events"]] == [
        ("TEXT", "text", "a man"),
        ("FILTER", "video", "L02_V001"),
        ("FILTER", "time_from", "1.0"),
    ]
    assert [(r["rank"], r["answer"]["mediaItemName"], r["answer"]["start"]) for r in results["results"]] == [
        (h["rank"], h["video_id"], round(h["timestamp"] * 1000)) for h in hits
    ]
    assert results["events"] == events["events"] and results["resultSetAvailability"] == "top"
    code, _ = evr(
        "--data-dir", imported, "search", "--like", hits[0]["keyframe_id"], "--more-like", "2", "--json", capsys=capsys
    )
    categories = [(e["category"], e["type"]) for e in dres.logs[-2][1]["events"]]
    assert code == 0 and categories == [("IMAGE", "keyframe"), ("IMAGE", "relevanceFeedback")]


def test_a_dres_that_refuses_or_hangs_never_holds_a_search_up(dres, imported, capsys, caplog):
    from evr.search import Query
    from evr.ui.contest.client import DresClient, DresSettings
    from evr.ui.contest.query_log import QueryLogger

    login(imported, capsys)
    dres.refuse_logs = True
    for _ in range(2):
        code, out, _ = run(capsys, "--data-dir", imported, "search", "a man", "--k", "3", "--json")
        assert code == 0 and len(out) == 3
    said = [r.getMessage() for r in caplog.records if r.name == "evr.ui.contest.query_log" and r.levelname == "WARNING"]
    assert len(said) == 2 and "answered 500" in said[0]  # once per process: each CLI search is one
    dres.refuse_logs = False
    dres.hold_logs = threading.Event()  # DRES takes the log and does not answer
    logger = QueryLogger(DresClient(imported, DresSettings(url=dres.url, timeout_s=5)), dres.evaluation)
    started = time.perf_counter()
    logger.log(Query(text="a man", k=3), [])
    queued = time.perf_counter() - started
    assert queued < 0.05 and not logger.wait(0.2)  # queued at once; DRES still holds the log
    dres.hold_logs.set()
    assert logger.wait(10) and dres.logs[-1][0] == "result"


# -- the task's state and clock, refusals, many answers ---------------------------------------


def test_the_running_task_its_time_left_and_the_servers_clock(dres, imported, capsys):
    dres.clock_skew_ms = 90_000  # the server's clock runs 90 s ahead
    login(imported, capsys)
    offset = json.loads((imported / "dres" / "session.json").read_text())["clock_offset_ms"]
    assert offset == pytest.approx(90_000, abs=2_000)
    code, state = evr("--data-dir", imported, "dres", "task", "--json", capsys=capsys)
    assert code == 0 and state["status"] == "NO_TASK" and state["running"] is False and state["task"] is None
    dres.task = Task("qa-07", "qa", {"text": "x"}, duration_s=300)
    code, state = evr("--data-dir", imported, "dres", "task", "--json", capsys=capsys)
    assert code == 0 and state["running"] and (state["task"], state["answer_kind"]) == ("qa-07", "qa")
    assert 290 <= state["time_left_s"] <= 300
    code, line = evr("--data-dir", imported, "dres", "task", capsys=capsys)
    assert line.startswith("task qa-07 (qa), 4:")
    assert "GET /api/v2/evaluation/eval-final/state" in dres.calls and "GET /api/v2/status/time" in dres.calls
    # The logs carry the server's time.
    code, _ = evr("--data-dir", imported, "search", "a man", "--k", "2", "--json", capsys=capsys)
    query_log = next(body for kind, body in dres.logs if kind == "query")
    assert query_log["timestamp"] == pytest.approx(time.time() * 1000 + 90_000, abs=10_000)


def test_a_dres_that_keeps_the_evaluation_state_from_participants_still_takes_answers(dres, imported, capsys):
    login(imported, capsys)
    dres.refuse_state = 403
    code, state = evr("--data-dir", imported, "dres", "task", "--json", capsys=capsys)
    assert code == 0 and state["status"] == "NO_TASK"  # the current task alone says none runs
    dres.task = Task("kis-09", "kis", {"mediaItemName": "L01_V001", "start": 0, "end": 10})
    code, state = evr("--data-dir", imported, "dres", "task", "--json", capsys=capsys)
    assert code == 0 and state["running"] and state["task"] == "kis-09" and state["time_left_s"] is None
    code, verdict = evr("--data-dir", imported, "dres", "submit", "8", "--json", capsys=capsys)
    assert code == 0 and verdict["task"] == "kis-09" and len(dres.submissions) == 1


def test_no_task_or_a_task_of_another_kind_is_refused_until_forced(dres, imported, capsys):
    login(imported, capsys)
    code, _, err = run(capsys, "--data-dir", imported, "dres", "submit", "4")
    assert code == 2 and "no task running in evaluation eval-final (DRES: NO_TASK)" in err and "--force" in err
    assert dres.submissions == []
    code, _, err = run(capsys, "--data-dir", imported, "dres", "submit", "4", "--force")
    assert code == 1 and "No active task" in err and len(dres.submissions) == 1  # sent; DRES refused it
    dres.task = Task("qa-08", "qa", {"text": "x"})
    code, _, err = run(capsys, "--data-dir", imported, "dres", "submit", "5")
    assert code == 2 and "task qa-08 is a qa task, which takes a text answer, not a video span (KIS)" in err
    assert len(dres.submissions) == 1
    code, verdict = evr("--data-dir", imported, "dres", "submit", "5", "--force", "--json", capsys=capsys)
    assert code == 0 and verdict["verdict"] == "WRONG" and len(dres.submissions) == 2
    dres.task.status = "ENDED"
    code, _, err = run(capsys, "--data-dir", imported, "dres", "submit", "6", "--task", "qa", "--answer", "1")
    assert code == 2 and "(DRES: ENDED)" in err and len(dres.submissions) == 2


def test_submit_many_sends_each_answer_once_and_says_each_verdict(dres, imported, package, capsys, tmp_path):
    _, made = package
    login(imported, capsys)
    v = made["L02_V002"]
    t = v.pts[1] + 0.25  # between keyframes: the moment is sent as given, not its nearest keyframe's
    dres.task = Task("avs-01", "AVS", {"mediaItemName": v.video_id, "start": 0, "end": round(t * 1000)})
    listed = tmp_path / "answers.jsonl"
    listed.write_text(
        "\n".join(
            json.dumps(item)
            for item in ({"keyframe_id": 7}, {"video_id": v.video_id, "timestamp": t}, {"keyframe_id": 7})
        ),
        encoding="utf-8",
    )
    code, outcomes = evr("--data-dir", imported, "dres", "submit-many", listed, "--json", capsys=capsys)
    assert code == 0 and [o["outcome"] for o in outcomes][1:] == ["CORRECT", "DUPLICATE"]
    assert outcomes[0]["outcome"] in ("CORRECT", "WRONG") and outcomes[2]["sent"] is False
    assert len(dres.submissions) == 2  # the repeat was not sent
    with Store(imported) as store:  # the team sees what was sent, and DRES's verdicts (the app's cards)
        marks = [(m.keyframe_id, m.kind, m.verdict, m.who) for m in store.marks.since(0)]
    assert marks[-2:] == [
        (7, "submitted", outcomes[0]["outcome"], "team1 (command line)"),
        (outcomes[1]["keyframe_id"], "submitted", "CORRECT", "team1 (command line)"),
    ]
    sent = [s["answerSets"][0]["answers"][0] for s in dres.submissions]
    assert sent[1] == {
        "mediaItemName": v.video_id,
        "start": max(0, round((t - 2) * 1000)),
        "end": round((t + 2) * 1000),
    }
    # A search's JSON (an array of hits) is a list too; a line that names nothing is refused whole.
    code, hits = evr("--data-dir", imported, "search", "a man", "--k", "2", "--json", capsys=capsys)
    (tmp_path / "hits.json").write_text(json.dumps(hits), encoding="utf-8")
    code, out = evr("--data-dir", imported, "dres", "submit-many", tmp_path / "hits.json", "--again", capsys=capsys)
    assert code == 0 and [line.split(": ")[1] for line in out.splitlines()] in (
        [a, b] for a in ("CORRECT", "WRONG") for b in ("CORRECT", "WRONG")
    )
    assert len(dres.submissions) == 4
    listed.write_text('{"keyframe_id": 7}\n{"video": "x"}\n', encoding="utf-8")
    code, _, err = run(capsys, "--data-dir", imported, "dres", "submit-many", listed)
    assert code == 2 and "answer 2 of the list names no keyframe_id" in err and len(dres.submissions) == 4
