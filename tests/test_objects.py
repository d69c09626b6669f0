"""Objects and colours (issue 25): what is where in the frame, as filters and as queries.

Objects are checked exactly on a hand-made AI Challenge objects JSON (its OpenImages output, as
the package ships it) and the detector path on real frames with random weights (no ranking is
asserted of those); colours on synthetic frames whose cells hold known colours."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from evr.indexer.analyzers.colors import color_grid
from evr.search import Query, QueryError, SearchEngine
from evr.storage import KeyframeFilter, NewKeyframe, Store, VideoInfo
from evr.storage.features.colors import COLORS, parse_spec

from .aic_package import MODEL, add_video
from .conftest import evr

# -- objects -----------------------------------------------------------------------------------

# keyframe n -> (entity, score, [ymin, xmin, ymax, xmax]): TF-Hub's OpenImages names and box order
DETECTIONS = {
    1: [
        ("Man", 0.9, [0.1, 0.05, 0.9, 0.25]),
        ("Woman", 0.8, [0.1, 0.4, 0.9, 0.6]),
        ("Car", 0.95, [0.5, 0.7, 0.9, 0.95]),
    ],
    2: [("Car", 0.7, [0.5, 0.02, 0.8, 0.3]), ("Car", 0.6, [0.5, 0.35, 0.8, 0.62]), ("Person", 0.2, [0, 0, 1, 1])],
    3: [("Human face", 0.85, [0.2, 0.4, 0.4, 0.6])],
    4: [],
}


def write_objects(root: Path, video_id: str) -> None:
    folder = root / "objects" / video_id
    folder.mkdir(parents=True)
    for n, found in DETECTIONS.items():
        (folder / f"{n:03d}.json").write_text(
            json.dumps(
                {
                    "detection_class_entities": [e for e, _, _ in found],
                    "detection_class_names": [f"/m/{i}" for i, _ in enumerate(found)],
                    "detection_class_labels": [str(i) for i, _ in enumerate(found)],
                    "detection_scores": [str(s) for _, s, _ in found],  # TF-Hub's JSON holds numbers as strings
                    "detection_boxes": [[str(v) for v in box] for _, _, box in found],
                }
            ),
            encoding="utf-8",
        )


@pytest.fixture(scope="module")
def with_objects(videos, tmp_path_factory):
    """A package of one video whose keyframes 1-4 have the detections above (5 has no file)."""
    root = tmp_path_factory.mktemp("aic-objects")
    made = add_video(root, "L05", 1, videos / "msrvtt/video7010.mp4")
    write_objects(root, made.video_id)
    data = tmp_path_factory.mktemp("objects-index")
    code, _ = evr(
        "--data-dir", data, "import", "aic", root, "--model", MODEL, "--pretrained", "none", "--no-progress"
    )  # no capsys in a module fixture: the tests read what was stored
    assert code == 0
    return data, made


def frames_of(hits) -> list[int]:
    return [h["frame_idx"] for h in hits]


@pytest.mark.integration
def test_objects_from_a_package_filter_exactly_by_label_count_and_place(with_objects, capsys):
    data, made = with_objects
    frame = dict(enumerate(made.frames, start=1))  # keyframe n -> frame_idx

    def search(*specs, query=()):
        args = [a for s in specs for a in ("--object", s)]
        code, hits = evr("--data-dir", data, "search", *query, *args, "--k", "20", "--json", capsys=capsys)
        assert code == 0, hits
        return hits

    # Man and Woman are people (COCO's word); Person at 0.2 is under objects.min_score (0.5).
    assert sorted(frames_of(search("person:2"))) == [frame[1]]
    assert sorted(frames_of(search("person"))) == [frame[1]]
    assert sorted(frames_of(search("car"))) == [frame[1], frame[2]]
    assert frames_of(search("car:2")) == [frame[2]]
    assert sorted(frames_of(search("car@left-half"))) == [frame[2]]  # centres at x 0.16 and 0.485
    assert frames_of(search("car@bottom-right")) == [frame[1]]  # centre x 0.825, y 0.7: the bottom third
    assert frames_of(search("car@right")) == []  # the right edge's middle cell
    assert frames_of(search("car:2@left-half")) == [frame[2]]
    assert frames_of(search("car@left")) == [frame[2]]  # x 0.16, y 0.65: the left edge's middle cell
    assert frames_of(search("car:2@left")) == []  # the other car (x 0.485) is not there
    # Centres: man (0.15, 0.5) left, woman (0.5, 0.5) center, face (0.5, 0.3) top.
    assert frames_of(search("person@left")) == frames_of(search("person@center")) == [frame[1]]
    assert frames_of(search("person:2@left")) == [] and frames_of(search("person@top-left")) == []
    assert frames_of(search("person", "car")) == [frame[1]]  # all must hold
    assert frames_of(search("human face@top")) == [frame[3]]  # OpenImages names kept, lower-cased
    # Alone, ranked by the matching objects' summed scores: keyframe 2 (0.7 + 0.6) above 1 (0.95).
    assert frames_of(search("car")) == [frame[2], frame[1]]
    hits = search("car")
    assert hits[0]["objects"] == {"car": 2} and hits[1]["objects"] == {"person": 2, "car": 1}
    assert hits[0]["match"] == "objects"
    # Beside a text query it filters the CLIP ranking.
    assert sorted(frames_of(search("car", query=("a street",)))) == [frame[1], frame[2]]
    code, every = evr("--data-dir", data, "search", "a street", "--k", "20", "--json", capsys=capsys)
    by_frame = {h["frame_idx"]: h["objects"] for h in every}
    assert by_frame[frame[4]] == {} and by_frame[frame[5]] is None  # none found; not looked for
    code, out = evr("--data-dir", data, "search", "--object", "car@nowhere", capsys=capsys)
    assert code == 2


@pytest.mark.integration
def test_analyze_keeps_a_packages_own_objects(with_objects, capsys, monkeypatch):
    data, _ = with_objects
    monkeypatch.setenv("EVR_OBJECTS_ENABLED", "true")
    monkeypatch.setenv("EVR_OBJECTS_WEIGHTS", "none")
    before = sqlite3.connect(data / "evr.sqlite").execute("SELECT * FROM objects ORDER BY id").fetchall()
    code, report = evr("--data-dir", data, "analyze", "--no-progress", "--json", capsys=capsys)
    assert code == 0 and report["videos_analyzed"] == 1  # the colours, from the package's images
    db = sqlite3.connect(data / "evr.sqlite")
    assert db.execute("SELECT * FROM objects ORDER BY id").fetchall() == before  # the detector did not replace them
    assert db.execute("SELECT count(*) FROM keyframe_colors").fetchone()[0] == 5
    plan = json.loads(db.execute("SELECT plan FROM videos").fetchone()[0])
    assert plan["analyzers"]["objects"] == "aic:openimages" and plan["analyzers"]["colors"]


@pytest.mark.integration
def test_the_detector_runs_on_real_frames_and_stores_well_formed_rows(videos, tmp_path, capsys, monkeypatch):
    """Random weights: boxes and scores are noise, but the path is the real one (batched frames,
    boxes scaled to fractions, COCO labels, min_score applied)."""
    for key, value in {
        "EVR_OBJECTS_ENABLED": "true",
        "EVR_OBJECTS_WEIGHTS": "none",
        "EVR_OBJECTS_MIN_SCORE": "0",
        "EVR_OBJECTS_DETECT_SIZE": "320",
    }.items():
        monkeypatch.setenv(key, value)
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "counter.mp4").symlink_to(videos / "scene_cuts/counter.mp4")
    data = tmp_path / "data"
    code, report = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and report["stage_seconds"]["objects"] > 0
    from evr.indexer.analyzers.objects import AUTO
    from evr.ui.place_filters import COCO

    db = sqlite3.connect(data / "evr.sqlite")
    assert db.execute("SELECT count(*) FROM keyframe_objects").fetchone()[0] == report["keyframes_added"]
    rows = db.execute("SELECT label, score, x0, y0, x1, y1 FROM objects").fetchall()
    assert rows, "random weights give boxes at min_score 0"
    for label, score, x0, y0, x1, y1 in rows:
        assert label in COCO and 0 <= score <= 1 and 0 <= x0 <= x1 <= 1 and 0 <= y0 <= y1 <= 1
    plan = json.loads(db.execute("SELECT plan FROM videos").fetchone()[0])
    assert plan["analyzers"]["objects"] == f"{AUTO['cpu']}:random@320"
    label = rows[0][0]
    code, hits = evr("--data-dir", data, "search", "--object", label, "--json", capsys=capsys)
    assert code == 0 and hits and all(label in h["objects"] for h in hits)


# -- colours -------------------------------------------------------------------------------------

RGB = {
    "red": (230, 20, 20),
    "orange": (255, 140, 0),
    "yellow": (250, 230, 20),
    "green": (20, 180, 40),
    "cyan": (20, 220, 230),
    "blue": (20, 40, 220),
    "purple": (130, 30, 200),
    "pink": (255, 105, 180),
    "brown": (120, 70, 20),
    "black": (10, 10, 10),
    "grey": (128, 128, 128),
    "white": (245, 245, 245),
}


def painted(cells: dict[int, str], fill: str = "grey") -> np.ndarray:
    """A 640x480 frame whose 4x4 grid cells (row by row) have these colours, the rest `fill`."""
    image = np.full((480, 640, 3), RGB[fill], np.uint8)
    for cell, name in cells.items():
        r, c = divmod(cell, 4)
        image[r * 120 : (r + 1) * 120, c * 160 : (c + 1) * 160] = RGB[name]
    return image


@pytest.mark.unit
def test_colour_names_of_solid_cells_come_out_right_in_both_languages():
    names = list(RGB)
    grid = color_grid(painted(dict(enumerate(names))))
    assert [first for first, _ in grid.cells[:12]] == names
    assert all(second is None for _, second in grid.cells)
    vietnamese = [
        "đỏ",
        "cam",
        "vàng",
        "xanh lá",
        "xanh ngọc",
        "xanh dương",
        "tím",
        "hồng",
        "nâu",
        "đen",
        "xám",
        "trắng",
    ]
    assert [COLORS[n][1] for n in names] == vietnamese
    for name, vi in zip(names, vietnamese):
        assert parse_spec(vi)[0] == name and parse_spec(f"{vi}@top-left")[0] == name
        assert parse_spec(vi.upper().replace("đ", "d").replace("Đ", "D"))[0] == name  # marks and case optional
    half = painted({0: "red"}, "blue")
    half[:60, :160] = RGB["white"]  # the top half of cell 0 white: a second colour
    assert color_grid(half).cells[0] in (("red", "white"), ("white", "red"))
    with pytest.raises(ValueError, match="names no colour"):
        parse_spec("magenta")


def planted_colours(data: Path, frames: dict[str, np.ndarray]) -> dict[str, int]:
    """An index of keyframes with these frames' colours (random vectors), by name -> keyframe id."""
    from evr.indexer.encoders import ClipEncoder
    from evr.ui.config import load_config

    model = ClipEncoder(load_config().index.clip).info
    rng = np.random.default_rng(0)
    with Store(data, writer=True) as store:
        store.bind_model(model)
        vid = store.writes.start_video("/v/colours.mp4", 1, 1)
        keyframes = [
            NewKeyframe(
                i * 25,
                float(i),
                0,
                cv2.imencode(".jpg", cv2.resize(image, (64, 48)))[1].tobytes(),
                (v := rng.normal(size=model.dim).astype(np.float32)) / np.linalg.norm(v),
                {"colors": color_grid(image)},
            )
            for i, image in enumerate(frames.values())
        ]
        store.writes.save_video(vid, VideoInfo("pyav", 10.0, 25.0, 250, 640, 480), keyframes)
        rows = store.catalog.keyframes(range(1, 100))
    by_time = {int(r.timestamp): kid for kid, r in rows.items()}
    return {name: by_time[i] for i, name in enumerate(frames)}


