"""Faults, second round (issue 22): what a hostile but fair user tried. Wrong frame times, file
names that are not UTF-8, read-only and damaged indexes, lost thumbnails, a DRES server that
redirects, trickles or answers nonsense, formula-looking video ids, escape sequences in names,
and words that a recognizer got a letter wrong."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from evr.search.hits import Hit
from evr.storage import KeyframeFilter, KeyframeRow, NewKeyframe, Plan, SpeechSegment, Store, TextBox, VideoInfo
from evr.ui.cli import main
from evr.ui.contest.export import aic_csv

from .conftest import REPO, TEST_ENV, evr, evr_process, ocr_search, run
from .test_decoders import ffprobe_times

pytestmark = pytest.mark.integration


# -- 0. true frame times ----------------------------------------------------------------------


def test_keyframes_of_an_avi_without_timestamps_are_stored_at_their_true_times(videos, tmp_path, capsys):
    path = videos / "opencv_samples/Megamind.avi"
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / path.name).symlink_to(path)
    data = tmp_path / "data"
    code, report, _ = run(capsys, "--data-dir", data, "index", tmp_path / "v", "--no-progress", "--json")
    assert code == 0 and report["videos_indexed"] == 1
    truth = ffprobe_times(path)
    code, hits, _ = run(capsys, "--data-dir", data, "search", "--like", "1", "--k", "1000", "--json")
    assert len(hits) > 20
    for h in hits:  # every keyframe at ffmpeg's time of its frame (the last frame has none: +1/fps)
        want = truth[h["frame_idx"]] if truth[h["frame_idx"]] is not None else truth[h["frame_idx"] - 1] + 1 / 23.976
        assert h["timestamp"] == pytest.approx(want, abs=2e-3), h
        assert 0 <= h["shot_start"] <= h["timestamp"] <= h["shot_end"] <= 11.3
    code, shots, _ = run(capsys, "--data-dir", data, "shots", "Megamind", "--json")
    assert shots[0]["start"] == pytest.approx(truth[0], abs=1e-3)  # the first frame, at 0.042 s
    assert all(0 <= s["start"] <= s["end"] <= 11.3 for s in shots)


def test_an_index_holding_sentinel_times_has_those_videos_indexed_again(tmp_path):
    """Keyframe times an older evr stored from decord's "no time" (-3.85e17 s): the next writer
    marks their videos pending, so the next `evr index` of their folder redoes them."""
    data = tmp_path / "data"
    with Store(data, writer=True) as store:
        store.bind_model(unit_model())
        for name, first in (("good", 0.0), ("megamind", -3.846918712862966e17)):
            vid = store.writes.start_video(f"/v/{name}.avi", 1, 1)
            kfs = [NewKeyframe(i, first if i == 0 else i / 24, 0, b"j", vec(i)) for i in range(3)]
            store.writes.save_video(vid, VideoInfo("decord", 1.0, 24.0, 24, 64, 64), kfs, plan=Plan("decoded"))
    with sqlite3.connect(data / "evr.sqlite") as db:
        db.execute("DELETE FROM meta WHERE key = 'times_checked'")  # as an older evr left it
    with Store(data, writer=True) as store:
        assert store.catalog.video_state("/v/megamind.avi").status == "indexing"
        assert store.catalog.video_state("/v/good.avi").status == "indexed"
    with sqlite3.connect(data / "evr.sqlite") as db:
        db.execute("UPDATE videos SET status = 'indexed'")
    with Store(data, writer=True) as store:  # checked once: a later run leaves the index alone
        assert store.catalog.video_state("/v/megamind.avi").status == "indexed"


def unit_model():
    from evr.storage import ModelInfo

    return ModelInfo("test", "none", 8)


def vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
    return v / np.linalg.norm(v)


# -- 1. names that are not UTF-8 --------------------------------------------------------------


@pytest.fixture(scope="module")
def odd_names(videos, tmp_path_factory) -> tuple[Path, Path]:
    """A folder with a file and a folder whose names are not UTF-8, beside a plain file, indexed."""
    root = tmp_path_factory.mktemp("names")
    folder = root / "videos"
    folder.mkdir()
    # Copies: evr names a symlinked video by its target.
    shutil.copyfile(videos / "msrvtt/video7010.mp4", os.path.join(os.fsencode(folder), b"bad\xff\xfe.mp4"))
    odd_dir = os.path.join(os.fsencode(folder), b"nu_dir_\xe9")
    os.mkdir(odd_dir)
    shutil.copyfile(videos / "msrvtt/video7011.mp4", os.path.join(odd_dir, b"ok.mp4"))
    shutil.copyfile(videos / "msrvtt/video7012.mp4", folder / "good.mp4")
    data = root / "data"
    code = main(["--data-dir", str(data), "index", str(folder), "--no-progress"])
    assert code == 0
    return folder, data


def test_names_that_are_not_utf8_are_indexed_and_come_back_byte_for_byte(odd_names, capsys):
    folder, data = odd_names
    code, report, _ = run(capsys, "--data-dir", data, "index", folder, "--no-progress", "--json")
    assert code == 0 and report["videos_skipped"] == 3 and report["videos_indexed"] == 0  # found again
    code, hits, _ = run(capsys, "--data-dir", data, "search", "--like", "1", "--k", "200", "--json")
    paths = {os.fsencode(h["video_path"]) for h in hits}  # JSON keeps the bytes (\udcXX escapes)
    assert paths == {
        os.path.join(os.fsencode(folder), b"bad\xff\xfe.mp4"),
        os.path.join(os.fsencode(folder), b"nu_dir_\xe9", b"ok.mp4"),
        os.fsencode(folder / "good.mp4"),
    }
    bad = os.fsdecode(b"bad\xff\xfe")
    code, only, _ = run(capsys, "--data-dir", data, "search", "--like", "1", "--video", bad, "--json")
    assert code == 0 and only and {h["video_id"] for h in only} == {bad}
    code, shots, _ = run(capsys, "--data-dir", data, "shots", bad, "--json")
    assert code == 0 and shots
    code, text, _ = run(capsys, "--data-dir", data, "search", "--like", "1", "--k", "200")
    assert code == 0 and "bad\\xff\\xfe  frame" in text  # the text output shows the bytes, escaped
    code, csv, _ = run(capsys, "--data-dir", data, "search", "--like", "1", "--video", bad, "--export", "aic")
    assert code == 0 and csv.splitlines()[0].startswith("bad\\xff\\xfe,")


@pytest.mark.e2e  # whole evr processes
def test_a_non_utf8_name_prints_on_a_strict_utf8_terminal(odd_names):
    """Under a UTF-8 locale Python's stdout refuses surrogates: every output escapes them."""
    _, data = odd_names
    env = {"PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"}
    for args in (["search", "--like", "1", "--k", "3"], ["search", "--like", "1", "--k", "3", "--json"], ["stats"]):
        result = evr_process("--data-dir", data, *args, env_extra=env)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


