"""Several image-text models in one index ([clip] and [[models]]): indexed in one pass, added to
and removed from an existing index, searched and fused (issue 24).

Two random-weight open_clip models of different architectures stand for a real pair:
ViT-S-32-alt ([clip], 256 dimensions) and ViT-S-32 (384). Rankings that only trained weights
would give are never asserted: fusion is tested on planted vectors."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from evr.indexer.encoders import ClipEncoder
from evr.indexer.settings import ClipSettings
from evr.search import Query, QueryError, SearchEngine
from evr.search.fusion import FusionSettings, fuse
from evr.search.multilingual import QuerySettings, table
from evr.storage import ModelMismatchError, Store, StoreError

from .conftest import PERSONS_ENV, evr

OTHER = [{"name": "s32", "model": "ViT-S-32", "pretrained": "none"}]
WITH_OTHER = {"EVR_MODELS": json.dumps(OTHER)}


def vectors_by_frame(data: Path, model: str = "clip") -> dict[tuple[str, int], np.ndarray]:
    """A model's stored vectors by (video id, frame index)."""
    with Store(data) as store:
        rows = store.catalog.keyframes(range(1, 10_000))
        ids, vectors = store.catalog.stored_vectors(list(rows), model)
    return {(rows[int(k)].video_id, rows[int(k)].frame_idx): v for k, v in zip(ids, vectors)}