LAYOUT_FRAMES = {
    "blue over green": painted(dict.fromkeys(range(8), "blue") | dict.fromkeys(range(8, 16), "green")),
    "green over blue": painted(dict.fromkeys(range(8), "green") | dict.fromkeys(range(8, 16), "blue")),
    "blue top left": painted({0: "blue", 1: "blue", 4: "blue", 5: "blue", 12: "green"}),
    "all grey": painted({}),
}


@pytest.mark.unit
def test_a_colour_layout_ranks_the_matching_frame_first(tmp_path, clip):
    ids = planted_colours(tmp_path / "data", LAYOUT_FRAMES)
    with Store(tmp_path / "data") as store:
        engine = SearchEngine(store, clip)

        def ranked(*specs):
            return [h.keyframe_id for h in engine.search(Query(filters=KeyframeFilter.of(color=specs), k=10))]

        # Each must hold somewhere in its place; by similarity, the full layout (1.0) before a
        # frame with a quarter of the top blue and one green cell below ((0.5 + 0.125) / 2).
        assert ranked("blue@above", "green@below") == [ids["blue over green"], ids["blue top left"]]
        assert ranked("xanh dương@above", "xanh lá@below") == [ids["blue over green"], ids["blue top left"]]
        assert ranked("blue@above") == [ids["blue over green"], ids["blue top left"]]  # 8 of 8 cells, then 4 of 8
        assert ranked("blue") == [ids["blue over green"], ids["green over blue"], ids["blue top left"]]
        assert ranked("grey@center") == [ids["all grey"], ids["blue top left"]]
        hits = engine.search(Query(filters=KeyframeFilter.of(color=("green",)), k=3))
        assert hits[0].fields["colors"][0] in ("green", "blue") and hits[0].match == "colors"
        with pytest.raises(QueryError, match="names no place"):
            engine.search(Query(filters=KeyframeFilter.of(color=("blue@north",))))


