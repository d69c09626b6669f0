"""The contest workflow: importing an AIC package, multi-event TRAKE queries and relevance
feedback (DRES: tests/test_dres.py)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from evr.storage import Store

from .aic_package import MODEL, add_video
from .conftest import PERSONS_BACKEND, PERSONS_ENV, evr, import_aic, run

pytestmark = pytest.mark.integration


def test_import_counts_ids_and_media_and_skips_what_did_not_change(package, tmp_path, capsys):
    root, made = package
    code, report = import_aic(tmp_path, root, capsys)
    assert code == 0 and report["videos_imported"] == 3 and report["videos_failed"] == []
    assert report["keyframes_added"] == sum(len(v.frames) for v in made.values())
    with Store(tmp_path) as store:
        rows = store.catalog.keyframes(range(1, 100))
        model = store.facts.model()
    assert (model.name, model.pretrained, model.dim) == (MODEL, "none", made["L01_V001"].vectors.shape[1])
    by_video = {}
    for r in rows.values():
        by_video.setdefault(r.video_id, []).append(r)
    assert set(by_video) == set(made)
    for video_id, v in made.items():
        got = sorted(by_video[video_id], key=lambda r: r.timestamp)
        assert [r.frame_idx for r in got] == v.frames  # frame_idx from the map, not from decoding
        assert [r.timestamp for r in got] == pytest.approx(v.pts)
        assert got[0].media_info["title"] == v.title
        assert got[0].video_path == str(root / f"Videos_{video_id[:3]}_a" / f"{video_id}.mp4")
        assert got[0].shot is None and got[0].thumbnail.is_file()
    code, again = import_aic(tmp_path, root, capsys)
    assert again["videos_imported"] == 0 and again["videos_skipped"] == 3


def test_an_imported_videos_storyboard_is_its_keyframes_in_one_group(package, imported, capsys):
    """A package names no shots: its keyframes, every one in time order, in one group."""
    v = package[1]["L02_V001"]
    code, board = evr("--data-dir", imported, "storyboard", v.video_id, "--json", capsys=capsys)
    assert code == 0 and board["keyframes"] == len(v.frames)
    (group,) = board["shots"]
    assert (group["shot"], group["start"], group["end"]) == (None, None, None)
    assert [k["frame_idx"] for k in group["keyframes"]] == sorted(v.frames)


def test_hits_and_exports_carry_the_map_frames_and_like_finds_itself(package, imported, capsys):
    _, made = package
    with Store(imported) as store:
        rows = store.catalog.keyframes(range(1, 100))
        stored_ids, stored = store.catalog.stored_vectors(sorted(rows))
    v = made["L02_V002"]
    target = next(r for r in rows.values() if r.video_id == v.video_id and r.frame_idx == v.frames[3])
    # The features were scaled per row in the package; stored, they are unit vectors equal to
    # the encoder's (up to float16 rounding).
    i = list(stored_ids).index(target.keyframe_id)
    assert np.linalg.norm(stored[i]) == pytest.approx(1.0, abs=1e-5)
    assert stored[i] @ v.vectors[3] == pytest.approx(1.0, abs=2e-3)
    code, hits = evr(
        "--data-dir", imported, "search", "--like", target.keyframe_id, "--k", "3", "--json", capsys=capsys
    )
    assert code == 0 and hits[0]["keyframe_id"] == target.keyframe_id and hits[0]["score"] == pytest.approx(1, abs=1e-4)
    assert (hits[0]["video_id"], hits[0]["frame_idx"]) == (v.video_id, v.frames[3])
    assert hits[0]["title"] == v.title and hits[0]["watch_url"].endswith(v.video_id)
    assert hits[0]["publish_date"] == "02/08/2024" and hits[0]["shot"] is None
    code, csv_text = evr(
        "--data-dir", imported, "search", "--like", target.keyframe_id, "--k", "3", "--export", "aic", capsys=capsys
    )
    assert csv_text.splitlines()[0] == f"{v.video_id},{v.frames[3]}"
    assert [line.split(",")[1] for line in csv_text.splitlines()] == [str(h["frame_idx"]) for h in hits]


def corrupt_copy(root: Path, dest: Path) -> Path:
    shutil.copytree(root, dest, symlinks=True)
    return dest


def test_each_malformed_video_is_reported_and_the_rest_imported(package, tmp_path, capsys):
    root = corrupt_copy(package[0], tmp_path / "pkg")
    # L01_V001: a keyframe image missing.
    (root / "Keyframes_L01" / "L01_V001" / "0003.jpg").unlink()
    # L02_V001: one feature row fewer than the map has rows.
    features = np.load(root / "clip-features-32" / "L02_V001.npy")
    np.save(root / "clip-features-32" / "L02_V001.npy", features[:-1])
    # L02_V002: a map cell that is no number; and a broken media-info (a warning only).
    path = root / "map-keyframes" / "L02_V002.csv"
    rows = list(csv.reader(path.open()))
    rows[2][3] = "ninety"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    # L02_V003: sound keyframes, a media-info that is not JSON: imported, with a warning.
    add_video(root, "L02", 3, package[0] / "Videos_L02_a" / "L02_V001.mp4")
    (root / "media-info" / "L02_V003.json").write_text("{not json", encoding="utf-8")
    data = tmp_path / "data"
    code, report = import_aic(data, root, capsys)
    assert code == 1
    assert report["videos_imported"] == 1 and report["keyframes_added"] == 5
    errors = {f["video_id"]: f["error"] for f in report["videos_failed"]}
    assert set(errors) == {"L01_V001", "L02_V001", "L02_V002"}
    assert "1 keyframe images missing" in errors["L01_V001"] and "keyframe 3" in errors["L01_V001"]
    assert "the map has 5 rows but L02_V001.npy has 4 features" in errors["L02_V001"]
    assert "L02_V002.csv line 3: frame_idx 'ninety' is not a number" in errors["L02_V002"]
    assert report["warnings"][0]["video_id"] == "L02_V003" and "not JSON" in report["warnings"][0]["warning"]
    with Store(data) as store:
        assert store.catalog.counts() == (1, 5) and store.health.stats()["videos_failed"] == 3
    # Fixed files are imported by the next run; the unchanged failures are not tried again.
    shutil.copy(
        package[0] / "Keyframes_L01" / "L01_V001" / "0001.jpg", root / "Keyframes_L01" / "L01_V001" / "0003.jpg"
    )
    code, report = import_aic(data, root, capsys)
    assert report["videos_imported"] == 1 and report["videos_skipped"] == 3


def test_features_of_another_dimension_or_no_package_are_refused(package, tmp_path, capsys):
    code, report = evr(
        "--data-dir",
        tmp_path / "d",
        "import",
        "aic",
        package[0],
        "--model",
        "ViT-B-32",
        "--pretrained",
        "none",
        "--no-progress",
        "--json",
        capsys=capsys,
    )
    assert code == 1 and len(report["videos_failed"]) == 3
    assert all("512-dimensional" in f["error"] for f in report["videos_failed"])
    code, _, err = run(capsys, "--data-dir", tmp_path / "e", "import", "aic", tmp_path)
    assert code == 2 and "holds no AIC package" in err


@pytest.mark.e2e  # OCR and person models
def test_analyze_reads_text_and_people_from_the_imported_images(videos, tmp_path, capsys, monkeypatch):
    from .test_analyzers import render_text_video

    clip = tmp_path / "captions.mp4"
    render_text_video(clip, videos)
    root = tmp_path / "pkg"
    add_video(root, "L03", 1, clip, frames=[10, 40])
    data = tmp_path / "data"
    monkeypatch.setenv("EVR_OCR_ENABLED", "true")
    monkeypatch.setenv("EVR_OCR_LANGUAGES", "en")
    for key, value in PERSONS_ENV.items():
        monkeypatch.setenv(key, value)
    code, report = import_aic(data, root, capsys, "--analyze")
    assert code == 0 and report["analyzed"]["videos_analyzed"] == 1
    assert report["analyzed"]["keyframes_analyzed"] == 2
    with Store(data) as store:
        rows = store.catalog.keyframes([1, 2])
        assert all(r.fields["ocr_text"] is not None and r.fields["person_count"] is not None for r in rows.values())
        assert any(r.fields["ocr_text"] for r in rows.values())
        plan = store.catalog.imported_videos()[0].plan
    assert plan.vectors == f"aic:{MODEL}/none" and "ocr" in plan.analyzers
    assert plan.analyzers["persons"] == PERSONS_BACKEND
    # Analyzed already: nothing to do.
    code, again = evr("--data-dir", data, "analyze", "--no-progress", "--json", capsys=capsys)
    assert code == 0 and again["videos_analyzed"] == 0 and again["videos_skipped"] == 1
    word = next(w for r in rows.values() for w in (r.fields["ocr_text"] or "").split() if len(w) > 3)
    code, hits = evr("--data-dir", data, "search", "--ocr", word, "--json", capsys=capsys)
    assert code == 0 and hits and hits[0]["video_id"] == "L03_V001"
    # An image gone since the import: that video's analysis fails, said plainly; its keyframes stay.
    monkeypatch.setenv("EVR_OCR_LANGUAGES", "vi,en")  # another OCR signature: OCR must run again
    for image in (root / "Keyframes_L03" / "keyframes" / "L03_V001").iterdir():
        image.unlink()
    code, report = evr("--data-dir", data, "analyze", "--no-progress", "--json", capsys=capsys)
    assert code == 1 and report["videos_skipped"] == 0
    assert "cannot read the keyframe image" in report["videos_failed"][0]["error"]
    with Store(data) as store:
        assert store.catalog.counts() == (1, 2) and store.catalog.imported_videos()[0].plan == plan


# -- TRAKE and relevance feedback ---------------------------------------------------------------


def test_trake_chains_three_events_in_order_within_the_window(package, imported, capsys):
    code, hits = evr(
        "--data-dir",
        imported,
        "search",
        "a man",
        "--then",
        "a car",
        "--then",
        "a dog",
        "--within",
        "5",
        "--k",
        "10",
        "--json",
        capsys=capsys,
    )
    assert code == 0 and hits
    code, alone = evr("--data-dir", imported, "search", "a man", "--k", "100", "--json", capsys=capsys)
    first_score = {h["keyframe_id"]: h["score"] for h in alone}  # each keyframe's own similarity
    for h in hits:
        chain = [h, h["then"], h["then"]["then"]]
        assert "then" not in chain[2]
        assert len({c["video_id"] for c in chain}) == 1
        assert all(0 < b["timestamp"] - a["timestamp"] <= 5 for a, b in zip(chain, chain[1:]))
        assert h["score"] == pytest.approx(
            first_score[h["keyframe_id"]] + chain[1]["score"] + chain[2]["score"], abs=1e-4
        )
    code, csv_text = evr(
        "--data-dir",
        imported,
        "search",
        "a man",
        "--then",
        "a car",
        "--then",
        "a dog",
        "--within",
        "5",
        "--k",
        "10",
        "--export",
        "aic",
        capsys=capsys,
    )
    assert csv_text.splitlines() == [
        f"{h['video_id']},{h['frame_idx']},{h['then']['frame_idx']},{h['then']['then']['frame_idx']}" for h in hits
    ]


def test_the_app_shows_an_imported_video_with_its_media_info(imported, package, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from .conftest import REPO

    monkeypatch.setenv("EVR_STORAGE_DATA_DIR", str(imported))
    at = AppTest.from_file(str(REPO / "ui" / "app.py"), default_timeout=120)
    at.run()
    at.radio(key="mode").set_value("Similar frame").run()
    at.number_input(key="like").set_value(1).run()
    hit = at.session_state["hits"][0]
    assert hit.keyframe_id == 1 and hit.frame_idx == package[1][hit.video_id].frames[0]
    assert not at.exception
    from .conftest import viewer_detail

    shown = viewer_detail(hit)  # what the opened hit shows
    assert package[1][hit.video_id].title in shown["where"] and "60 Giây Official" in shown["where"]
    assert shown["video"] and shown["video_error"] is None  # the package's video is linked


@pytest.mark.parametrize(
    "text, message",
    [
        ("n,pts_time,frame_idx\n1,0.0,0\n2,1.0,0\n", "frame_idx 0 appears twice"),
        ("n,pts_time,fps\n1,0.0,25\n", "no frame_idx column"),
        ("n,pts_time,frame_idx\n1,0.0,0\n1,1.0,25\n", "must be distinct"),
        ("n,pts_time,frame_idx\n1,-1,0\n", "pts_time '-1' is not a number of 0 or more"),
        ("n,pts_time,frame_idx\n1,0.0,12.5\n", "frame_idx '12.5' is not a whole number"),
        ("n,pts_time,frame_idx\n", "has no rows"),
    ],
)
def test_map_csv_faults_are_named(tmp_path, text, message):
    from evr.indexer.aic import AicFormatError, read_map

    path = tmp_path / "L09_V001.csv"
    path.write_text(text)
    with pytest.raises(AicFormatError, match=message):
        read_map(path)


def test_a_map_without_fps_implies_it(tmp_path):
    from evr.indexer.aic import fps_of, read_map

    path = tmp_path / "L09_V001.csv"
    path.write_text("n,pts_time,frame_idx\n1,0.0,0\n2,2.0,50\n")
    rows = read_map(path)
    assert rows[1].fps is None and fps_of(rows) == 25.0
