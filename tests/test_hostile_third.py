"""Faults, third round (issue 31): one bad file must not stop an import, nothing hangs, every
number evr writes is JSON. A package's objects files nested 100,000 deep, named `².json`, that
are folders, FIFOs or looping links; scores of Infinity; settings of NaN or nested 50,000 deep;
500 repeated filters; a hand-damaged meta table; a model open_clip does not know; a contest
server whose evaluation list is not one; a QA answer of "-1"."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from evr.indexer.files import NotRegularFile, read_regular
from evr.search import QueryError
from evr.storage import QueryTooLargeError, Store, strict_json
from evr.ui.contest.export import aic_qa_csv
from evr.ui.text import WORD_JOINER, plain

from .aic_package import MODEL, add_video, encoder
from .conftest import evr_process, run
from .conftest import strict_json as strict
from .test_hostile import hit_named, hostile, imported_like, logged_in  # noqa: F401 (fixtures)
from .test_objects import write_objects

pytestmark = pytest.mark.integration


# -- 1, 2. one bad file in a package -----------------------------------------------------------


@pytest.fixture(scope="module")
def package(videos, tmp_path_factory) -> Path:
    """Two videos, each with the detections of tests/test_objects.py (keyframes 1-4)."""
    root = tmp_path_factory.mktemp("aic-bad")
    clip = encoder()
    for number, clip_file in ((1, "video7010.mp4"), (2, "video7011.mp4")):
        made = add_video(root, "L01", number, videos / "msrvtt" / clip_file, clip=clip)
        write_objects(root, made.video_id)
    return root


def copy_of(package: Path, tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    shutil.copytree(package, root, symlinks=True)
    return root


def import_json(root: Path, data: Path, capsys) -> dict:
    code, report, err = run(
        capsys,
        "--data-dir",
        data,
        "import",
        "aic",
        root,
        "--model",
        MODEL,
        "--pretrained",
        "none",
        "--no-progress",
        "--json",
    )
    assert code == 0, err
    return report


def objects_of(data: Path) -> dict[str, int]:
    """Video id -> how many keyframes have objects stored."""
    with sqlite3.connect(data / "evr.sqlite") as db:
        return dict(
            db.execute(
                "SELECT v.path, count(*) FROM keyframe_objects o JOIN keyframes k ON k.id = "
                "o.keyframe_id JOIN videos v ON v.id = k.video_id GROUP BY v.path"
            ).fetchall()
        )


def deep(path: Path) -> None:
    path.write_text("[" * 100_000 + "]" * 100_000)


def folder(path: Path) -> None:
    path.mkdir()


def loop(path: Path) -> None:
    path.symlink_to(path.name)  # a link to itself


def scores(value: str):
    def write(path: Path) -> None:
        path.write_text(
            '{"detection_class_entities": ["Car"], "detection_scores": [' + value + "], "
            '"detection_boxes": [["0.1", "0.1", "0.5", "0.5"]]}'
        )

    return write


@pytest.mark.parametrize(
    "name, make, said",
    [
        ("002.json", deep, "nested too deeply"),
        ("002.json", folder, "a folder, not a regular file"),
        ("002.json", loop, "Too many levels of symbolic links"),
        ("\u00b2.json", scores('"0.5"'), "not named by a keyframe number"),
        ("002.json", scores("Infinity"), "Infinity is not a JSON number"),
        ("002.json", scores("1e400"), "beyond the range"),
        ("002.json", scores('"Infinity"'), "not a finite number"),
        ("002.json", scores('"NaN"'), "not a finite number"),
        ("002.json", scores("1.5"), "scores run from 0 to 1"),
    ],
    ids=["nested", "folder", "loop", "odd-digits", "Infinity", "1e400", "Infinity-string", "NaN-string", "above-1"],
)
def test_a_bad_objects_file_is_a_warning_and_every_video_is_imported(package, tmp_path, capsys, name, make, said):
    root = copy_of(package, tmp_path)
    target = root / "objects" / "L01_V001" / name
    target.unlink(missing_ok=True)
    make(target)
    data = tmp_path / "data"
    report = import_json(root, data, capsys)
    assert report["videos_imported"] == 2 and report["videos_failed"] == []
    [warning] = report["warnings"]
    assert warning["video_id"] == "L01_V001" and f"L01_V001/{name}" in warning["warning"], warning
    assert said in warning["warning"] and "imported without its objects" in warning["warning"]
    stored = objects_of(data)
    assert stored == {str(root / "map-keyframes" / "L01_V002.csv"): 4}  # the other video keeps its objects
    code, hits, _ = run(capsys, "--data-dir", data, "search", "--object", "car", "--json")
    assert code == 0 and {h["video_id"] for h in hits} == {"L01_V002"}
    assert all(0 <= h["score"] < 10 for h in hits)


def test_a_fifo_in_a_package_never_blocks_the_import(package, tmp_path):
    """A FIFO as an objects file (a warning), as a keyframe image (that video fails) and as a
    map (that video fails): the import ends, in a child process held to a deadline."""
    root = copy_of(package, tmp_path)
    (root / "objects" / "L01_V001" / "002.json").unlink()
    os.mkfifo(root / "objects" / "L01_V001" / "002.json")
    (root / "Keyframes_L01" / "keyframes" / "L01_V002" / "003.jpg").unlink()
    os.mkfifo(root / "Keyframes_L01" / "keyframes" / "L01_V002" / "003.jpg")
    add_video(root, "L01", 3, root / "Videos_L01_a" / "L01_V001.mp4")
    (root / "map-keyframes" / "L01_V003.csv").unlink()
    os.mkfifo(root / "map-keyframes" / "L01_V003.csv")
    result = evr_process(
        "--data-dir",
        tmp_path / "data",
        "import",
        "aic",
        root,
        "--model",
        MODEL,
        "--pretrained",
        "none",
        "--no-progress",
        "--json",
        timeout=240,
    )
    report = strict(result.stdout)
    assert result.returncode == 1 and report["videos_imported"] == 1, result.stderr
    assert "FIFO" in report["warnings"][0]["warning"] and "002.json" in report["warnings"][0]["warning"]
    errors = {f["video_id"]: f["error"] for f in report["videos_failed"]}
    assert set(errors) == {"L01_V002", "L01_V003"}
    assert "003.jpg" in errors["L01_V002"] and "FIFO" in errors["L01_V002"]
    assert "L01_V003.csv" in errors["L01_V003"] and "FIFO" in errors["L01_V003"]


def test_keyframe_images_named_by_other_digits_are_not_keyframes(package, tmp_path, capsys):
    root = copy_of(package, tmp_path)
    shutil.copy(
        root / "Keyframes_L01" / "keyframes" / "L01_V001" / "001.jpg",
        root / "Keyframes_L01" / "keyframes" / "L01_V001" / "\u00b3.jpg",
    )
    report = import_json(root, tmp_path / "data", capsys)
    assert report["videos_imported"] == 2 and report["keyframes_added"] == 10


def test_a_map_that_is_a_looping_link_fails_only_its_video(package, tmp_path, capsys):
    root = copy_of(package, tmp_path)
    (root / "map-keyframes" / "L01_V002.csv").unlink()
    (root / "map-keyframes" / "L01_V002.csv").symlink_to("L01_V002.csv")
    code, report, _ = run(
        capsys,
        "--data-dir",
        tmp_path / "data",
        "import",
        "aic",
        root,
        "--model",
        MODEL,
        "--pretrained",
        "none",
        "--no-progress",
        "--json",
    )
    assert code == 1 and report["videos_imported"] == 1
    [failed] = report["videos_failed"]
    assert failed["video_id"] == "L01_V002" and "symbolic links" in failed["error"]


@pytest.mark.unit
def test_read_regular_refuses_what_is_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(NotRegularFile, match="FIFO"):
        read_regular(tmp_path / "fifo")  # returns at once: nothing waits for a writer
    with pytest.raises(NotRegularFile, match="folder"):
        read_regular(tmp_path)
    (tmp_path / "f").write_bytes(b"abc")
    assert read_regular(tmp_path / "f") == b"abc"


def test_exports_and_index_runs_refuse_a_fifo_and_a_name_too_long(indexed, tmp_path):
    os.mkfifo(tmp_path / "answers.csv")
    result = evr_process(
        "--data-dir",
        indexed,
        "search",
        "--like",
        "1",
        "--export",
        "aic",
        "--out",
        tmp_path / "answers.csv",
        timeout=120,
    )
    assert result.returncode == 2 and "FIFO" in result.stderr and result.stderr.count("\n") == 1
    result = evr_process(
        "--data-dir",
        indexed,
        "search",
        "--like",
        "1",
        "--export",
        "json",
        "--out",
        tmp_path / ("x" * 300 + ".json"),
        "--json",
        timeout=120,
    )
    assert result.returncode == 2 and "too long" in strict(result.stdout)["error"]
    os.mkfifo(tmp_path / "clip.mp4")
    result = evr_process(
        "--data-dir", tmp_path / "d", "index", tmp_path / "clip.mp4", "--no-progress", "--json", timeout=120
    )
    report = strict(result.stdout)
    assert result.returncode == 1 and "FIFO" in report["videos_failed"][0]["error"]


# -- 3, 7. numbers and nesting in settings -------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"EVR_SEARCH_WEIGHTS": '{"clip": NaN}'},
        {"EVR_SEARCH_WEIGHTS": '{"clip": 1e999}'},
        {"EVR_SEARCH_WEIGHTS": '{"clip": ' * 50_000 + "1" + "}" * 50_000},
        {"EVR_MODELS": "[" * 50_000 + "]" * 50_000},
        {"EVR_QUERY_LANGUAGES": "[" * 50_000 + "]" * 50_000},
    ],
    ids=["NaN", "1e999", "weights-nested", "models-nested", "list-nested"],
)
def test_settings_that_are_not_finite_or_nest_too_deep_are_configuration_errors(indexed, capsys, monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out, err = run(capsys, "--data-dir", indexed, "search", "--like", "1", "--json")
    assert code == 2 and out["exit_code"] == 2 and err.startswith("evr: error: configuration:")
    assert err.count("\n") == 1 and len(err) < 600


@pytest.mark.parametrize(
    "toml",
    [
        "[search]\nweights = { clip = nan }\n",
        "[search]\nweights = { clip = inf }\n",
        "[query]\nlanguages = " + "[" * 50_000 + "]" * 50_000 + "\n",
    ],
    ids=["nan", "inf", "nested"],
)
def test_a_config_file_of_nan_or_deep_nesting_is_a_configuration_error(indexed, tmp_path, capsys, toml):
    (tmp_path / "c.toml").write_text(toml)
    code, _, err = run(capsys, "--config", tmp_path / "c.toml", "--data-dir", indexed, "stats")
    assert code == 2 and "configuration" in err and err.count("\n") == 1 and len(err) < 600


@pytest.mark.unit
@pytest.mark.parametrize(
    "text, why",
    [
        ("NaN", "NaN"),
        ("[Infinity]", "Infinity"),
        ("[-Infinity]", "Infinity"),
        ("1e400", "beyond"),
        ("[" * 100_000, "nested too deeply"),
        (b"\xff", "not UTF-8"),
    ],
)
def test_strict_json_reads_only_json(text, why):
    with pytest.raises(strict_json.JsonError, match=why):
        strict_json.loads(text)
    assert strict_json.loads('{"a": [1, 2.5, "x", null]}') == {"a": [1, 2.5, "x", None]}


@pytest.mark.unit
def test_json_output_refuses_nan_rather_than_write_it():
    from evr.search.printable import json_text

    with pytest.raises(ValueError):
        json_text({"score": float("nan")})


# -- 4. repeated filters ---------------------------------------------------------------------------


def test_repeated_or_too_many_filters_are_one_line_and_exit_2(indexed, capsys):
    code, out, err = run(capsys, "--data-dir", indexed, "search", "--like", "1", "--json", *["--object", "car"] * 500)
    assert code == 2 and "given 500 times" in out["error"] and len(out["error"]) < 200
    code, _, err = run(capsys, "--data-dir", indexed, "search", "--color", "blue", "--color", "red", "--color", "blue")
    assert code == 2 and "--color 'blue' is given twice" in err and err.count("\n") == 1
    code, _, err = run(
        capsys,
        "--data-dir",
        indexed,
        "search",
        "--like",
        "1",
        *[a for i in range(33) for a in ("--object", f"thing{i}")],
    )
    assert code == 2 and "at most 32" in err and "SELECT" not in err
    # 32 of each repeatable filter at once: SQLite answers
    colors = [
        f"{c}@{cell}"
        for c in ("red", "green", "blue", "grey")
        for cell in ("top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom")
    ]
    code, hits, err = run(
        capsys,
        "--data-dir",
        indexed,
        "search",
        "--like",
        "1",
        "--json",
        *[a for i in range(32) for a in ("--object", f"thing{i}:2@left")],
        *[a for c in colors for a in ("--color", c)],
    )
    assert code == 0 and hits == [], err


@pytest.mark.unit
def test_a_statement_sqlite_finds_too_large_is_one_line_without_the_sql(tmp_path):
    from sqlalchemy import text

    with Store(tmp_path, writer=True) as store, store.db.session() as s:
        with pytest.raises(QueryTooLargeError) as caught:
            s.execute(text("SELECT " + "+".join(["1"] * 1500)))
    assert "too large" in str(caught.value) and "SELECT" not in str(caught.value) and len(str(caught.value)) < 300


# -- 6. a damaged meta table -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value",
    [
        ("models", "{bad}"),
        ("models", "[]"),
        ("models", "null"),
        ("models", '{"m2": 5}'),
        ("clip_dim", "abc"),
        ("schema_version", "seven"),
    ],
)
def test_a_damaged_meta_table_is_named_by_every_command(indexed, tmp_path, capsys, key, value):
    data = tmp_path / "data"
    shutil.copytree(indexed, data)
    with sqlite3.connect(data / "evr.sqlite") as db:
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))
    code, stats, _ = run(capsys, "--data-dir", data, "stats", "--json")
    assert code == 1 and stats["consistent"] is False
    [problem] = stats["problems"]
    assert "meta table" in problem and f"{key} holds" in problem and "index the videos again" in problem
    for args in (["search", "--like", "1"], ["models"], ["reindex"], ["index", tmp_path, "--no-progress"], ["videos"]):
        code, _, err = run(capsys, "--data-dir", data, *args)
        assert code == 1 and "meta table" in err and f"{key} holds" in err, (args, err)
        assert "Error:" not in err and err.count("\n") == 1


# -- 8. models and doctor -----------------------------------------------------------------------------


def test_models_and_doctor_say_what_cannot_load_and_what_the_index_holds_otherwise(
    indexed, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("EVR_MODELS", json.dumps([{"name": "m2", "model": "NoSuchModel-9", "pretrained": "none"}]))
    code, rows, _ = run(capsys, "--data-dir", indexed, "models", "--json")
    m2 = next(r for r in rows if r["name"] == "m2")
    assert code == 0 and m2["weights_present"] is False and "no model 'NoSuchModel-9'" in m2["weights"]
    code, report, _ = run(capsys, "--data-dir", indexed, "doctor", "--json")
    assert any("m2: NoSuchModel-9" in line and "MISSING" in line for line in report["models"])
    monkeypatch.delenv("EVR_MODELS")
    monkeypatch.setenv("EVR_CLIP_MODEL", "ViT-S-32")  # the index holds ViT-S-32-alt's vectors
    code, rows, _ = run(capsys, "--data-dir", indexed, "models", "--json")
    assert rows[0]["mismatch"] and "ViT-S-32-alt" in rows[0]["mismatch"]
    code, out, _ = run(capsys, "--data-dir", indexed, "models")
    assert "MISMATCH" in out


def test_dropping_a_model_the_index_lacks_is_a_usage_error(indexed, tmp_path, capsys):
    for name, said in (("nosuch", "no vectors of a model named 'nosuch'"), ("", "needs the name of a model")):
        code, _, err = run(capsys, "--data-dir", indexed, "models", "--drop", name)
        assert code == 2 and said in err


# -- 9, 11. a contest server's answers ------------------------------------------------------------------


def test_an_evaluation_list_that_is_not_one_is_named(logged_in, capsys, imported_like, caplog):
    server, data = logged_in
    server.behave = lambda h: h.send_json(200, [1, "x", None])
    code, out, err = run(capsys, "--data-dir", data, "dres", "evaluations", "--json")
    assert code == 1 and "item 1 is a JSON int" in out["error"]
    code, _, err = run(capsys, "--data-dir", data, "dres", "submit", imported_like)
    assert code == 1 and "not an evaluation object" in err
    # A search's log thread says it once (a warning, on stderr), not silently.
    code, _, _ = run(capsys, "--data-dir", data, "search", "--like", imported_like)
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert code == 0 and any("query log was not sent" in m and "item 1 is a JSON int" in m for m in said), said


def test_a_redirect_never_shows_the_session_id(logged_in, capsys, imported_like, caplog):
    server, data = logged_in
    server.behave = lambda h: h.send_json(307, {}, {"Location": server.url + h.path})
    code, _, _ = run(capsys, "--data-dir", data, "search", "--like", imported_like)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert code == 0 and "redirect" in said and "session=***" in said and "session=s1" not in said
    code, _, err = run(capsys, "--data-dir", data, "dres", "evaluations")
    assert code == 1 and "session=***" in err and "session=s1" not in err


def test_the_cli_waits_for_its_logs_at_most_one_timeout_in_all(logged_in, capsys, imported_like, monkeypatch):
    """Each request answers in 2.5 s, within EVR_DRES_TIMEOUT_S = 3: the evaluation list, then
    the query log, then the result log. Waiting one timeout in all, the command returns while
    the second is under way; waiting one per request, it would have waited for all three."""
    server, data = logged_in
    monkeypatch.setenv("EVR_DRES_TIMEOUT_S", "3")
    evaluations = [
        {
            "id": "e1",
            "name": "final",
            "type": "SYNCHRONOUS",
            "status": "ACTIVE",
            "templateId": "t",
            "teams": [],
            "taskTemplates": [],
        }
    ]

    def slow(h):
        time.sleep(2.5)
        h.send_json(200, evaluations if "evaluation/list" in h.path else {"status": True, "description": "ok"})

    server.behave = slow
    code, _, _ = run(capsys, "--data-dir", data, "search", "--like", imported_like)
    assert code == 0 and len(server.requests) <= 2, server.requests


# -- 10. QA answers as given ----------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    "answer, cell",
    [("-1", "-1"), ("+3", "+3"), ("=42", "=42"), ("@home", "@home"), ("1,5", '"1,5"'), ('say "hi"', '"say ""hi"""')],
)
def test_a_qa_answer_is_written_as_given_and_quoted_by_csv_rules(answer, cell):
    text = aic_qa_csv([hit_named("L01_V001")], answer)
    assert text == f"L01_V001,0,{cell}\n"
    assert next(csv.reader(io.StringIO(text))) == ["L01_V001", "0", answer]  # a CSV reader gets it back
    assert aic_qa_csv([hit_named("-2")], "x").startswith("'-2,")  # a file name that looks like a formula: guarded
    with pytest.raises(QueryError, match="control characters"):
        aic_qa_csv([hit_named("a")], "x\x1b[31m")


# -- 5, 11. what the app shows ----------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("text", ["' or 1=1 --", "a -> b", "x >= 3", "<-> <= ~=", ":streamlit:"])
def test_plain_breaks_streamlits_typography_so_the_text_shows_as_typed(text):
    shown = plain(text)
    unescaped = shown.replace("\\", "").replace(WORD_JOINER, "")
    assert unescaped == text
    for token in ("--", "->", "<-", ">=", "<=", "~=", ":streamlit:"):
        assert token not in shown.replace("\\", "")


@pytest.mark.parametrize(
    "args",
    [
        ["index", "{long}.mp4"],
        ["search", "--image", "{long}.jpg"],
        ["import", "aic", "{long}"],
        ["--data-dir", "{long}", "stats"],
        ["summarize", "1", "--speak", "{long}.wav"],
    ],
)
def test_a_file_name_too_long_for_the_file_system_is_a_usage_error(indexed, tmp_path, capsys, args):
    long = str(tmp_path / ("x" * 300))
    code, _, err = run(capsys, "--data-dir", indexed, *[a.format(long=long) for a in args])
    assert code == 2 and "too long for the file system" in err and err.count("\n") == 1