def table_rows(data: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(data / "evr.sqlite") as db:
        return db.execute(sql).fetchall()


@pytest.fixture(scope="module")
def clips(videos, tmp_path_factory) -> dict[str, Path]:
    """Folders of one clip each: video7010 (320x240: its 320-wide thumbnails are larger than the
    models' 224 px input) and counter (1080p: thumbnails 180 tall, too small)."""
    root = tmp_path_factory.mktemp("model-clips")
    out = {}
    for name, rel in (("small", "msrvtt/video7010.mp4"), ("large", "scene_cuts/counter.mp4")):
        (root / name).mkdir()
        (root / name / Path(rel).name).symlink_to(videos / rel)
        out[name] = root / name
    return out


def index(data: Path, folder: Path, capsys, monkeypatch, env: dict[str, str] | None = None) -> dict:
    with monkeypatch.context() as m:
        for key, value in (env or {}).items():
            m.setenv(key, value)
        code, report = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0, report
    return report


@pytest.mark.integration
def test_each_models_vectors_equal_a_run_of_that_model_alone(clips, tmp_path, capsys, monkeypatch):
    both = index(tmp_path / "both", clips["large"], capsys, monkeypatch, WITH_OTHER)
    assert both["keyframes_added"] > 0 and both["embedded"]["videos_embedded"] == 0  # one pass: nothing left to add
    index(tmp_path / "alone", clips["large"], capsys, monkeypatch, {"EVR_CLIP_MODEL": "ViT-S-32"})
    first, other, alone = (
        vectors_by_frame(tmp_path / "both"),
        vectors_by_frame(tmp_path / "both", "s32"),
        vectors_by_frame(tmp_path / "alone"),
    )
    assert other.keys() == alone.keys() == first.keys() and len(other) == both["keyframes_added"]
    assert next(iter(other.values())).shape == (384,) and next(iter(first.values())).shape == (256,)
    for key in alone:  # float16 storage: within its rounding
        np.testing.assert_allclose(other[key], alone[key], atol=2e-3)
    code, stats = evr("--data-dir", tmp_path / "both", "stats", "--json", capsys=capsys)
    assert code == 0 and stats["consistent"]
    assert {name: (m["model"], m["vectors"], m["keyframes_without"]) for name, m in stats["models"].items()} == {
        "clip": ("ViT-S-32-alt", len(first), 0),
        "s32": ("ViT-S-32", len(first), 0),
    }


@pytest.mark.integration
def test_adding_a_model_computes_only_its_vectors_from_large_enough_thumbnails(clips, tmp_path, capsys, monkeypatch):
    """OCR and persons ran at indexing; adding a model leaves their rows, the keyframes and the
    thumbnails as they were, and decodes nothing when the thumbnails suffice."""
    analyzers = {
        "EVR_OCR_ENABLED": "true",
        "EVR_OCR_BACKEND": "tesseract",
        "EVR_OCR_LANGUAGES": "en",
        **PERSONS_ENV,
    }
    data = tmp_path / "data"
    first = index(data, clips["small"], capsys, monkeypatch, analyzers)
    kept = {
        sql: table_rows(data, sql)
        for sql in (
            "SELECT id, video_id, frame_idx, timestamp, shot, thumbnail FROM keyframes ORDER BY id",
            "SELECT * FROM keyframe_text ORDER BY keyframe_id",
            "SELECT * FROM keyframe_persons ORDER BY keyframe_id",
            "SELECT plan, indexed_at FROM videos",
        )
    }
    assert table_rows(data, "SELECT count(*) FROM keyframe_persons")[0][0] == first["keyframes_added"]  # persons ran
    clip_before = vectors_by_frame(data)
    added = index(data, clips["small"], capsys, monkeypatch, {**analyzers, **WITH_OTHER})
    assert added["videos_indexed"] == 0 and added["videos_skipped"] == 1 and added["keyframes_added"] == 0
    embedded = added["embedded"]
    assert embedded["vectors_added"] == {"s32": first["keyframes_added"]} and embedded["videos_embedded"] == 1
    assert embedded["stage_seconds"]["decode"] == 0.0 and embedded["stage_seconds"]["read"] > 0
    assert {sql: table_rows(data, sql) for sql in kept} == kept
    after = vectors_by_frame(data)
    assert all(np.array_equal(after[k], clip_before[k]) for k in clip_before)
    assert len(vectors_by_frame(data, "s32")) == first["keyframes_added"]
    # Nothing is missing now: the next run adds nothing.
    again = index(data, clips["small"], capsys, monkeypatch, {**analyzers, **WITH_OTHER})
    assert again["embedded"]["videos_embedded"] == 0 and again["embedded"]["vectors_added"] == {}


@pytest.mark.integration
def test_a_model_added_to_large_frames_decodes_them_again_and_equals_a_one_pass_run(
    clips, tmp_path, capsys, monkeypatch
):
    data = tmp_path / "data"
    index(data, clips["large"], capsys, monkeypatch)
    added = index(data, clips["large"], capsys, monkeypatch, WITH_OTHER)["embedded"]
    assert added["stage_seconds"]["decode"] > 0 and added["vectors_added"]["s32"] > 0
    index(tmp_path / "alone", clips["large"], capsys, monkeypatch, {"EVR_CLIP_MODEL": "ViT-S-32"})
    backfilled, alone = vectors_by_frame(data, "s32"), vectors_by_frame(tmp_path / "alone")
    assert backfilled.keys() == alone.keys()
    for key in alone:
        np.testing.assert_allclose(backfilled[key], alone[key], atol=2e-3)


@pytest.mark.integration
def test_removing_a_model_leaves_the_first_models_search_as_it_was(clips, tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    index(data, clips["small"], capsys, monkeypatch)
    search = ("--data-dir", data, "search", "people talking", "--k", "8", "--json")
    code, alone = evr(*search, capsys=capsys)
    assert code == 0 and all(h["match"] == "clip" for h in alone)
    index(data, clips["small"], capsys, monkeypatch, WITH_OTHER)
    monkeypatch.setenv("EVR_MODELS", json.dumps(OTHER))
    code, fused = evr(*search, capsys=capsys)
    assert code == 0 and {h["match"] for h in fused} <= {"clip+s32", "clip", "s32"}
    assert all(set(h["models"]) <= {"clip", "s32"} for h in fused)
    code, only_first = evr(*search, "--models", "clip", capsys=capsys)
    assert code == 0 and [(h["keyframe_id"], h["score"]) for h in only_first] == [
        (h["keyframe_id"], h["score"]) for h in alone
    ]
    assert (data / "vectors-s32.faiss").is_file()
    code, _ = evr("--data-dir", data, "models", "--drop", "s32", capsys=capsys)
    assert code == 0 and not (data / "vectors-s32.faiss").exists()
    assert table_rows(data, "SELECT count(*) FROM model_vectors")[0][0] == 0
    monkeypatch.delenv("EVR_MODELS")
    code, after = evr(*search, capsys=capsys)
    assert code == 0 and after == alone
    code, stats = evr("--data-dir", data, "stats", "--json", capsys=capsys)
    assert code == 0 and stats["consistent"] and list(stats["models"]) == ["clip"]
    code, _ = evr("--data-dir", data, "models", "--drop", "clip", capsys=capsys)
    assert code != 0


# -- fusion on planted vectors ---------------------------------------------------------------------


def order(hits, *names_ids):
    return [h.keyframe_id for h in hits if h.keyframe_id in names_ids]


@pytest.mark.unit
def test_rank_fusion_puts_what_both_models_rank_high_over_what_one_ranks_first(two_models):
    store, clip, other, ids = two_models
    engine = SearchEngine(store, clip, others={"b": other})
    hits = engine.search(Query(like=ids["Q"], k=30))
    x, y, z = ids["X"], ids["Y"], ids["Z"]
    assert hits[0].keyframe_id == ids["Q"] and order(hits, x, y, z) == [y, x, z]
    by_id = {h.keyframe_id: h for h in hits}
    assert by_id[y].match == "clip+b" and by_id[y].models["clip"]["rank"] == 3 and by_id[y].models["b"]["rank"] == 3
    assert by_id[x].models["b"]["rank"] == 24 and hits[1].keyframe_id == y
    assert by_id[x].models["clip"] == {"rank": 2, "score": pytest.approx(0.9, abs=2e-3)}
    assert by_id[y].to_json()["models"]["b"]["rank"] == 3
    # --models restricts the search to those models: [clip] alone ranks X first, the other Z.
    only = engine.search(Query(like=ids["Q"], k=30, models=("clip",)))
    assert order(only, x, y, z) == [x, y, z] and {h.match for h in only} == {"clip"}
    assert order(engine.search(Query(like=ids["Q"], k=30, models=("b",))), x, y, z) == [z, y, x]
    with pytest.raises(QueryError, match="no model named 'nope'"):
        engine.search(Query(like=ids["Q"], models=("nope",)))


@pytest.mark.unit
def test_score_fusion_follows_the_weights(two_models):
    store, clip, other, ids = two_models
    x, y, z = ids["X"], ids["Y"], ids["Z"]
    leaning = SearchEngine(
        store, clip, others={"b": other}, fusion=FusionSettings(fusion="score", weights={"clip": 10.0, "b": 1.0})
    )
    assert order(leaning.search(Query(like=ids["Q"], k=10)), x, y, z)[0] == x
    other_way = SearchEngine(
        store, clip, others={"b": other}, fusion=FusionSettings(fusion="score", weights={"clip": 1.0, "b": 10.0})
    )
    assert order(other_way.search(Query(like=ids["Q"], k=10)), x, y, z)[0] == z


@pytest.mark.unit
def test_fusion_arithmetic():
    rrf = fuse({"a": [(1, 0.9), (2, 0.8)], "b": [(2, 0.5), (3, 0.4)]})
    assert rrf.ranked == [(2, pytest.approx(1 / 62 + 1 / 61)), (1, pytest.approx(1 / 61)), (3, pytest.approx(1 / 62))]
    assert rrf.match(2) == "a+b" and rrf.found_by[3] == {"b": (2, 0.4)}
    scored = fuse({"a": [(1, 0.9), (2, 0.5)], "b": [(2, 0.3), (3, 0.1)]}, "score", {"a": 2.0})
    assert scored.ranked == [(1, pytest.approx(2.0)), (2, pytest.approx(1.0)), (3, pytest.approx(0.0))]
    assert fuse({"a": [(5, 0.3)], "b": []}).ranked == [(5, 0.3)]  # one ranking alone keeps its scores


@pytest.mark.unit
def test_feedback_temporal_and_filters_work_on_the_fused_ranking(two_models):
    store, clip, other, ids = two_models
    engine = SearchEngine(store, clip, others={"b": other})
    x, y, z = ids["X"], ids["Y"], ids["Z"]
    liked = engine.search(Query(more_like=(ids["Q"],), less_like=(x,), k=10))
    assert x not in [h.keyframe_id for h in liked] and liked[0].keyframe_id == ids["Q"]
    from evr.storage import KeyframeFilter

    later = engine.search(Query(like=ids["Q"], k=10, filters=KeyframeFilter.of(time_from=2.0)))
    assert all(h.timestamp >= 2.0 for h in later) and order(later, y, z)[0] == y


@pytest.mark.unit
def test_a_keyframe_query_needs_no_encoder_of_the_indexs_models(two_models):
    """Configured models other than the index's: a text query is refused (its vectors would be
    noise), a keyframe query still moves through the stored vectors."""
    store, clip, other, ids = two_models
    elsewhere = ClipEncoder(ClipSettings("ViT-B-32", "none", "cpu"))
    engine = SearchEngine(store, elsewhere, others={"b": ClipEncoder(ClipSettings("RN50", "none", "cpu"))})
    hits = engine.search(Query(like=ids["Q"], k=3))
    assert hits[0].keyframe_id == ids["Q"] and hits[0].match == "clip+b"
    with pytest.raises(ModelMismatchError):
        engine.search(Query(text="a street", k=3))


@pytest.mark.unit
def test_a_model_bound_to_other_weights_is_refused(two_models):
    store, clip, other, _ = two_models
    with pytest.raises(ModelMismatchError, match="evr models --drop b"):
        store.bind_other_model("b", ClipEncoder(ClipSettings("ViT-B-32", "none", "cpu")).info)
    with pytest.raises(StoreError):
        store.drop_model("clip")


# -- which model reads a Vietnamese query ----------------------------------------------------------


VI = "Người đàn ông mở cửa xe ô tô trên phố"
EN = "a man opens the door of a car on the street"


@pytest.mark.unit
def test_a_vietnamese_query_goes_to_the_multilingual_model_and_the_english_one_sits_out(
    two_models, monkeypatch, caplog
):
    """ViT-S-32 stands for a multilingual model (the table says which are); [clip] reads English
    only and has no aligned encoder or translation configured here."""
    store, clip, other, ids = two_models
    monkeypatch.setattr(table, "MULTILINGUAL_CLIP_MODELS", (*table.MULTILINGUAL_CLIP_MODELS, "ViT-S-32"))
    monkeypatch.setattr("evr.search.multilingual.router.table.MULTILINGUAL_CLIP_MODELS", table.MULTILINGUAL_CLIP_MODELS)
    engine = SearchEngine(store, clip, QuerySettings(text_encoder="none"), others={"b": other})
    with caplog.at_level("INFO"):
        vi = engine.search(Query(text=VI, lang="vi", k=5))
    assert {h.encoder for h in vi} == {"clip:ViT-S-32/none"} and {h.match for h in vi} == {"b"}
    assert any("sat out" in r.getMessage() for r in caplog.records)
    en = engine.search(Query(text=EN, lang="en", k=5))
    assert {h.encoder for h in en} == {"clip:ViT-S-32-alt/none, clip:ViT-S-32/none"}
    # Asked for the English-only model alone, it reads the query as best it can, and says so.
    with caplog.at_level("WARNING"):
        alone = engine.search(Query(text=VI, lang="vi", k=5, models=("clip",)))
    assert {h.encoder for h in alone} == {"clip:ViT-S-32-alt/none"}
    assert any("does not understand them" in r.getMessage() for r in caplog.records)


# -- configuration ----------------------------------------------------------------------------------


@pytest.mark.unit
def test_models_are_read_from_the_config_file_and_checked(tmp_path):
    from evr.ui.config import ConfigError, load_config

    config = tmp_path / "config.toml"
    config.write_text(
        '[clip]\nmodel = "ViT-S-32-alt"\npretrained = "none"\n\n'
        '[[models]]\nname = "s32"\nmodel = "ViT-S-32"\npretrained = "none"\n\n'
        '[search]\nfusion = "score"\nweights = {clip = 2.0, s32 = 0.5}\n'
    )
    loaded = load_config(config, environ={})
    assert list(loaded.index.image_models) == ["clip", "s32"]
    assert loaded.index.image_models["s32"].model == "ViT-S-32" and loaded.search.weight("s32") == 0.5
    for body, says in (
        ('name = "clip"\nmodel = "RN50"\npretrained = "none"', "cannot be 'clip'"),
        ('name = "Bad Name"\nmodel = "RN50"\npretrained = "none"', "must be a short name"),
        ('name = "a"\nmodel = "RN50"\npretrained = "none"\ncolour = "red"', "unknown key 'colour'"),
        ('name = "a"\nmodel = "RN50"', "pretrained must name"),
    ):
        config.write_text(f"[[models]]\n{body}\n")
        with pytest.raises(ConfigError, match=says):
            load_config(config, environ={})
    config.write_text('[[models]]\nname = "a"\nmodel = "RN50"\npretrained = "none"\n' * 2)
    with pytest.raises(ConfigError, match="more than one model"):
        load_config(config, environ={})
    from_env = load_config(None, environ={"EVR_MODELS": json.dumps(OTHER), "EVR_SEARCH_WEIGHTS": '{"s32": 3}'})
    assert [m.name for m in from_env.index.models] == ["s32"] and from_env.search.weight("s32") == 3
    with pytest.raises(ConfigError, match="EVR_MODELS"):
        load_config(None, environ={"EVR_MODELS": "s32"})


@pytest.mark.integration
def test_doctor_and_models_list_each_model(clips, tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    index(data, clips["small"], capsys, monkeypatch, WITH_OTHER)
    monkeypatch.setenv("EVR_MODELS", json.dumps(OTHER))
    code, report = evr("--data-dir", data, "doctor", "--json", capsys=capsys)
    assert code == 0 and len(report["models"]) == 2
    assert (
        report["models"][1].startswith("s32: ViT-S-32 / none, weights present")
        and "vectors (flat)" in report["models"][1]
    )
    code, rows = evr("--data-dir", data, "models", "--json", capsys=capsys)
    assert code == 0 and [(r["name"], r["configured"], r["vector_index"]) for r in rows] == [
        ("clip", True, "flat"),
        ("s32", True, "flat"),
    ]
    assert rows[0]["vectors"] == rows[1]["vectors"] > 0
    monkeypatch.setenv("EVR_MODELS", "[]")  # taken out of the config: listed, not searched
    code, rows = evr("--data-dir", data, "models", "--json", capsys=capsys)
    assert code == 0 and rows[1]["name"] == "s32" and rows[1]["configured"] is False
    shutil.rmtree(data)


@pytest.mark.integration
def test_analyze_adds_the_other_models_from_an_imported_packages_images(videos, tmp_path, capsys, monkeypatch):
    """The package's clip-features are [clip]'s; `evr analyze` reads its full-size keyframe images
    for the other model, and equals that model run on the same images."""
    from PIL import Image

    from .aic_package import MODEL, add_video

    root = tmp_path / "pkg"
    made = add_video(root, "L01", 1, videos / "msrvtt/video7010.mp4")
    data = tmp_path / "data"
    code, report = evr(
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
        capsys=capsys,
    )
    assert code == 0 and report["keyframes_added"] > 0
    monkeypatch.setenv("EVR_MODELS", json.dumps(OTHER))
    code, report = evr("--data-dir", data, "analyze", "--no-progress", "--json", capsys=capsys)
    assert code == 0 and report["embedded"]["vectors_added"] == {"s32": report["embedded"]["vectors_added"]["s32"]}
    assert report["embedded"]["stage_seconds"]["decode"] == 0.0
    with Store(data) as store:
        images = {k.keyframe_id: k.path for v in store.catalog.imported_videos() for k in v.keyframes}
        ids, vectors = store.catalog.stored_vectors(sorted(images), "s32")
    assert len(ids) == len(images) == report["embedded"]["vectors_added"]["s32"] > 0
    direct = ClipEncoder(ClipSettings("ViT-S-32", "none", "cpu")).encode_images(
        [np.asarray(Image.open(images[int(k)]).convert("RGB")) for k in ids]
    )
    np.testing.assert_allclose(vectors, direct, atol=2e-3)
    assert made.video_id in {
        h["video_id"] for h in evr("--data-dir", data, "search", "a street", "--json", capsys=capsys)[1]
    }


@pytest.mark.e2e
def test_the_app_searches_with_the_models_the_sidebar_picks(clips, tmp_path, capsys, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from .conftest import REPO

    data = tmp_path / "data"
    index(data, clips["small"], capsys, monkeypatch, WITH_OTHER)
    monkeypatch.setenv("EVR_MODELS", json.dumps(OTHER))
    monkeypatch.setenv("EVR_STORAGE_DATA_DIR", str(data))
    monkeypatch.setenv("EVR_UI_HITS_PER_VIDEO", "100")  # one video: the app's per-video limit would cut the list
    app = AppTest.from_file(str(REPO / "ui" / "app.py"), default_timeout=120)
    app.run()
    assert not app.exception and app.multiselect(key="models").value == ["clip", "s32"]
    app.text_input(key="query").input("a person talking").run()

    def cli(*extra):
        code, hits = evr(
            "--data-dir",
            data,
            "search",
            "a person talking",
            "--k",
            "24",
            "--group",
            "limit",
            "--per-video",
            "100",
            "--json",
            *extra,
            capsys=capsys,
        )
        assert code == 0
        return [(h["keyframe_id"], h["match"]) for h in hits]

    shown = [(h.keyframe_id, h.match) for h in app.session_state["hits"]]
    assert shown == cli() and any(match == "clip+s32" for _, match in shown)
    app.multiselect(key="models").set_value(["s32"]).run()
    shown = [(h.keyframe_id, h.match) for h in app.session_state["hits"]]
    assert shown == cli("--models", "s32") and {match for _, match in shown} == {"s32"}


@pytest.mark.e2e
def test_each_model_has_its_own_milvus_collection_with_the_hits_of_faiss(two_models, tmp_path):
    from evr.storage import KeyframeFilter, VectorIndexSettings

    store, clip, other, ids = two_models
    faiss_engine = SearchEngine(store, clip, others={"b": other})
    settings = VectorIndexSettings(backend="milvus", milvus_uri=str(tmp_path / "m.db"))
    store.close()
    with Store(store.data_dir, writer=True, index=settings) as writer:
        assert [m.build(force=True) for m in writer.mirrors()] == ["milvus", "milvus"]
        assert writer.mirror("b").index.collection == "evr_keyframes_b"
    faiss_store = Store(store.data_dir)
    faiss_engine = SearchEngine(faiss_store, clip, others={"b": other})
    with Store(store.data_dir, index=settings) as reader:
        milvus_engine = SearchEngine(reader, clip, others={"b": other})
        for query in (
            Query(like=ids["Q"], k=30),
            Query(like=ids["Q"], k=5, models=("b",)),
            Query(like=ids["Q"], k=10, filters=KeyframeFilter.of(time_from=2.0)),
        ):
            want, got = faiss_engine.search(query), milvus_engine.search(query)
            assert [(h.keyframe_id, h.match) for h in got] == [(h.keyframe_id, h.match) for h in want] and want
            assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)
        assert reader.health.stats()["models"]["b"]["vector_index"] == "milvus"
    faiss_store.close()
    with Store(store.data_dir, writer=True, index=settings) as writer:
        assert writer.drop_model("b") == len(ids)
        from pymilvus import MilvusClient

        client = MilvusClient(str(tmp_path / "m.db"))
        assert not client.has_collection("evr_keyframes_b") and client.has_collection("evr_keyframes")
        client.close()
