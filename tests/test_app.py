"""The Streamlit app through streamlit.testing.v1.AppTest, on a real index built from sample clips.

Every filter is checked against `evr search` with the same arguments: the app and the CLI must
give the very same hits (one search code path)."""
from __future__ import annotations

import math

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from ui.cli import main
from ui.text import WORD_JOINER, plain

from .conftest import REPO, evr
from .test_analyzers import render_text_video

pytestmark = pytest.mark.e2e

APP = str(REPO / "ui" / "app.py")
PAGE = 6  # results per page in these tests (the index holds about a dozen keyframes)


@pytest.fixture(scope="module")
def app_index(videos, tmp_path_factory):
    """Street (persons), a signer, a people-free clip and a rendered clip with captions (OCR)."""
    folder = tmp_path_factory.mktemp("app-videos")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(videos / "opencv_samples/vtest.avi"), "-t", "8",
                    "-c", "copy", str(folder / "vtest8.avi")], check=True)
    (folder / "again.mkv").symlink_to(videos / "asl_gestures/again.mkv")
    (folder / "counter.mp4").symlink_to(videos / "scene_cuts/counter.mp4")
    render_text_video(folder / "captions.mp4", videos)
    data = tmp_path_factory.mktemp("app-index")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVR_OCR_ENABLED", "true")
        mp.setenv("EVR_OCR_LANGUAGES", "en")
        mp.setenv("EVR_PERSONS_ENABLED", "true")
        mp.setenv("EVR_PERSONS_BACKEND", "mediapipe")
        assert main(["--data-dir", str(data), "index", str(folder), "--no-progress"]) == 0
    return data


@pytest.fixture
def app(app_index, monkeypatch):
    monkeypatch.setenv("EVR_STORAGE_DATA_DIR", str(app_index))
    monkeypatch.setenv("EVR_UI_PAGE_SIZE", str(PAGE))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def cli_hits(data: Path, capsys, *args, k: int = PAGE) -> list[int]:
    """`evr search` with the app's default: at most 3 hits a video (ui.hits_per_video), in rank order."""
    code, hits = evr("--data-dir", data, "search", *args, "--k", str(k), "--group", "limit", "--per-video", "3",
                     "--json", capsys=capsys)
    assert code == 0
    return [h["keyframe_id"] for h in hits]


def app_hits(at) -> list[int]:
    return [h.keyframe_id for h in at.session_state["hits"]]


def test_query_shows_the_same_hits_as_the_cli(app, app_index, capsys):
    app.text_input(key="query").input("people walking on a street").run()
    assert not app.exception
    shown = app_hits(app)
    assert shown == cli_hits(app_index, capsys, "people walking on a street")
    assert len(shown) == PAGE  # a page of results
    cards = [m.value for m in app.markdown if m.value.startswith("**#")]
    assert len(cards) == PAGE and cards[0].startswith("**#1**")
    assert len(app.get("image")) >= PAGE  # thumbnails
    app.button(key="more").click().run()
    assert len(app_hits(app)) == 2 * PAGE  # "more results" adds a page
    assert app_hits(app) == cli_hits(app_index, capsys, "people walking on a street", k=2 * PAGE)
    videos = [h.video_id for h in app.session_state["hits"]]
    assert max(map(videos.count, videos)) <= 3  # ui.hits_per_video, by default
    app.sidebar.radio(key="per_video_mode").set_value("all").run()  # every hit: the plain ranking
    code, plain_hits = evr("--data-dir", app_index, "search", "people walking on a street", "--k", str(PAGE),
                           "--json", capsys=capsys)
    assert app_hits(app) == [h["keyframe_id"] for h in plain_hits]
    videos = [h["video_id"] for h in plain_hits]
    assert max(map(videos.count, videos)) > 3  # so the default above did leave hits out


