"""Vector search on Milvus (Milvus Lite, FLAT) against exact FAISS: the same queries, filters
included, give the same hits with the same scores; `evr index` keeps a collection in step with
SQLite; a missing or unreachable Milvus gives one line."""

from __future__ import annotations

import dataclasses

import pytest

from evr.search import Query, SearchEngine
from evr.storage import KeyframeFilter, Store, VectorIndexSettings

from .conftest import evr, evr_process, nearest, run, vector_of

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def milvus_engine(planted, clip, tmp_path_factory):
    """The planted index's vectors filled into a Milvus Lite collection, and an engine on it."""
    engine, _ = planted
    settings = VectorIndexSettings(backend="milvus", milvus_uri=str(tmp_path_factory.mktemp("milvus") / "m.db"))
    with Store(engine.store.data_dir, writer=True, index=settings) as writer:
        assert writer.vectors.build(force=True) == "milvus"
    reader = Store(engine.store.data_dir, index=settings)
    yield SearchEngine(reader, clip)
    reader.close()


def queries(facts):
    like = facts[("alpha", 1)]
    return [
        Query(like=like, k=20),
        Query(text="a man opens a door", k=10),
        Query(like=like, k=100, filters=KeyframeFilter.of(min_persons=2, max_persons=3)),
        Query(like=like, k=100, filters=KeyframeFilter.of(pose=("sitting",))),
        Query(like=like, k=100, filters=KeyframeFilter.of(pose=("sitting", "standing"), min_persons=2)),
        Query(like=like, k=100, filters=KeyframeFilter.of(videos=("beta",), time_from=10, time_to=14.5)),
        Query(like=facts[("alpha", 4)], k=5, filters=KeyframeFilter.of(max_persons=0)),  # most of the top fail
        Query(text="breaking news", k=10, filters=KeyframeFilter.of(ocr="breaking")),
        Query(text="a man opens a door", then=("a car drives away",), within=10, k=3),
        Query(like=like, k=10, more_like=(facts[("beta", 30)],), less_like=(facts[("alpha", 2)],)),
    ]


def test_milvus_gives_the_hits_of_exact_faiss(planted, milvus_engine):
    faiss_engine, facts = planted
    assert faiss_engine.store.health.stats()["vector_index"] == "flat"
    stats = milvus_engine.store.health.stats()
    assert (stats["vector_index"], stats["vectors"], stats["consistent"]) == ("milvus", 80, True)
    for query in queries(facts):
        want, got = faiss_engine.search(query), milvus_engine.search(query)
        assert [h.keyframe_id for h in got] == [h.keyframe_id for h in want] and want, query
        assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5), query
        assert [[c.keyframe_id for c in h.chain or []] for h in got] == [
            [c.keyframe_id for c in h.chain or []] for h in want
        ]


def test_cli_fills_milvus_and_searches_it(planted, tmp_path, capsys, monkeypatch):
    engine, facts = planted
    data = engine.store.data_dir
    monkeypatch.setenv("EVR_VECTORS_MILVUS_URI", str(tmp_path / "cli.db"))
    code, _, err = run(capsys, "--data-dir", data, "reindex", "--vectors", "milvus")
    assert code == 0 and "built the milvus vector index over 80 keyframes" in err
    assert "EVR_VECTORS_BACKEND=milvus" in err  # the config still says faiss
    args = (
        "--data-dir",
        data,
        "search",
        "--like",
        facts[("beta", 3)],
        "--min-persons",
        "1",
        "--pose",
        "standing",
        "--json",
    )
    code, on_faiss = evr(*args, capsys=capsys)
    monkeypatch.setenv("EVR_VECTORS_BACKEND", "milvus")
    code2, on_milvus = evr(*args, capsys=capsys)
    assert code == code2 == 0 and on_faiss
    assert [(h["keyframe_id"], round(h["score"], 4)) for h in on_milvus] == [
        (h["keyframe_id"], round(h["score"], 4)) for h in on_faiss
    ]


def test_index_runs_keep_a_collection_in_step(sample_dir, videos, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EVR_VECTORS_BACKEND", "milvus")  # Milvus Lite in <data_dir>/milvus.db
    data = tmp_path / "data"
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("video7010.mp4", "video7011.mp4"):
        (folder / name).symlink_to(videos / "msrvtt" / name)
    assert evr("--data-dir", data, "index", folder, "--no-progress", capsys=capsys)[0] == 0
    (folder / "video7011.mp4").unlink()
    (folder / "video7011.mp4").symlink_to(videos / "msrvtt/video7012.mp4")  # changed: indexed again
    assert evr("--data-dir", data, "index", folder, "--no-progress", capsys=capsys)[0] == 0
    code, stats = evr("--data-dir", data, "stats", "--json", capsys=capsys)
    assert code == 0 and stats["vector_index"] == "milvus" and stats["consistent"]
    assert stats["vectors"] == stats["keyframes"] > 0  # the replaced video's vectors were deleted
    with Store(data, index=VectorIndexSettings(backend="milvus", milvus_uri=str(data / "milvus.db"))) as store:
        held = store.vectors.index.ids()
        kid = int(held[len(held) // 2])
        assert nearest(store, vector_of(store, kid), 1)[0][0] == kid  # a frame finds itself first
        assert sorted(store.catalog.keyframes(held)) == held.tolist()  # every id held is a live keyframe


def test_unreachable_or_empty_milvus_gives_one_line(planted, tmp_path, capsys, monkeypatch):
    engine, facts = planted
    monkeypatch.setenv("EVR_VECTORS_BACKEND", "milvus")
    search = ("--data-dir", engine.store.data_dir, "search", "--like", facts[("alpha", 1)])
    monkeypatch.setenv("EVR_VECTORS_MILVUS_URI", "http://127.0.0.1:9")
    code, _, err = run(capsys, *search)
    assert code == 1 and "cannot reach Milvus at http://127.0.0.1:9" in err
    assert len(err.strip().splitlines()) == 1, err
    monkeypatch.setenv("EVR_VECTORS_MILVUS_URI", str(tmp_path / "never-filled.db"))
    code, _, err = run(capsys, *search)
    assert code == 1 and "run `evr reindex --vectors milvus`" in err and len(err.strip().splitlines()) == 1


def test_milvus_settings_are_checked_where_they_enter(capsys, monkeypatch):
    monkeypatch.setenv("EVR_VECTORS_MILVUS_URI", "milvus.sqlite")
    code, _, err = run(capsys, "stats")
    assert code == 2 and "vectors.milvus_uri must be a Milvus Lite file ending in .db" in err
    assert dataclasses.fields(VectorIndexSettings)  # the settings class the edge fills


def test_a_lite_file_held_by_another_process_gives_one_line(planted, milvus_engine):
    """Milvus Lite serves one process: a second one is told so, and what to use instead."""
    engine, facts = planted
    milvus_engine.store.vectors.sync()  # this process holds the Lite file
    s = milvus_engine.store.vectors.backend.settings
    done = evr_process(
        "--data-dir",
        engine.store.data_dir,
        "search",
        "--like",
        facts[("alpha", 1)],
        env_extra={"EVR_VECTORS_BACKEND": "milvus", "EVR_VECTORS_MILVUS_URI": s.milvus_uri},
    )
    assert done.returncode == 1
    assert "Milvus Lite serves one process at a time" in done.stderr and "Traceback" not in done.stderr, done.stderr
