"""What the edges show besides hits, read from the index: how much is indexed and whether a run
is under way, the videos and their shots, a hit's neighbours, what features found where, the
index's health; and the team's marks on hits, which the edges also write. The CLI and the app
read it here (`SearchEngine.archive`) and never reach into the store themselves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from evr.storage import KeyframeRow, Mark, ModelInfo, ShotRow, Store, Storyboard, VideoRow
from evr.storage.features import FEATURES

from .errors import QueryError
from .hits import Hit
from .query import Query, check_keyframe_id, no_keyframe


@dataclass(frozen=True)
class Overview:
    videos: int
    keyframes: int
    model: ModelInfo | None
    writer_active: bool  # an `evr index` run holds the data folder now
    run: dict | None = None  # how far that run is: {"command", "total", "done", "started"}; None: no run under way


class Archive:
    def __init__(self, store: Store):
        self.store = store

    def overview(self) -> Overview:
        """How much is indexed, with which model, and whether a run is under way."""
        videos, keyframes = self.store.catalog.counts()
        active = self.store.writer_active()
        return Overview(videos, keyframes, self.store.facts.model(), active, self.store.facts.run() if active else None)

    def video_ids(self) -> list[str]:
        return self.store.catalog.video_ids()

    def unanalyzed(self, q: Query) -> list[str]:
        """The features the query filters or searches by that no video of the index was analyzed
        for (an analyzer that was off or could not load when they were indexed): why such a
        query finds nothing, which "no results" alone would not say."""
        asked = {f.name for f in FEATURES.values() if any(q.filters.get(p.name) is not None for p in f.params)}
        return [name for name in sorted(asked) if not self.store.catalog.analyzed_by(name)]

    def version(self) -> str | None:
        """The index's commit counter as now: it moves with every commit (a live `evr index`),
        so results kept under it are the ones a new search would give."""
        return self.store.facts.current().get("generation")

    def hits(self, keyframe_ids: list[int]) -> list[Hit]:
        """These keyframes as hits, in this order (a DRES answer, a summary); QueryError for an
        id the index does not hold."""
        for keyframe_id in keyframe_ids:
            check_keyframe_id(keyframe_id)
        rows = self.store.catalog.keyframes(keyframe_ids)
        missing = [k for k in keyframe_ids if k not in rows]
        if missing:
            raise no_keyframe(missing[0])
        return [Hit.from_row(0, rows[k], 0.0, "clip") for k in keyframe_ids]

    def at(self, video_id: str, seconds: float) -> Hit:
        """The moment `seconds` into the indexed video with this id as a hit: the row of the
        keyframe nearest it within its shot (its shot's bounds, its thumbnail), at that time;
        QueryError for an unknown video or a time outside it."""
        board = self.storyboard(video_id)
        if not math.isfinite(seconds) or seconds < 0 or (board.duration is not None and seconds > board.duration):
            length = f" (it is {board.duration:.1f} s long)" if board.duration is not None else ""
            raise QueryError(f"{seconds} s is not a time within video {video_id}{length}")
        shot = next((s for s in board.shots if s.start is not None and s.start <= seconds < s.end), None)
        frames = [k for s in ([shot] if shot is not None and shot.keyframes else board.shots) for k in s.keyframes]
        nearest = min(frames, key=lambda k: abs(k.timestamp - seconds))
        return replace(self.hits([nearest.keyframe_id])[0], timestamp=seconds)

    def mark(self, keyframe_ids: Sequence[int], kind: str, who: str, verdict: str | None = None) -> None:
        """Mark these keyframes for the whole team (storage/marks.py: "submitted" with DRES's
        verdict, "not_it", "not_it_undone"); DataDirError where the index cannot be written."""
        self.store.marks.add(keyframe_ids, kind, who, verdict)

    def marks_since(self, seq: int) -> list[Mark]:
        """The team's marks after the one numbered `seq` (0: all), oldest first."""
        return self.store.marks.since(seq)

    def neighbours(self, hit: Hit, seconds: float) -> list[KeyframeRow]:
        """The keyframes of the hit's video within `seconds` of it, in time order."""
        return self.store.catalog.keyframes_between(hit.video_db_id, hit.timestamp - seconds, hit.timestamp + seconds)

    def shots(self, video_id: str) -> list[ShotRow]:
        """The shots of the indexed video with this id, each with its keyframes' ids (its
        storyboard's, without the keyframes no stored shot holds); QueryError as `storyboard`."""
        return [
            ShotRow(s.shot, s.start, s.end, [k.keyframe_id for k in s.keyframes])
            for s in self.storyboard(video_id).shots
            if s.shot is not None
        ]

    def storyboard(self, video_id: str) -> Storyboard:
        """Every keyframe of the indexed video with this id, grouped by shot (`evr storyboard`);
        QueryError for an unknown id or one several indexed files share."""
        boards = self.store.catalog.storyboards(video_id)
        if not boards:
            raise no_video([video_id])
        if len(boards) > 1:
            raise QueryError(
                f"{len(boards)} indexed files share the id {video_id!r}: "
                f"{', '.join(b.path for b in boards)}; rename them to tell them apart"
            )
        return boards[0]

    def storyboard_of(self, video_db_id: int) -> Storyboard | None:
        """The storyboard of the video a hit names by its row (`Hit.video_db_id`: the app's)."""
        return self.store.catalog.storyboard(video_db_id)

    def videos(self, video_ids: Sequence[str] = ()) -> list[VideoRow]:
        """The index's videos with these ids, every one when none is given; QueryError for an
        id the index does not hold."""
        rows = self.store.catalog.videos(video_ids)
        unknown = sorted(set(video_ids) - {r.video_id for r in rows})
        if unknown:
            raise no_video(unknown)
        return rows

    def shapes(self, keyframe_id: int) -> dict:
        """What each feature found where in a keyframe (the app draws them)."""
        return self.store.catalog.shapes(keyframe_id)

    def stats(self) -> dict:
        return self.store.health.stats()

    def video_errors(self) -> list[tuple[str, str, str]]:
        return self.store.catalog.video_errors()


def no_video(video_ids: Sequence[str]) -> QueryError:
    """The one wording of "the index holds no video with this id"."""
    return QueryError(
        f"no video with id {', '.join(map(repr, video_ids))} in the index (ids are file names without their extension)"
    )
