"""Videos' metadata as filters and words (storage/features/meta.py): an AI Challenge package's
media-info, a plain file's tags and modification date; the date and author filters give exactly
the videos that fit, in SQL and in Milvus, and the words rank their videos' keyframes."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3

import pytest

from .aic_package import add_video, encoder
from .conftest import evr, import_aic, run

pytestmark = pytest.mark.integration

MEDIA = {
    "L05_V001": {"author": "VTV24", "publish_date": "05/01/2024", "title": "Lũ lụt ở Huế", "keywords": ["thời tiết"]},
    "L05_V002": {"author": "HTV Tin Tức", "publish_date": "2024-06-15", "title": "Bóng đá", "keywords": ["thể thao"]},
    # The same channel written otherwise; a date nobody can read; keywords as one string.
    "L05_V003": {"author": "vtv24 ", "publish_date": "soon", "title": "Tin nhanh", "keywords": "giao thông, đô thị"},
}


@pytest.fixture(scope="module")
def meta_package(videos, tmp_path_factory):
    root = tmp_path_factory.mktemp("meta-package")
    clip = encoder()
    for number, source in enumerate(("video7010.mp4", "video7011.mp4", "video7012.mp4"), start=1):
        video_id = f"L05_V{number:03d}"
        add_video(
            root, "L05", number, videos / "msrvtt" / source, frames=[0, 30, 60], clip=clip, media_info=MEDIA[video_id]
        )
    return root


@pytest.fixture(scope="module")
def meta_index(meta_package, tmp_path_factory):
    data = tmp_path_factory.mktemp("meta-index")
    code, _ = import_aic(data, meta_package, None)  # no capsys in a module fixture
    assert code == 0
    return data


def found_videos(data, capsys, *args) -> set[str]:
    code, hits = evr("--data-dir", data, "search", *args, "--k", "100", "--json", capsys=capsys)
    assert code == 0
    return {h["video_id"] for h in hits}


def test_date_and_author_filters_give_exactly_the_videos_that_fit(meta_index, capsys):
    text = ("a street",)
    assert found_videos(meta_index, capsys, *text) == set(MEDIA)
    assert found_videos(meta_index, capsys, *text, "--author", "VTV24") == {"L05_V001", "L05_V003"}
    assert found_videos(meta_index, capsys, *text, "--author", "htv tin tuc") == {"L05_V002"}  # case, accents
    assert found_videos(meta_index, capsys, *text, "--author", "VTV") == set()  # the whole name
    assert found_videos(meta_index, capsys, *text, "--date-from", "2024-03-01") == {"L05_V002"}
    assert found_videos(meta_index, capsys, *text, "--date-to", "2024-01-05") == {"L05_V001"}  # inclusive
    assert found_videos(meta_index, capsys, *text, "--date-from", "2024-01-01", "--author", "vtv24") == {"L05_V001"}
    code, _, err = run(
        capsys, "--data-dir", meta_index, "search", *text, "--date-from", "2024-06-01", "--date-to", "2024-01-01"
    )
    assert code == 2 and "after --date-to" in err
    code, _, err = run(capsys, "--data-dir", meta_index, "search", *text, "--date-from", "2024-13-01")
    assert code == 2 and "is not a date (YYYY-MM-DD)" in err


def test_meta_words_rank_the_videos_that_hold_them_and_hits_carry_the_metadata(meta_index, capsys):
    code, hits = evr("--data-dir", meta_index, "search", "--meta", "lu lut", "--json", capsys=capsys)
    assert code == 0 and hits and {h["video_id"] for h in hits} == {"L05_V001"}  # no CLIP: words alone
    assert [h["frame_idx"] for h in hits] == [0, 30, 60]  # its keyframes in time order
    assert hits[0]["meta"] == {"title": "Lũ lụt ở Huế", "author": "VTV24", "published": "2024-01-05"}
    assert found_videos(meta_index, capsys, "--meta", "giao thông") == {"L05_V003"}  # a keywords string
    assert found_videos(meta_index, capsys, "a street", "--meta", "bong da") == {"L05_V002"}  # beside a text query
    code, hits = evr("--data-dir", meta_index, "search", "--meta", "tin nhanh", "--json", capsys=capsys)
    assert hits[0]["meta"]["published"] is None  # "soon" was no date


@pytest.mark.e2e  # Milvus Lite
def test_milvus_filters_by_date_and_author_as_sqlite_does(meta_index, tmp_path, capsys, monkeypatch):
    data = tmp_path / "index"
    shutil.copytree(meta_index, data)
    monkeypatch.setenv("EVR_VECTORS_MILVUS_URI", str(tmp_path / "m.db"))
    code, _, err = run(capsys, "--data-dir", data, "reindex", "--vectors", "milvus")
    assert code == 0, err
    asks = [("--author", "vtv24"), ("--date-from", "2024-03-01"), ("--date-to", "2024-01-05", "--author", "VTV24")]
    on_sqlite = [found_videos(data, capsys, "a street", *ask) for ask in asks]
    monkeypatch.setenv("EVR_VECTORS_BACKEND", "milvus")
    assert [found_videos(data, capsys, "a street", *ask) for ask in asks] == on_sqlite
    assert on_sqlite == [{"L05_V001", "L05_V003"}, {"L05_V002"}, {"L05_V001"}]


def test_a_plain_files_date_is_its_modification_date(sample_dir, tmp_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name, day in (("old.mp4", dt.date(2020, 2, 29)), ("new.mp4", dt.date(2025, 7, 1))):
        shutil.copy(sample_dir / sorted(os.listdir(sample_dir))[0], folder / name)
        stamp = dt.datetime.combine(day, dt.time(12)).timestamp()
        os.utime(folder / name, (stamp, stamp))
    data = tmp_path / "data"
    assert evr("--data-dir", data, "index", folder, "--no-progress", capsys=capsys)[0] == 0
    assert found_videos(data, capsys, "a person", "--date-to", "2021-01-01") == {"old"}
    assert found_videos(data, capsys, "a person", "--date-from", "2025-07-01") == {"new"}
    code, hits = evr("--data-dir", data, "search", "a person", "--k", "1", "--json", capsys=capsys)
    assert hits[0]["meta"]["published"] in ("2020-02-29", "2025-07-01") and hits[0]["meta"]["title"] == ""


def test_a_package_imported_before_evr_read_metadata_gets_it_keeping_its_keyframes(
    meta_package, meta_index, tmp_path, capsys
):
    data = tmp_path / "index"
    shutil.copytree(meta_index, data)
    with sqlite3.connect(data / "evr.sqlite") as db:  # as an older evr left it: no metadata, plans without it
        db.execute("DELETE FROM video_meta")
        for vid, plan in db.execute("SELECT id, plan FROM videos").fetchall():
            old = json.loads(plan)
            old["analyzers"].pop("meta")
            db.execute("UPDATE videos SET plan = ? WHERE id = ?", (json.dumps(old), vid))
        keyframes = db.execute("SELECT id, video_id FROM keyframes ORDER BY id").fetchall()
    assert found_videos(data, capsys, "a street", "--author", "vtv24") == set()
    code, report = import_aic(data, meta_package, capsys)
    assert code == 0 and (report["videos_imported"], report["videos_skipped"]) == (0, 3)
    assert found_videos(data, capsys, "a street", "--author", "vtv24") == {"L05_V001", "L05_V003"}
    with sqlite3.connect(data / "evr.sqlite") as db:
        assert db.execute("SELECT id, video_id FROM keyframes ORDER BY id").fetchall() == keyframes
    code, report = import_aic(data, meta_package, capsys)  # nothing left to do
    assert code == 0 and report["videos_skipped"] == 3
