"""How many SQL statements a search and a save take, counted with SQLAlchemy's event hook on
the store's engine: each one is a round trip to SQLite, and their count, not their speed, is
what grows with a careless loop (one SELECT per window, per hit, per keyframe)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from sqlalchemy import Engine, event

from evr.search import Query
from evr.storage import KeyframeFilter, NewKeyframe, Plan, Store, VideoInfo

from .conftest import evr, people, random_unit

pytestmark = pytest.mark.unit


@contextlib.contextmanager
def statements(engine):
    """The statements run on `engine` (a SQLAlchemy Engine) inside the block."""
    seen: list[str] = []

    def hook(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", hook)


@pytest.fixture(scope="module")
def warm(planted):
    engine, facts = planted
    engine.search(Query(like=facts[("alpha", 4)], k=5))  # the first search reads the model and catches up
    return engine, facts


DOOR, CAR, DOG = "a man opens a door", "a car drives away", "a dog runs"
QUERIES = {  # name: (the query, given the planted facts; the most statements it may take)
    "text": (lambda facts: Query(text=DOOR), 5),
    "text, filtered": (lambda facts: Query(text=DOOR, filters=KeyframeFilter.of(min_persons=1, pose=["sitting"])), 5),
    "words": (lambda facts: Query(filters=KeyframeFilter.of(ocr="HUE")), 5),
    "like": (lambda facts: Query(like=facts[("alpha", 4)]), 5),
    "two events": (lambda facts: Query(text=DOOR, then=(CAR,), within=10), 10),
    "three events": (lambda facts: Query(text=DOOR, then=(CAR, DOG), within=10), 10),
    "by video": (lambda facts: Query(text=DOOR, group="video", per_video=2), 5),
}


@pytest.mark.parametrize("name", QUERIES)
def test_a_search_takes_few_statements(warm, name):
    engine, facts = warm
    make, most = QUERIES[name]
    with statements(engine.store.db.engine) as seen:
        hits = engine.search(make(facts))
    assert hits
    assert len(seen) <= most, "\n".join(seen)


def test_saving_a_video_of_200_keyframes_takes_few_statements(tmp_path, clip):
    rng = np.random.default_rng(3)
    with Store(tmp_path, writer=True) as store:
        store.bind_model(clip.info)
        keyframes = [
            NewKeyframe(
                i * 25,
                float(i),
                i // 10,
                b"jpeg",
                random_unit(rng, clip.info.dim),
                analyses={"ocr": [], "persons": people([["standing"]] * (i % 3))},
            )
            for i in range(200)
        ]
        video_id = store.writes.start_video("/videos/long.mp4", 1, 1)
        with statements(store.db.engine) as seen:
            assert (
                store.writes.save_video(
                    video_id,
                    VideoInfo("decord", 200.0, 25.0, 5000, 640, 360),
                    keyframes,
                    Plan("decoded", analyzers={"ocr": "en", "persons": "mediapipe"}),
                )
                == 200
            )
        assert len(seen) <= 20, "\n".join(seen)
        assert store.health.stats()["keyframes"] == 200


@contextlib.contextmanager
def traced():
    """Every statement SQLite runs on connections opened inside the block (BEGIN, COMMIT and
    PRAGMA included), by sqlite3's trace callback: what a whole command costs."""
    seen: list[str] = []

    def on_connect(dbapi_connection, record):
        dbapi_connection.set_trace_callback(seen.append)

    event.listen(Engine, "connect", on_connect)
    try:
        yield seen
    finally:
        event.remove(Engine, "connect", on_connect)


@pytest.mark.integration  # the sample videos indexed
@pytest.mark.parametrize(
    "args, most",
    [
        (["--like", "1"], 12),
        (["people on a street"], 15),
        (["people on a street", "--then", "a car", "--within", "10"], 20),
    ],
)
def test_a_search_command_takes_few_statements(indexed, args, most, capsys):
    with traced() as seen:
        code, hits = evr("--data-dir", indexed, "search", *args, "--json", capsys=capsys)
    assert code == 0 and hits
    assert len(seen) <= most, "\n".join(seen)