@pytest.mark.parametrize("widget, value, cli_args", [
    ("min_persons", 2, ["--min-persons", "2"]),
    ("max_persons", 0, ["--max-persons", "0"]),
    ("pose", ["standing"], ["--pose", "standing"]),
    ("ocr", "breaking news", ["--ocr", "breaking news"]),
    ("videos", ["again", "counter"], ["--video", "again", "--video", "counter"]),
    ("time", (2.0, 5.0), ["--from", "2", "--to", "5"]),
])
def test_each_filter_changes_hits_as_the_cli_does(app, app_index, capsys, widget, value, cli_args):
    app.text_input(key="query").input("a person").run()
    unfiltered = app_hits(app)
    if widget in ("min_persons", "max_persons"):
        app.sidebar.number_input(key=widget).set_value(value).run()
    elif widget == "ocr":
        app.sidebar.text_input(key="ocr").input(value).run()
    elif widget == "time":
        app.number_input(key="time_from").set_value(value[0])
        app.number_input(key="time_to").set_value(value[1]).run()
    else:
        app.multiselect(key=widget).set_value(value).run()
    assert not app.exception
    filtered = app_hits(app)
    assert filtered == cli_hits(app_index, capsys, "a person", *cli_args)
    assert filtered and filtered != unfiltered


def test_an_opened_hit_shows_what_the_analyzers_found_in_it(app):
    app.sidebar.number_input(key="min_persons").set_value(1).run()
    app.text_input(key="query").input("a person").run()
    hit = app.session_state["hits"][0]
    assert hit.fields["person_count"] >= 1
    app.button(key=f"open_{hit.keyframe_id}").click().run()
    assert not app.exception
    assert any("What the analyzers found" in m.value for m in app.markdown)
    assert any(c.value.count("person ") == hit.fields["person_count"] for c in app.caption)


def test_an_opened_hit_can_play_just_its_shot(app):
    app.sidebar.multiselect(key="videos").set_value(["counter"])  # three one-second shots
    app.text_input(key="query").input("a person").run()
    hit = app.session_state["hits"][0]
    app.button(key=f"open_{hit.keyframe_id}").click().run()
    player = app.get("video")[0].proto
    assert player.start_time == int(hit.timestamp) and not player.loop
    assert hit.shot_start <= hit.timestamp < hit.shot_end
    # Shots are numbered from 0, as `evr shots` and the JSON number them.
    assert any(c.value.startswith(f"Shot {hit.shot}: ") for c in app.caption)
    app.toggle(key="only_shot").set_value(True).run()
    assert not app.exception
    player = app.get("video")[0].proto
    assert (player.start_time, player.end_time, player.loop) == (
        math.floor(hit.shot_start), math.ceil(hit.shot_end), True)


def test_a_video_of_one_shot_offers_no_shot_loop(app, app_index, capsys):
    code, shots = evr("--data-dir", app_index, "shots", "again", "--json", capsys=capsys)
    assert code == 0 and len(shots) == 1
    app.sidebar.multiselect(key="videos").set_value(["again"])
    app.text_input(key="query").input("a person").run()
    hit = app.session_state["hits"][0]
    app.button(key=f"open_{hit.keyframe_id}").click().run()
    assert not app.exception and app.get("video")[0].proto.start_time == int(hit.timestamp)
    assert not [t for t in app.toggle if t.key == "only_shot"]
    assert any(c.value.endswith("(the whole video)") for c in app.caption)


def test_summary_appears_and_is_read_aloud_offline(app, app_index, capsys):
    app.text_input(key="query").input("a person").run()
    first = app.session_state["hits"][0]
    app.button(key=f"open_{first.keyframe_id}").click().run()
    assert not app.exception
    code, summary = evr("--data-dir", app_index, "summarize", first.keyframe_id, "--lang", "en", "--json",
                        capsys=capsys)
    assert any(m.value == plain(summary["text"]) for m in app.markdown)  # shown as plain text
    assert summary["text"].startswith(f"Video {first.video_id}, at ")
    assert len(app.get("video")) == 1  # the player, at the hit
    app.radio(key="language").set_value("vi").run()
    assert any(m.value.startswith(plain(f"Video {first.video_id}, lúc ")) for m in app.markdown)
    app.button(key="speak").click().run()
    assert not app.exception
    assert len(app.get("audio")) == 1
    assert any("espeak-ng (offline voice)" in c.value for c in app.caption)
    spoken = app.session_state["spoken"]
    assert spoken.engine == "espeak-ng" and spoken.path.read_bytes()[:4] == b"RIFF"