@pytest.mark.e2e
def test_the_apps_object_picker_and_colour_canvas_change_the_hits(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from .conftest import REPO

    data = tmp_path / "data"
    ids = planted_colours(data, LAYOUT_FRAMES)
    monkeypatch.setenv("EVR_STORAGE_DATA_DIR", str(data))
    app = AppTest.from_file(str(REPO / "ui" / "app.py"), default_timeout=120)
    app.run()
    assert not app.exception
    app.radio(key="color_pick").set_value("blue").run()
    app.button(key="color_cell_top-left").click().run()
    assert app.session_state["color"] == ["blue@top-left"]
    assert [h.keyframe_id for h in app.session_state["hits"]] == [ids["blue over green"], ids["blue top left"]]
    app.radio(key="color_pick").set_value("green").run()
    app.button(key="color_cell_bottom-right").click().run()
    assert [h.keyframe_id for h in app.session_state["hits"]] == [ids["blue over green"]]
    app.button(key="color_cell_bottom-right").click().run()  # clicked again: the cell is cleared
    assert app.session_state["color"] == ["blue@top-left"]
    # An object no keyframe has: nothing passes; the chip's "Clear filters" empties both pickers.
    app.selectbox(key="object_label").set_value("car").run()
    app.button(key="object_add").click().run()
    assert app.session_state["object"] == ["car"] and app.session_state["hits"] == []
    app.button(key="clear_filters").click().run()
    assert app.session_state["color"] == [] and app.session_state["object"] == []


@pytest.mark.e2e
def test_milvus_filters_colours_and_objects_as_sqlite_does(tmp_path, clip):
    from evr.storage import VectorIndexSettings

    data = tmp_path / "data"
    ids = planted_colours(data, LAYOUT_FRAMES)
    settings = VectorIndexSettings(backend="milvus", milvus_uri=str(tmp_path / "m.db"))
    with Store(data, writer=True, index=settings) as writer:
        assert writer.vectors.build(force=True) == "milvus"
    queries = [
        Query(like=ids["all grey"], k=10, filters=KeyframeFilter.of(color=("blue",))),  # a Milvus expression
        Query(like=ids["all grey"], k=10, filters=KeyframeFilter.of(color=("blue@above", "green"))),  # + SQL
        Query(like=ids["all grey"], k=10, filters=KeyframeFilter.of(object=("car",))),
    ]  # no objects: none
    found = []
    with Store(data) as faiss_store, Store(data, index=settings) as milvus_store:
        for query in queries:
            want = [h.keyframe_id for h in SearchEngine(faiss_store, clip).search(query)]
            assert [h.keyframe_id for h in SearchEngine(milvus_store, clip).search(query)] == want, query
            found.append(set(want))
    assert found == [
        {ids["blue over green"], ids["green over blue"], ids["blue top left"]},
        {ids["blue over green"], ids["blue top left"]},
        set(),
    ]
