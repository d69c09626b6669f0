"""Filters, OCR search, rank fusion and temporal queries on planted keyframes with exact answers.

Planted vectors are the real (random-weight) CLIP text embeddings of the queries used, so the
expected rankings hold by construction, not by what trained weights would say.
"""

from __future__ import annotations

import numpy as np
import pytest

from evr.search import Query, QueryError
from evr.storage import KeyframeFilter, ModelInfo

from .conftest import ocr_search, vector_of


def ids(hits):
    return [h.keyframe_id for h in hits]


pytestmark = pytest.mark.unit


def test_person_range_and_pose_filters_are_exact(planted):
    engine, facts = planted
    like = facts[("alpha", 1)]
    hits = engine.search(Query(like=like, k=100, filters=KeyframeFilter.of(min_persons=2, max_persons=3)))
    expected = {kid for (v, i), kid in facts.items() if i % 4 in (2, 3)}
    assert set(ids(hits)) == expected and len(hits) == 40
    assert all(h.fields["person_count"] in (2, 3) for h in hits)
    hits = engine.search(Query(like=like, k=100, filters=KeyframeFilter.of(pose=("sitting",))))
    assert set(ids(hits)) == {kid for (v, i), kid in facts.items() if i % 5 == 0 and i % 4 >= 1}
    assert all(["sitting"] in h.fields["poses"] for h in hits)
    hits = engine.search(Query(like=like, k=100, filters=KeyframeFilter.of(max_persons=0)))
    assert set(ids(hits)) == {kid for (v, i), kid in facts.items() if i % 4 == 0}


def test_video_and_time_range_filters(planted):
    engine, facts = planted
    hits = engine.search(
        Query(like=facts[("alpha", 1)], k=100, filters=KeyframeFilter.of(videos=("beta",), time_from=10, time_to=14.5))
    )
    assert set(ids(hits)) == {facts[("beta", i)] for i in range(10, 15)}


def test_filter_never_starves_k(planted):
    """k hits come back while k frames pass, even when most of the unfiltered top k fail."""
    engine, facts = planted
    like = facts[("alpha", 4)]
    everything = engine.search(Query(like=like, k=80))
    passing = [h.keyframe_id for h in everything if h.fields["person_count"] == 0]
    top5_passing = sum(h.fields["person_count"] == 0 for h in everything[:5])
    assert top5_passing < 5  # a top-k-then-filter search would come back short
    hits = engine.search(Query(like=like, k=5, filters=KeyframeFilter.of(max_persons=0)))
    assert ids(hits) == passing[:5]


def test_ocr_search_folds_vietnamese_accents_and_case(planted):
    engine, facts = planted
    assert ids(engine.search(Query(filters=KeyframeFilter.of(ocr="lu lut o hue")))) == [facts[("alpha", 3)]]
    assert ids(engine.search(Query(filters=KeyframeFilter.of(ocr="Lũ Lụt")))) == [facts[("alpha", 3)]]
    assert ids(engine.search(Query(filters=KeyframeFilter.of(ocr="Hà Nội")))) == [
        facts[("alpha", 20)]
    ]  # on screen: HA NOI
    assert engine.search(Query(filters=KeyframeFilter.of(ocr="hue news"))) == []  # every word must be there
    hit = engine.search(Query(filters=KeyframeFilter.of(ocr="breaking")))[0]
    assert (hit.video_id, hit.timestamp, hit.match, hit.fields["ocr_text"]) == (
        "beta",
        7.0,
        "ocr",
        "BREAKING NEWS tonight",
    )


@pytest.mark.parametrize(
    "hostile",
    [
        '"',
        "'",
        "*",
        "-",
        "OR",
        "NEAR",
        "NEAR(a b)",
        "(",
        ")",
        "a OR",
        '"lu" "',
        "lu*",
        "-lu",
        "^lu",
        "text:lu",
        "AND NOT",
        "{lu}",
        "lu + hue",
        "\\",
        "%_",
    ],
)
def test_hostile_ocr_strings_never_raise(planted, hostile):
    engine, _ = planted
    try:
        hits = engine.search(Query(filters=KeyframeFilter.of(ocr=hostile)))
    except QueryError as exc:  # only for strings with no word at all
        assert "no words" in str(exc)
    else:
        assert isinstance(hits, list)
    assert isinstance(ocr_search(engine.store, hostile), list)


def test_text_query_fuses_with_ocr(planted):
    engine, facts = planted
    hits = engine.search(Query(text="breaking news", k=80))
    # CLIP alone puts beta@30 first (its vector is the query's); beta@7 shows the words on screen
    # and is in both rankings, so reciprocal rank fusion puts it first.
    assert ids(hits[:2]) == [facts[("beta", 7)], facts[("beta", 30)]]
    assert hits[0].match == "clip+ocr" and hits[1].match == "clip"
    assert hits[0].score == pytest.approx(1 / 61 + 1 / (60 + clip_rank(engine, facts, facts[("beta", 7)])))


