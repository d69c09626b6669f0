"""The AI Challenge CSV: `video_id,frame_idx` lines, no header, at most 100, temporal as three fields."""

from __future__ import annotations

import json

import pytest

from evr.search import Hit, QueryError
from evr.ui.contest.export import aic_csv, export, file_stem, hits_json

pytestmark = pytest.mark.unit


def hit(rank: int, video: str, frame: int, then: Hit | None = None) -> Hit:
    return Hit(
        rank=rank,
        keyframe_id=rank,
        video_id=video,
        video_path=f"/v/{video}.mp4",
        frame_idx=frame,
        timestamp=frame / 25,
        shot=0,
        shot_start=0.0,
        shot_end=60.0,
        score=1 - rank / 1000,
        match="clip",
        thumbnail="/t.jpg",
        video_db_id=1,
        then=then,
    )


def test_at_most_100_lines_best_first():
    hits = [hit(i, f"L01_V{i % 7:03d}", i * 10) for i in range(1, 151)]
    text = aic_csv(hits)
    lines = text.splitlines()
    assert len(lines) == 100 and text.endswith("\n")
    assert lines[:3] == ["L01_V001,10", "L01_V002,20", "L01_V003,30"]
    assert lines[-1] == "L01_V002,1000"
    assert aic_csv(hits, limit=5).count("\n") == 5


def test_temporal_hits_have_both_frames():
    pair = hit(1, "L02_V010", 120, then=hit(0, "L02_V010", 300))
    assert aic_csv([pair]) == "L02_V010,120,300\n"
    data = json.loads(export([pair], "json"))
    assert data[0]["then"]["frame_idx"] == 300 and "rank" not in data[0]["then"]


def test_json_export_is_the_hit_json():
    hits = [hit(1, "a", 5), hit(2, "b", 7)]
    assert json.loads(hits_json(hits)) == [h.to_json() for h in hits]
    assert aic_csv([]) == ""


@pytest.mark.parametrize("video_id", ["a,b", 'say "hi"'])
def test_ids_a_csv_row_cannot_carry_are_refused_and_json_keeps_them(video_id):
    hits = [hit(1, "fine", 3), hit(2, video_id, 5)]
    with pytest.raises(QueryError, match="comma or a quote"):
        aic_csv(hits)
    assert aic_csv(hits[:1]) == "fine,3\n"
    assert json.loads(hits_json(hits))[1]["video_id"] == video_id


@pytest.mark.parametrize("video_id, cell", [("two\nlines", "two\\nlines"), ("cr\rhere", "cr\\rhere")])
def test_line_breaks_in_ids_are_escaped_so_each_hit_stays_one_row(video_id, cell):
    assert aic_csv([hit(1, video_id, 5)]) == f"{cell},5\n"
    assert json.loads(hits_json([hit(1, video_id, 5)]))[0]["video_id"] == video_id


@pytest.mark.parametrize(
    "name, stem",
    [
        ("Lũ lụt ở Huế", "lu-lut-o-hue"),
        ("Đường phố Đà Nẵng về đêm", "duong-pho-da-nang-ve-dem"),
        ("a man, a DOG & 2 cats!", "a-man-a-dog-2-cats"),
        ("", "answers"),
        ("!!! ???", "answers"),
        ("word " * 30, ("word-" * 12)[:59]),  # at most 60 characters, no dash at the end
    ],
)
def test_export_files_are_named_after_the_query(name, stem):
    assert file_stem(name) == stem