def test_export_bytes_are_the_exact_aic_csv(app):
    app.text_input(key="query").input("a person").run()
    hits = app.session_state["hits"]
    expected = "".join(f"{h.video_id},{h.frame_idx}\n" for h in hits).encode()
    assert app.session_state["export_csv"] == expected
    app.number_input(key="top_n").set_value(3).run()
    assert app.session_state["export_csv"] == "".join(f"{h.video_id},{h.frame_idx}\n" for h in hits[:3]).encode()
    picked = [hits[5], hits[1]]
    for h in picked:
        app.checkbox(key=f"pick_{h.keyframe_id}").check()
    app.run()
    in_rank_order = sorted(picked, key=lambda h: h.rank)
    assert app.session_state["export_csv"] == "".join(f"{h.video_id},{h.frame_idx}\n" for h in in_rank_order).encode()
    assert [b.label for b in app.get("download_button")] == ["KIS CSV", "JSON"]  # QA: once there is an answer
    app.text_input(key="export_answer").input("  two   dogs ").run()
    assert [b.label for b in app.get("download_button")] == ["KIS CSV", "QA CSV", "JSON"]
    assert app.session_state["export_qa_csv"] == "".join(
        f"{h.video_id},{h.frame_idx},two dogs\n" for h in in_rank_order).encode()
    app.text_input(key="export_answer").input("a, b").run()
    assert any("comma" in e.value for e in app.error)


def test_temporal_mode_exports_three_fields(app):
    app.radio(key="mode").set_value("Temporal").run()
    app.text_input(key="first").input("a person")
    app.text_input(key="then").input("a street").run()
    assert not app.exception
    hits = app.session_state["hits"]
    assert hits and all(h.then is not None and h.then.video_id == h.video_id for h in hits)
    lines = app.session_state["export_csv"].decode().splitlines()
    assert lines[0] == f"{hits[0].video_id},{hits[0].frame_idx},{hits[0].then.frame_idx}"


def test_find_similar_switches_to_the_frame(app):
    app.text_input(key="query").input("a person").run()
    target = app.session_state["hits"][2]
    app.button(key=f"open_{target.keyframe_id}").click().run()
    app.button(key="similar").click().run()
    assert app.radio(key="mode").value == "Similar frame"
    assert app_hits(app)[0] == target.keyframe_id


