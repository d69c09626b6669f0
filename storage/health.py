"""The index's health: counts and damage for `evr stats`, and the writer's repair before a run.

A vector index that lags SQLite during a run is no damage (the mirror catches up in memory and
`vectors_pending` says by how much); damage is what no catch-up mends: keyframes without a
stored vector, an index holding more or fewer vectors than there are keyframes, an unreadable or
vanished index file, lost thumbnail folders.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from . import features
from .catalog import Catalog
from .database import Database
from .meta import IndexFacts
from .mirror import VectorMirror
from .schema import Embedding, Keyframe, Video
from .types import PRIMARY_MODEL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepairReport:
    vectors_added: int
    vectors_removed: int
    thumb_dirs_removed: int

    @property
    def changed(self) -> bool:
        return bool(self.vectors_added or self.vectors_removed or self.thumb_dirs_removed)

    def __str__(self) -> str:
        done = [
            f"{n} {what}"
            for n, what in (
                (self.vectors_added, "vectors added to the index file"),
                (self.vectors_removed, "vectors removed from it"),
                (self.thumb_dirs_removed, "unused thumbnail folders deleted"),
            )
            if n
        ]
        return ", ".join(done) or "nothing to mend"


class Health:
    def __init__(self, db: Database, facts: IndexFacts, catalog: Catalog, mirrors: Callable[[], list[VectorMirror]]):
        self.db, self.facts, self.catalog, self.mirrors = db, facts, catalog, mirrors

    @property
    def mirror(self) -> VectorMirror:
        """[clip]'s vector index."""
        return self.mirrors()[0]

    def stats(self) -> dict:
        """Counts, and a check for damage. The index lagging SQLite is no damage: it is caught up
        in memory first and `vectors_pending` says by how much."""
        model = self.facts.model()
        mirrors = self.mirrors() if model is not None else []
        problems, stored = [], {}
        for m in mirrors:
            stored[m.model], counted = self._vector_count_problem(m)  # opens the index: file_problem is known after
            problems += [p for p in (m.file_problem, counted) if p]
        # One statement per check: each reads one snapshot, even while a run commits.
        with self.db.session() as s:
            by_status = dict(s.execute(select(Video.status, func.count()).group_by(Video.status)).all())
            partial = s.scalar(
                select(func.count()).select_from(Video).where(Video.status == "indexed", Video.error.is_not(None))
            )
            keyframes = s.scalar(select(func.count()).select_from(Keyframe))
            counted = {key: n for f in features.FEATURES.values() for key, n in f.counts(s).items()}
        lost = len(self.catalog.lost_thumbnails())
        if lost:
            problems.append(
                f"{lost} indexed videos lost their thumbnail folder: `evr reindex` (or the next "
                "`evr index`) makes them again"
            )
        index = self.mirror.index if model is not None else None
        models = {}
        for m in mirrors:
            held = m.index.ntotal
            models[m.model] = {
                "model": m.bound.name,
                "pretrained": m.bound.pretrained,
                "dim": m.bound.dim,
                "vectors": held,
                "vector_index": m.index.kind,
                "keyframes_without": keyframes - (held if m.model == PRIMARY_MODEL else stored[m.model]),
            }
        return {
            "videos": by_status.get("indexed", 0),
            "videos_failed": by_status.get("failed", 0),
            "videos_incomplete": by_status.get("indexing", 0),
            "videos_partial": partial,
            "keyframes": keyframes,
            **counted,
            "vectors": index.ntotal if index is not None else 0,
            "vectors_pending": self.mirror.unsaved if index is not None else 0,
            "vector_index": index.kind if index is not None else None,
            "consistent": not problems,
            "problems": problems,
            "model": model.name if model else None,
            "pretrained": model.pretrained if model else None,
            "dim": model.dim if model else None,
            "models": models,
            # A run under way (it holds the writer's lock): how far it is.
            "run": self.facts.run() if self.db.writer_active() else None,
            "data_dir": str(self.db.data_dir),
        }

    def repair(self) -> RepairReport:
        """The writer, before a run: save the index caught up with SQLite (it lags after a crash;
        one that disagrees with SQLite is built again) and delete thumbnail folders that no
        committed video refers to."""
        added = removed = 0
        for mirror in self.mirrors() if self.facts.model() is not None else [self.mirror]:
            synced = mirror.sync()
            added, removed = added + synced[0], removed + synced[1]
            problem = self._vector_count_problem(mirror)[1] if mirror.bound is not None else None
            if problem:
                log.warning("%s: building it again from SQLite", problem)
                mirror.build(force=True)
            mirror.backend.path.with_suffix(".tmp").unlink(missing_ok=True)  # a save a kill cut short
        thumbs_removed = 0
        with self.db.session() as s:
            live = set(s.scalars(select(Video.thumb_dir).where(Video.thumb_dir.is_not(None))).all())
        for d in self.db.thumb_root.iterdir():
            if d.is_dir() and d.name not in live:
                shutil.rmtree(d, ignore_errors=True)
                thumbs_removed += 1
        for mirror in self.mirrors():
            mirror.flush()
        return RepairReport(added, removed, thumbs_removed)

    def _vector_count_problem(self, mirror: VectorMirror) -> tuple[int, str | None]:
        """(the vectors of the mirror's model that SQLite holds, what is wrong when the caught-up index
        holds other than one vector per keyframe ([clip]'s; another model's: one per stored vector
        of it)), a cheap check: two counts, no scan of ids or vectors."""
        for _ in range(3):  # a commit between the two reads moves the counts: read again
            mirror.sync()
            expected = mirror.vector_count()  # [clip]: the keyframes
            if self.facts.refresh().get("generation") == mirror._synced:
                break
        held = mirror.index.ntotal
        name = "the vector index" if mirror.model == PRIMARY_MODEL else f"the vector index of {mirror.model}"
        if held > expected:
            return expected, f"{name} holds {held - expected} vectors of deleted keyframes: run `evr reindex`"
        if held < expected and mirror.model == PRIMARY_MODEL:
            with self.db.session() as s:  # a scan of the vectors' table, only when something is wrong
                stored = s.scalar(select(func.count()).select_from(Embedding))
            if stored < expected:  # damage no rebuild mends: their videos must be indexed again
                return expected, f"{expected - stored} keyframes have no stored vector"
        if held < expected:
            return expected, f"{name} lacks {expected - held} vectors: run `evr reindex`"
        return expected, None
