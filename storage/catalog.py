"""Reading what is indexed: keyframes as hits need them, shots, videos, the stored vectors."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import features
from .database import Database
from .errors import UnknownVideoError
from .features.base import Shape
from .schema import Embedding, Keyframe, ModelVector, Shot, Video
from .sqlutil import id_array, ids_param, unpack_vectors
from .types import (
    PRIMARY_MODEL,
    BoardFrame,
    BoardShot,
    ImportedVideo,
    KeyframeImage,
    KeyframeRow,
    LostThumbnails,
    MissingVectors,
    Plan,
    Storyboard,
    VideoRow,
    VideoState,
)


def vector_rows(model: str):
    """(position, keyframe id, vector) columns of a model's vectors and the condition that picks
    its rows. [clip]'s are `Embedding` rows, in keyframe id order; another model's are
    `ModelVector` rows, in the order they were written (`seq`)."""
    if model == PRIMARY_MODEL:
        return Embedding.keyframe_id, Embedding.keyframe_id, Embedding.vector, True
    return ModelVector.seq, ModelVector.keyframe_id, ModelVector.vector, ModelVector.model == model


class Catalog:
    def __init__(self, db: Database):
        self.db = db

    # -- keyframes --------------------------------------------------------------------------------

    def keyframes(self, keyframe_ids: Sequence[int]) -> dict[int, KeyframeRow]:
        """Keyframes by id, joined with their videos and shots, with every feature's hit fields
        (None where a feature did not run), in one statement; unknown ids are absent."""
        ids = list(dict.fromkeys(int(i) for i in keyframe_ids))
        if not ids:
            return {}
        columns = {name: f.hit_columns(Keyframe) for name, f in features.FEATURES.items()}
        stmt = (
            select(
                Keyframe.id,
                Keyframe.frame_idx,
                Keyframe.timestamp,
                Keyframe.shot,
                Keyframe.thumbnail,
                Video.id,
                Video.stem,
                Video.media_path,
                Video.fps,
                Video.duration,
                Video.media_info,
                Shot.start,
                Shot.end,
                *(c for cs in columns.values() for c in cs),
            )
            .join(Video, Keyframe.video_id == Video.id)
            .outerjoin(Shot, (Shot.video_id == Keyframe.video_id) & (Shot.shot == Keyframe.shot))
            .where(Keyframe.id.in_(ids_param(ids)))
        )
        with self.db.session() as s:
            rows = s.execute(stmt).all()
        out = {}
        for row in rows:
            kid, frame_idx, t, shot, thumbnail, vid, stem, media_path, fps, duration, info, shot_start, shot_end = row[
                :13
            ]
            fields, at = {}, 13
            for name, cs in columns.items():
                fields.update(features.FEATURES[name].hit_values(row[at : at + len(cs)]))
                at += len(cs)
            out[kid] = KeyframeRow(
                keyframe_id=kid,
                video_db_id=vid,
                video_id=stem,
                video_path=media_path,
                frame_idx=frame_idx,
                timestamp=t,
                shot=shot if shot_start is not None else None,
                shot_start=shot_start,
                shot_end=shot_end,
                thumbnail=self.db.thumb_root / thumbnail,
                fps=fps,
                duration=duration,
                media_info=json.loads(info) if info else None,
                fields=fields,
            )
        return out

    def video_of(self, keyframe_ids: Sequence[int]) -> dict[int, int]:
        """Each of these keyframes' video (db id): a light read for grouping hits by video."""
        with self.db.session() as s:
            return dict(
                s.execute(select(Keyframe.id, Keyframe.video_id).where(Keyframe.id.in_(ids_param(keyframe_ids)))).all()
            )

    def keyframes_between(self, video_db_id: int, start: float, end: float) -> list[KeyframeRow]:
        """The keyframes of one video with start <= timestamp <= end, in time order."""
        with self.db.session() as s:
            ids = s.scalars(
                select(Keyframe.id).where(
                    Keyframe.video_id == video_db_id, Keyframe.timestamp >= start, Keyframe.timestamp <= end
                )
            ).all()
        return sorted(self.keyframes(ids).values(), key=lambda r: r.timestamp)

    def keyframes_in_windows(self, windows: Sequence[tuple[int, float, float]]) -> np.ndarray:
        """Ids of keyframes in any (video db id, from, to] time window, sorted: one statement
        however many windows (they go in as one JSON parameter)."""
        if not windows:
            return np.zeros(0, np.int64)
        spans = func.json_each(json.dumps([[v, a, b] for v, a, b in windows])).table_valued("value").alias("w")
        video, start, end = (func.json_extract(spans.c.value, f"$[{i}]") for i in range(3))
        stmt = (
            select(Keyframe.id)
            .join(spans, (Keyframe.video_id == video) & (Keyframe.timestamp > start) & (Keyframe.timestamp <= end))
            .distinct()
        )
        with self.db.session() as s:
            return np.sort(id_array(s, stmt))

    def stored_vectors(
        self, keyframe_ids: Sequence[int] | np.ndarray, model: str = PRIMARY_MODEL
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of a model's vectors of those keyframes that have one, in id order, from
        SQLite (the source of truth, not the index's copy); no rows: an empty (0, 0) array."""
        _, kid, vector, where = vector_rows(model)
        with self.db.session() as s:
            rows = s.execute(select(kid, vector).where(where, kid.in_(ids_param(keyframe_ids))).order_by(kid)).all()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return unpack_vectors(rows)

    def vectors_after(self, position: int, model: str = PRIMARY_MODEL, batch: int = 20_000):
        """(last position, ids, vectors) of a model's vectors written after `position` (see
        `vector_rows`), in that order, `batch` at a time."""
        at, kid, vector, where = vector_rows(model)
        while True:
            with self.db.session() as s:
                rows = s.execute(select(kid, vector, at).where(where, at > position).order_by(at).limit(batch)).all()
            if not rows:
                return
            ids, vectors = unpack_vectors(rows)
            position = int(rows[-1][2])
            yield position, ids, vectors
            if len(rows) < batch:  # that was the last
                return

    def vector_count(self, model: str = PRIMARY_MODEL) -> int:
        """How many of a model's vectors SQLite holds (a scan of its rows)."""
        _, kid, _, where = vector_rows(model)
        with self.db.session() as s:
            return s.scalar(select(func.count(kid)).where(where))

    def missing_vectors(self, model: str) -> list[MissingVectors]:
        """The indexed videos with keyframes that lack another model's vector, and those keyframes
        (id, frame index, thumbnail, source image), in keyframe id order."""
        have = select(ModelVector.keyframe_id).where(ModelVector.model == model)
        stmt = (
            select(
                Video.id,
                Video.path,
                Video.origin,
                Video.size,
                Video.mtime_ns,
                Keyframe.id,
                Keyframe.frame_idx,
                Keyframe.thumbnail,
                Keyframe.source_image,
            )
            .join(Video, Keyframe.video_id == Video.id)
            .where(Video.status == "indexed", Keyframe.id.not_in(have))
            .order_by(Keyframe.id)
        )
        videos: dict[int, MissingVectors] = {}
        with self.db.session() as s:
            for vid, path, origin, size, mtime_ns, kid, frame_idx, thumbnail, image in s.execute(stmt):
                video = videos.setdefault(vid, MissingVectors(vid, path, origin, size, mtime_ns, []))
                video.keyframes.append((kid, frame_idx, str(self.db.thumb_root / thumbnail), image))
        return list(videos.values())

    def keyframe_count(self) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(Keyframe))

    # -- videos -----------------------------------------------------------------------------------

    def video_state(self, path: str) -> VideoState | None:
        with self.db.session() as s:
            v = s.execute(
                select(Video.id, Video.status, Video.size, Video.mtime_ns, Video.plan).where(Video.path == path)
            ).first()
        return VideoState(v.id, v.status, v.size, v.mtime_ns, Plan.from_json(v.plan)) if v else None

    def storyboards(self, video_stem: str) -> list[Storyboard]:
        """The storyboards of the indexed videos with this id (file stem), by path: usually one,
        more when files in several folders share a name, none for an unknown id."""
        with self.db.session() as s:
            videos = s.execute(
                select(Video.id).where(Video.stem == video_stem, Video.status == "indexed").order_by(Video.path)
            ).scalars()
            return [self._storyboard(s, vid) for vid in videos.all()]

    def storyboard(self, video_db_id: int) -> Storyboard | None:
        """The storyboard of the indexed video with this row id; None when there is none."""
        with self.db.session() as s:
            return self._storyboard(s, video_db_id)

    def _storyboard(self, s: Session, video_db_id: int) -> Storyboard | None:
        video = s.get(Video, video_db_id)
        if video is None or video.status != "indexed":
            return None
        members: dict[int | None, list[BoardFrame]] = {}
        for kid, frame_idx, t, shot, thumbnail in s.execute(
            select(Keyframe.id, Keyframe.frame_idx, Keyframe.timestamp, Keyframe.shot, Keyframe.thumbnail)
            .where(Keyframe.video_id == video_db_id)
            .order_by(Keyframe.timestamp, Keyframe.id)
        ):
            members.setdefault(shot, []).append(BoardFrame(kid, frame_idx, t, self.db.thumb_root / thumbnail))
        shots = [
            BoardShot(r.shot, r.start, r.end, members.pop(r.shot, []))
            for r in s.scalars(select(Shot).where(Shot.video_id == video_db_id).order_by(Shot.shot))
        ]
        # Keyframes no stored shot holds (an imported video's): one group, after the shots.
        rest = sorted((k for group in members.values() for k in group), key=lambda k: (k.timestamp, k.keyframe_id))
        if rest:
            shots.append(BoardShot(None, None, None, rest))
        return Storyboard(video.id, video.stem, video.path, video.duration, shots)

    def videos(self, video_ids: Sequence[str] = ()) -> list[VideoRow]:
        """The videos with these ids (none given: every one), by path, in one statement."""
        counted = (select(Keyframe.video_id, func.count().label("n")).group_by(Keyframe.video_id)).subquery()
        query = (
            select(Video, func.coalesce(counted.c.n, 0))
            .outerjoin(counted, counted.c.video_id == Video.id)
            .order_by(Video.path)
        )
        if video_ids:
            query = query.where(Video.stem.in_(list(video_ids)))
        with self.db.session() as s:
            return [
                VideoRow(
                    v.stem,
                    v.path,
                    v.status,
                    v.error,
                    v.origin,
                    v.decoder,
                    v.duration,
                    v.fps,
                    v.frame_count,
                    v.width,
                    v.height,
                    n,
                    Plan.from_json(v.plan).analyzers if v.plan else {},
                    v.indexed_at,
                )
                for v, n in s.execute(query)
            ]

    def video_ids(self) -> list[str]:
        """Ids (file stems) of the indexed videos, sorted."""
        with self.db.session() as s:
            return sorted(set(s.scalars(select(Video.stem).where(Video.status == "indexed")).all()))

    def analyzed_by(self, analyzer: str) -> int:
        """How many indexed videos the analyzer of this name ran on (their plans name it)."""
        with self.db.session() as s:
            return (
                s.scalar(
                    select(func.count())
                    .select_from(Video)
                    .where(
                        Video.status == "indexed", func.json_extract(Video.plan, f"$.analyzers.{analyzer}").is_not(None)
                    )
                )
                or 0
            )

    def video_errors(self) -> list[tuple[str, str, str]]:
        """(path, status, error) of the videos that failed ("failed") or were indexed in part
        ("indexed", the error says how far)."""
        with self.db.session() as s:
            return [
                tuple(r)
                for r in s.execute(
                    select(Video.path, Video.status, Video.error).where(Video.error.is_not(None)).order_by(Video.path)
                )
            ]

    def counts(self) -> tuple[int, int]:
        """(indexed videos, keyframes), in one statement."""
        with self.db.session() as s:
            videos = select(func.count()).select_from(Video).where(Video.status == "indexed").scalar_subquery()
            return tuple(s.execute(select(videos, select(func.count()).select_from(Keyframe).scalar_subquery())).one())

    def imported_videos(self, video_ids: Sequence[str] = (), decoded: bool = False) -> list[ImportedVideo]:
        """The imported videos (all, or those with these ids), each with its keyframes' source
        images in time order; with `decoded`, the decoded videos too, each keyframe's image its
        thumbnail (`ImportedVideo.thumbnails`). UnknownVideoError for an id that is none of these."""
        with self.db.session() as s:
            stmt = (
                select(Video.id, Video.stem, Video.plan, Video.media_path, Video.origin)
                .where(Video.status == "indexed")
                .order_by(Video.stem, Video.id)
            )
            if not decoded:
                stmt = stmt.where(Video.origin != "decoded")
            if video_ids:
                stmt = stmt.where(Video.stem.in_(video_ids))
            videos = s.execute(stmt).all()
            images: dict[int, list[KeyframeImage]] = {}
            for vid, kid, path, thumbnail in s.execute(
                select(Keyframe.video_id, Keyframe.id, Keyframe.source_image, Keyframe.thumbnail)
                .where(Keyframe.video_id.in_(ids_param([v.id for v in videos])))
                .order_by(Keyframe.timestamp, Keyframe.id)
            ):
                images.setdefault(vid, []).append(KeyframeImage(kid, path or str(self.db.thumb_root / thumbnail)))
            unknown = sorted(set(video_ids) - {v.stem for v in videos})
            if unknown:
                elsewhere = set(s.scalars(select(Video.stem).where(Video.stem.in_(unknown))))
                what = (
                    (
                        "not indexed (it failed, or its run is unfinished)"
                        if decoded
                        else "a decoded video, not an imported one"
                    )
                    if unknown[0] in elsewhere
                    else "not in this index"
                )
                raise UnknownVideoError(f"video {unknown[0]!r} is {what}")
        return [
            ImportedVideo(
                v.id, v.stem, Plan.from_json(v.plan), images.get(v.id, []), v.media_path, v.origin == "decoded"
            )
            for v in videos
        ]

    def lost_thumbnails(self) -> list[LostThumbnails]:
        """The indexed videos whose thumbnail folder is gone."""
        with self.db.session() as s:
            videos = s.execute(
                select(Video.id, Video.path, Video.origin, Video.size, Video.mtime_ns, Video.thumb_dir)
                .where(Video.status == "indexed")
                .order_by(Video.id)
            ).all()
            lost = [v for v in videos if v.thumb_dir and not (self.db.thumb_root / v.thumb_dir).is_dir()]
            frames: dict[int, list[tuple[int, str | None]]] = {}
            for vid, frame_idx, image in s.execute(
                select(Keyframe.video_id, Keyframe.frame_idx, Keyframe.source_image)
                .where(Keyframe.video_id.in_(ids_param([v.id for v in lost])))
                .order_by(Keyframe.frame_idx)
            ):
                frames.setdefault(vid, []).append((frame_idx, image))
        return [LostThumbnails(v.id, v.path, v.origin, v.size, v.mtime_ns, frames.get(v.id, [])) for v in lost]

    def shapes(self, keyframe_id: int) -> dict[str, list[Shape]]:
        """What each feature found where in one keyframe (for drawing on it), by feature name."""
        with self.db.session() as s:
            return {name: f.shapes(s, keyframe_id) for name, f in features.FEATURES.items()}
