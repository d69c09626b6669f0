"""Temporal queries (`then`, `within`): chains of keyframes of one video, one per event in
order, each 0 < S' <= within seconds after the previous, ranked by the sum of their similarities.

Forward, each event's candidates are the keyframes in the windows after the previous event's
candidates, ranked by that event's text; backward, dynamic programming finds the best chain that
starts at each first-event keyframe; then a diverse pick leaves out chains that share a keyframe
with a better one. The engine (search/engine.py) supplies the rankings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from evr.storage import PRIMARY_MODEL
from evr.storage.catalog import Catalog

from .fusion import Fused
from .hits import Hit, model_ranks, read_by
from .query import Query

# A later event's ranking of the keyframes `among` by its text, and who read the text (and as
# what language), as the engine's text search gives them.
EventSearch = Callable[[str, np.ndarray], tuple[Fused, "tuple[str, str | None] | None"]]


def chain_hits(first: Fused, q: Query, catalog: Catalog, event: EventSearch) -> list[Hit]:
    """Chains of events, one keyframe per event, each at most q.within seconds after the
    previous one in the same video; ranked by their summed similarity. `first` is the first
    event's ranking; `event(text, among)` ranks the keyframes `among` by a later event's text.

    Forward, each event's candidates are the keyframes in the windows after the previous
    event's candidates (the first event's: its top max(200, 10k)), scored by that event's
    vector (several models: their fused score). Backward, each candidate learns the best chain
    that starts at it, so every first-event keyframe gives its best chain, exactly; chains that
    share a keyframe with a better chain are left out."""
    levels, found_by = [dict(first.ranked)], [first.found_by]
    rows = catalog.keyframes(list(levels[0]))
    read = []
    for text in q.then:
        previous = levels[-1]
        windows = [
            (rows[kid].video_db_id, rows[kid].timestamp, rows[kid].timestamp + q.within)
            for kid in previous
            if kid in rows
        ]
        later = catalog.keyframes_in_windows(windows)
        if len(later) == 0:
            return []
        ranked, who = event(text, later)
        read.append(who)
        levels.append(dict(ranked.ranked))
        found_by.append(ranked.found_by)
        rows.update(catalog.keyframes([kid for kid in levels[-1] if kid not in rows]))
    # best[i][kid]: the best summed similarity of a chain from event i at kid to the last
    # event, and the keyframe of event i + 1 it continues with.
    best: list[dict[int, tuple[float, int | None]]] = [{} for _ in levels]
    best[-1] = {kid: (score, None) for kid, score in levels[-1].items() if kid in rows}
    for i in range(len(levels) - 2, -1, -1):
        by_video: dict[int, list[tuple[float, int]]] = {}
        for kid in best[i + 1]:
            by_video.setdefault(rows[kid].video_db_id, []).append((rows[kid].timestamp, kid))
        for kid, score in levels[i].items():
            if kid not in rows:
                continue
            r = rows[kid]
            options = [
                (best[i + 1][b][0], -b) for t, b in by_video.get(r.video_db_id, []) if 0 < t - r.timestamp <= q.within
            ]
            if options:
                total, minus_b = max(options)  # ties: the earlier-indexed keyframe
                best[i][kid] = (score + total, -minus_b)
    # Diverse chains: one that shares a keyframe with a better one is left out, so the top
    # chains are not one moment reached from ten first events.
    used: set[int] = set()
    hits = []
    for start, (total, _) in sorted(best[0].items(), key=lambda item: (-item[1][0], item[0])):
        if len(hits) == q.k:
            break
        path = [start]
        for i in range(len(levels) - 1):
            path.append(best[i][path[-1]][1])
        if used.intersection(path):
            continue
        used.update(path)
        then = None
        for i in range(len(path) - 1, 0, -1):  # build the chain from its last event back
            then = read_by([model_hit(0, rows[path[i]], levels[i][path[i]], found_by[i], then)], read[i - 1])[0]
        hits.append(model_hit(len(hits) + 1, rows[start], total, found_by[0], then))
    return hits


def model_hit(rank: int, row, score: float, found_by: dict[int, dict], then: Hit | None) -> Hit:
    """An event of a chain as a hit: found by the models that ranked its keyframe."""
    models = found_by.get(row.keyframe_id, {})
    return replace(
        Hit.from_row(rank, row, score, "+".join(models) or PRIMARY_MODEL, then=then), models=model_ranks(models)
    )
