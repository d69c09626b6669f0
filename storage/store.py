"""The data directory: SQLite database, FAISS index and thumbnails, kept consistent.

Layout of `data_dir`:
    evr.sqlite      videos, keyframes, their vectors (source of truth)
    vectors.faiss   search index over those vectors, keyed by keyframe id
    thumbs/         one folder per indexed video run: thumbs/v<video id>-<run>/<frame_idx>.jpg
    evr.lock        held by the one process that writes

A video's keyframes and vectors are committed in one SQLite transaction. The FAISS file is saved
after commits (at most every `checkpoint_s` seconds and at close), so it may lag SQLite by a
few videos: that is normal, not damage. Every process brings its in-memory copy up to what is
committed (`sync_vectors`, from the vectors stored in SQLite) before it searches; a commit
counter in the meta table tells it when that is needed. After a crash, the writer's `repair()`
saves the caught-up file and deletes thumbnail folders that no committed video refers to.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, delete, event, func, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from .schema import OCR_FTS_DDL, SCHEMA_VERSION, Base, Embedding, Keyframe, Meta, OcrBox, Person, Shot, Video
from .textfold import fold, fts_query
from .vectors import VectorIndex

log = logging.getLogger(__name__)


class StoreError(Exception):
    """A problem with the data directory that the user must act on."""


class ModelMismatchError(StoreError):
    pass


class DataDirError(StoreError):
    """The data directory cannot be written: disk full, read-only or failing. The machine's
    fault, not the video's; what was being written is not committed."""


# OS errors that say the disk, not the data, is at fault.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM}
# SQLite's primary result codes for the same (https://sqlite.org/rescode.html).
_SQLITE_DISK_ERRORS = {13: "the database or disk is full", 8: "the database is read-only",
                       10: "disk I/O error", 14: "the database file cannot be opened"}


@dataclass(frozen=True)
class ModelInfo:
    name: str
    pretrained: str
    dim: int

    @property
    def label(self) -> str:
        return f"{self.name} ({self.pretrained})"


@dataclass(frozen=True)
class VideoState:
    id: int
    status: str
    size: int
    mtime_ns: int
    analyzers: str | None


@dataclass(frozen=True)
class VideoInfo:
    """What the decoder learned about a file, stored on its row."""

    decoder: str
    duration: float
    fps: float
    frame_count: int
    width: int
    height: int


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the frame's size


@dataclass(frozen=True)
class TextBox:
    text: str
    box: Box
    confidence: float


@dataclass(frozen=True)
class PersonPose:
    box: Box
    score: float
    keypoints: list[tuple[float, float, float]]  # 17 COCO keypoints: x, y (fractions), visibility 0-1
    labels: list[str]  # from indexer/analyzers/persons/pose_labels.py


@dataclass(frozen=True)
class PersonsInFrame:
    persons: list[PersonPose]
    mask_area: float  # fraction of the frame covered by people
    mask_png: bytes | None  # the mask as a small 1-bit PNG


@dataclass(frozen=True)
class NewKeyframe:
    frame_idx: int
    timestamp: float
    shot: int
    jpeg: bytes  # thumbnail, already encoded
    vector: np.ndarray  # float32, L2-normalised
    text_boxes: list[TextBox] | None = None  # None: OCR did not run
    persons: PersonsInFrame | None = None  # None: the person analyzer did not run


@dataclass(frozen=True)
class NewShot:
    start_frame: int
    start: float  # seconds
    end: float


@dataclass(frozen=True)
class ShotRow:
    """A stored shot with the ids of its keyframes (time order)."""

    shot: int
    start: float
    end: float
    keyframes: list[int]

    def to_json(self) -> dict:
        return {"shot": self.shot, "start": round(self.start, 3), "end": round(self.end, 3),
                "keyframes": self.keyframes}