def clip_rank(engine, facts, kid):
    """Rank by CLIP alone: a --like query of beta@30 has the query's very vector and no fusion."""
    return ids(engine.search(Query(like=facts[("beta", 30)], k=80))).index(kid) + 1


def test_text_with_ocr_filter(planted):
    engine, facts = planted
    hits = engine.search(Query(text="a man opens a door", filters=KeyframeFilter.of(ocr="hà nội"), k=10))
    assert ids(hits) == [facts[("alpha", 20)]]


def test_temporal_pairs(planted):
    engine, facts = planted
    hits = engine.search(Query(text="a man opens a door", then=("a car drives away",), within=10, k=3))
    first = hits[0]
    assert (first.keyframe_id, first.then.keyframe_id) == (facts[("alpha", 4)], facts[("alpha", 10)])
    assert first.score == pytest.approx(2.0, abs=1e-4)
    assert first.to_json()["then"]["timestamp"] == 10.0 and "rank" not in first.to_json()["then"]
    for h in hits:
        assert h.video_id == h.then.video_id and 0 < h.then.timestamp - h.timestamp <= 10
    # beta's B comes 25 s after its A: only a wide enough window pairs them.
    wide = engine.search(Query(text="a man opens a door", then=("a car drives away",), within=30, k=2))
    assert {(h.keyframe_id, h.then.keyframe_id) for h in wide} == {
        (facts[("alpha", 4)], facts[("alpha", 10)]),
        (facts[("beta", 0)], facts[("beta", 25)]),
    }


@pytest.mark.parametrize(
    "query, message",
    [
        (Query(), "give one of"),
        (Query(filters=KeyframeFilter.of(ocr="!!!")), "no words"),
        (
            Query(like=1, filters=KeyframeFilter.of(min_persons=3, max_persons=1)),
            "min_persons 3 is more than max_persons 1",
        ),
        (Query(like=1, filters=KeyframeFilter.of(pose=("dancing",))), "unknown pose dancing"),
        (Query(like=1, filters=KeyframeFilter.of(time_from=5, time_to=1)), "time_to 1 is before time_from 5"),
        (Query(filters=KeyframeFilter.of(ocr="news"), then=("x",)), "then needs a first event"),
        (Query(like=1, then=("x",), within=0), "within must be more than 0"),
        (Query(like=1, then=("x", " ")), "an event of `then` is empty"),
        (Query(like=1, then=("x",) * 8), "at most 8 events"),
        (Query(like=1, then=("x",), more_like=(2,)), "single-event"),
        (Query(like=1, more_like=(2,), less_like=(2,)), "both liked and disliked"),
        (Query(less_like=(2,)), "less_like refines a query"),
        (Query(like=1, more_like=(0,)), "a keyframe id is a whole number"),
    ],
)
def test_bad_filters_get_messages(planted, query, message):
    engine, _ = planted
    with pytest.raises(QueryError, match=message):
        engine.search(query)


def test_trake_chains_of_three_events(planted):
    engine, facts = planted
    events = {"text": "a man opens a door", "then": ("a car drives away", "a dog runs")}
    hits = engine.search(Query(**events, within=10, k=5))
    top = hits[0]
    assert [h.keyframe_id for h in top.chain] == [facts[("alpha", i)] for i in (4, 10, 15)]
    assert top.score == pytest.approx(3.0, abs=1e-4)
    assert [h.score for h in top.chain[1:]] == pytest.approx([1.0, 1.0], abs=1e-4)
    assert top.to_json()["then"]["then"]["timestamp"] == 15.0 and "then" not in top.to_json()["then"]["then"]
    for h in hits:  # every chain: one video, in order, each event within 10 s of the previous
        assert len({e.video_id for e in h.chain}) == 1 and len(h.chain) == 3
        assert all(0 < b.timestamp - a.timestamp <= 10 for a, b in zip(h.chain, h.chain[1:]))
    assert len({h.keyframe_id for h in hits}) == len(hits)  # one chain per first event
    events_of = [[e.keyframe_id for e in h.chain] for h in hits]  # diverse: no keyframe in two chains
    assert len({kid for chain in events_of for kid in chain}) == sum(map(len, events_of))
    # beta's chain (0, 25, 28) needs a 25 s window; then both planted chains score 3.
    wide = engine.search(Query(**events, within=30, k=2))
    assert [[e.keyframe_id for e in h.chain] for h in wide] == [
        [facts[("alpha", i)] for i in (4, 10, 15)],
        [facts[("beta", i)] for i in (0, 25, 28)],
    ]
    # Order matters: the car comes after the door, never before it.
    backwards = engine.search(
        Query(text="a car drives away", then=("a man opens a door", "a dog runs"), within=10, k=3)
    )
    assert all(h.keyframe_id != facts[("alpha", 10)] or h.then.keyframe_id != facts[("alpha", 4)] for h in backwards)
    assert backwards[0].score < 3.0 - 1e-3


