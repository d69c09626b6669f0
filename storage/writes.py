"""The writer's commits: a video's keyframes, vectors, shots, thumbnails and every feature's
results, whole or not at all; analyses added to kept keyframes; failures, prunes, thumbnails
made again.

A video's rows go in with one statement per table (executemany), so a video of 200 keyframes is
about 15 statements, not one per row. Thumbnails are written to a new folder before the commit
and the superseded folder is deleted after it: a kill in between leaves a folder no committed
video names, which the writer's repair deletes (health.py).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Text, delete, func, insert, select, update

from . import features
from .database import Database
from .errors import StoreError
from .meta import models_json, parse_models
from .schema import Embedding, Keyframe, Meta, ModelVector, Shot, Video
from .sqlutil import count_commit, ids_param, vector_blob
from .types import NewKeyframe, NewShot, Plan, VideoInfo, VideoMedia


class Writes:
    """`after_commit()` runs after every commit that changed keyframes (the vector mirror
    catches up); `fields_changed(ids)` after analyses changed the filter fields of keyframes."""

    def __init__(self, db: Database, after_commit: Callable[[], None], fields_changed: Callable[[np.ndarray], None]):
        self.db = db
        self.after_commit = after_commit
        self.fields_changed = fields_changed

    def start_video(self, path: str, size: int, mtime_ns: int) -> int:
        """Mark a file as being indexed (a crash or a failing disk leaves it so, and the next
        run indexes it) and return its video id."""
        with self.db.transaction() as s:
            v = s.scalars(select(Video).where(Video.path == path)).first()
            if v is None:
                v = Video(path=path, stem=Path(path).stem, size=size, mtime_ns=mtime_ns, status="indexing")
                s.add(v)
                s.flush()
            else:
                v.size, v.mtime_ns, v.status, v.error = size, mtime_ns, "indexing", None
            return v.id

    def save_video(
        self,
        video_id: int,
        info: VideoInfo,
        keyframes: Sequence[NewKeyframe],
        plan: Plan | None = None,
        shots: Sequence[NewShot] = (),
        partial: str | None = None,
        media: VideoMedia | None = None,
        video_analyses: dict[str, Any] | None = None,
    ) -> int:
        """Replace a video's shots, keyframes, vectors, feature results and thumbnails in one
        commit; returns how many keyframes. `plan`: how they were made (None: unknown, so the next
        run makes them again); `NewKeyframe.shot` numbers a shot of `shots`;
        `partial` says why only part of the file was indexed (kept as the video's error);
        `media` describes an imported video (None: the decoded file itself is the media);
        `video_analyses` holds the per-video features' results by name. A failing disk raises
        DataDirError and leaves the video as it was (nothing written)."""
        video_analyses = video_analyses or {}
        _check_features({name for kf in keyframes for name in kf.analyses} | set(video_analyses))
        run_dir = self.db.thumb_root / f"v{video_id}-{time.time_ns():x}"
        needed = sum(len(kf.jpeg) + 3 * kf.vector.nbytes for kf in keyframes)  # thumbnails, SQLite, vector index
        try:
            with self.db.writing(run_dir, needed):
                run_dir.mkdir(parents=True)
                for kf in keyframes:
                    (run_dir / f"{kf.frame_idx}.jpg").write_bytes(kf.jpeg)
            with self.db.transaction(needed) as s:
                old_dir = s.scalar(select(Video.thumb_dir).where(Video.id == video_id))
                s.execute(delete(Keyframe).where(Keyframe.video_id == video_id))  # their results cascade
                s.execute(delete(Shot).where(Shot.video_id == video_id))
                for feature in features.FEATURES.values():  # an earlier run's results go with its keyframes
                    if feature.per_video:
                        feature.clear(s, [video_id])
                if shots:
                    s.execute(
                        insert(Shot),
                        [
                            {
                                "video_id": video_id,
                                "shot": i,
                                "start_frame": sh.start_frame,
                                "start": sh.start,
                                "end": sh.end,
                            }
                            for i, sh in enumerate(shots)
                        ],
                    )
                ids = _insert_keyframes(s, video_id, run_dir.name, keyframes)
                for name, feature in features.FEATURES.items():
                    if feature.per_video:
                        if name in video_analyses:
                            feature.put(s, [(video_id, video_analyses[name])])
                    else:
                        feature.put(
                            s, [(kid, kf.analyses[name]) for kid, kf in zip(ids, keyframes) if name in kf.analyses]
                        )
                s.execute(
                    update(Video)
                    .where(Video.id == video_id)
                    .values(
                        status="indexed",
                        error=partial,
                        thumb_dir=run_dir.name,
                        plan=plan.to_json() if plan else None,
                        **_media_columns(media),
                        decoder=info.decoder,
                        duration=info.duration,
                        fps=info.fps,
                        frame_count=info.frame_count,
                        width=info.width,
                        height=info.height,
                        indexed_at=time.time(),
                    )
                )
                count_commit(s)
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        # Committed: now catch the vector index up and drop the superseded thumbnails.
        self.after_commit()
        if old_dir:
            shutil.rmtree(self.db.thumb_root / old_dir, ignore_errors=True)
        return len(keyframes)

    def save_analysis(
        self, video_id: int, plan: Plan, results: dict[str, dict[int, Any]], video_results: dict[str, Any] | None = None
    ) -> None:
        """Replace some features' results on a video's kept keyframes and record its plan, in
        one commit: `results` maps a per-keyframe feature's name to {keyframe id: its result},
        `video_results` a per-video feature's name to its result. Other results, keyframes and
        vectors stay."""
        video_results = video_results or {}
        _check_features(set(results) | set(video_results))
        with self.db.transaction() as s:
            if s.scalar(select(Video.id).where(Video.id == video_id)) is None:
                raise StoreError(f"video {video_id} is no longer in the index")
            for name, by_keyframe in results.items():
                features.FEATURES[name].clear(s, list(by_keyframe))
                features.FEATURES[name].put(s, list(by_keyframe.items()))
            for name, result in video_results.items():
                features.FEATURES[name].clear(s, [video_id])
                features.FEATURES[name].put(s, [(video_id, result)])
            s.execute(update(Video).where(Video.id == video_id).values(plan=plan.to_json()))
            changed = {kid for by_keyframe in results.values() for kid in by_keyframe}
            if any(features.FEATURES[name].fields for name in video_results):  # every keyframe's fields (meta)
                changed.update(s.scalars(select(Keyframe.id).where(Keyframe.video_id == video_id)))
        changed = np.array(sorted(changed), np.int64)
        if len(changed):
            self.fields_changed(changed)

    def save_model_vectors(self, vectors: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, int]:
        """Add other models' vectors of kept keyframes ({model name: (keyframe ids, vectors)}) in
        one commit; a keyframe deleted meanwhile, or one with that model's vector already, is
        passed over. Returns how many each model got."""
        added: dict[str, int] = {}
        with self.db.transaction(sum(3 * v.nbytes for _, v in vectors.values())) as s:
            for model, (ids, vecs) in vectors.items():
                live = set(s.scalars(select(Keyframe.id).where(Keyframe.id.in_(ids_param(ids)))))
                have = set(
                    s.scalars(
                        select(ModelVector.keyframe_id).where(
                            ModelVector.model == model, ModelVector.keyframe_id.in_(ids_param(ids))
                        )
                    )
                )
                rows = [
                    {"model": model, "keyframe_id": int(kid), "vector": vector_blob(v)}
                    for kid, v in zip(ids, vecs)
                    if kid in live and kid not in have
                ]
                if rows:
                    s.execute(insert(ModelVector), rows)
                added[model] = len(rows)
            if any(added.values()):
                count_commit(s)
        if any(added.values()):
            self.after_commit()
        return added

    def drop_model_vectors(self, model: str, facts: Sequence[str]) -> int:
        """Delete another model's vectors, its binding and these facts of its index, in one
        commit; returns how many vectors went."""
        with self.db.transaction() as s:
            removed = s.execute(delete(ModelVector).where(ModelVector.model == model)).rowcount
            others = parse_models(s.scalar(select(Meta.value).where(Meta.key == "models")), str(self.db.data_dir))
            others.pop(model, None)
            s.merge(Meta(key="models", value=models_json(others)))
            s.execute(delete(Meta).where(Meta.key.in_(list(facts))))
        return removed

    def fail_video(self, video_id: int, error: str) -> None:
        """Record a failure. Keyframes from an earlier good run of the file are dropped too:
        the file on disk no longer matches them."""
        self._delete_videos([video_id], keep_rows=True, error=error)

    def prune(self, existing: Iterable[str] | None = None) -> list[str]:
        """Remove videos whose files are gone (or, given `existing`, not among those paths)."""
        keep = set(existing) if existing is not None else None
        with self.db.session() as s:
            rows = s.execute(select(Video.id, Video.path)).all()
        gone = [(vid, p) for vid, p in rows if (p not in keep if keep is not None else not os.path.exists(p))]
        self._delete_videos([vid for vid, _ in gone])
        return [p for _, p in gone]

    def _delete_videos(self, video_ids: list[int], keep_rows: bool = False, error: str | None = None) -> None:
        if not video_ids:
            return
        with self.db.transaction() as s:
            dirs = s.scalars(select(Video.thumb_dir).where(Video.id.in_(video_ids))).all()
            s.execute(delete(Keyframe).where(Keyframe.video_id.in_(video_ids)))
            s.execute(delete(Shot).where(Shot.video_id.in_(video_ids)))
            for feature in features.FEATURES.values():
                if feature.per_video:
                    feature.clear(s, video_ids)
            if keep_rows:
                s.execute(
                    update(Video).where(Video.id.in_(video_ids)).values(status="failed", error=error, thumb_dir=None)
                )
            else:
                s.execute(delete(Video).where(Video.id.in_(video_ids)))
            count_commit(s)
        self.after_commit()
        for d in dirs:
            if d:
                shutil.rmtree(self.db.thumb_root / d, ignore_errors=True)

    def restore_thumbnails(self, video_id: int, jpegs: dict[int, bytes]) -> None:
        """Thumbnails made again for a video (by frame_idx) into a new folder, which the video
        and its keyframes then name, in one commit; a keyframe without one shows none."""
        run_dir = self.db.thumb_root / f"v{video_id}-{time.time_ns():x}"
        try:
            with self.db.writing(run_dir, sum(map(len, jpegs.values()))):
                run_dir.mkdir(parents=True)
                for frame_idx, jpeg in jpegs.items():
                    (run_dir / f"{frame_idx}.jpg").write_bytes(jpeg)
            with self.db.transaction() as s:
                s.execute(update(Video).where(Video.id == video_id).values(thumb_dir=run_dir.name))
                s.execute(
                    update(Keyframe)
                    .where(Keyframe.video_id == video_id)
                    .values(thumbnail=run_dir.name + "/" + func.cast(Keyframe.frame_idx, Text) + ".jpg")
                )
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise


def _insert_keyframes(s, video_id: int, run_dir: str, keyframes: Sequence[NewKeyframe]) -> list[int]:
    """The keyframe rows and their vectors, returning their new ids in order (three statements:
    RETURNING with its rows in order would be one INSERT per row). The video has no other
    keyframes now, and AUTOINCREMENT ids grow in insertion order."""
    if not keyframes:
        return []
    s.execute(
        insert(Keyframe),
        [
            {
                "video_id": video_id,
                "frame_idx": kf.frame_idx,
                "timestamp": kf.timestamp,
                "shot": kf.shot,
                "thumbnail": f"{run_dir}/{kf.frame_idx}.jpg",
                "source_image": kf.source_image,
            }
            for kf in keyframes
        ],
    )
    ids = s.scalars(select(Keyframe.id).where(Keyframe.video_id == video_id).order_by(Keyframe.id)).all()
    s.execute(
        insert(Embedding), [{"keyframe_id": kid, "vector": vector_blob(kf.vector)} for kid, kf in zip(ids, keyframes)]
    )
    others = [
        {"model": model, "keyframe_id": kid, "vector": vector_blob(vector)}
        for kid, kf in zip(ids, keyframes)
        for model, vector in kf.model_vectors.items()
    ]
    if others:
        s.execute(insert(ModelVector), others)
    return list(ids)


def _media_columns(media: VideoMedia | None) -> dict:
    if media is None:  # the decoded file itself is what a player opens
        return {"origin": "decoded", "media_path": Video.path, "media_info": None}
    return {
        "origin": media.origin,
        "media_path": media.path,
        "media_info": json.dumps(media.info, ensure_ascii=False) if media.info else None,
    }


def _check_features(names: set[str]) -> None:
    unknown = names - set(features.FEATURES)
    if unknown:
        raise ValueError(f"no storage for the results of analyzer(s) {', '.join(sorted(unknown))}")