@dataclass(frozen=True)
class KeyframeRow:
    """A stored keyframe joined with its video, as search results need it."""

    keyframe_id: int
    video_db_id: int
    video_id: str  # file stem: the id contests submit
    video_path: str
    frame_idx: int
    timestamp: float
    shot: int
    shot_start: float | None  # seconds; None for a video indexed before shots were stored
    shot_end: float | None
    thumbnail: Path  # absolute
    fps: float | None
    duration: float | None
    ocr_text: str | None
    person_count: int | None
    poses: list[list[str]]  # pose labels of each person


@dataclass(frozen=True)
class KeyframeFilter:
    """Conditions a keyframe must meet; None / empty means no condition."""

    min_persons: int | None = None
    max_persons: int | None = None
    poses: tuple[str, ...] = ()  # every label must be on some person in the frame
    ocr: str | None = None  # every word must be in the frame's on-screen text
    videos: tuple[str, ...] = ()  # video ids (file stems)
    time_from: float | None = None  # seconds
    time_to: float | None = None

    @property
    def active(self) -> bool:
        return any(v not in (None, ()) for v in vars(self).values())


@dataclass(frozen=True)
class RepairReport:
    vectors_added: int
    vectors_removed: int
    thumb_dirs_removed: int

    @property
    def changed(self) -> bool:
        return bool(self.vectors_added or self.vectors_removed or self.thumb_dirs_removed)


