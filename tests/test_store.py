"""Storage with planted vectors: exact search, per-video commits, recovery after a crash."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import faiss
import numpy as np
import pytest

from evr.storage import (
    KeyframeFilter,
    ModelInfo,
    ModelMismatchError,
    NewKeyframe,
    PersonsInFrame,
    Plan,
    Store,
    StoreError,
    VideoInfo,
)

from .conftest import nearest, ocr_search

pytestmark = pytest.mark.unit

DIM = 8
MODEL = ModelInfo("test-model", "none", DIM)
INFO = VideoInfo("decord", 10.0, 25.0, 250, 320, 240)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def keyframes(seeds: list[int]) -> list[NewKeyframe]:
    return [
        NewKeyframe(frame_idx=i * 10, timestamp=i * 0.4, shot=i, jpeg=b"\xff\xd8jpeg", vector=unit(s))
        for i, s in enumerate(seeds)
    ]


def add_video(store: Store, path: str, seeds: list[int]) -> int:
    vid = store.writes.start_video(path, 100, 1)
    store.writes.save_video(vid, INFO, keyframes(seeds))
    return vid


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "data", writer=True, checkpoint_s=0)
    s.bind_model(MODEL)
    yield s
    s.close()


def test_planted_vector_is_found_first_with_score_one(store):
    add_video(store, "/v/a.mp4", [1, 2, 3])
    add_video(store, "/v/b.mp4", [4, 5])
    scores, ids = store.vectors.index.search(unit(5), 5)
    rows = store.catalog.keyframes(ids[0])
    best = rows[int(ids[0][0])]
    assert (best.video_id, best.frame_idx) == ("b", 10)
    assert scores[0][0] == pytest.approx(1.0, abs=1e-5)
    assert len(ids[0]) == 5 and store.health.stats()["consistent"]


def test_search_restricted_to_allowed_ids_is_exact(store):
    add_video(store, "/v/a.mp4", list(range(20)))
    allowed = [kid for kid in store.catalog.keyframes(range(1, 100)) if kid % 3 == 0]
    scores, ids = store.vectors.index.search(unit(0), 50, allowed=np.array(allowed))
    assert sorted(ids[0].tolist()) == sorted(allowed)


def test_reindex_replaces_keyframes_and_never_reuses_ids(store):
    vid = add_video(store, "/v/a.mp4", [1, 2, 3])
    first_ids = set(store.vectors.index.ids().tolist())
    thumbs_before = {r.thumbnail for r in store.catalog.keyframes(list(first_ids)).values()}
    store.writes.save_video(vid, INFO, keyframes([7, 8]))
    ids = set(store.vectors.index.ids().tolist())
    assert len(ids) == 2 and not ids & first_ids
    assert all(not p.exists() for p in thumbs_before)  # superseded thumbnails deleted
    assert all(r.thumbnail.exists() for r in store.catalog.keyframes(list(ids)).values())
    assert store.health.stats()["consistent"]


def test_crash_between_commit_and_faiss_save_is_repaired(tmp_path):
    data = tmp_path / "data"
    s = Store(data, writer=True, checkpoint_s=3600)  # no checkpoint: FAISS stays unsaved
    s.bind_model(MODEL)
    add_video(s, "/v/a.mp4", [1, 2])
    s.vectors.flush()
    add_video(s, "/v/b.mp4", [3, 4, 5])
    # Simulate a kill: the process dies without close(); its lock goes with it.
    s.db._lock_file.close()
    orphan = data / "thumbs" / "v99-dead"
    orphan.mkdir()
    reader = Store(data)
    stats = reader.health.stats()
    # A FAISS file behind SQLite is no damage: the reader catches up in memory and says by how much.
    assert (stats["keyframes"], stats["vectors"], stats["vectors_pending"]) == (5, 5, 3)
    assert stats["consistent"] and stats["problems"] == []
    reader.close()
    s2 = Store(data, writer=True)
    report = s2.health.repair()
    assert (report.vectors_added, report.vectors_removed, report.thumb_dirs_removed) == (3, 0, 1)
    assert s2.health.stats()["consistent"] and not orphan.exists()
    s2.close()
    assert Store(data).health.stats()["vectors_pending"] == 0  # the repair was saved


def test_reader_drops_vectors_of_keyframes_deleted_since_the_save(tmp_path):
    data = tmp_path / "data"
    s = Store(data, writer=True, checkpoint_s=3600)
    s.bind_model(MODEL)
    add_video(s, "/v/a.mp4", [1, 2])
    b = add_video(s, "/v/b.mp4", [3])
    s.vectors.flush()
    s.writes.fail_video(b, "cannot decode: broken")  # committed; the FAISS file still holds its vector
    reader = Store(data)
    stats = reader.health.stats()
    assert (stats["keyframes"], stats["vectors"], stats["vectors_pending"], stats["consistent"]) == (2, 2, 1, True)
    s.close()


def test_damage_is_reported_and_mended_in_memory(tmp_path):
    data = tmp_path / "data"
    with Store(data, writer=True) as s:
        s.bind_model(MODEL)
        add_video(s, "/v/a.mp4", [1, 2, 3])
    (data / "vectors.faiss").write_bytes(b"not a faiss index")
    reader = Store(data)
    stats = reader.health.stats()
    assert not stats["consistent"] and "vectors.faiss could not be read" in stats["problems"][0]
    assert stats["vectors"] == 3  # rebuilt from SQLite: search still answers
    with sqlite3.connect(data / "evr.sqlite") as db:  # damage no code of evr makes
        db.execute("DELETE FROM embeddings WHERE keyframe_id = (SELECT min(id) FROM keyframes)")
    assert "1 keyframes have no stored vector" in Store(data).health.stats()["problems"]


def test_failed_video_drops_its_old_keyframes(store):
    vid = add_video(store, "/v/a.mp4", [1, 2])
    add_video(store, "/v/b.mp4", [3])
    store.writes.fail_video(vid, "cannot decode: broken")
    stats = store.health.stats()
    assert (stats["videos"], stats["videos_failed"], stats["keyframes"], stats["consistent"]) == (1, 1, 1, True)
    assert store.catalog.video_errors() == [("/v/a.mp4", "failed", "cannot decode: broken")]


def test_prune_removes_videos_not_present(store):
    add_video(store, "/v/a.mp4", [1, 2])
    add_video(store, "/v/b.mp4", [3])
    assert store.writes.prune(existing=["/v/b.mp4"]) == ["/v/a.mp4"]
    assert store.health.stats()["keyframes"] == 1 and store.health.stats()["consistent"]


def test_model_binding(store):
    add_video(store, "/v/a.mp4", [1])
    other = ModelInfo("ViT-L-14", "openai", 768)
    with pytest.raises(ModelMismatchError, match="test-model"):
        store.bind_model(other)
    with pytest.raises(ModelMismatchError, match="query model is ViT-L-14"):
        store.facts.check_model(other)
    # The same names, another size of vector (another version of the model): said so, not
    # "built with X, but the query model is X".
    resized = ModelInfo(MODEL.name, MODEL.pretrained, MODEL.dim * 2)
    with pytest.raises(ModelMismatchError, match=f"holds {MODEL.dim}-dimensional .* makes {MODEL.dim * 2}-dim"):
        store.facts.check_model(resized)
    store.facts.check_model(MODEL)


def test_empty_index_may_change_model(tmp_path):
    with Store(tmp_path / "d", writer=True) as s:
        s.bind_model(ModelInfo("ViT-L-14", "openai", 768))
        s.vectors.index.save()  # an empty index file of 768 dimensions
        s.bind_model(MODEL)  # nothing indexed yet: allowed
        assert s.facts.model() == MODEL
        add_video(s, "/v/a.mp4", [1])  # 8-dim vectors go into a fresh index
        assert s.health.stats()["consistent"] and s.vectors.index.dim == DIM


def test_one_writer_at_a_time_and_reader_needs_an_index(tmp_path):
    with pytest.raises(StoreError, match="no index"):
        Store(tmp_path / "missing")
    with Store(tmp_path / "d", writer=True):
        with pytest.raises(StoreError, match="another `evr index`"):
            Store(tmp_path / "d", writer=True)


SCHEMA5 = Path(__file__).with_name("data") / "schema5.sql"  # what evr wrote at schema 5 (its header says how)


def old_index(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "thumbs").mkdir(parents=True)
    with sqlite3.connect(data / "evr.sqlite") as db:
        db.executescript(SCHEMA5.read_text(encoding="utf-8"))
        for (folder,) in db.execute("SELECT thumb_dir FROM videos"):
            (data / "thumbs" / folder).mkdir()
    return data


def test_an_index_of_schema_5_is_upgraded_and_nothing_is_indexed_again(tmp_path):
    from evr.indexer.analyzers import features_off
    from evr.indexer.settings import IndexSettings
    from evr.indexer.work import VideoWorker

    data = old_index(tmp_path)
    with pytest.raises(StoreError, match="run `evr index` .* once to upgrade"):
        Store(data)
    with Store(data, writer=True) as s:  # what `evr index` does first
        s.health.repair()
    with Store(data) as reader:
        assert reader.health.stats()["consistent"] and reader.health.stats()["vectors"] == 7
        rows = reader.catalog.keyframes(range(1, 8))
        assert rows[2].fields["ocr_text"] == "LŨ LỤT Ở HUẾ" and rows[1].fields["ocr_text"] == ""
        assert rows[3].fields["person_count"] == 2 and rows[3].fields["person_area"] == 0.25
        assert rows[3].fields["poses"] == [["standing"], ["sitting", "arms_raised"]]
        assert rows[1].fields["speech"]["text"] == "hello world" and rows[5].fields["person_count"] is None
        assert reader.filters.ids(KeyframeFilter.of(pose=("sitting",))).tolist() == [3]
        assert reader.filters.ids(KeyframeFilter.of(ocr="lu lut")).tolist() == [2]
        assert [kid for kid, _ in ocr_search(reader, "hue")] == [2]  # its terms were kept on upgrading
        # The plans an older evr recorded as strings are the ones this evr makes for the same
        # settings: nothing is indexed again for the upgrade.
        decoded = reader.catalog.video_state("/v/news.mp4").plan
        now = VideoWorker(IndexSettings(features=features_off())).plan()  # the analyzers' part is below
        assert (decoded.keyframes, decoded.shots) == (now.keyframes, now.shots)
        assert decoded.analyzers == {
            "ocr": "tesseract+craft:vi+en",
            "persons": "mediapipe",
            "speech": "pocketsphinx:en-us",
        }
        assert reader.catalog.video_state("/pkg/map-keyframes/L01_V001.csv").plan == Plan(
            "aic", vectors="aic:ViT-B-32/openai", analyzers={"ocr": "en"}
        )


def test_an_index_of_schema_2_is_upgraded_by_the_next_index_run(tmp_path):
    data = old_index(tmp_path)
    # Make it what evr wrote before schema 3: float32 vectors, no pose table, no removal log and
    # its trigger, a FAISS file without a header; and before schema 4: no origin, media or
    # source image columns.
    with sqlite3.connect(data / "evr.sqlite") as db:
        for kid, blob in db.execute("SELECT keyframe_id, vector FROM embeddings").fetchall():
            db.execute(
                "UPDATE embeddings SET vector = ? WHERE keyframe_id = ?",
                (np.frombuffer(blob, "<f2").astype("<f4").tobytes(), kid),
            )
        db.executescript(
            "PRAGMA foreign_keys=ON; DROP TRIGGER keyframe_deleted; DROP TABLE keyframe_poses; "
            "DROP TABLE vector_removals; DELETE FROM videos WHERE origin != 'decoded'; "
            "UPDATE meta SET value = '2' WHERE key = 'schema_version';"
        )
        for table, col in (
            ("videos", "origin"),
            ("videos", "media_path"),
            ("videos", "media_info"),
            ("keyframes", "source_image"),
        ):
            db.execute(f"ALTER TABLE {table} DROP COLUMN {col}")
    faiss.write_index(faiss.IndexIDMap2(faiss.IndexFlatIP(DIM)), str(data / "vectors.faiss"))
    with pytest.raises(StoreError, match="run `evr index` .* once to upgrade"):
        Store(data)
    with Store(data, writer=True) as s:  # what `evr index` does first
        s.health.repair()
    with Store(data) as reader:
        assert reader.health.stats()["consistent"] and reader.health.stats()["vectors"] == 4
        assert reader.filters.ids(KeyframeFilter.of(pose=("standing",))).tolist() == [3]
        best, score = nearest(reader, unit(2), 1)[0]
        assert best == 3 and score == pytest.approx(1.0, abs=1e-5)
        assert reader.catalog.keyframes([best])[best].video_path == "/v/news.mp4"  # the file a player opens


def test_analyses_are_stored_by_their_feature_s_name(store):
    """An analyzer's results reach storage under its feature's name; a name with no storage is
    refused before anything is written."""
    from evr.indexer.analyzers import FileAnalyzer, FrameAnalyzer, analyzer_classes, enabled_analyzers, features_off
    from evr.indexer.settings import IndexSettings
    from evr.storage import FEATURES, TextBox

    # Every registered feature has an analyzer that reads as its storage keeps results.
    classes = analyzer_classes()
    assert set(classes) == set(FEATURES) == {"ocr", "persons", "speech", "objects", "colors", "meta", "captions"}
    assert all(issubclass(classes[n], FileAnalyzer if f.per_video else FrameAnalyzer) for n, f in FEATURES.items())
    assert set(enabled_analyzers(IndexSettings())) == set(FEATURES) - {"captions"}  # off unless asked for
    assert enabled_analyzers(IndexSettings(features=features_off())) == {}
    vid = store.writes.start_video("/v/a.mp4", 100, 1)
    text = [TextBox("BẢN TIN", (0.1, 0.8, 0.9, 0.9), 0.9)]
    store.writes.save_video(
        vid,
        INFO,
        [
            NewKeyframe(0, 0.0, 0, b"jpeg", unit(0), {"ocr": text}),
            NewKeyframe(25, 1.0, 0, b"jpeg", unit(1), {"persons": PersonsInFrame([], 0.0, None)}),
        ],
    )
    rows = sorted(store.catalog.keyframes(range(1, 10)).values(), key=lambda r: r.frame_idx)
    assert [(r.fields["ocr_text"], r.fields["person_count"]) for r in rows] == [("BẢN TIN", None), (None, 0)]
    assert [kid for kid, _ in ocr_search(store, "ban tin")] == [rows[0].keyframe_id]
    dirs = set(store.db.thumb_root.iterdir())
    with pytest.raises(ValueError, match="no storage for the results of analyzer\\(s\\) faces"):
        store.writes.save_video(vid, INFO, [NewKeyframe(0, 0.0, 0, b"jpeg", unit(0), {"faces": "a face"})])
    assert set(store.db.thumb_root.iterdir()) == dirs and len(store.catalog.keyframes(range(1, 10))) == 2


def test_team_marks_are_kept_beside_the_index_and_read_from_where_a_reader_left_off(store):
    add_video(store, "/v/a.mp4", [1, 2, 3])
    with Store(store.data_dir) as app, Store(store.data_dir) as teammate:  # two readers, as two app servers
        assert teammate.marks.since(0) == []  # no mark yet: no table either, nothing to read
        app.marks.add([1, 2], "submitted", "Ann", "WRONG")
        first = teammate.marks.since(0)
        assert [(m.keyframe_id, m.kind, m.verdict, m.who) for m in first] == [
            (1, "submitted", "WRONG", "Ann"),
            (2, "submitted", "WRONG", "Ann"),
        ]
        teammate.marks.add([3], "not_it", "Bo")
        teammate.marks.add([3], "not_it_undone", "Bo")
        later = app.marks.since(first[-1].seq)
        assert [(m.keyframe_id, m.kind) for m in later] == [(3, "not_it"), (3, "not_it_undone")]
        assert app.marks.since(later[-1].seq) == []
        with pytest.raises(ValueError, match="not_it"):
            app.marks.add([1], "liked", "Ann")
    # The marks are no part of the index: its keyframes are as they were.
    assert store.catalog.keyframe_count() == 3