# -- 2. read-only archives, and indexes that are incomplete or damaged ------------------------


def read_only(data: Path, *args: str) -> subprocess.CompletedProcess:
    """`evr ARGS` in a mount namespace where `data` is a read-only bind mount (as an archive on
    read-only media; unshare -rm needs no privileges)."""
    script = (
        'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && touch "$0/x" 2>/dev/null '
        '&& exit 99; exec "$1" -m evr.ui.cli --data-dir "$0" "${@:2}"'
    )
    return subprocess.run(
        ["unshare", "-rm", "bash", "-c", script, str(data), sys.executable, *args],
        cwd=REPO,
        env={**os.environ, **TEST_ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_index_on_a_read_only_mount_is_searched(indexed, tmp_path):
    data = tmp_path / "archive"
    shutil.copytree(indexed, data)
    stats = read_only(data, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["consistent"] and json.loads(stats.stdout)["keyframes"] > 0
    found = read_only(data, "search", "--like", "3", "--k", "2", "--json")
    assert found.returncode == 0 and json.loads(found.stdout)[0]["keyframe_id"] == 3, found.stderr
    shots = read_only(data, "shots", "video7010", "--json")
    assert shots.returncode == 0 and json.loads(shots.stdout), shots.stderr


def test_an_empty_or_cut_short_index_says_so_and_not_that_a_run_is_under_way(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "evr.sqlite").write_bytes(b"")  # 0 bytes
    code, _, err = run(capsys, "--data-dir", data, "stats")
    assert code == 1 and "is incomplete" in err and "run `evr index <folder>`" in err and "being created" not in err
    from sqlalchemy import create_engine

    from evr.storage.schema import Base

    engine = create_engine(f"sqlite:///{data / 'evr.sqlite'}")  # killed after the first table, before meta
    Base.metadata.tables["videos"].create(engine)
    engine.dispose()
    code, _, err = run(capsys, "--data-dir", data, "search", "--like", "1")
    assert code == 1 and "is incomplete" in err
    with Store(data, writer=True):  # a writer that holds the lock, creating it right now
        (data / "evr.sqlite").unlink()
        (data / "evr.sqlite").write_bytes(b"")
        code, _, err = run(capsys, "--data-dir", data, "stats")
    assert code == 1 and "being created by `evr index`" in err


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_is_one_line_and_json_commands_print_json(indexed, tmp_path, capsys, damage):
    data = tmp_path / "data"
    shutil.copytree(indexed, data)
    db = data / "evr.sqlite"
    if damage == "garbage":
        db.write_bytes(np.random.default_rng(0).bytes(20_000))
    else:
        db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    for args in (["stats", "--json"], ["search", "--like", "1", "--json"], ["index", data, "--json"]):
        code, out, err = run(capsys, "--data-dir", data, *args)
        assert code == 1 and err.count("\n") == 1 and "is damaged" in err and "sqlalche" not in err, err
        if args[0] == "stats":  # damage is what stats reports
            assert out["consistent"] is False and "is damaged" in out["problems"][0]
        else:
            assert out["exit_code"] == 1 and "is damaged" in out["error"]


def test_a_refused_second_index_run_still_prints_json(indexed, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(indexed, data)
    with Store(data, writer=True):  # another `evr index` holds the lock
        code, out, err = run(capsys, "--data-dir", data, "index", tmp_path, "--json")
    assert code == 1 and "another `evr index` is writing" in out["error"] and out["exit_code"] == 1


# -- 3. lost thumbnails -----------------------------------------------------------------------


def test_lost_thumbnails_are_reported_and_made_again(indexed, sample_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(indexed, data)
    before = {
        h["keyframe_id"]: Path(h["thumbnail"]).read_bytes()
        for h in run(capsys, "--data-dir", data, "search", "--like", "1", "--k", "500", "--json")[1]
    }
    shutil.rmtree(data / "thumbs")
    code, stats, _ = run(capsys, "--data-dir", data, "stats", "--json")
    assert code == 1 and any("lost their thumbnail folder" in p and "evr reindex" in p for p in stats["problems"])
    code, report, _ = run(capsys, "--data-dir", data, "index", sample_dir, "--no-progress", "--json")
    assert code == 0 and report["thumbnails_restored"] == 6 and report["videos_indexed"] == 0
    code, stats, _ = run(capsys, "--data-dir", data, "stats", "--json")
    assert code == 0 and stats["consistent"]
    hits = run(capsys, "--data-dir", data, "search", "--like", "1", "--k", "500", "--json")[1]
    assert {h["keyframe_id"] for h in hits} == set(before)
    for h in hits:  # the same frames, encoded again the same way
        assert Path(h["thumbnail"]).read_bytes() == before[h["keyframe_id"]]
    shutil.rmtree(data / "thumbs")
    assert main(["--data-dir", str(data), "reindex"]) == 0  # the command stats names
    assert all(
        Path(h["thumbnail"]).is_file()
        for h in run(capsys, "--data-dir", data, "search", "--like", "1", "--k", "500", "--json")[1]
    )


def test_the_app_shows_a_placeholder_for_a_lost_thumbnail(indexed, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    data = tmp_path / "data"
    shutil.copytree(indexed, data)
    shutil.rmtree(data / "thumbs")
    monkeypatch.setenv("EVR_STORAGE_DATA_DIR", str(data))
    app = AppTest.from_file(str(REPO / "ui" / "app.py"), default_timeout=120)
    app.run()
    app.radio(key="mode").set_value("Similar frame").run()
    app.number_input(key="like").set_value(1).run()
    assert not app.exception and app.session_state["hits"]
    assert any("lost their thumbnail" in m.value and "evr reindex" in m.value for m in app.markdown)
    from evr.ui.media import MISSING_THUMBNAIL

    from .conftest import results_element

    assert {image["src"] for c in results_element(app)["cards"] for image in c["images"]} == {MISSING_THUMBNAIL}


# -- 4, 5, 6. a DRES server that misbehaves ---------------------------------------------------


class Hostile:
    """A server that answers every request as `behave` says; records what reached it."""

    def __init__(self):
        self.behave = lambda handler: handler.send_json(200, {})
        self.requests: list[tuple[str, str, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send_json(self, status: int, body, headers: dict | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                outer.requests.append((self.command, self.path, self.rfile.read(length)))
                try:
                    outer.behave(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile():
    servers = []

    def make() -> Hostile:
        servers.append(Hostile())
        return servers[-1]

    yield make
    for s in servers:
        s.close()


TASK = {"name": "kis-1", "taskGroup": "K", "taskType": "kis", "duration": 1}
RUNNING = {"evaluationId": "e1", "evaluationStatus": "ACTIVE", "taskStatus": "RUNNING", "timeLeft": 6, "timeElapsed": 1}


def like_dres(otherwise):
    """Answer the evaluation's state and its current task as DRES does while task kis-1 runs,
    and anything else as `otherwise` says."""

    def behave(h):
        if h.path.split("?")[0].endswith("/state"):
            h.send_json(200, RUNNING)
        elif "currentTask" in h.path:
            h.send_json(200, TASK)
        else:
            otherwise(h)

    return behave


@pytest.fixture
def logged_in(hostile, tmp_path, monkeypatch):
    """A data dir logged in to a hostile server that answers like DRES until told otherwise."""
    server = hostile()
    monkeypatch.setenv("EVR_DRES_TIMEOUT_S", "2")
    monkeypatch.setenv("EVR_DRES_PASSWORD", "secret")
    server.behave = lambda h: h.send_json(
        200, {"id": "u", "username": "team", "role": "PARTICIPANT", "sessionId": "s1"}
    )
    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "dres", "login", "--url", server.url, "--user", "team"]) == 0
    server.requests.clear()
    return server, data


def test_a_redirected_login_keeps_the_password_here(hostile, tmp_path, capsys, monkeypatch):
    elsewhere, server = hostile(), hostile()
    server.behave = lambda h: h.send_json(307, {}, {"Location": elsewhere.url + "/api/v2/login"})
    monkeypatch.setenv("EVR_DRES_PASSWORD", "secret")
    code, _, err = run(capsys, "--data-dir", tmp_path, "dres", "login", "--url", server.url, "--user", "team")
    assert code == 1 and "redirect" in err and "not followed" in err and err.count("\n") == 1
    assert len(server.requests) == 1 and elsewhere.requests == []  # the password went nowhere else


def test_a_redirect_loop_on_submit_sends_the_answer_once(logged_in, capsys, imported_like):
    server, data = logged_in
    server.behave = like_dres(lambda h: h.send_json(307, {}, {"Location": server.url + h.path}))
    code, _, err = run(capsys, "--data-dir", data, "dres", "submit", imported_like, "--evaluation", "e1")
    assert code == 1 and "redirect" in err
    assert [r[0] for r in server.requests] == ["GET", "GET", "POST"]  # the state, the task, one POST (not 31)
    # DRES did not take it: the same answer may be sent again without --again.
    verdict = {"status": True, "submission": "CORRECT", "description": "ok"}
    server.behave = like_dres(lambda h: h.send_json(200, verdict))
    code, out, _ = run(capsys, "--data-dir", data, "dres", "submit", imported_like, "--evaluation", "e1")
    assert code == 0 and out.startswith("CORRECT")


def test_a_server_that_trickles_its_answer_is_cut_off_at_the_timeout(logged_in, capsys, imported_like):
    server, data = logged_in

    def trickle(h):
        h.send_response(200)
        h.send_header("Content-Length", "60")
        h.end_headers()
        for _ in range(60):  # a byte a second: each read is quick, the answer takes a minute
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(1)

    server.behave = trickle
    started = time.monotonic()
    code, _, err = run(capsys, "--data-dir", data, "dres", "evaluations")
    assert code == 1 and "did not answer within 2 s" in err
    assert time.monotonic() - started < 20  # 2 s and some; the server would have taken 60


def test_a_task_state_or_current_task_that_is_not_json_submits_nothing(logged_in, capsys, imported_like):
    server, data = logged_in
    server.behave = lambda h: h.send_json(200, b"<html>maintenance</html>")
    code, _, err = run(capsys, "--data-dir", data, "dres", "submit", imported_like, "--evaluation", "e1")
    assert code == 1 and "evaluation's state with something that is not one" in err and "nothing was submitted" in err
    assert [r[0] for r in server.requests] == ["GET"]
    server.behave = lambda h: h.send_json(200, RUNNING if h.path.split("?")[0].endswith("/state") else b"<html>")
    code, _, err = run(capsys, "--data-dir", data, "dres", "submit", imported_like, "--evaluation", "e1")
    assert code == 1 and "names no task" in err and [r[0] for r in server.requests] == ["GET"] * 3
    server.behave = like_dres(lambda h: h.send_json(200, {"status": True, "submission": "WRONG", "description": "no"}))
    code, out, _ = run(capsys, "--data-dir", data, "dres", "submit", imported_like, "--evaluation", "e1")
    assert code == 0 and out.startswith("WRONG")  # not refused as a duplicate of nothing
    code, _, err = run(capsys, "--data-dir", data, "dres", "submit", imported_like, "--evaluation", "e1")
    assert code == 2 and "not sent again" in err


def test_a_refused_session_does_not_count_the_answer_as_sent(logged_in, capsys, imported_like):
    server, data = logged_in
    server.behave = like_dres(lambda h: h.send_json(401, {"status": False, "description": "Unauthorized"}))
    code, _, err = run(capsys, "--data-dir", data, "dres", "submit", imported_like, "--evaluation", "e1")
    assert code == 1 and "(401)" in err
    server.behave = like_dres(lambda h: h.send_json(200, b"not json"))
    code, _, err = run(capsys, "--data-dir", data, "dres", "submit", imported_like, "--evaluation", "e1")
    assert code == 1 and "not a verdict" in err and "counts as sent" in err  # 200 but no verdict: exit 1
    code, _, err = run(capsys, "--data-dir", data, "dres", "submit", imported_like, "--evaluation", "e1")
    assert code == 2 and "not sent again" in err  # it may have been judged


def test_a_password_in_the_address_is_refused_and_never_shown(hostile, tmp_path, capsys, monkeypatch):
    server = hostile()
    monkeypatch.setenv("EVR_DRES_PASSWORD", "secret")
    url = server.url.replace("http://", "http://team:hunter2@")
    code, _, err = run(capsys, "--data-dir", tmp_path, "dres", "login", "--url", url, "--user", "team")
    assert code == 1 and "holds a user name or password" in err and "hunter2" not in err
    assert server.requests == [] and not (tmp_path / "dres" / "session.json").exists()
    monkeypatch.setenv("EVR_DRES_URL", url)  # the same in the configuration
    code, _, err = run(capsys, "--data-dir", tmp_path, "stats")
    assert code == 2 and "dres.url must hold no user name or password" in err and "hunter2" not in err


@pytest.fixture
def imported_like(tmp_path) -> str:
    """A data dir's keyframe id to submit: an index with one planted video in the test's data
    folder (the DRES tests' own), as any hit would be."""
    data = tmp_path / "data"
    with Store(data, writer=True) as store:
        store.bind_model(unit_model())
        vid = store.writes.start_video("/v/clip.mp4", 1, 1)
        store.writes.save_video(
            vid,
            VideoInfo("decord", 10.0, 25.0, 250, 64, 64),
            [NewKeyframe(0, 0.0, 0, b"j", vec(0))],
            plan=Plan("decoded"),
        )
    return "1"


# -- 7, 10. formulas and escape sequences in what evr writes ----------------------------------


def hit_named(video_id: str) -> Hit:
    row = KeyframeRow(1, 1, video_id, f"/v/{video_id}.mp4", 0, 0.0, 0, 0.0, 1.0, Path("/t.jpg"), 25.0, 1.0, None)
    return Hit.from_row(1, row, 1.0, "clip")


def test_video_ids_that_look_like_formulas_are_written_as_text():
    lines = aic_csv([hit_named(v) for v in ("=HYPERLINK(A1)", "@SUM(1)", "+1", "-2", "L01_V001")]).splitlines()
    assert lines == ["'=HYPERLINK(A1),0", "'@SUM(1),0", "'+1,0", "'-2,0", "L01_V001,0"]


def test_names_with_escape_sequences_print_escaped_on_one_line(videos, tmp_path, capsys):
    folder = tmp_path / "v"
    folder.mkdir()
    shutil.copyfile(videos / "msrvtt/video7010.mp4", folder / "\x1b[31mred\nline.mp4")  # a copy: evr names a
    shutil.copyfile(videos / "msrvtt/video7011.mp4", folder / "=HYPERLINK(A1).mp4")  # symlink by its target
    data = tmp_path / "data"
    code, out, _ = run(capsys, "--data-dir", data, "index", folder, "--no-progress")
    assert code == 0
    code, out, err = run(capsys, "--data-dir", data, "search", "--like", "1", "--k", "100")
    assert "\x1b" not in out + err and "\\x1b[31mred\\nline  frame" in out
    assert all(line[:3].strip().isdigit() for line in out.splitlines())  # each hit on its own line
    code, csv, _ = run(capsys, "--data-dir", data, "search", "--like", "1", "--k", "100", "--export", "aic")
    assert {line.split(",")[0] for line in csv.splitlines()} == {"\\x1b[31mred\\nline", "'=HYPERLINK(A1)"}


def test_a_dres_description_with_escape_codes_prints_escaped(logged_in, capsys, imported_like):
    server, data = logged_in
    server.behave = like_dres(
        lambda h: h.send_json(412, {"status": False, "description": "\x1b]0;owned\x07\x1b[2Jrejected\nsecond line"})
    )
    code, _, err = run(capsys, "--data-dir", data, "dres", "submit", imported_like, "--evaluation", "e1")
    assert code == 1 and "\x1b" not in err and "\x07" not in err and err.count("\n") == 1
    assert "\\x1b[2Jrejected\\nsecond line" in err


# -- 8. the vector index file -----------------------------------------------------------------


def test_reindex_mends_a_garbage_vector_file_and_exits_0(indexed, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(indexed, data)
    (data / "vectors.faiss").write_bytes(b"\x00garbage" * 100)
    assert main(["--data-dir", str(data), "reindex"]) == 0
    code, stats, _ = run(capsys, "--data-dir", data, "stats", "--json")
    assert code == 0 and stats["consistent"]


def test_a_deleted_vector_file_is_damage_until_reindex(indexed, tmp_path, capsys, caplog):
    data = tmp_path / "data"
    shutil.copytree(indexed, data)
    (data / "vectors.faiss").unlink()
    code, stats, err = run(capsys, "--data-dir", data, "stats", "--json")
    assert (
        code == 1
        and not stats["consistent"]
        and any("is missing" in p and "evr reindex" in p for p in stats["problems"])
    )
    caplog.clear()
    code, hits, err = run(capsys, "--data-dir", data, "search", "--like", "1", "--k", "1", "--json")
    assert code == 0 and hits[0]["keyframe_id"] == 1 and "is missing" in caplog.text  # searched, and said
    assert main(["--data-dir", str(data), "reindex"]) == 0 and (data / "vectors.faiss").is_file()
    code, stats, _ = run(capsys, "--data-dir", data, "stats", "--json")
    assert code == 0 and stats["consistent"]


# -- 11. smaller things -----------------------------------------------------------------------


def test_labels_and_their_vietnamese_names_must_pair_up(indexed, capsys, monkeypatch):
    monkeypatch.setenv("EVR_SUMMARY_LABELS", "a street,a beach")
    code, _, err = run(capsys, "--data-dir", indexed, "stats")
    assert code == 2 and "summary.labels_vi names 20 labels but summary.labels has 2" in err


def test_analyze_of_an_unknown_video_is_a_usage_error(indexed, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(indexed, data)
    code, _, err = run(capsys, "--data-dir", data, "analyze", "--video", "nosuch")
    assert code == 2 and "'nosuch' is not in this index" in err
    # A decoded video is analyzed by what reads its thumbnails (captions, off here): nothing to do.
    code, report = evr("--data-dir", data, "analyze", "--video", "video7010", "--json", capsys=capsys)
    assert code == 0 and (report["videos_analyzed"], report["videos_skipped"]) == (0, 1)


@pytest.mark.e2e  # whole evr processes
def test_a_fifo_as_query_image_is_refused_at_once(indexed, tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    result = evr_process("--data-dir", indexed, "search", "--image", fifo, timeout=60)
    assert result.returncode == 2 and "is not a regular file" in result.stderr


@pytest.mark.e2e  # whole evr processes
def test_decoder_libraries_say_nothing_of_their_own(tmp_path, videos):
    """A file no decoder opens: one line from evr, none from decord's or OpenCV's ffmpeg."""
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "garbage.mkv").write_bytes(np.random.default_rng(1).bytes(50_000))
    (folder / "Megamind.avi").symlink_to(videos / "opencv_samples/Megamind.avi")
    result = evr_process("--data-dir", tmp_path / "data", "index", folder, "--no-progress")
    assert result.returncode == 1
    lines = [ln for ln in result.stderr.splitlines() if "RANDOM weights" not in ln]
    assert lines and all(ln.startswith(("ERROR ", "WARNING ", "INFO evr.progress: ")) for ln in lines), result.stderr


def test_a_repair_is_said_in_words(tmp_path, capsys, caplog):
    from evr.storage import RepairReport

    assert str(RepairReport(3, 0, 1)) == "3 vectors added to the index file, 1 unused thumbnail folders deleted"


def test_failing_commands_leave_no_data_folder(tmp_path, capsys):
    for args in (
        ["index", tmp_path / "no such folder"],
        ["import", "aic", tmp_path / "no such package"],
        ["import", "aic", tmp_path],
    ):
        code, _, err = run(capsys, "--data-dir", tmp_path / "data", *args)
        assert code == 2 and not (tmp_path / "data").exists(), err


def test_the_scale_benchmark_plants_keyframes_without_people(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import scale
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    vectors, _, _ = scale.plant(tmp_path / "data", 600, 16, 0, scale.VectorIndexSettings())
    with Store(tmp_path / "data") as store:
        assert store.catalog.counts() == (2, 600) and store.health.stats()["consistent"]  # 500 keyframes a video


# -- 12. words a recognizer got a letter wrong ------------------------------------------------


@pytest.fixture(scope="module")
def misread(tmp_path_factory):
    """A video whose on-screen text and speech hold words as OCR and speech recognizers get them:
    right on some keyframes and segments, a letter or two off on others. Keyframe i (id i + 1)
    is at 2i seconds."""
    data = tmp_path_factory.mktemp("misread")
    texts = {
        0: "THE RIVER FLOODED THE MARKET",
        1: "THE RIVER FLODED THE MARKET",
        2: "lũ lụt ở huế",
        3: "Iũ Iụt ở huế",
        4: "nothing to see",
        5: "the river flooded",
    }
    said = [
        SpeechSegment(
            1.0,
            3.0,
            "the river flooded the market",
            "en",
            0.5,
            (("the", 1.0, 1.2), ("river", 1.2, 1.6), ("flooded", 1.6, 2.2), ("the", 2.2, 2.3), ("market", 2.3, 3.0)),
        ),
        SpeechSegment(
            9.0,
            11.0,
            "the rivers floded the marked",
            "en",
            0.5,
            (
                ("the", 9.0, 9.2),
                ("rivers", 9.2, 9.6),
                ("floded", 9.6, 10.2),
                ("the", 10.2, 10.3),
                ("marked", 10.3, 11.0),
            ),
        ),
    ]
    with Store(data, writer=True) as store:
        store.bind_model(unit_model())
        vid = store.writes.start_video("/v/news.mp4", 1, 1)
        kfs = [
            NewKeyframe(
                i * 50,
                float(i * 2),
                0,
                b"j",
                vec(i),
                analyses={"ocr": [TextBox(texts[i], (0, 0, 1, 1), 0.9)] if i in texts else []},
            )
            for i in range(8)
        ]
        store.writes.save_video(
            vid,
            VideoInfo("decord", 16.0, 25.0, 400, 64, 64),
            kfs,
            plan=Plan("decoded", analyzers={"ocr": "en"}),
            video_analyses={"speech": said},
        )
    return data


def test_ocr_words_a_letter_off_are_found_below_exact_matches(misread):
    with Store(misread) as store:
        found = ocr_search(store, "river flooded market")
        assert [kid for kid, _ in found] == [1, 2] and found[0][1] > found[1][1]  # exact first
        found = ocr_search(store, "floded")
        assert found[0][0] == 2 and {kid for kid, _ in found[1:]} == {1, 6}
        assert max(score for _, score in found[1:]) < found[0][1]
        assert [kid for kid, _ in ocr_search(store, "lũ lụt")] == [3, 4]  # OCR's "Iũ Iụt" too
        assert [kid for kid, _ in ocr_search(store, "nothing")] == [5]
        # As a filter the words must be there as written: near matches only rank.
        assert store.filters.ids(KeyframeFilter.of(ocr="floded")).tolist() == [2]


def test_spoken_words_a_letter_off_are_found_below_exact_matches(misread, capsys):
    code, hits, _ = run(capsys, "--data-dir", misread, "search", "--speech", "river flooded market", "--json")
    assert code == 0 and [h["timestamp"] for h in hits] == [2.0, 10.0]  # the exact segment first
    assert hits[0]["score"] > hits[1]["score"] and hits[1]["speech"]["text"] == "the rivers floded the marked"
    code, hits, _ = run(capsys, "--data-dir", misread, "search", "--speech", "zebra", "--json")
    assert code == 0 and hits == []