class Store:
    """Open a data directory. `writer=True` takes the directory's lock (one writer at a time)."""

    def __init__(self, data_dir: Path, *, writer: bool = False, checkpoint_s: float = 10.0):
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.thumb_root = self.data_dir / "thumbs"
        self.writer = writer
        self.checkpoint_s = checkpoint_s
        self._lock_file = None
        if writer:
            with self._writing(self.data_dir):
                self.data_dir.mkdir(parents=True, exist_ok=True)
                self.thumb_root.mkdir(exist_ok=True)
                self._take_lock()
        elif not (self.data_dir / "evr.sqlite").exists():
            raise StoreError(
                f"no index in {self.data_dir}: run `evr index <folder>` first "
                "(or point --data-dir at an existing index)"
            )
        self.db_path = self.data_dir / "evr.sqlite"
        self.engine = create_engine(f"sqlite:///{self.db_path}")
        event.listen(self.engine, "connect", _sqlite_pragmas)
        if writer:
            with self._writing(self.db_path):
                Base.metadata.create_all(self.engine)
                with self.engine.begin() as conn:
                    conn.execute(text(OCR_FTS_DDL))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._check_schema()
        self._vectors: VectorIndex | None = None
        self._unsaved = 0  # vector changes held in memory that the FAISS file lacks
        self.problems: list[str] = []  # damage found and mended in memory (stats reports it)
        self._synced: str | None = None  # the commit counter the in-memory vectors match
        self._last_save = time.monotonic()

    # -- lifecycle -------------------------------------------------------------------------

    def _take_lock(self) -> None:
        self._lock_file = open(self.data_dir / "evr.lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StoreError(f"another `evr index` is writing to {self.data_dir}; wait for it to finish")

    def writer_active(self) -> bool:
        """Whether an `evr index` run holds this directory's lock right now."""
        if self._lock_file is not None:
            return True
        try:
            with open(self.data_dir / "evr.lock") as f:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released when f closes
        except BlockingIOError:
            return True
        except OSError:  # no lock file: no writer ever ran here
            pass
        return False

    def _check_schema(self) -> None:
        try:
            version = self._meta("schema_version")
        except OperationalError:  # a reader in the instant between the file's creation and its tables'
            version = None
        if version is None and not self.writer:
            raise StoreError(f"the index in {self.data_dir} is being created by `evr index`: try again in a moment")
        if version is None:
            self._set_meta({"schema_version": str(SCHEMA_VERSION)})
        elif int(version) != SCHEMA_VERSION:
            raise StoreError(
                f"{self.data_dir} was written by schema version {version}, this evr uses "
                f"{SCHEMA_VERSION}; index into a new --data-dir"
            )

    def close(self) -> None:
        if self.writer:
            try:
                self.flush()
            except DataDirError as exc:  # SQLite holds every vector: the next run rebuilds the file
                log.warning("the vector index file was not saved (%s); the next `evr index` rebuilds it", exc)
        self.engine.dispose()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- model binding ---------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        with self._sessions() as s:
            row = s.get(Meta, key)
            return row.value if row else None

    def _set_meta(self, values: dict[str, str]) -> None:
        with self._writing(self.db_path), self._sessions.begin() as s:
            for key, value in values.items():
                s.merge(Meta(key=key, value=value))

    def model(self) -> ModelInfo | None:
        name = self._meta("clip_model")
        if name is None:
            return None
        return ModelInfo(name, self._meta("clip_pretrained") or "", int(self._meta("clip_dim") or 0))

    def bind_model(self, model: ModelInfo) -> None:
        """Record the embedding model of a new (or still empty) index, or refuse a different one."""
        stored = self.model()
        if stored is None or (stored != model and self.counts()[1] == 0):
            self._set_meta(
                {"clip_model": model.name, "clip_pretrained": model.pretrained, "clip_dim": str(model.dim)}
            )
            # An empty index of the old model may have left a FAISS file of the old dimension.
            self._vectors = None
            (self.data_dir / "vectors.faiss").unlink(missing_ok=True)
        elif stored != model:
            raise ModelMismatchError(
                f"this index ({self.data_dir}) was built with CLIP {stored.label}, not "
                f"{model.label}: vectors of different models cannot be compared. Set "
                f"clip.model/clip.pretrained back to {stored.name}/{stored.pretrained}, "
                f"or use another --data-dir for the new model."
            )

    def check_model(self, model: ModelInfo) -> None:
        """Refuse to search with a query encoder other than the one the index was built with."""
        stored = self.model()
        if stored is not None and stored != model:
            raise ModelMismatchError(
                f"this index was built with CLIP {stored.label}, but the query model is "
                f"{model.label}: set clip.model/clip.pretrained to {stored.name}/{stored.pretrained}."
            )

    # -- vectors ---------------------------------------------------------------------------

    @property
    def vectors(self) -> VectorIndex:
        """The vector index as loaded (see `sync_vectors` for bringing it up to date)."""
        if self._vectors is None:
            model = self.model()
            if model is None:
                raise StoreError("the index holds no vectors yet: run `evr index <folder>`")
            path = self.data_dir / "vectors.faiss"
            try:
                self._vectors = VectorIndex(path, model.dim)
            except (RuntimeError, ValueError) as exc:  # unreadable: SQLite holds every vector
                self.problems.append(f"{path.name} could not be read ({exc}); rebuilt from SQLite")
                log.warning("%s", self.problems[-1])
                self._vectors = VectorIndex(path, model.dim, empty=True)
        return self._vectors

    def sync_vectors(self) -> tuple[int, int]:
        """Bring the in-memory vector index up to what SQLite has committed, from the stored
        vectors: (added, removed). Cheap when nothing was committed since the last call."""
        if self.model() is None:
            return 0, 0
        generation = self._meta("generation")  # read first: a later commit triggers the next sync
        if self._vectors is not None and generation == self._synced:
            return 0, 0
        with self._sessions() as s:
            sql_ids = np.array(s.scalars(select(Keyframe.id)).all(), dtype=np.int64)
        faiss_ids = self.vectors.ids()
        extra = np.setdiff1d(faiss_ids, sql_ids)
        missing = np.setdiff1d(sql_ids, faiss_ids)
        removed = 0
        if len(faiss_ids) != len(np.unique(faiss_ids)):
            # Duplicated ids cannot come from this code; rebuild rather than guess.
            self.problems.append("the vector index held duplicate ids; rebuilt from SQLite")
            self.vectors.reset()
            extra, missing, removed = np.array([], np.int64), sql_ids, len(faiss_ids)
        self.vectors.remove(extra)
        removed += len(extra)
        added = 0
        for start in range(0, len(missing), 50_000):
            ids, vecs = self.stored_vectors(missing[start : start + 50_000].tolist())
            self.vectors.add(ids, vecs)
            added += len(ids)
        self._unsaved += added + removed
        self._synced = generation
        return added, removed

    def flush(self) -> None:
        """Save the FAISS index if it changed since the last save."""
        if self._unsaved and self._vectors is not None:
            with self._writing(self._vectors.path, self._vectors.nbytes):
                self._vectors.save()
            self._unsaved = 0
            self._last_save = time.monotonic()

    def checkpoint(self) -> None:
        """Save the FAISS index if the last save is `checkpoint_s` old (the writer calls this
        between videos: readers then see a file at most that far behind SQLite)."""
        if time.monotonic() - self._last_save >= self.checkpoint_s:
            self.flush()

    @contextmanager
    def _writing(self, target: Path, needed: int = 0) -> Iterator[None]:
        """Turn a failing disk under `target` into one DataDirError that says what could not be
        written, why, how much space is free there and how much was needed."""
        try:
            yield
        except (OSError, OperationalError) as exc:
            if isinstance(exc, OperationalError):
                code = getattr(exc.orig, "sqlite_errorcode", None)
                reason = _SQLITE_DISK_ERRORS.get(code & 0xFF) if code is not None else None
            else:
                reason = exc.strerror if exc.errno in _DISK_ERRNOS else None
                target = Path(exc.filename) if exc.filename else target
            if reason is None:
                raise
            try:
                free = f"{_size(shutil.disk_usage(self.data_dir).free)} free"
            except OSError:
                free = "free space unknown"
            needs = f", about {_size(needed)} needed" if needed else ""
            raise DataDirError(f"cannot write {target}: {reason} ({free}{needs})") from exc

    # -- write side ------------------------------------------------------------------------

    def video_state(self, path: str) -> VideoState | None:
        with self._sessions() as s:
            v = s.scalars(select(Video).where(Video.path == path)).first()
            return VideoState(v.id, v.status, v.size, v.mtime_ns, v.analyzers) if v else None

    def start_video(self, path: str, size: int, mtime_ns: int) -> int:
        """Mark a file as being indexed (a crash or a failing disk leaves it so, and the next
        run indexes it) and return its video id."""
        with self._writing(self.db_path), self._sessions.begin() as s:
            v = s.scalars(select(Video).where(Video.path == path)).first()
            if v is None:
                v = Video(path=path, stem=Path(path).stem, size=size, mtime_ns=mtime_ns, status="indexing")
                s.add(v)
                s.flush()
            else:
                v.size, v.mtime_ns, v.status, v.error = size, mtime_ns, "indexing", None
            return v.id

    def save_video(self, video_id: int, info: VideoInfo, keyframes: Sequence[NewKeyframe],
                   analyzers: str = "", shots: Sequence[NewShot] = (), partial: str | None = None) -> int:
        """Replace a video's shots, keyframes, vectors, analyzer results and thumbnails in one
        commit; returns how many keyframes. `NewKeyframe.shot` numbers a shot of `shots`;
        `partial` says why only part of the file was indexed (kept as the video's error).
        A failing disk raises DataDirError and leaves the video as it was (nothing written)."""
        run_dir = self.thumb_root / f"v{video_id}-{time.time_ns():x}"
        needed = sum(len(kf.jpeg) + 3 * kf.vector.nbytes for kf in keyframes)  # thumbnails, SQLite, FAISS
        try:
            with self._writing(run_dir, needed):
                run_dir.mkdir(parents=True)
                for kf in keyframes:
                    (run_dir / f"{kf.frame_idx}.jpg").write_bytes(kf.jpeg)
            with self._writing(self.db_path, needed):
                rows = self._commit_video(video_id, info, keyframes, analyzers, shots, partial, run_dir.name)
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        return rows

    def _commit_video(self, video_id: int, info: VideoInfo, keyframes: Sequence[NewKeyframe], analyzers: str,
                      shots: Sequence[NewShot], partial: str | None, run_dir: str) -> int:
        with self._sessions.begin() as s:
            video = s.get(Video, video_id)
            old_ids = s.scalars(select(Keyframe.id).where(Keyframe.video_id == video_id)).all()
            old_dir = video.thumb_dir
            _delete_fts(s, old_ids)
            s.execute(delete(Keyframe).where(Keyframe.video_id == video_id))
            s.execute(delete(Shot).where(Shot.video_id == video_id))
            s.add_all(Shot(video_id=video_id, shot=i, start_frame=sh.start_frame, start=sh.start, end=sh.end)
                      for i, sh in enumerate(shots))
            rows = [_keyframe_row(video_id, run_dir, kf) for kf in keyframes]
            s.add_all(rows)
            s.flush()
            new_ids = [r.id for r in rows]
            fts_rows = [{"id": r.id, "text": fold(r.ocr_text)} for r in rows if r.ocr_text]
            if fts_rows:
                s.execute(text("INSERT INTO ocr_fts(rowid, text) VALUES (:id, :text)"), fts_rows)
            video.status, video.error, video.thumb_dir = "indexed", partial, run_dir
            video.analyzers = analyzers
            video.decoder, video.duration, video.fps = info.decoder, info.duration, info.fps
            video.frame_count, video.width, video.height = info.frame_count, info.width, info.height
            video.indexed_at = time.time()
            _count_commit(s)
        # Committed: now mirror into FAISS and drop the superseded thumbnails.
        self.vectors.remove(old_ids)
        if keyframes:
            self.vectors.add(np.array(new_ids), np.stack([kf.vector for kf in keyframes]))
        self._unsaved += len(old_ids) + len(keyframes)
        if old_dir:
            shutil.rmtree(self.thumb_root / old_dir, ignore_errors=True)
        return len(rows)

    def fail_video(self, video_id: int, error: str) -> None:
        """Record a failure. Keyframes from an earlier good run of the file are dropped too:
        the file on disk no longer matches them."""
        self._delete_videos([video_id], keep_rows=True, error=error)

    def prune(self, existing: Iterable[str] | None = None) -> list[str]:
        """Remove videos whose files are gone (or, given `existing`, not among those paths)."""
        keep = set(existing) if existing is not None else None
        with self._sessions() as s:
            rows = s.execute(select(Video.id, Video.path)).all()
        gone = [(vid, p) for vid, p in rows if (p not in keep if keep is not None else not os.path.exists(p))]
        self._delete_videos([vid for vid, _ in gone])
        return [p for _, p in gone]

    def _delete_videos(self, video_ids: list[int], keep_rows: bool = False, error: str | None = None) -> None:
        if not video_ids:
            return
        with self._writing(self.db_path), self._sessions.begin() as s:
            kf_ids = s.scalars(select(Keyframe.id).where(Keyframe.video_id.in_(video_ids))).all()
            dirs = s.scalars(select(Video.thumb_dir).where(Video.id.in_(video_ids))).all()
            _delete_fts(s, kf_ids)
            s.execute(delete(Keyframe).where(Keyframe.video_id.in_(video_ids)))
            s.execute(delete(Shot).where(Shot.video_id.in_(video_ids)))
            if keep_rows:
                s.execute(
                    update(Video)
                    .where(Video.id.in_(video_ids))
                    .values(status="failed", error=error, thumb_dir=None)
                )
            else:
                s.execute(delete(Video).where(Video.id.in_(video_ids)))
            _count_commit(s)
        if kf_ids and self.model() is not None:
            self.vectors.remove(kf_ids)
            self._unsaved += len(kf_ids)
        for d in dirs:
            if d:
                shutil.rmtree(self.thumb_root / d, ignore_errors=True)

    def repair(self) -> RepairReport:
        """The writer, before a run: save the FAISS file caught up with SQLite (it lags after a
        crash) and delete thumbnail folders that no committed video refers to."""
        added, removed = self.sync_vectors()
        thumbs_removed = 0
        with self._sessions() as s:
            live = set(s.scalars(select(Video.thumb_dir).where(Video.thumb_dir.is_not(None))).all())
        for d in self.thumb_root.iterdir():
            if d.is_dir() and d.name not in live:
                shutil.rmtree(d, ignore_errors=True)
                thumbs_removed += 1
        self.flush()
        return RepairReport(added, removed, thumbs_removed)

    # -- read side -------------------------------------------------------------------------

    def stored_vectors(self, keyframe_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of those keyframes that exist, from SQLite (not the FAISS copy)."""
        with self._sessions() as s:
            rows = s.execute(
                select(Embedding.keyframe_id, Embedding.vector).where(Embedding.keyframe_id.in_(keyframe_ids))
            ).all()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, self.vectors.dim), np.float32)
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        return ids, np.stack([_from_blob(r[1]) for r in rows])

    def vector(self, keyframe_id: int) -> np.ndarray | None:
        ids, vecs = self.stored_vectors([keyframe_id])
        return vecs[0] if len(ids) else None

    def keyframes(self, keyframe_ids: Sequence[int]) -> dict[int, KeyframeRow]:
        """Keyframes by id, joined with their videos; unknown ids are absent from the result."""
        out: dict[int, KeyframeRow] = {}
        ids = list(dict.fromkeys(int(i) for i in keyframe_ids))
        with self._sessions() as s:
            for start in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
                stmt = (
                    select(Keyframe, Video, Shot.start, Shot.end)
                    .join(Video, Keyframe.video_id == Video.id)
                    .outerjoin(Shot, (Shot.video_id == Keyframe.video_id) & (Shot.shot == Keyframe.shot))
                    .where(Keyframe.id.in_(ids[start : start + 900]))
                )
                chunk = ids[start : start + 900]
                poses: dict[int, list[list[str]]] = {}
                for kid, labels in s.execute(
                    select(Person.keyframe_id, Person.labels).where(Person.keyframe_id.in_(chunk)).order_by(Person.id)
                ):
                    poses.setdefault(kid, []).append(json.loads(labels))
                for kf, v, shot_start, shot_end in s.execute(stmt).all():
                    out[kf.id] = KeyframeRow(
                        keyframe_id=kf.id,
                        video_db_id=v.id,
                        video_id=v.stem,
                        video_path=v.path,
                        frame_idx=kf.frame_idx,
                        timestamp=kf.timestamp,
                        shot=kf.shot,
                        shot_start=shot_start,
                        shot_end=shot_end,
                        thumbnail=self.thumb_root / kf.thumbnail,
                        fps=v.fps,
                        duration=v.duration,
                        ocr_text=kf.ocr_text,
                        person_count=kf.person_count,
                        poses=poses.get(kf.id, []),
                    )
        return out

    def filter_ids(self, f: KeyframeFilter) -> np.ndarray:
        """Ids of the keyframes that pass every condition of `f` (sorted)."""
        stmt = select(Keyframe.id)
        if f.videos:
            stmt = stmt.join(Video, Keyframe.video_id == Video.id).where(Video.stem.in_(f.videos))
        if f.time_from is not None:
            stmt = stmt.where(Keyframe.timestamp >= f.time_from)
        if f.time_to is not None:
            stmt = stmt.where(Keyframe.timestamp <= f.time_to)
        # Keyframes the person analyzer never saw (NULL count) pass no person condition.
        if f.min_persons is not None:
            stmt = stmt.where(Keyframe.person_count >= f.min_persons)
        if f.max_persons is not None:
            stmt = stmt.where(Keyframe.person_count <= f.max_persons)
        for label in f.poses:
            stmt = stmt.where(
                select(Person.id)
                .where(Person.keyframe_id == Keyframe.id, Person.labels.like(f'%"{label}"%'))
                .exists()
            )
        if f.ocr is not None:
            match = fts_query(f.ocr)
            if match is None:
                return np.zeros(0, np.int64)
            stmt = stmt.where(Keyframe.id.in_(text("SELECT rowid FROM ocr_fts WHERE ocr_fts MATCH :m").bindparams(m=match)))
        with self._sessions() as s:
            return np.array(sorted(s.scalars(stmt).all()), dtype=np.int64)

    def ocr_search(self, query: str, allowed_ids: np.ndarray | None = None, limit: int = 100) -> list[tuple[int, float]]:
        """Keyframes whose OCR text holds every word of `query` (accents and case ignored),
        best first, as (keyframe id, score) with score = -bm25 (higher is better)."""
        match = fts_query(query)
        if match is None:
            return []
        with self._sessions() as s:
            rows = s.execute(
                text("SELECT rowid, bm25(ocr_fts) FROM ocr_fts WHERE ocr_fts MATCH :m ORDER BY bm25(ocr_fts), rowid"),
                {"m": match},
            ).all()
        allowed = None if allowed_ids is None else set(np.asarray(allowed_ids).tolist())
        ranked = [(int(kid), -float(b)) for kid, b in rows if allowed is None or kid in allowed]
        return ranked[:limit]

    def keyframes_between(self, video_db_id: int, start: float, end: float) -> list[KeyframeRow]:
        """The keyframes of one video with start <= timestamp <= end, in time order."""
        with self._sessions() as s:
            ids = s.scalars(select(Keyframe.id).where(
                Keyframe.video_id == video_db_id, Keyframe.timestamp >= start, Keyframe.timestamp <= end)).all()
        rows = self.keyframes(ids)
        return sorted(rows.values(), key=lambda r: r.timestamp)

    def shots(self, video_stem: str) -> dict[str, list[ShotRow]]:
        """The shots of the indexed videos with this id (file stem), by path: usually one path,
        more when files in several folders share a name, none for an unknown id."""
        out: dict[str, list[ShotRow]] = {}
        with self._sessions() as s:
            videos = s.execute(select(Video.id, Video.path).where(Video.stem == video_stem, Video.status == "indexed")
                               .order_by(Video.path)).all()
            for vid, path in videos:
                members: dict[int, list[int]] = {}
                for kid, shot in s.execute(select(Keyframe.id, Keyframe.shot).where(Keyframe.video_id == vid)
                                           .order_by(Keyframe.timestamp, Keyframe.id)):
                    members.setdefault(shot, []).append(kid)
                out[path] = [ShotRow(r.shot, r.start, r.end, members.get(r.shot, []))
                             for r in s.scalars(select(Shot).where(Shot.video_id == vid).order_by(Shot.shot))]
        return out

    def video_ids(self) -> list[str]:
        """Ids (file stems) of the indexed videos, sorted."""
        with self._sessions() as s:
            return sorted(set(s.scalars(select(Video.stem).where(Video.status == "indexed")).all()))

    def keyframes_in_windows(self, windows: Sequence[tuple[int, float, float]]) -> np.ndarray:
        """Ids of keyframes in any (video db id, from, to] time window."""
        ids: set[int] = set()
        with self._sessions() as s:
            for video_db_id, start, end in windows:
                ids.update(s.scalars(select(Keyframe.id).where(
                    Keyframe.video_id == video_db_id, Keyframe.timestamp > start, Keyframe.timestamp <= end)))
        return np.array(sorted(ids), dtype=np.int64)

    def video_errors(self) -> list[tuple[str, str, str]]:
        """(path, status, error) of the videos that failed ("failed") or were indexed in part
        ("indexed", the error says how far)."""
        with self._sessions() as s:
            return [tuple(r) for r in s.execute(select(Video.path, Video.status, Video.error)
                                                .where(Video.error.is_not(None)).order_by(Video.path))]

    def counts(self) -> tuple[int, int]:
        """(indexed videos, keyframes): cheap, for display; stats() also checks consistency."""
        with self._sessions() as s:
            videos = s.scalar(select(func.count()).select_from(Video).where(Video.status == "indexed"))
            return videos, s.scalar(select(func.count()).select_from(Keyframe))

    def stats(self) -> dict:
        """Counts, and a check for damage. The FAISS file lagging SQLite is no damage: the
        in-memory copy is brought up to date first and `vectors_pending` says by how much."""
        self.sync_vectors()
        model = self.model()
        problems = list(self.problems)
        # One statement per check: each reads one snapshot, even while a run commits.
        with self._sessions() as s:
            by_status = dict(s.execute(select(Video.status, func.count()).group_by(Video.status)).all())
            partial = s.scalar(select(func.count()).select_from(Video)
                               .where(Video.status == "indexed", Video.error.is_not(None)))
            keyframes = s.scalar(select(func.count()).select_from(Keyframe))
            # Embeddings are deleted with their keyframe (cascade): fewer means vectors were lost.
            no_vector = s.scalar(select(func.count() - select(func.count()).select_from(Embedding)
                                        .scalar_subquery()).select_from(Keyframe))
            thumb_dirs = s.scalars(select(Video.thumb_dir).where(Video.status == "indexed")).all()
        if no_vector:
            problems.append(f"{no_vector} keyframes have no stored vector")
        missing = sum(1 for d in thumb_dirs if d and not (self.thumb_root / d).is_dir())
        if missing:
            problems.append(f"{missing} indexed videos lost their thumbnail folder")
        return {
            "videos": by_status.get("indexed", 0),
            "videos_failed": by_status.get("failed", 0),
            "videos_incomplete": by_status.get("indexing", 0),
            "videos_partial": partial,
            "keyframes": keyframes,
            "vectors": self.vectors.ntotal if model is not None else 0,
            "vectors_pending": self._unsaved if model is not None else 0,
            "consistent": not problems,
            "problems": problems,
            "model": model.name if model else None,
            "pretrained": model.pretrained if model else None,
            "dim": model.dim if model else None,
            "data_dir": str(self.data_dir),
        }


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _keyframe_row(video_id: int, run_dir: str, kf: NewKeyframe) -> Keyframe:
    row = Keyframe(
        video_id=video_id,
        frame_idx=kf.frame_idx,
        timestamp=kf.timestamp,
        shot=kf.shot,
        thumbnail=f"{run_dir}/{kf.frame_idx}.jpg",
        embedding=Embedding(vector=_to_blob(kf.vector)),
    )
    if kf.text_boxes is not None:
        row.ocr_text = " ".join(b.text for b in kf.text_boxes)
        row.ocr_boxes = [OcrBox(text=b.text, x0=b.box[0], y0=b.box[1], x1=b.box[2], y1=b.box[3],
                                confidence=b.confidence) for b in kf.text_boxes]
    if kf.persons is not None:
        row.person_count = len(kf.persons.persons)
        row.person_area = kf.persons.mask_area
        row.person_mask = kf.persons.mask_png
        row.persons = [
            Person(x0=p.box[0], y0=p.box[1], x1=p.box[2], y1=p.box[3], score=p.score,
                   keypoints=json.dumps([[round(v, 4) for v in kp] for kp in p.keypoints]),
                   labels=json.dumps(p.labels))
            for p in kf.persons.persons
        ]
    return row


def _count_commit(s: Session) -> None:
    """Count a commit that changed keyframes: readers compare the counter to know when their
    in-memory vectors are behind."""
    s.execute(text("INSERT INTO meta(key, value) VALUES ('generation', '1') "
                   "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"))


def _delete_fts(s: Session, keyframe_ids: Sequence[int]) -> None:
    for start in range(0, len(keyframe_ids), 900):
        chunk = list(keyframe_ids[start : start + 900])
        s.execute(text(f"DELETE FROM ocr_fts WHERE rowid IN ({','.join(map(str, map(int, chunk)))})"))


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")  # readers (the UI) never block the indexer
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def _from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4")
