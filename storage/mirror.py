"""The vector index kept in step with SQLite, whatever its backend (storage/vectors/).

SQLite holds every vector; the index is a search structure over them. The writer saves it after
commits (at most every `checkpoint_s` seconds and at close), so it may lag SQLite by a few
videos: that is normal, not damage. Every process brings its copy up to what is committed before
it searches (`sync`): the commit counter in the meta table says when that is needed, and the
index's state says what it lacks, the keyframes above its last id and the removals logged after
its last, so catching up reads only those. A shared index (a Milvus collection) is kept up to
date by the writer alone; readers only search it. The writer builds the index anew (`build`)
when its kind should change, when an IVF index outgrew its training, or when it disagrees with
SQLite.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import numpy as np
from sqlalchemy import delete, func, select

from . import features
from .catalog import Catalog, vector_rows
from .database import Database
from .errors import StoreError
from .meta import IndexFacts
from .schema import Keyframe, Meta, VectorRemoval, Video
from .sqlutil import id_array, ids_param
from .types import PRIMARY_MODEL
from .vectors import Backend, IndexFileError, IndexState, VectorIndex, VectorIndexSettings, kind_for

log = logging.getLogger(__name__)


class VectorMirror:
    """The vector index of one model's vectors (`model`: [clip]'s, or one of [[models]] by name).
    Its position (`IndexState.last_keyframe`) is its last row in the order SQLite wrote them
    (catalog.vector_rows): for [clip] the keyframe id. The facts it keeps in the meta table carry
    the model's name, but for [clip]'s."""

    def __init__(
        self,
        db: Database,
        facts: IndexFacts,
        catalog: Catalog,
        settings: VectorIndexSettings,
        checkpoint_s: float,
        model: str = PRIMARY_MODEL,
    ):
        self.db, self.facts, self.catalog = db, facts, catalog
        self.model = model
        self.checkpoint_s = checkpoint_s
        self.backend = Backend(
            settings,
            db.data_dir,
            [f for fs in features.FEATURES.values() for f in fs.fields],
            recorded=lambda: facts.json_object(self.fact("milvus_state")),
            record=lambda state: facts.set({self.fact("milvus_state"): json.dumps(state)}),
            model=model,
        )
        self._index: VectorIndex | None = None
        self.unsaved = 0  # changes held in memory that the saved index lacks
        # What is wrong with the saved index (unreadable, missing), mended in memory from SQLite
        # meanwhile; stats reports it until a save clears it.
        self.file_problem: str | None = None
        self._synced: str | None = None  # the commit counter the index matches
        self._built: str | None = None  # the writer's last build of the index, when opened
        # Readers map a FAISS file (instant, shared, read-only) until they must change it.
        self._map_file = not db.writer
        self.lock = threading.RLock()  # one app process shares a store between sessions' threads
        self._last_save = time.monotonic()

    def fact(self, key: str) -> str:
        """The meta table's key of one of this index's facts."""
        return key if self.model == PRIMARY_MODEL else f"{key}:{self.model}"

    @property
    def bound(self):
        """The model whose vectors it holds (ModelInfo), or None before any is bound."""
        return self.facts.models().get(self.model)

    # -- the index as opened ----------------------------------------------------------------------

    @property
    def index(self) -> VectorIndex:
        """The vector index as opened (see `sync` for bringing it up to date)."""
        if self._index is None:
            model = self.bound
            if model is None:
                raise StoreError(
                    "the index holds no vectors yet: run `evr index <folder>`"
                    if self.model == PRIMARY_MODEL
                    else f"the index holds no vectors of the model {self.model!r} yet: run `evr index`"
                )
            self._built = self.facts.get(self.fact("vectors_built"))  # read before the file: a newer build reloads
            pruned = int(self.facts.get("removals_pruned") or 0)
            try:
                self._index = self.backend.open(model.dim, self.db.writer, self._map_file, pruned)
            except IndexFileError as exc:  # SQLite holds every vector: start from nothing and catch up
                self._index = self.backend.empty_flat(model.dim)
                if self.backend.path.exists():
                    self.file_problem = f"{exc}; searching an exact index rebuilt from SQLite"
                elif self.facts.get(self.fact("vectors_saved")):
                    # Saved once, and gone (a run killed before its first save never had one).
                    self.file_problem = (
                        f"the vector index file {self.backend.path} is missing; searching an "
                        "exact index rebuilt from SQLite (slower)"
                    )
                if self.file_problem:
                    self.file_problem += ": `evr reindex` saves it again"
                    log.warning("%s", self.file_problem)
        return self._index

    def drop(self) -> None:
        """Forget the opened index (the model changed: an index file of another dimension goes)."""
        with self.lock:
            if self._index is not None:
                self._index.close()
            self._index, self.unsaved = None, 0
            self.backend.path.unlink(missing_ok=True)

    def discard(self) -> None:
        """Delete the index where its backend keeps it (its file, its collection): the model's
        vectors were deleted."""
        with self.lock:
            if self.bound is not None:
                self.index.discard()
            self.drop()

    # -- catching up ------------------------------------------------------------------------------

    def sync(self) -> tuple[int, int]:
        """Bring the index up to what SQLite has committed: (added, removed). Reads only what the
        index lacks; one small read when nothing was committed since."""
        with self.lock:
            return self._sync()

    def _sync(self) -> tuple[int, int]:
        facts = self.facts.current()  # read first: a commit after this read triggers the next sync
        if self.bound is None:
            return 0, 0
        generation, built, pruned = (
            facts.get("generation"),
            facts.get(self.fact("vectors_built")),
            facts.get("removals_pruned"),
        )
        if self._index is not None and (generation, built) == (self._synced, self._built):
            return 0, 0
        if self._index is not None and self._index.shared and not self.db.writer:
            return 0, 0  # the writer keeps a shared index up to date
        pruned = int(pruned or 0)
        if (
            self._index is not None
            and not self.db.writer
            and (built != self._built or self._index.state.last_removal < pruned)
        ):
            # The writer built the index anew, or pruned removals this copy still lacks: the
            # saved index has them (a writer's own copy is never behind its own pruning).
            self._index.close()
            self._index, self.unsaved = None, 0
        index = self.index
        if index.shared and not self.db.writer:
            return 0, 0
        # What the index lacks, in one statement (one snapshot): the latest removal, the removals
        # after its last (for [clip], only of ids it can hold: later ones were added and removed
        # while it was away), and whether any vector is newer than its last.
        at, kid, _, picks = vector_rows(self.model)
        latest = select(func.max(VectorRemoval.seq)).scalar_subquery()
        after = VectorRemoval.seq > index.state.last_removal
        if self.model == PRIMARY_MODEL:
            after = after & (VectorRemoval.keyframe_id <= index.state.last_keyframe)
        removals = select(func.group_concat(VectorRemoval.keyframe_id)).where(after).scalar_subquery()
        newer = select(at).where(picks, at > index.state.last_keyframe).limit(1).scalar_subquery()
        with self.db.session() as s:
            latest, removals, newer = s.execute(select(latest, removals, newer)).one()
        last_removal = max(pruned, latest or 0)
        gone = np.fromstring(removals, dtype=np.int64, sep=",") if removals else np.zeros(0, np.int64)
        if index.mapped and (len(gone) or newer is not None):
            # A mapped index is read-only: read the file into memory, then catch that up.
            self._map_file, self._index = False, None
            return self._sync()
        removed = index.remove(gone) if len(gone) else 0
        added, position = 0, index.state.last_keyframe
        if newer is not None:
            # `position` ends as the last batch's: where the next catch-up starts
            for position, ids, vecs in self.catalog.vectors_after(position, self.model):  # noqa: B007, B020
                index.add(ids, vecs, self.filter_fields(ids) if index.keeps_fields else None)
                added += len(ids)
        index.state = IndexState(position, last_removal)
        self.unsaved += added + removed
        self._synced = generation
        return added, removed

    def filter_fields(self, keyframe_ids: np.ndarray) -> list[dict]:
        """The fields an index that keeps them filters on (video, time, each feature's), for
        each of these keyframes in their order."""
        with self.db.session() as s:
            core = {
                kid: {"video": stem, "time": t}
                for kid, stem, t in s.execute(
                    select(Keyframe.id, Video.stem, Keyframe.timestamp)
                    .join(Video, Keyframe.video_id == Video.id)
                    .where(Keyframe.id.in_(ids_param(keyframe_ids)))
                )
            }
            for feature in features.FEATURES.values():
                if feature.fields:
                    for kid, values in feature.field_values(s, keyframe_ids).items():
                        core[kid].update(values)
        return [core[int(kid)] for kid in keyframe_ids]

    def fields_changed(self, keyframe_ids: np.ndarray) -> None:
        """Analyses changed these keyframes' filter fields: an index that keeps them gets them
        again (one opened for the first time here is filled first)."""
        with self.lock:
            self._sync()
            if self.index.keeps_fields:
                ids, vectors = self.catalog.stored_vectors(keyframe_ids, self.model)
                self.index.add(ids, vectors, self.filter_fields(ids))

    # -- building and saving ----------------------------------------------------------------------

    def build(self, force: bool = False) -> str | None:
        """The writer, after a run (and `evr reindex`): build the index anew when its kind should
        change (`[vectors] kind`, or "auto" and the archive's size), when it outgrew its training,
        when it disagrees with SQLite, or when `force`d. Returns the kind built, or None when
        the index was fine as it was (or holds nothing yet)."""
        model = self.bound
        if model is None:
            return None
        with self.lock:
            self._sync()
            current = self.index
            stored = self.vector_count()
            kind = kind_for(self.backend.settings, stored)
            if not (force or kind != current.kind or current.ntotal != stored or current.outgrown()):
                return None
            log.info("building the %s vector index of %s over %s keyframes", kind, self.model, f"{stored:,}")
            _, kid, _, picks = vector_rows(self.model)
            with self.db.session() as s:
                last_removal = _last_removal(s, int(self.facts.get("removals_pruned") or 0))
                ids = id_array(s, select(kid).where(picks))

            def sample(n: int) -> np.ndarray:
                chosen = np.sort(np.random.default_rng(0).choice(ids, n, replace=False))
                return self.catalog.stored_vectors(chosen, self.model)[1]

            index = self.backend.empty(kind, model.dim, len(ids), sample, current)
            position = 0
            for position, batch_ids, vecs in self.catalog.vectors_after(0, self.model):  # noqa: B007 (read after)
                index.add(batch_ids, vecs, self.filter_fields(batch_ids) if index.keeps_fields else None)
            index.state = IndexState(position, last_removal)
            # Until this save the old index stays: a kill leaves it, and the next run catches it
            # up and builds again.
            self._index, self.unsaved = index, index.ntotal
            self._synced = None
            self.flush()
            self.facts.set({self.fact("vectors_built"): str(time.time_ns())})  # readers open the new index
            self._built = self.facts.get(self.fact("vectors_built"))
            return kind

    def flush(self) -> None:
        """Save the index if it changed since the last save."""
        with self.lock:
            if not (self.unsaved or self.file_problem) or self._index is None:
                return
            with self.db.writing(self.backend.path, self._index.nbytes):
                self._index.save()
            self.unsaved, self.file_problem = 0, None
            self._last_save = time.monotonic()
            if not self._index.shared and not self.facts.get(self.fact("vectors_saved")):
                self.facts.set({self.fact("vectors_saved"): "1"})  # from now on a missing file is damage, not lag

    def checkpoint(self) -> None:
        """Save the index if the last save is `checkpoint_s` old (the writer calls this between
        videos: readers then see an index at most that far behind SQLite)."""
        if time.monotonic() - self._last_save >= self.checkpoint_s:
            self.flush()

    def applied_removals(self) -> int | None:
        """The last logged removal the saved index has applied, or None when the log must stay
        for it (changes unsaved; a shared index, see `prune_removals`)."""
        if self._index is None or self.unsaved or self._index.shared:
            return None
        return self._index.state.last_removal

    def vector_count(self) -> int:
        """How many vectors of its model SQLite holds ([clip]: one per keyframe, a cheap count)."""
        return self.catalog.keyframe_count() if self.model == PRIMARY_MODEL else self.catalog.vector_count(self.model)

    def close(self) -> None:
        if self._index is not None:
            self._index.close()


def prune_removals(db: Database, facts: IndexFacts, mirrors: list[VectorMirror]) -> None:
    """Drop the logged removals every model's saved index has applied (the writer, at close).
    A shared index keeps the log: a FAISS file of this directory, used again later, catches up
    from it (a collection is told apart by its own recorded state)."""
    applied = [m.applied_removals() for m in mirrors]
    if not applied or None in applied:
        return
    upto = min(applied)
    if upto > int(facts.get("removals_pruned") or 0):
        with db.transaction() as s:
            s.execute(delete(VectorRemoval).where(VectorRemoval.seq <= upto))
            s.merge(Meta(key="removals_pruned", value=str(upto)))
        facts.refresh()


def _last_removal(s, pruned: int) -> int:
    """The seq of the latest logged removal (`pruned` when the writer pruned them all)."""
    return max(pruned, s.scalar(select(func.max(VectorRemoval.seq))) or 0)
