"""The Streamlit app through streamlit.testing.v1.AppTest, on a real index built from sample clips.

Every filter is checked against `evr search` with the same arguments: the app and the CLI must
give the very same hits (one search code path)."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from evr.ui.actions import Services, handle
from evr.ui.cli import main
from evr.ui.config import load_config
from evr.ui.text import plain

from .conftest import REPO, evr, results_element, viewer_detail
from .test_analyzers import render_text_video

pytestmark = pytest.mark.e2e

APP = str(REPO / "ui" / "app.py")
PAGE = 6  # results per page in these tests (the index holds about a dozen keyframes)


@pytest.fixture(scope="session")
def app_index(videos, tmp_path_factory):
    """Street (persons), a signer, a people-free clip and a rendered clip with captions (OCR)."""
    folder = tmp_path_factory.mktemp("app-videos")
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(videos / "opencv_samples/vtest.avi"),
            "-t",
            "8",
            "-c",
            "copy",
            str(folder / "vtest8.avi"),
        ],
        check=True,
    )
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
    code, hits = evr(
        "--data-dir",
        data,
        "search",
        *args,
        "--k",
        str(k),
        "--group",
        "limit",
        "--per-video",
        "3",
        "--json",
        capsys=capsys,
    )
    assert code == 0
    return [h["keyframe_id"] for h in hits]


def app_hits(at) -> list[int]:
    return [h.keyframe_id for h in at.session_state["hits"]]


@contextlib.contextmanager
def services(data: Path, language: str = "en"):
    """What a click in the results hands ui/actions.py, made as the app makes it."""
    config = load_config(None, {"storage": {"data_dir": str(data)}})
    with config.open_engine() as engine:
        yield Services(engine, config, engine.summarizer(config.summary), language)


def test_query_shows_the_same_hits_as_the_cli(app, app_index, capsys):
    app.text_input(key="query").input("people walking on a street").run()
    assert not app.exception
    shown = app_hits(app)
    assert shown == cli_hits(app_index, capsys, "people walking on a street")
    assert len(shown) == PAGE  # a page of results
    cards = results_element(app)["cards"]
    assert len(cards) == PAGE and cards[0]["title"] == "#1" and [c["id"] for c in cards] == shown
    assert all(c["images"][0]["src"].startswith("/evr/thumb/") for c in cards)  # served by the app's route
    app.button(key="more").click().run()
    assert len(app_hits(app)) == 2 * PAGE  # "more results" adds a page
    assert app_hits(app) == cli_hits(app_index, capsys, "people walking on a street", k=2 * PAGE)
    videos = [h.video_id for h in app.session_state["hits"]]
    assert max(map(videos.count, videos)) <= 3  # ui.hits_per_video, by default
    app.sidebar.radio(key="per_video_mode").set_value("all").run()  # every hit: the plain ranking
    code, plain_hits = evr(
        "--data-dir", app_index, "search", "people walking on a street", "--k", str(PAGE), "--json", capsys=capsys
    )
    assert app_hits(app) == [h["keyframe_id"] for h in plain_hits]
    videos = [h["video_id"] for h in plain_hits]
    assert max(map(videos.count, videos)) > 3  # so the default above did leave hits out


@pytest.mark.parametrize(
    "widget, value, cli_args",
    [
        ("min_persons", 2, ["--min-persons", "2"]),
        ("max_persons", 0, ["--max-persons", "0"]),
        ("pose", ["standing"], ["--pose", "standing"]),
        ("ocr", "breaking news", ["--ocr", "breaking news"]),
        ("videos", ["again", "counter"], ["--video", "again", "--video", "counter"]),
        ("time", (2.0, 5.0), ["--from", "2", "--to", "5"]),
    ],
)
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
    shown = viewer_detail(hit)
    assert shown["found"].startswith("data:image/jpeg;base64,")  # the keyframe with the shapes drawn on it
    assert shown["found_caption"].count("person ") == hit.fields["person_count"]


def test_an_opened_hit_can_play_just_its_shot(app):
    app.sidebar.multiselect(key="videos").set_value(["counter"])  # three one-second shots
    app.text_input(key="query").input("a person").run()
    hit = app.session_state["hits"][0]
    shown = viewer_detail(hit)
    # The player starts at the hit's exact time, not at the whole second before it.
    assert shown["time"] == hit.timestamp and shown["video"].startswith("/evr/media/")
    assert hit.shot_start <= hit.timestamp < hit.shot_end
    # Shots are numbered from 0, as `evr shots` and the JSON number them; the loop is the shot's own.
    assert shown["shot_label"].startswith(f"Shot {hit.shot}: ") and not shown["whole"]
    assert shown["shot"] == [hit.shot_start, hit.shot_end]


def test_a_video_of_one_shot_offers_no_shot_loop(app, app_index, capsys):
    code, shots = evr("--data-dir", app_index, "shots", "again", "--json", capsys=capsys)
    assert code == 0 and len(shots) == 1
    app.sidebar.multiselect(key="videos").set_value(["again"])
    app.text_input(key="query").input("a person").run()
    hit = app.session_state["hits"][0]
    shown = viewer_detail(hit)
    assert shown["whole"] and shown["shot_label"].endswith("(the whole video)")  # no shot loop offered


def test_summary_appears_and_is_read_aloud_offline(app, app_index, capsys):
    app.text_input(key="query").input("a person").run()
    first = app.session_state["hits"][0]
    code, summary = evr(
        "--data-dir", app_index, "summarize", first.keyframe_id, "--lang", "en", "--json", capsys=capsys
    )
    assert viewer_detail(first)["summary"] == summary["text"]  # the browser sets it as text
    assert summary["text"].startswith(f"Video {first.video_id}, at ")
    app.radio(key="language").set_value("vi").run()
    assert results_element(app)["language"] == "vi"  # the browser asks for its details anew
    assert viewer_detail(first, language="vi")["summary"].startswith(f"Video {first.video_id}, lúc ")
    state = {"hits": app.session_state["hits"]}
    with services(app_index) as s:
        handle(state, {"kind": "speak", "id": first.keyframe_id}, s)
    spoken = state["details_out"][first.keyframe_id]
    assert "espeak-ng (offline voice)" in spoken["spoken_by"]
    from evr.ui.media import served_file

    assert served_file(spoken["audio"].rsplit("/", 1)[1]).read_bytes()[:4] == b"RIFF"  # served by the app's route


def test_export_bytes_are_the_exact_aic_csv(app):
    app.text_input(key="query").input("a person").run()
    hits = app.session_state["hits"]
    expected = "".join(f"{h.video_id},{h.frame_idx}\n" for h in hits).encode()
    assert app.session_state["export_csv"] == expected
    app.number_input(key="top_n").set_value(3).run()
    assert app.session_state["export_csv"] == "".join(f"{h.video_id},{h.frame_idx}\n" for h in hits[:3]).encode()
    picked = [hits[5], hits[1]]
    app.session_state["picked"] = {h.keyframe_id for h in picked}  # as two ticks on "Pick" leave it (ui/actions.py)
    app.run()
    in_rank_order = sorted(picked, key=lambda h: h.rank)
    assert app.session_state["export_csv"] == "".join(f"{h.video_id},{h.frame_idx}\n" for h in in_rank_order).encode()
    assert [b.label for b in app.get("download_button")] == ["KIS CSV", "JSON"]  # QA: once there is an answer
    app.text_input(key="export_answer").input("  two   dogs ").run()
    assert [b.label for b in app.get("download_button")] == ["KIS CSV", "QA CSV", "JSON"]
    assert (
        app.session_state["export_qa_csv"]
        == "".join(f"{h.video_id},{h.frame_idx},two dogs\n" for h in in_rank_order).encode()
    )
    app.text_input(key="export_answer").input("a, b").run()  # written as typed, quoted as CSV quotes a comma
    assert (
        app.session_state["export_qa_csv"]
        == "".join(f'{h.video_id},{h.frame_idx},"a, b"\n' for h in in_rank_order).encode()
    )


def test_temporal_mode_exports_three_fields(app):
    app.radio(key="mode").set_value("Temporal").run()
    app.text_input(key="first").input("a person")
    app.text_input(key="then").input("a street").run()
    assert not app.exception
    hits = app.session_state["hits"]
    assert hits and all(h.then is not None and h.then.video_id == h.video_id for h in hits)
    lines = app.session_state["export_csv"].decode().splitlines()
    assert lines[0] == f"{hits[0].video_id},{hits[0].frame_idx},{hits[0].then.frame_idx}"


def test_find_similar_switches_to_the_frame(app, app_index):
    app.text_input(key="query").input("a person").run()
    target = app.session_state["hits"][2]
    state = {}
    with services(app_index) as s:
        handle(state, {"kind": "similar", "id": target.keyframe_id}, s)
    assert state == {"mode": "Similar frame", "like": target.keyframe_id, "rerun_page": True}
    for key, value in state.items():  # what the click leaves in the session, then the rerun
        app.session_state[key] = value
    app.run()
    assert not app.exception and app.radio(key="mode").value == "Similar frame"
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
    from evr.indexer.encoders import ClipEncoder
    from evr.storage import NewKeyframe, NewShot, Store, TextBox, VideoInfo
    from evr.storage.features.objects import DetectedObject, ObjectsInFrame
    from evr.ui.config import load_config

    model = ClipEncoder(load_config().index.clip).info
    vector = np.ones(model.dim, np.float32) / np.sqrt(model.dim)
    jpeg = cv2.imencode(".jpg", np.zeros((36, 64, 3), np.uint8))[1].tobytes()
    with Store(data, writer=True) as store:
        store.bind_model(model)
        vid = store.writes.start_video(f"/nowhere/{HOSTILE_NAME}.mp4", 1, 1)
        store.writes.save_video(
            vid,
            VideoInfo("pyav", 2.0, 25.0, 50, 64, 36),
            [
                NewKeyframe(
                    0,
                    0.0,
                    0,
                    jpeg,
                    vector,
                    {
                        "ocr": [TextBox(text, (0, 0, 1, 1), 0.9)],
                        "objects": ObjectsInFrame([DetectedObject(HOSTILE_LABEL, 0.9, (0, 0, 1, 1))]),
                    },
                )
            ],
            shots=[NewShot(0, 0.0, 2.0)],
        )


def test_file_names_and_screen_text_stay_literal(tmp_path, monkeypatch):
    data = tmp_path / "data"
    planted_hostile_index(data)
    monkeypatch.setenv("EVR_STORAGE_DATA_DIR", str(data))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.sidebar.text_input(key="ocr").input("bold").run()
    assert not at.exception
    # The grid and the opened hit set untrusted text as text (the browser test shows it stays so):
    # every character is there as it is, nothing was turned into Markdown.
    [card] = results_element(at)["cards"]
    assert card["lines"][0].startswith(HOSTILE_NAME + " · ") and HOSTILE_TEXT[:30] in " ".join(card["lines"])
    shown = viewer_detail(at.session_state["hits"][0])
    assert shown["heading"].startswith(HOSTILE_NAME + " at ")
    assert shown["video_error"].startswith(f"Cannot play /nowhere/{HOSTILE_NAME}.mp4")  # the error names the file
    assert "**bold**" in shown["summary"] and "On screen" in shown["summary"]
    # What Streamlit itself renders as Markdown is escaped: no raw syntax there.
    rendered = [e.value for kind in ("markdown", "error", "caption", "info", "warning") for e in at.get(kind)]
    for raw in ("![o](", "**bold**", "**star**", "http://"):
        assert not any(raw in v for v in rendered), raw
    # The name's comma cannot go into a CSV row: the AIC download is refused, JSON still offered.
    assert any("holds a comma" in v for v in rendered) and "export_csv" not in at.session_state


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
    code, cli = evr(
        "--data-dir",
        app_index,
        "search",
        "a person",
        "--then",
        "a street",
        "--then",
        "a hand",
        "--k",
        str(PAGE),
        "--json",
        capsys=capsys,
    )
    assert [[e.keyframe_id for e in h.chain] for h in hits] == [
        [h["keyframe_id"], h["then"]["keyframe_id"], h["then"]["then"]["keyframe_id"]] for h in cli
    ]
    lines = app.session_state["export_csv"].decode().splitlines()
    assert lines and lines[0] == ",".join([hits[0].video_id, *(str(e.frame_idx) for e in hits[0].chain)])


def test_thumbs_rerank_as_the_cli_feedback_does(app, app_index, capsys):
    app.text_input(key="query").input("a person").run()
    first = app_hits(app)
    liked = first[4]
    state = {"more_like": list(app.session_state["more_like"]), "less_like": list(app.session_state["less_like"])}
    with services(app_index) as s:
        handle(state, {"kind": "like", "id": liked}, s)
        app.session_state["more_like"] = state["more_like"]  # what the click leaves in the session, then the rerun
        app.run()
        disliked = next(k for k in app_hits(app) if k != liked)  # one shown after the first like
        handle(state, {"kind": "dislike", "id": disliked}, s)
    app.session_state["less_like"] = state["less_like"]
    app.run()
    assert not app.exception and state == {"more_like": [liked], "less_like": [disliked]}
    assert app_hits(app) == cli_hits(
        app_index, capsys, "a person", "--more-like", str(liked), "--less-like", str(disliked)
    )
    assert disliked not in app_hits(app)
    assert any("Refined by 1 liked and 1 disliked" in c.value for c in app.caption)
    app.button(key="feedback_clear").click().run()
    assert app_hits(app) == first


def test_submit_sends_one_answer_and_shows_the_verdict(app, app_index, tmp_path, monkeypatch):
    """The server's side of a submission (the browser asks for the confirmation first: the
    browser test checks it): exactly the answer asked for, the verdict, a repeat refused."""
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
        assert results_element(app)["submit"]["ready"]
        # The search's logs went to DRES in the background (QueryEventLog, QueryResultLog).
        assert app.session_state["dres_logger"].wait(10)
        assert [kind for kind, _ in server.logs] == ["query", "result"]
        assert server.logs[0][1]["events"][0]["value"] == "a person"
        assert [r["rank"] for r in server.logs[1][1]["results"]] == [h.rank for h in app.session_state["hits"]]
        server.task = Task("kis-01", "kis", {"mediaItemName": hit.video_id, "start": 0, "end": 10**9})
        state = {key: app.session_state[key] for key in ("dres_session", "dres_evaluation", "hits")}
        shown = viewer_detail(hit)
        start, end = shown["span"]  # 2 s either side of the hit, within its shot (dres.kis_window_s)
        assert (start, end) == (
            round(max(hit.shot_start, hit.timestamp - 2), 3),
            round(min(hit.shot_end, hit.timestamp + 2), 3),
        )
        button = f"{hit.video_id} {round(start * 1000)}-{round(end * 1000)} ms"  # what the Submit button says
        submit = {
            "kind": "submit",
            "id": hit.keyframe_id,
            "task": "kis",
            "span": [start, end],
            "again": False,
            "shown": button,
        }
        with services(app_index) as s:
            handle(state, submit, s)
            said = state["details_out"][hit.keyframe_id]["said"]
            assert len(server.submissions) == 1 and said["kind"] == "success" and said["text"].startswith("CORRECT")
            assert said["answer"] == button  # the verdict shows under the button's answer
            sent = server.submissions[0]["answerSets"][0]["answers"][0]
            assert sent == {"mediaItemName": hit.video_id, "start": round(start * 1000), "end": round(end * 1000)}
            handle(state, submit, s)  # the same answer again: refused, said so
            said = state["details_out"][hit.keyframe_id]["said"]
            assert len(server.submissions) == 1 and said["kind"] == "warning" and "tick" in said["text"]
            handle(state, {**submit, "span": [end, start]}, s)  # backwards: nothing leaves
            said = state["details_out"][hit.keyframe_id]["said"]
            assert len(server.submissions) == 1 and said["kind"] == "error"
        assert len(server.logs) == 2  # submitting ran no search and sent no new log
        assert server.problems == []
        app.button(key="dres_logout").click().run()  # the index is shared with other tests
        assert not (app_index / "dres" / "session.json").exists()
    finally:
        stop()