def test_empty_index_says_how_to_index(tmp_path, monkeypatch):
    monkeypatch.setenv("EVR_STORAGE_DATA_DIR", str(tmp_path / "nothing"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "evr index" in at.info[0].value


def test_missing_weights_turn_semantic_search_off_but_ocr_works(tmp_path, videos, monkeypatch, capsys):
    """Index with a real local weights file, then take it away: the app says so and still
    answers from on-screen text."""
    import open_clip

    weights = tmp_path / "clip-small.pt"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = open_clip.create_model("ViT-S-32-alt", pretrained=None)
    torch.save(model.state_dict(), weights)
    folder, data = tmp_path / "v", tmp_path / "d"
    folder.mkdir()
    render_text_video(folder / "captions.mp4", videos)
    monkeypatch.setenv("EVR_CLIP_PRETRAINED", str(weights))
    monkeypatch.setenv("EVR_OCR_ENABLED", "true")
    monkeypatch.setenv("EVR_OCR_LANGUAGES", "en")
    code, report = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and report["keyframes_added"] >= 3
    weights.unlink()
    monkeypatch.setenv("EVR_STORAGE_DATA_DIR", str(data))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input(key="query").input("breaking news").run()
    assert not at.exception
    assert any("Semantic search is off" in w.value and "does not exist" in w.value for w in at.warning)
    hits = at.session_state["hits"]
    # The keyframes of the captioned shot (2-4 s), found by their on-screen text alone.
    assert hits and {h.match for h in hits} == {"ocr"} and min(h.frame_idx for h in hits) == 20
    assert all(h.shot_start == 2.0 and h.shot_end == 4.0 for h in hits)


HOSTILE_NAME = "**star** [x](y), _u_"
HOSTILE_TEXT = "![o](http://127.0.0.1:9/x.png) **bold** http://evil.example :red[x] $1$"
HOSTILE_LABEL = "' or 1=1 --"  # an imported object's label: Streamlit's typography would make "--" a dash


def planted_hostile_index(data: Path, text: str = HOSTILE_TEXT) -> None:
    """One keyframe whose file name, on-screen text and object label an attacker chose."""
    from indexer.encoders import ClipEncoder
    from storage import NewKeyframe, NewShot, Store, TextBox, VideoInfo
    from storage.features.objects import DetectedObject, ObjectsInFrame
    from ui.config import load_config

    model = ClipEncoder(load_config().index.clip).info
    vector = np.ones(model.dim, np.float32) / np.sqrt(model.dim)
    jpeg = cv2.imencode(".jpg", np.zeros((36, 64, 3), np.uint8))[1].tobytes()
    with Store(data, writer=True) as store:
        store.bind_model(model)
        vid = store.writes.start_video(f"/nowhere/{HOSTILE_NAME}.mp4", 1, 1)
        store.writes.save_video(vid, VideoInfo("pyav", 2.0, 25.0, 50, 64, 36),
                         [NewKeyframe(0, 0.0, 0, jpeg, vector, {
                             "ocr": [TextBox(text, (0, 0, 1, 1), 0.9)],
                             "objects": ObjectsInFrame([DetectedObject(HOSTILE_LABEL, 0.9, (0, 0, 1, 1))])})],
                         shots=[NewShot(0, 0.0, 2.0)])



def test_file_names_and_screen_text_stay_literal(tmp_path, monkeypatch):
    data = tmp_path / "data"
    planted_hostile_index(data)
    monkeypatch.setenv("EVR_STORAGE_DATA_DIR", str(data))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.sidebar.text_input(key="ocr").input("bold").run()
    [card] = [m.value.replace(WORD_JOINER, "") for m in at.markdown if m.value.startswith("**#1**")]
    at.button(key=f"open_{at.session_state['hits'][0].keyframe_id}").click().run()
    assert not at.exception
    shown = [e.value.replace(WORD_JOINER, "") for kind in ("markdown", "subheader", "error", "caption", "info",
                                                           "warning") for e in at.get(kind)]
    # Every piece of untrusted text is there, escaped: Markdown shows it character for character.
    assert r"\*\*star\*\* \[x\]\(y\)\, \_u\_" in card and r"\!\[o\]\(http\:\/\/127\.0\.0\.1\:9" in card
    assert any(r"\*\*star\*\*" in s.value for s in at.get("subheader"))
    assert any("Cannot play" in v and r"\/nowhere\/\*\*star" in v for v in shown)  # the error names the file
    assert any(r"\*\*bold\*\*" in v and "On screen" in v for v in shown)  # the summary
    for raw in ("![o](", "**bold**", "**star**", "http://", ":red["):
        assert not any(raw in v for v in shown), raw
    # The name's comma cannot go into a CSV row: the AIC download is refused, JSON still offered.
    assert any("holds a comma" in v for v in shown) and "export_csv" not in at.session_state


def test_a_bad_setting_is_shown_not_raised(tmp_path, monkeypatch, app_index):
    monkeypatch.setenv("EVR_STORAGE_DATA_DIR", str(app_index))
    monkeypatch.setenv("EVR_SUMMARY_LANGUAGE", "fr")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and plain("summary.language must be one of en, vi") in at.error[0].value


def test_temporal_mode_takes_three_events(app, app_index, capsys):
    app.radio(key="mode").set_value("Temporal").run()
    app.number_input(key="events").set_value(3).run()
    app.text_input(key="first").input("a person")
    app.text_input(key="then").input("a street")
    app.text_input(key="then_3").input("a hand").run()
    assert not app.exception
    hits = app.session_state["hits"]
    code, cli = evr("--data-dir", app_index, "search", "a person", "--then", "a street", "--then", "a hand",
                    "--k", str(PAGE), "--json", capsys=capsys)
    assert [[e.keyframe_id for e in h.chain] for h in hits] == [
        [h["keyframe_id"], h["then"]["keyframe_id"], h["then"]["then"]["keyframe_id"]] for h in cli]
    lines = app.session_state["export_csv"].decode().splitlines()
    assert lines and lines[0] == ",".join([hits[0].video_id, *(str(e.frame_idx) for e in hits[0].chain)])


def test_thumbs_rerank_as_the_cli_feedback_does(app, app_index, capsys):
    app.text_input(key="query").input("a person").run()
    first = app_hits(app)
    liked = first[4]
    app.button(key=f"up_{liked}").click().run()
    disliked = next(k for k in app_hits(app) if k != liked)  # one shown after the first thumb
    app.button(key=f"down_{disliked}").click().run()
    assert not app.exception
    assert app_hits(app) == cli_hits(app_index, capsys, "a person", "--more-like", str(liked),
                                     "--less-like", str(disliked))
    assert disliked not in app_hits(app)
    assert any("Refined by 1 liked and 1 disliked" in c.value for c in app.caption)
    app.button(key="feedback_clear").click().run()
    assert app_hits(app) == first


def test_submit_asks_first_then_shows_the_verdict(app, app_index, tmp_path, monkeypatch):
    from .dres_server import FakeDres, Task, serve

    server = FakeDres()
    url, stop = serve(server)
    try:
        app.text_input(key="dres_url").input(url)
        app.text_input(key="dres_user").input(server.user)
        app.text_input(key="dres_password").input(server.password)
        app.button(key="dres_login").click().run()
        assert not app.exception and app.selectbox(key="dres_evaluation").value == server.evaluation
        # This browser's session, kept in its own state: no file that another browser would share.
        assert app.session_state["dres_session"]["session_id"] in server.sessions
        assert not (app_index / "dres" / "session.json").exists()
        app.text_input(key="query").input("a person").run()
        hit = app.session_state["hits"][0]
        # The search's logs went to DRES in the background (QueryEventLog, QueryResultLog).
        assert app.session_state["dres_logger"].wait(10)
        assert [kind for kind, _ in server.logs] == ["query", "result"]
        assert server.logs[0][1]["events"][0]["value"] == "a person"
        assert [r["rank"] for r in server.logs[1][1]["results"]] == [h.rank for h in app.session_state["hits"]]
        app.button(key=f"open_{hit.keyframe_id}").click().run()
        server.task = Task("kis-01", "kis", {"mediaItemName": hit.video_id, "start": 0, "end": 10**9})
        app.button(key="submit").click().run()
        assert server.submissions == []  # nothing leaves before the confirmation
        assert any("costs points" in w.value for w in app.warning)
        app.button(key="submit_cancel").click().run()
        assert server.submissions == [] and app.session_state["pending_submit"] is None
        app.button(key="submit").click().run()
        app.button(key="submit_confirm").click().run()
        assert not app.exception and len(server.submissions) == 1
        sent = server.submissions[0]["answerSets"][0]["answers"][0]
        # 2 s either side of the hit, within its shot (dres.kis_window_s)
        assert sent["mediaItemName"] == hit.video_id
        assert sent["start"] == round(max(hit.shot_start, hit.timestamp - 2) * 1000)
        assert sent["end"] == round(min(hit.shot_end, hit.timestamp + 2) * 1000)
        assert any(s.value.startswith("CORRECT") for s in app.success)
        assert len(server.logs) == 2  # opening and submitting a hit reran the page: no new search, no new log
        app.button(key="submit").click().run()
        app.button(key="submit_confirm").click().run()  # the same answer again: refused, said so
        refusal = next(w.value for w in app.warning if "not sent again" in w.value)
        assert len(server.submissions) == 1 and "--again" not in refusal and "tick" in refusal
        assert server.problems == []
        app.button(key="dres_logout").click().run()  # the index is shared with other tests
        assert not (app_index / "dres" / "session.json").exists()
    finally:
        stop()
