"""The data directory: SQLite database, FAISS index and thumbnails, kept consistent.

Layout of `data_dir`:
    evr.sqlite      videos, keyframes, their vectors (source of truth)
    vectors.faiss   vector index over those vectors, keyed by keyframe id (storage/vectors/)
    thumbs/         one folder per indexed video run: thumbs/v<video id>-<run>/<frame_idx>.jpg
    evr.lock        held by the one process that writes

A video's keyframes and vectors are committed in one SQLite transaction. The vector index file
is saved after commits (at most every `checkpoint_s` seconds and at close), so it may lag SQLite
by a few videos: that is normal, not damage. Every process brings its in-memory copy up to what
is committed before it searches (`sync_vectors`): a commit counter in the meta table says when
that is needed, and the file's header says what it lacks, the keyframes above its last id and
the removals logged after its last, so catching up reads only those. After a crash, the
writer's `repair()` saves the caught-up file and deletes thumbnail folders that no committed
video refers to. The writer builds the index anew (`build_vectors`) when its kind should change.

With `backend = "milvus"` the vectors are searched in a Milvus collection rather than the file
(storage/vectors/milvus.py): the writer pushes each commit to it as the sync above does, and
records how far it follows SQLite in the meta table (`milvus_state`); readers only search it.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Text, create_engine, delete, event, func, insert, literal_column, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.pool import QueuePool

from .errors import (DamagedIndexError, DataDirError, ModelMismatchError, NoIndexError, StoreError, UnknownVideoError,
                     VectorServiceError)
from .schema import (
    KEYFRAME_DELETED_DDL,
    OCR_FTS_DDL,
    SCHEMA_VERSION,
    Base,
    Embedding,
    Keyframe,
    KeyframePose,
    Meta,
    OcrBox,
    Person,
    Shot,
    SPEECH_DELETED_DDL,
    SPEECH_FTS_DDL,
    Speech,
    VectorRemoval,
    Video,
)
from .fulltext import OCR_FTS, SPEECH_FTS, add_texts, fill_terms, fts_match, word_match
from .textfold import fts_query, words
from .types import (
    ImportedVideo,
    KeyframeFilter,
    KeyframeImage,
    KeyframeRow,
    LostThumbnails,
    ModelInfo,
    NewKeyframe,
    NewShot,
    PersonsInFrame,
    ShotRow,
    SpeechSegment,
    TextBox,
    VideoInfo,
    VideoMedia,
    VideoState,
)
from .vectors import (
    FlatIndex,
    IndexFileError,
    IndexState,
    IvfIndex,
    VectorIndex,
    VectorIndexSettings,
    choose_kind,
    load_index,
)
from .vectors.ivf import MIN_VECTORS as IVF_MIN_VECTORS
from .vectors.milvus import MilvusIndex, filter_expression
from .vectors.ivf import training_size

log = logging.getLogger(__name__)


# A filtered search first keeps the passing ones among the nearest max(POST_FILTER_MIN,
# POST_FILTER x k) candidates, then searches only the passing keyframes (Store.nearest).
POST_FILTER = 8
POST_FILTER_MIN = 100
# A keyframe hears the speech said within this many seconds of it: keyframes are at most
# keyframes.max_gap_s (2 s) apart, so every segment of speech has a keyframe within reach.
SPEECH_REACH_S = 2.0

# OS errors that say the disk, not the data, is at fault.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM}
# SQLite's primary result codes for the same (https://sqlite.org/rescode.html).
_SQLITE_DISK_ERRORS = {13: "the database or disk is full", 8: "the database is read-only",
                       10: "disk I/O error", 14: "the database file cannot be opened"}
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


@dataclass(frozen=True)
class RepairReport:
    vectors_added: int
    vectors_removed: int
    thumb_dirs_removed: int

    @property
    def changed(self) -> bool:
        return bool(self.vectors_added or self.vectors_removed or self.thumb_dirs_removed)

    def __str__(self) -> str:
        done = [f"{n} {what}" for n, what in ((self.vectors_added, "vectors added to the index file"),
                                                (self.vectors_removed, "vectors removed from it"),
                                                (self.thumb_dirs_removed, "unused thumbnail folders deleted")) if n]
        return ", ".join(done) or "nothing to mend"


class Store:
    """Open a data directory. `writer=True` takes the directory's lock (one writer at a time)."""

    def __init__(self, data_dir: Path, *, writer: bool = False, checkpoint_s: float = 10.0,
                 index: VectorIndexSettings = VectorIndexSettings()):
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.index_settings = index
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
            raise NoIndexError(
                f"no index in {self.data_dir}: run `evr index <folder>` first "
                "(or point --data-dir at an existing index)"
            )
        self.db_path = self.data_dir / "evr.sqlite"
        # A reader on a folder it cannot write (an archive on a read-only mount) opens the
        # database immutable: SQLite then takes no lock and needs no -shm file, which it could
        # not create there. No writer can change such a folder, so nothing is missed.
        self.read_only = not writer and not _writable(self.data_dir)
        # The pool a file database gets (the URL names none: the creator opens the file).
        self.engine = create_engine("sqlite://", creator=self._connect, poolclass=QueuePool)
        event.listen(self.engine, "connect", _sqlite_pragmas if writer else _reader_pragmas)
        event.listen(self.engine, "handle_error", self._damaged)
        if writer:
            with self._writing(self.db_path):
                Base.metadata.create_all(self.engine)
                with self.engine.begin() as conn:
                    for ddl in (OCR_FTS_DDL, KEYFRAME_DELETED_DDL, SPEECH_FTS_DDL, SPEECH_DELETED_DDL):
                        conn.execute(text(ddl))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.vectors_path = self.data_dir / "vectors.faiss"
        self._check_schema()
        self._vectors: VectorIndex | None = None
        self._unsaved = 0  # vector changes held in memory that the index file lacks
        # What is wrong with the vector index file (unreadable, missing), mended in memory from
        # SQLite meanwhile; stats reports it until a save of the file clears it.
        self.file_problem: str | None = None
        self._file_saved = False  # this process has recorded that the file was saved
        self._synced: str | None = None  # the commit counter the in-memory vectors match
        self._built: str | None = None  # the writer's last build of the index, when loaded
        # Readers map the index file (instant, shared, read-only) until they must change it.
        self._map_file = not writer
        self._lock = threading.RLock()  # one app process shares a store between sessions' threads
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

    def _connect(self) -> sqlite3.Connection:
        uri = self.db_path.as_uri()  # any folder name, spaces, '?' and bytes that are not UTF-8 included
        if self.read_only:
            # A WAL a writer left behind (killed) holds commits: read it, where SQLite can.
            wal = self.db_path.with_name("evr.sqlite-wal")
            uri += "?mode=ro" if wal.exists() and wal.stat().st_size else "?immutable=1"
        # The app's sessions share one store across threads (self._lock guards the vectors).
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    def _damaged(self, context) -> Exception | None:
        """SQLAlchemy's error hook: a database file that is not one, or is corrupt, is one line
        that says so, whatever statement met it."""
        code = getattr(context.original_exception, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return DamagedIndexError(
                f"the index database {self.db_path} is damaged ({context.original_exception}): restore it from a "
                "backup, or move the data folder away and index the videos again")
        return None

    def _check_schema(self) -> None:
        try:
            version = self._meta("schema_version")
        except OperationalError as exc:  # no tables yet: being created, or left empty
            log.debug("no meta table: %s", exc)
            version = None
        if version is None and not self.writer:
            if self.writer_active():
                raise StoreError(f"the index in {self.data_dir} is being created by `evr index`: try again in a moment")
            raise StoreError(f"the index in {self.data_dir} is incomplete (its creation was cut short, or "
                             "evr.sqlite is empty): run `evr index <folder>` to create it")
        if version is None:
            self._set_meta({"schema_version": str(SCHEMA_VERSION)})
        elif int(version) in (2, 3, 4) and self.writer:
            if int(version) == 2:
                self._upgrade_from_2()
            if int(version) <= 3:
                self._upgrade_from_3()
            # 4 -> 5 added the speech tables, which the writer has created by now.
            self._set_meta({"schema_version": str(SCHEMA_VERSION)})
        elif int(version) in (2, 3, 4):
            raise StoreError(f"the index in {self.data_dir} was written by an older evr: run `evr index` "
                             "(on any folder) once to upgrade it")
        elif int(version) != SCHEMA_VERSION:
            raise StoreError(
                f"{self.data_dir} was written by schema version {version}, this evr uses "
                f"{SCHEMA_VERSION}; index into a new --data-dir"
            )
        if self.writer:
            self._mend_once()

    def _mend_once(self) -> None:
        """The writer's one-time mending of an index an older evr wrote, each step noted in the
        meta table once done: the terms fulltext.py finds near words in, and the videos whose
        keyframe times were a decoder's "no time" sentinel (-3.85e17 s), marked to be indexed
        again by the next `evr index` of their folder."""
        done = dict(zip(("fts_terms", "times_checked"), self._metas("fts_terms", "times_checked")))
        if done["fts_terms"] and done["times_checked"]:
            return
        with self._writing(self.db_path), self._sessions.begin() as s:
            if not done["fts_terms"]:
                fill_terms(s)
                s.merge(Meta(key="fts_terms", value="kept"))
            if not done["times_checked"]:
                wrong = select(Keyframe.video_id).where(Keyframe.timestamp < 0).distinct()
                marked = s.execute(update(Video).where(Video.id.in_(wrong)).values(status="indexing")).rowcount
                if marked:
                    log.warning("%d videos hold keyframe times an older evr read wrong: the next `evr index` of "
                                "their folders indexes them again", marked)
                s.merge(Meta(key="times_checked", value="1"))

    def _upgrade_from_2(self) -> None:
        """Schema 2 -> 3 in one transaction: vectors to float16, pose labels into their table
        (the new tables and the trigger exist already: the writer created them). The old index
        file has no header; it is deleted, and this run builds the index from SQLite."""
        log.warning("upgrading the index in %s to this evr's format (once; about a minute per "
                    "100,000 keyframes)", self.data_dir)
        with self._writing(self.db_path), self._sessions.begin() as s:
            poses = {(label, kid) for kid, labels in s.execute(select(Person.keyframe_id, Person.labels))
                     for label in json.loads(labels)}
            if poses:
                s.execute(insert(KeyframePose), [{"label": label, "keyframe_id": kid} for label, kid in poses])
            after = 0
            while rows := s.execute(select(Embedding.keyframe_id, Embedding.vector).where(
                    Embedding.keyframe_id > after).order_by(Embedding.keyframe_id).limit(10_000)).all():
                s.execute(update(Embedding), [{"keyframe_id": kid, "vector": _to_blob(np.frombuffer(blob, "<f4"))}
                                              for kid, blob in rows])
                after = rows[-1][0]
            s.merge(Meta(key="schema_version", value="3"))
        self.vectors_path.unlink(missing_ok=True)

    def _upgrade_from_3(self) -> None:
        """Schema 3 -> 4 in one transaction: the columns imported videos need (origin, media
        path and info, the keyframes' source images); every video so far was decoded."""
        with self._writing(self.db_path), self._sessions.begin() as s:
            for ddl in ("ALTER TABLE videos ADD COLUMN origin VARCHAR NOT NULL DEFAULT 'decoded'",
                        "ALTER TABLE videos ADD COLUMN media_path VARCHAR",
                        "ALTER TABLE videos ADD COLUMN media_info TEXT",
                        "ALTER TABLE keyframes ADD COLUMN source_image VARCHAR",
                        "UPDATE videos SET media_path = path"):
                s.execute(text(ddl))
            s.merge(Meta(key="schema_version", value=str(SCHEMA_VERSION)))

    def close(self) -> None:
        if self.writer:
            try:
                self.flush()
                self._prune_removals()
            except DataDirError as exc:  # SQLite holds every vector: the next run catches the file up
                log.warning("the vector index file was not saved (%s); the next `evr index` catches it up", exc)
        if isinstance(self._vectors, MilvusIndex):
            self._vectors.close()
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

    def _metas(self, *keys: str) -> list[str | None]:
        with self._sessions() as s:
            found = dict(s.execute(select(Meta.key, Meta.value).where(Meta.key.in_(keys))).all())
        return [found.get(k) for k in keys]

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
            # An empty index of the old model may have left an index file of the old dimension.
            self._vectors = None
            self.vectors_path.unlink(missing_ok=True)
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
    def milvus(self) -> bool:
        return self.index_settings.backend == "milvus"

    @property
    def vectors(self) -> VectorIndex | MilvusIndex:
        """The vector index as loaded (see `sync_vectors` for bringing it up to date)."""
        if self._vectors is None:
            model = self.model()
            if model is None:
                raise StoreError("the index holds no vectors yet: run `evr index <folder>`")
            self._built = self._meta("vectors_built")  # read before the file: a newer build reloads
            if self.milvus:
                self._vectors = self._open_milvus(model.dim)
                return self._vectors
            try:
                self._vectors = load_index(self.vectors_path, model.dim, self.index_settings, mapped=self._map_file)
            except IndexFileError as exc:  # SQLite holds every vector: start from nothing and catch up
                self._vectors = FlatIndex.empty(model.dim, self.index_settings)
                if self.vectors_path.exists():
                    self.file_problem = f"{exc}; searching an exact index rebuilt from SQLite"
                elif self._meta("vectors_saved"):
                    # Saved once, and gone (a run killed before its first save never had one).
                    self.file_problem = (f"the vector index file {self.vectors_path} is missing; searching an exact "
                                         "index rebuilt from SQLite (slower)")
                if self.file_problem:
                    self.file_problem += ": `evr reindex` saves it again"
                    log.warning("%s", self.file_problem)
        return self._vectors

    def _open_milvus(self, dim: int) -> MilvusIndex:
        """The configured Milvus collection, with how far it follows SQLite. A writer starts a
        collection that does not hold this index's vectors anew (the sync then fills it); a
        reader is told to fill it."""
        s = self.index_settings
        index = MilvusIndex(s.milvus_uri or str(self.data_dir / "milvus.db"), s.milvus_collection, dim, s.milvus_index)
        state = json.loads(self._meta("milvus_state") or "{}")
        # A collection last synced before removals it lacks were pruned cannot catch up: refill.
        current = state.get("last_removal", -1) >= int(self._meta("removals_pruned") or 0)
        if state.get("target") == index.target and current and index.exists():
            index.load()
            index.state = IndexState(state["last_keyframe"], state["last_removal"])
        elif self.writer:
            log.info("filling Milvus collection %s from SQLite", index.target)
            index.create()
        else:
            raise VectorServiceError(f"{index.target} does not hold this index's vectors: run "
                                     "`evr reindex --vectors milvus` once to fill it")
        return index

    def filter_fields(self, keyframe_ids: np.ndarray) -> list[dict]:
        """The fields Milvus filters on, for each of these keyframes in their order."""
        with self._sessions() as s:
            rows = {kid: (stem, t, persons, bool(text)) for kid, stem, t, persons, text in s.execute(
                select(Keyframe.id, Video.stem, Keyframe.timestamp, Keyframe.person_count, Keyframe.ocr_text)
                .join(Video, Keyframe.video_id == Video.id).where(Keyframe.id.in_(_ids_param(keyframe_ids))))}
            poses: dict[int, list[str]] = {}
            for kid, label in s.execute(select(KeyframePose.keyframe_id, KeyframePose.label)
                                        .where(KeyframePose.keyframe_id.in_(_ids_param(keyframe_ids)))):
                poses.setdefault(kid, []).append(label)
        return [{"video": rows[kid][0], "time": rows[kid][1], "persons": rows[kid][2], "has_text": rows[kid][3],
                 "poses": sorted(poses.get(kid, []))} for kid in (int(i) for i in keyframe_ids)]

    def sync_vectors(self) -> tuple[int, int]:
        """Bring the in-memory vector index up to what SQLite has committed: (added, removed).
        Reads only what the index lacks; one small read when nothing was committed since."""
        with self._lock:
            return self._sync_vectors()

    def _sync_vectors(self) -> tuple[int, int]:
        if self.model() is None:
            return 0, 0
        if self.milvus and not self.writer:  # Milvus is shared: the writer keeps it up to date
            self.vectors
            return 0, 0
        # Read first: a commit after this read triggers the next sync.
        generation, built, pruned = self._metas("generation", "vectors_built", "removals_pruned")
        if self._vectors is not None and (generation, built) == (self._synced, self._built):
            return 0, 0
        pruned = int(pruned or 0)
        if self._vectors is not None and not self.writer and (
                built != self._built or self._vectors.state.last_removal < pruned):
            # The writer built the index anew, or pruned removals this copy still lacks: the
            # saved file has them (a writer's own copy is never behind its own pruning).
            self._vectors, self._unsaved = None, 0
        index = self.vectors
        with self._sessions() as s:
            # Removals first, then additions: a commit in between is caught by the next sync
            # (ids only grow, so what is added now was never removed before).
            last_removal = _last_removal(s, pruned)
            # Only ids the copy can hold: later ones were added and removed while it was away.
            gone = _id_array(s, select(VectorRemoval.keyframe_id).where(
                VectorRemoval.seq > index.state.last_removal, VectorRemoval.seq <= last_removal,
                VectorRemoval.keyframe_id <= index.state.last_keyframe))
            newer = s.scalar(select(Embedding.keyframe_id).where(
                Embedding.keyframe_id > index.state.last_keyframe).limit(1))
        if index.mapped and (len(gone) or newer is not None):
            # A mapped index is read-only: read the file into memory, then catch that up.
            self._map_file, self._vectors = False, None
            return self._sync_vectors()
        removed = index.remove(gone)
        added, last_keyframe = 0, index.state.last_keyframe
        for ids, vecs in self._vectors_after(last_keyframe):
            index.add(ids, vecs, self.filter_fields(ids) if index.needs_fields else None)
            added, last_keyframe = added + len(ids), int(ids[-1])
        index.state = IndexState(last_keyframe, last_removal)
        self._unsaved += added + removed
        self._synced = generation
        return added, removed

    def _vectors_after(self, keyframe_id: int, batch: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of the keyframes above `keyframe_id`, in id order, `batch` at a time."""
        while True:
            with self._sessions() as s:
                rows = s.execute(select(Embedding.keyframe_id, Embedding.vector)
                                 .where(Embedding.keyframe_id > keyframe_id)
                                 .order_by(Embedding.keyframe_id).limit(batch)).all()
            if not rows:
                return
            ids, vectors = _unpack(rows)
            yield ids, vectors
            keyframe_id = int(ids[-1])

    def build_vectors(self, force: bool = False) -> str | None:
        """The writer, after a run (and `evr reindex`): build the vector index anew when its
        kind should change (`[index] kind`, or "auto" and the archive's size), when an IVF index
        outgrew its training, when it disagrees with SQLite, or when `force`d. Returns the kind
        built, or None when the index was fine as it was (or holds nothing yet)."""
        if self.model() is None:
            return None
        self.sync_vectors()
        current = self.vectors
        with self._sessions() as s:
            keyframes = s.scalar(select(func.count()).select_from(Keyframe))
        if self.milvus:
            if not force and current.ntotal == keyframes:
                return None
            log.info("filling Milvus collection %s with %s keyframes", current.target, f"{keyframes:,}")
            current.create()
            current.state, self._synced = IndexState(), None
            self.sync_vectors()
            self.flush()
            return current.kind
        kind = choose_kind(self.index_settings, keyframes)
        if kind == "ivf" and keyframes < IVF_MIN_VECTORS:
            kind = "flat"
        if not (force or kind != current.kind or current.ntotal != keyframes
                or (isinstance(current, IvfIndex) and current.outgrown())):
            return None
        log.info("building the %s vector index over %s keyframes", kind, f"{keyframes:,}")
        with self._sessions() as s:
            last_removal = _last_removal(s, int(self._meta("removals_pruned") or 0))
            ids = _id_array(s, select(Keyframe.id))
        if kind == "ivf":
            sample = np.sort(np.random.default_rng(0).choice(ids, training_size(len(ids)), replace=False))
            _, vectors = self.stored_vectors(sample)
            index: VectorIndex = IvfIndex.train(vectors, len(ids), self.index_settings)
            del vectors
        else:
            index = FlatIndex.empty(current.dim, self.index_settings)
        last_keyframe = 0
        for batch_ids, vecs in self._vectors_after(0):
            index.add(batch_ids, vecs)
            last_keyframe = int(batch_ids[-1])
        index.state = IndexState(last_keyframe, last_removal)
        # Until this save the old file stays: a kill leaves it, and the next run catches it up
        # and builds again.
        self._vectors, self._unsaved = index, index.ntotal
        self.flush()
        self._set_meta({"vectors_built": str(time.time_ns())})  # readers load the new file
        self._built = self._meta("vectors_built")
        return kind

    def flush(self) -> None:
        """Save the vector index if it changed since the last save."""
        if self._unsaved and self._vectors is not None and self.milvus:
            index = self._vectors
            self._set_meta({"milvus_state": json.dumps({"target": index.target, **asdict(index.state)})})
            self._unsaved = 0
        elif (self._unsaved or self.file_problem) and self._vectors is not None:
            with self._writing(self.vectors_path, self._vectors.nbytes):
                self._vectors.save(self.vectors_path)
            self._unsaved, self.file_problem = 0, None
            if not self._file_saved:  # from now on a missing file is damage, not a run's lag
                self._set_meta({"vectors_saved": "1"})
                self._file_saved = True
            self._last_save = time.monotonic()

    def _prune_removals(self) -> None:
        """Drop the logged removals the saved index file has applied (the writer, at close)."""
        # Milvus mode keeps the log: a FAISS file of this directory, used again later, catches
        # up from it (a collection is told apart by its own recorded state).
        if self._vectors is None or self._unsaved or self.milvus:
            return
        applied = self._vectors.state.last_removal
        if applied > int(self._meta("removals_pruned") or 0):
            with self._writing(self.db_path), self._sessions.begin() as s:
                s.execute(delete(VectorRemoval).where(VectorRemoval.seq <= applied))
                s.merge(Meta(key="removals_pruned", value=str(applied)))

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
                   analyzers: str = "", shots: Sequence[NewShot] = (), partial: str | None = None,
                   media: VideoMedia | None = None, video_analyses: dict[str, Any] | None = None) -> int:
        """Replace a video's shots, keyframes, vectors, analyzer results and thumbnails in one
        commit; returns how many keyframes. `NewKeyframe.shot` numbers a shot of `shots`;
        `partial` says why only part of the file was indexed (kept as the video's error);
        `media` describes an imported video (None: the decoded file itself is the media);
        `video_analyses` holds the file analyzers' results by name (a key of VIDEO_ANALYSES).
        A failing disk raises DataDirError and leaves the video as it was (nothing written)."""
        video_analyses = video_analyses or {}
        _check_analyses({name: None for kf in keyframes for name in kf.analyses}, video_analyses)
        run_dir = self.thumb_root / f"v{video_id}-{time.time_ns():x}"
        needed = sum(len(kf.jpeg) + 3 * kf.vector.nbytes for kf in keyframes)  # thumbnails, SQLite, FAISS
        try:
            with self._writing(run_dir, needed):
                run_dir.mkdir(parents=True)
                for kf in keyframes:
                    (run_dir / f"{kf.frame_idx}.jpg").write_bytes(kf.jpeg)
            with self._writing(self.db_path, needed):
                rows = self._commit_video(video_id, info, keyframes, analyzers, shots, partial, run_dir.name, media,
                                          video_analyses)
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        return rows

    def _commit_video(self, video_id: int, info: VideoInfo, keyframes: Sequence[NewKeyframe], analyzers: str,
                      shots: Sequence[NewShot], partial: str | None, run_dir: str, media: VideoMedia | None,
                      video_analyses: dict[str, Any]) -> int:
        with self._sessions.begin() as s:
            video = s.get(Video, video_id)
            old_dir = video.thumb_dir
            s.execute(delete(Keyframe).where(Keyframe.video_id == video_id))
            s.execute(delete(Shot).where(Shot.video_id == video_id))
            for name, storage in VIDEO_ANALYSES.items():  # an earlier run's results go with its keyframes
                storage.clear(s, video_id)
                if name in video_analyses:
                    storage.put(s, video_id, video_analyses[name])
            s.add_all(Shot(video_id=video_id, shot=i, start_frame=sh.start_frame, start=sh.start, end=sh.end)
                      for i, sh in enumerate(shots))
            rows = [_keyframe_row(video_id, run_dir, kf) for kf in keyframes]
            s.add_all(rows)
            s.flush()
            _index_text(s, rows)
            video.status, video.error, video.thumb_dir = "indexed", partial, run_dir
            video.analyzers = analyzers
            if media is None:
                video.origin, video.media_path, video.media_info = "decoded", video.path, None
            else:
                video.origin, video.media_path = media.origin, media.path
                video.media_info = json.dumps(media.info, ensure_ascii=False) if media.info else None
            video.decoder, video.duration, video.fps = info.decoder, info.duration, info.fps
            video.frame_count, video.width, video.height = info.frame_count, info.width, info.height
            video.indexed_at = time.time()
            _count_commit(s)
        # Committed: now catch the vector index up and drop the superseded thumbnails.
        self.sync_vectors()
        if old_dir:
            shutil.rmtree(self.thumb_root / old_dir, ignore_errors=True)
        return len(rows)

    def save_analysis(self, video_id: int, analyzers: str, results: dict[str, dict[int, Any]],
                      video_results: dict[str, Any] | None = None) -> None:
        """Replace the results of some analyzers on a video's keyframes and record the video's
        analyzer signature, in one commit: `results` maps a frame analyzer's name (a key of
        ANALYSES) to {keyframe id: its result}, `video_results` a file analyzer's name (a key of
        VIDEO_ANALYSES) to its result. Other analyzers' results, keyframes and vectors stay."""
        video_results = video_results or {}
        _check_analyses(results, video_results)
        with self._writing(self.db_path), self._sessions.begin() as s:
            video = s.get(Video, video_id)
            if video is None:
                raise StoreError(f"video {video_id} is no longer in the index")
            for name, by_keyframe in results.items():
                for kid, result in by_keyframe.items():
                    ANALYSES[name].clear(s, kid)
                    ANALYSES[name].put(s.get(Keyframe, kid), result)
            s.flush()
            _index_text(s, [s.get(Keyframe, kid) for kid in results.get("ocr", {})])
            for name, result in video_results.items():
                VIDEO_ANALYSES[name].clear(s, video_id)
                VIDEO_ANALYSES[name].put(s, video_id, result)
            video.analyzers = analyzers
        if self.milvus and any(results.values()):  # the filter fields Milvus keeps beside the vectors changed
            self.sync_vectors()  # a collection opened for the first time here is filled first
            changed = np.array(sorted({kid for by_keyframe in results.values() for kid in by_keyframe}), np.int64)
            ids, vectors = self.stored_vectors(changed)
            self.vectors.add(ids, vectors, self.filter_fields(ids))

    def lost_thumbnails(self) -> list[LostThumbnails]:
        """The indexed videos whose thumbnail folder is gone."""
        with self._sessions() as s:
            videos = s.execute(select(Video.id, Video.path, Video.origin, Video.size, Video.mtime_ns, Video.thumb_dir)
                               .where(Video.status == "indexed").order_by(Video.id)).all()
            lost = [v for v in videos if v.thumb_dir and not (self.thumb_root / v.thumb_dir).is_dir()]
            frames: dict[int, list[tuple[int, str | None]]] = {}
            for vid, frame_idx, image in s.execute(
                    select(Keyframe.video_id, Keyframe.frame_idx, Keyframe.source_image)
                    .where(Keyframe.video_id.in_(_ids_param([v.id for v in lost]))).order_by(Keyframe.frame_idx)):
                frames.setdefault(vid, []).append((frame_idx, image))
        return [LostThumbnails(v.id, v.path, v.origin, v.size, v.mtime_ns, frames.get(v.id, [])) for v in lost]

    def restore_thumbnails(self, video_id: int, jpegs: dict[int, bytes]) -> None:
        """Thumbnails made again for a video (by frame_idx) into a new folder, which the video
        and its keyframes then name, in one commit; a keyframe without one shows none."""
        run_dir = self.thumb_root / f"v{video_id}-{time.time_ns():x}"
        try:
            with self._writing(run_dir, sum(map(len, jpegs.values()))):
                run_dir.mkdir(parents=True)
                for frame_idx, jpeg in jpegs.items():
                    (run_dir / f"{frame_idx}.jpg").write_bytes(jpeg)
            with self._writing(self.db_path), self._sessions.begin() as s:
                s.execute(update(Video).where(Video.id == video_id).values(thumb_dir=run_dir.name))
                s.execute(update(Keyframe).where(Keyframe.video_id == video_id).values(
                    thumbnail=run_dir.name + "/" + func.cast(Keyframe.frame_idx, Text) + ".jpg"))
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise

    def imported_videos(self, video_ids: Sequence[str] = ()) -> list[ImportedVideo]:
        """The imported videos (all, or those with these ids), each with its keyframes' source
        images in time order."""
        with self._sessions() as s:
            stmt = select(Video.id, Video.stem, Video.analyzers, Video.media_path).where(
                Video.origin != "decoded", Video.status == "indexed").order_by(Video.stem, Video.id)
            if video_ids:
                stmt = stmt.where(Video.stem.in_(video_ids))
            out = []
            for vid, stem, analyzers, media_path in s.execute(stmt).all():
                images = [KeyframeImage(kid, path) for kid, path in s.execute(
                    select(Keyframe.id, Keyframe.source_image).where(Keyframe.video_id == vid)
                    .order_by(Keyframe.timestamp, Keyframe.id))]
                out.append(ImportedVideo(vid, stem, analyzers or "", images, media_path))
            unknown = sorted(set(video_ids) - {v.video_id for v in out})
            if unknown:
                decoded = set(s.scalars(select(Video.stem).where(Video.stem.in_(unknown))))
                what = "a decoded video, not an imported one" if unknown[0] in decoded else "not in this index"
                raise UnknownVideoError(f"video {unknown[0]!r} is {what}: `evr analyze` works on the videos "
                                        "`evr import aic` imported")
        return out

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
            dirs = s.scalars(select(Video.thumb_dir).where(Video.id.in_(video_ids))).all()
            s.execute(delete(Keyframe).where(Keyframe.video_id.in_(video_ids)))
            s.execute(delete(Shot).where(Shot.video_id.in_(video_ids)))
            for video_id in video_ids:
                for storage in VIDEO_ANALYSES.values():
                    storage.clear(s, video_id)
            if keep_rows:
                s.execute(
                    update(Video)
                    .where(Video.id.in_(video_ids))
                    .values(status="failed", error=error, thumb_dir=None)
                )
            else:
                s.execute(delete(Video).where(Video.id.in_(video_ids)))
            _count_commit(s)
        self.sync_vectors()
        for d in dirs:
            if d:
                shutil.rmtree(self.thumb_root / d, ignore_errors=True)

    def repair(self) -> RepairReport:
        """The writer, before a run: save the vector index caught up with SQLite (it lags after a
        crash; one that disagrees with SQLite is built again) and delete thumbnail folders that
        no committed video refers to."""
        added, removed = self.sync_vectors()
        problem = self._vector_count_problem() if self.model() is not None else None
        if problem:
            log.warning("%s: building it again from SQLite", problem)
            self.build_vectors(force=True)
        self.vectors_path.with_suffix(".tmp").unlink(missing_ok=True)  # a save a kill cut short
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

    def stored_vectors(self, keyframe_ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of those keyframes that exist, in id order, from SQLite (the source of
        truth, not the index's copy)."""
        with self._sessions() as s:
            rows = s.execute(select(Embedding.keyframe_id, Embedding.vector)
                             .where(Embedding.keyframe_id.in_(_ids_param(keyframe_ids)))
                             .order_by(Embedding.keyframe_id)).all()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, self.vectors.dim), np.float32)
        return _unpack(rows)

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
                speech = self._speech_at(s, chunk)
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
                        video_path=v.media_path,
                        frame_idx=kf.frame_idx,
                        timestamp=kf.timestamp,
                        shot=kf.shot if shot_start is not None else None,
                        shot_start=shot_start,
                        shot_end=shot_end,
                        thumbnail=self.thumb_root / kf.thumbnail,
                        fps=v.fps,
                        duration=v.duration,
                        ocr_text=kf.ocr_text,
                        person_count=kf.person_count,
                        poses=poses.get(kf.id, []),
                        media_info=json.loads(v.media_info) if v.media_info else None,
                        speech=speech.get(kf.id),
                    )
        return out

    def _speech_at(self, s: Session, keyframe_ids: Sequence[int]) -> dict[int, SpeechSegment]:
        """For each of these keyframes that hears speech, the segment said at its time, else the
        nearest one within SPEECH_REACH_S (without its word timings)."""
        rows = s.execute(
            select(Keyframe.id, Keyframe.timestamp, Speech.start, Speech.end, Speech.text, Speech.language,
                   Speech.confidence)
            .join(Speech, _within_reach(Keyframe, Speech)).where(Keyframe.id.in_(keyframe_ids)))
        best: dict[int, tuple[float, SpeechSegment]] = {}
        for kid, t, start, end, said, language, confidence in rows:
            distance = max(start - t, t - end, 0.0)
            if kid not in best or distance < best[kid][0]:
                best[kid] = (distance, SpeechSegment(start, end, said, language, confidence))
        return {kid: segment for kid, (_, segment) in best.items()}

    def _matching(self, f: KeyframeFilter, among: np.ndarray | None = None):
        """A SELECT of the ids of the keyframes that pass every condition of `f` (and are `among`
        those ids), or None when its OCR or spoken words can match nothing. Every condition is on an
        indexed column or table. Pose labels are probed per keyframe when the keyframes are a
        given few, and read as one list of ids otherwise."""
        stmt = select(Keyframe.id)
        if among is not None:
            stmt = stmt.where(Keyframe.id.in_(_ids_param(among)))
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
            if among is not None:
                stmt = stmt.where(select(KeyframePose.keyframe_id).where(
                    KeyframePose.label == label, KeyframePose.keyframe_id == Keyframe.id).exists())
            else:
                stmt = stmt.where(Keyframe.id.in_(select(KeyframePose.keyframe_id).where(KeyframePose.label == label)))
        if f.ocr is not None:
            match = fts_query(f.ocr)
            if match is None:
                return None
            stmt = stmt.where(Keyframe.id.in_(select(OCR_FTS.c.rowid).where(fts_match(match, "ocr_fts"))))
        if f.speech is not None:
            match = fts_query(f.speech)
            if match is None:
                return None
            # The keyframes within reach of a segment that says every word, found from the segments.
            said = select(Speech).where(Speech.id.in_(
                select(SPEECH_FTS.c.rowid).where(fts_match(match, "speech_fts")))).subquery()
            near = aliased(Keyframe)
            stmt = stmt.where(Keyframe.id.in_(select(near.id).join(said, _within_reach(near, said.c))))
        return stmt

    def filter_ids(self, f: KeyframeFilter, among: np.ndarray | None = None) -> np.ndarray:
        """Ids of the keyframes that pass every condition of `f` (and are `among` those ids, when
        given), sorted."""
        stmt = self._matching(f, among)
        if stmt is None:
            return np.zeros(0, np.int64)
        with self._sessions() as s:
            return np.sort(_id_array(s, stmt))

    def nearest(self, vector: np.ndarray, k: int, where: KeyframeFilter | None = None,
                among: np.ndarray | None = None) -> list[tuple[int, float]]:
        with self._lock:  # not while another thread's sync changes the index
            return self._nearest(vector, k, where, among)

    def _nearest(self, vector: np.ndarray, k: int, where: KeyframeFilter | None,
                 among: np.ndarray | None) -> list[tuple[int, float]]:
        """The k keyframes most similar to `vector`, as (id, cosine similarity) best first, among
        those that pass `where` (and are `among` those ids, when given).

        A filter is first applied to the nearest POST_FILTER x k candidates: a broad filter (say
        a third of the archive) keeps k of them, and costs one small query. When fewer than k
        pass, the filter is selective, its matching ids are few and cheap to read, and the search
        runs again restricted to them."""
        active = where is not None and where.active
        if self.milvus:
            return self._nearest_milvus(vector, k, where if active else None, among)
        if among is not None:
            return self._ranked(vector, k, self.filter_ids(where, among) if active else np.asarray(among))
        if not active:
            return self._ranked(vector, k)
        fetch = max(POST_FILTER_MIN, POST_FILTER * k)
        _, ids = self.vectors.search(vector, fetch)
        candidates = ids[0][ids[0] >= 0]
        passing = candidates[np.isin(candidates, self.filter_ids(where, among=candidates))]
        if len(passing) >= k or len(candidates) < fetch:  # enough, or every keyframe was a candidate
            return self._exact(vector, passing)[:k]
        return self._ranked(vector, k, self.filter_ids(where))

    def _nearest_milvus(self, vector: np.ndarray, k: int, where: KeyframeFilter | None,
                        among: np.ndarray | None) -> list[tuple[int, float]]:
        """Filters run inside Milvus as an expression; OCR and speech words, which SQLite's
        full-text indexes match, become the keyframe ids they allow."""
        allowed = None if among is None else np.asarray(among)
        if where is not None and (where.ocr is not None or where.speech is not None):
            allowed = self.filter_ids(KeyframeFilter(ocr=where.ocr, speech=where.speech), among=allowed)
        expr = filter_expression(where) if where is not None else ""
        return self._ranked(vector, k, allowed, expr)

    def _ranked(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None,
                expr: str = "") -> list[tuple[int, float]]:
        """Top k from the index, scored exactly: an approximate index's top 2k + 20 candidates are
        re-ranked with the stored vectors (a flat index's scores are exact already). `expr`: a
        Milvus filter expression (Milvus only)."""
        index = self.vectors
        fetch = k if index.exact else 2 * k + 20
        scores, ids = index.search(vector, fetch, allowed, expr) if expr else index.search(vector, fetch, allowed)
        if index.exact:  # ties by id, as _exact orders them
            return sorted(((int(i), float(sc)) for i, sc in zip(ids[0], scores[0]) if i >= 0), key=lambda p: (-p[1], p[0]))
        return self._exact(vector, ids[0][ids[0] >= 0])[:k]

    def _exact(self, vector: np.ndarray, keyframe_ids: np.ndarray) -> list[tuple[int, float]]:
        """Those keyframes by exact cosine similarity to `vector`, best first (ties by id)."""
        ids, vectors = self.stored_vectors(keyframe_ids)
        scores = vectors @ np.asarray(vector, dtype=np.float32)
        order = np.lexsort((ids, -scores))
        return [(int(ids[i]), float(scores[i])) for i in order]

    def ocr_search(self, query: str, where: KeyframeFilter | None = None, limit: int = 100) -> list[tuple[int, float]]:
        """The best `limit` keyframes whose OCR text holds every word of `query` (accents and case
        ignored) and that pass `where`, as (keyframe id, score) with score = -bm25 (higher is
        better); then, below them, those holding each word or a near term (fulltext.py). Filter
        and limit are applied by SQLite."""
        matching = self._matching(where) if where is not None and where.active else None
        if where is not None and where.active and matching is None:
            return []
        bm25 = func.bm25(literal_column("ocr_fts"))

        def ranked(s: Session, expression: str) -> list[tuple[int, float]]:
            stmt = select(OCR_FTS.c.rowid, bm25).where(fts_match(expression, "ocr_fts"))
            if matching is not None:
                stmt = stmt.where(OCR_FTS.c.rowid.in_(matching))
            return [(int(kid), -float(b)) for kid, b in s.execute(stmt.order_by(bm25, OCR_FTS.c.rowid).limit(limit))]

        with self._sessions() as s:
            match = word_match(s, "ocr_fts", query)
            if match is None:
                return []
            found = ranked(s, match.exact)
            if match.near and len(found) < limit:
                found = _then_near(found, ranked(s, match.near), limit)
        return found

    def speech_search(self, query: str, where: KeyframeFilter | None = None,
                      limit: int = 100) -> list[tuple[int, float]]:
        """The moments where every word of `query` is said in one speech segment (accents and case
        ignored): for each of the best `limit` segments by BM25, the keyframe passing `where` that
        is nearest the first of those words (within SPEECH_REACH_S of the segment), as (keyframe
        id, -bm25), best first; a keyframe near several segments counts once. Then, below them,
        the moments where each word or a near term of it is said (fulltext.py)."""
        with self._sessions() as s:
            match = word_match(s, "speech_fts", query)
            if match is None:
                return []
            found = self._moments(s, match.exact, match.words, where, limit)
            if match.near and len(found) < limit:
                found = _then_near(found, self._moments(s, match.near, match.words, where, limit), limit)
        return found

    def _moments(self, s: Session, expression: str, wanted: frozenset[str], where: KeyframeFilter | None,
                 limit: int) -> list[tuple[int, float]]:
        """speech_search's moments for one MATCH expression; `wanted`: the words whose first
        one said marks the moment."""
        bm25 = func.bm25(literal_column("speech_fts"))
        found = (select(SPEECH_FTS.c.rowid.label("id"), bm25.label("bm25")).where(fts_match(expression, "speech_fts"))
                 .order_by(bm25, SPEECH_FTS.c.rowid).limit(4 * limit).subquery())
        # Each segment (best first) with the keyframes within its reach, in one query.
        segments: dict[int, tuple[float, str, float, list[tuple[int, float]]]] = {}
        for seg, start, said, score, kid, t in s.execute(
                select(Speech.id, Speech.start, Speech.words, found.c.bm25, Keyframe.id, Keyframe.timestamp)
                .join(found, found.c.id == Speech.id).join(Keyframe, _within_reach(Keyframe, Speech))
                .order_by(found.c.bm25, Speech.id)):
            segments.setdefault(seg, (start, said, score, []))[3].append((kid, t))
        allowed = None
        if where is not None and where.active:
            near = np.array([kid for *_, keyframes in segments.values() for kid, _ in keyframes], np.int64)
            allowed = set(self.filter_ids(where, among=near).tolist())
        out: dict[int, float] = {}
        for start, said, score, keyframes in segments.values():
            moment = next((t for w, t, _ in json.loads(said) if set(words(w)) & wanted), start)
            passing = [(abs(t - moment), kid) for kid, t in keyframes if allowed is None or kid in allowed]
            if passing:
                out.setdefault(min(passing)[1], -float(score))
            if len(out) == limit:
                break
        return list(out.items())

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

    def _vector_count_problem(self) -> str | None:
        """What is wrong when the caught-up vector index holds other than one vector per keyframe
        (a cheap check: two counts, no scan of ids or vectors)."""
        for _ in range(3):  # a commit between the two reads moves the counts: read again
            self.sync_vectors()
            with self._sessions() as s:
                keyframes = s.scalar(select(func.count()).select_from(Keyframe))
            if self._meta("generation") == self._synced:
                break
        held = self.vectors.ntotal
        if held < keyframes:
            with self._sessions() as s:  # a scan of the vectors' table, only when something is wrong
                stored = s.scalar(select(func.count()).select_from(Embedding))
            if stored < keyframes:  # damage no rebuild mends: their videos must be indexed again
                return f"{keyframes - stored} keyframes have no stored vector"
            return f"the vector index lacks {keyframes - held} vectors: run `evr reindex`"
        if held > keyframes:
            return f"the vector index holds {held - keyframes} vectors of deleted keyframes: run `evr reindex`"
        return None

    def stats(self) -> dict:
        """Counts, and a check for damage. The index file lagging SQLite is no damage: the
        in-memory copy is brought up to date first and `vectors_pending` says by how much."""
        model = self.model()
        problem = self._vector_count_problem() if model is not None else None
        problems = [p for p in (self.file_problem, problem) if p]
        # One statement per check: each reads one snapshot, even while a run commits.
        with self._sessions() as s:
            by_status = dict(s.execute(select(Video.status, func.count()).group_by(Video.status)).all())
            partial = s.scalar(select(func.count()).select_from(Video)
                               .where(Video.status == "indexed", Video.error.is_not(None)))
            keyframes = s.scalar(select(func.count()).select_from(Keyframe))
            speech = s.scalar(select(func.count()).select_from(Speech))
            thumb_dirs = s.scalars(select(Video.thumb_dir).where(Video.status == "indexed")).all()
        missing = sum(1 for d in thumb_dirs if d and not (self.thumb_root / d).is_dir())
        if missing:
            problems.append(f"{missing} indexed videos lost their thumbnail folder: `evr reindex` (or "
                            "the next `evr index`) makes them again")
        return {
            "videos": by_status.get("indexed", 0),
            "videos_failed": by_status.get("failed", 0),
            "videos_incomplete": by_status.get("indexing", 0),
            "videos_partial": partial,
            "keyframes": keyframes,
            "speech_segments": speech,
            "vectors": self.vectors.ntotal if model is not None else 0,
            "vectors_pending": self._unsaved if model is not None else 0,
            "vector_index": self.vectors.kind if model is not None else None,
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
        source_image=kf.source_image,
    )
    for name, result in kf.analyses.items():
        ANALYSES[name].put(row, result)
    return row


def _set_text(row: Keyframe, boxes: Sequence[TextBox]) -> None:
    """The OCR result of a keyframe row (its full-text entry is written after the flush)."""
    row.ocr_text = " ".join(b.text for b in boxes)
    row.ocr_boxes = [OcrBox(text=b.text, x0=b.box[0], y0=b.box[1], x1=b.box[2], y1=b.box[3],
                            confidence=b.confidence) for b in boxes]


def _set_persons(row: Keyframe, found: PersonsInFrame) -> None:
    row.person_count = len(found.persons)
    row.person_area = found.mask_area
    row.person_mask = found.mask_png
    row.persons = [
        Person(x0=p.box[0], y0=p.box[1], x1=p.box[2], y1=p.box[3], score=p.score,
               keypoints=json.dumps([[round(v, 4) for v in kp] for kp in p.keypoints]),
               labels=json.dumps(p.labels))
        for p in found.persons
    ]
    row.poses = [KeyframePose(label=label) for label in sorted({lb for p in found.persons for lb in p.labels})]


def _clear_text(s: Session, keyframe_id: int) -> None:
    s.execute(delete(OcrBox).where(OcrBox.keyframe_id == keyframe_id))
    s.execute(text("DELETE FROM ocr_fts WHERE rowid = :id"), {"id": keyframe_id})


def _index_text(s: Session, rows: Sequence[Keyframe]) -> None:
    """The full-text entries of keyframe rows that have OCR text (after a flush gave them ids)."""
    add_texts(s, "ocr_fts", [(r.id, r.ocr_text) for r in rows if r.ocr_text])


def _within_reach(keyframe, segment):
    """SQL: the keyframe (a Keyframe entity or alias) is within SPEECH_REACH_S of the speech
    segment (the Speech entity, or a subquery's columns) in the same video."""
    return ((segment.video_id == keyframe.video_id) & (keyframe.timestamp >= segment.start - SPEECH_REACH_S)
            & (keyframe.timestamp <= segment.end + SPEECH_REACH_S))


def _clear_persons(s: Session, keyframe_id: int) -> None:
    s.execute(delete(Person).where(Person.keyframe_id == keyframe_id))
    s.execute(delete(KeyframePose).where(KeyframePose.keyframe_id == keyframe_id))


@dataclass(frozen=True)
class AnalysisStorage:
    """How one analyzer's result is kept: `put` sets it on a keyframe row (new or loaded),
    `clear` deletes what an earlier run stored for a keyframe."""

    put: Callable[[Keyframe, Any], None]
    clear: Callable[[Session, int], None]


# Frame analyzer name (indexer/analyzers/__init__.py) -> its storage: a new analyzer adds its tables
# to schema.py and one entry here.
ANALYSES: dict[str, AnalysisStorage] = {
    "ocr": AnalysisStorage(_set_text, _clear_text),
    "persons": AnalysisStorage(_set_persons, _clear_persons),
}


def _set_speech(s: Session, video_id: int, segments: Sequence[SpeechSegment]) -> None:
    """A video's speech segments and their full-text entries."""
    rows = [Speech(video_id=video_id, start=seg.start, end=seg.end, text=seg.text, language=seg.language,
                   confidence=seg.confidence, words=json.dumps([list(w) for w in seg.words], ensure_ascii=False))
            for seg in segments]
    s.add_all(rows)
    s.flush()
    add_texts(s, "speech_fts", [(r.id, r.text) for r in rows])


def _clear_speech(s: Session, video_id: int) -> None:
    s.execute(delete(Speech).where(Speech.video_id == video_id))  # the trigger empties speech_fts


@dataclass(frozen=True)
class VideoAnalysisStorage:
    """How a file analyzer's result for a whole video is kept: `put` writes it, `clear` deletes
    what an earlier run stored for the video."""

    put: Callable[[Session, int, Any], None]
    clear: Callable[[Session, int], None]


# File analyzer name -> its storage.
VIDEO_ANALYSES: dict[str, VideoAnalysisStorage] = {
    "speech": VideoAnalysisStorage(_set_speech, _clear_speech),
}


def _check_analyses(results: dict, video_results: dict | None = None) -> None:
    unknown = (set(results) - set(ANALYSES)) | (set(video_results or {}) - set(VIDEO_ANALYSES))
    if unknown:
        raise ValueError(f"no storage for the results of analyzer(s) {', '.join(sorted(unknown))}")


def _count_commit(s: Session) -> None:
    """Count a commit that changed keyframes: readers compare the counter to know when their
    in-memory vectors are behind."""
    s.execute(text("INSERT INTO meta(key, value) VALUES ('generation', '1') "
                   "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"))


def _last_removal(s: Session, pruned: int) -> int:
    """The seq of the latest logged removal (`pruned` when the writer pruned them all)."""
    return max(pruned, s.scalar(select(func.max(VectorRemoval.seq))) or 0)


def _then_near(exact: list[tuple[int, float]], near: list[tuple[int, float]],
               limit: int) -> list[tuple[int, float]]:
    """The exact matches, then the near ones they lack, up to `limit`; the near ones' scores
    shifted below the lowest exact score (their order kept), so a score never ranks a near
    match above an exact one."""
    seen = {kid for kid, _ in exact}
    rest = [(kid, score) for kid, score in near if kid not in seen][: limit - len(exact)]
    if not rest or not exact:
        return exact + rest
    shift = min(score for _, score in exact) - max(score for _, score in rest) - 1.0
    return exact + [(kid, score + min(shift, 0.0)) for kid, score in rest]


def _ids_param(ids: Sequence[int] | np.ndarray):
    """A SELECT of the given ids, passed as one JSON parameter: any number of them, where a
    bound parameter each would meet SQLite's limit on parameters."""
    return select(literal_column("value")).select_from(func.json_each(json.dumps(np.asarray(ids).tolist())))


def _id_array(s: Session, stmt) -> np.ndarray:
    """The integer column of `stmt` as an array, joined into one string by SQLite and parsed by
    numpy: a million ids cost no Python object each (about 4x faster than fetching rows)."""
    sub = stmt.subquery()
    joined = s.scalar(select(func.group_concat(list(sub.c)[0])))
    return np.fromstring(joined, dtype=np.int64, sep=",") if joined else np.zeros(0, np.int64)


def _reader_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.execute("PRAGMA foreign_keys=ON")


def _writable(folder: Path) -> bool:
    """Whether this process may write in `folder` (not on a read-only mount, not refused)."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return False
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    # Takes effect only as a new file's first statement: 8 KB pages hold five 1.5 KB vector rows
    # where 4 KB pages hold two (2 KB per vector).
    cur.execute("PRAGMA page_size=8192")
    cur.execute("PRAGMA journal_mode=WAL")  # readers (the UI) never block the indexer
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f2").tobytes()


def _unpack(rows: Sequence[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """(keyframe id, float16 blob) rows -> (ids, float32 unit vectors). Normalised again: float16
    rounding leaves a norm off 1 by up to 1e-3, and a vector must score 1 against itself."""
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f2").reshape(len(rows), -1).astype(np.float32)
    return ids, vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