def brute_force(engine, vector, exclude=(), where=None):
    """Every keyframe by cosine similarity to `vector`, the engine's order (ties by id)."""
    allowed = engine.store.filters.ids(where) if where is not None else np.arange(1, 81)
    ids_, vecs = engine.store.catalog.stored_vectors([i for i in allowed if i not in exclude])
    scores = vecs @ vector
    return [int(ids_[i]) for i in np.lexsort((ids_, -scores))]


def test_rocchio_moves_the_liked_up_and_the_disliked_out(planted):
    engine, facts = planted
    from evr.search.engine import ROCCHIO_ALPHA, ROCCHIO_BETA, ROCCHIO_GAMMA

    query = facts[("alpha", 1)]
    before = ids(engine.search(Query(like=query, k=80)))
    liked, disliked = before[30], before[1]
    vec = {kid: vector_of(engine.store, kid) for kid in (query, liked, disliked)}
    moved = ROCCHIO_ALPHA * vec[query] + ROCCHIO_BETA * vec[liked] - ROCCHIO_GAMMA * vec[disliked]
    moved /= np.linalg.norm(moved)
    after = engine.search(Query(like=query, more_like=(liked,), less_like=(disliked,), k=80))
    assert ids(after) == brute_force(engine, moved, exclude={disliked})
    assert disliked not in ids(after) and ids(after).index(liked) < before.index(liked)
    assert after[0].score == pytest.approx(float(vec[after[0].keyframe_id] @ moved), abs=1e-4)
    # With a filter: the same vector, over the passing frames only.
    where = KeyframeFilter.of(max_persons=1)
    filtered = engine.search(Query(like=query, more_like=(liked,), less_like=(disliked,), k=80, filters=where))
    assert ids(filtered) == brute_force(engine, moved, exclude={disliked}, where=where)
    # Feedback alone: the liked frames' mean is the query.
    two = (facts[("alpha", 4)], facts[("beta", 30)])
    mean = vector_of(engine.store, two[0]) + vector_of(engine.store, two[1])
    alone = engine.search(Query(more_like=two, k=10))
    assert ids(alone) == brute_force(engine, mean / np.linalg.norm(mean))[:10]


def test_limit_keeps_the_rank_order_with_a_few_hits_of_each_video(planted):
    engine, facts = planted
    like = facts[("alpha", 4)]
    everything = engine.search(Query(like=like, k=80))
    expected, seen = [], {}
    for h in everything:  # the plain ranking, thinned to 3 hits a video
        seen[h.video_id] = seen.get(h.video_id, 0) + 1
        if seen[h.video_id] <= 3:
            expected.append(h.keyframe_id)
    assert ids(engine.search(Query(like=like, k=5, group="limit", per_video=3))) == expected[:5]
    assert ids(engine.search(Query(like=like, k=10, group="limit", per_video=3))) == expected  # 2 videos: 6 hits


def test_a_rare_filter_widens_the_candidates_before_reading_every_passing_id(tmp_path, monkeypatch):
    """1 in 15 keyframes pass: the nearest 100 hold too few for k = 10, so a second round fetches
    as many candidates as that share asks for (not every passing id of the archive), and the
    answer is still the exact top 10 of the passing keyframes."""
    from evr.search import ranking
    from evr.storage import NewKeyframe, Plan, Store, VideoInfo

    from .conftest import people, random_unit

    rng = np.random.default_rng(3)
    store = Store(tmp_path / "data", writer=True)
    dim = 64
    store.bind_model(ModelInfo("planted", "none", dim))
    vectors, crowded = [], []
    kfs = []
    for i in range(1500):
        vectors.append(random_unit(rng, dim))
        crowded.append(i % 15 == 0)
        kfs.append(
            NewKeyframe(
                frame_idx=i,
                timestamp=i / 25,
                shot=0,
                jpeg=b"jpeg",
                vector=vectors[-1],
                analyses={"persons": people([["standing"]] * (4 if crowded[-1] else 1))},
            )
        )
    vid = store.writes.start_video("/videos/crowd.mp4", 1, 1)
    store.writes.save_video(vid, VideoInfo("decord", 60.0, 25.0, 1500, 640, 360), kfs, plan=Plan("decoded"))
    ids_by_row = sorted(store.catalog.keyframes(range(1, 2000)))
    query = random_unit(rng, dim)
    reads = []
    real_ids = store.filters.ids
    monkeypatch.setattr(
        store.filters, "ids", lambda where, among=None: reads.append(among is None) or real_ids(where, among)
    )
    where = KeyframeFilter.of(min_persons=4)
    got = ranking.nearest(store, query, 10, where)
    scores = np.array(vectors, np.float32) @ np.asarray(query, np.float32)
    best = sorted((i for i in range(1500) if crowded[i]), key=lambda i: -scores[i])[:10]
    assert [kid for kid, _ in got] == [ids_by_row[i] for i in best]
    assert reads == [False, False]  # two rounds of candidates, never every passing id
    store.close()
