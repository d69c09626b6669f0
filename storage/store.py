"""The data directory, opened: a thin facade over the rooms of storage, each owning one job.

    database.py    the data folder: its SQLite file, the writer's lock, transactions, disk errors
    migrations.py  the schema: created, checked, upgraded
    meta.py        facts about the index as a whole, and the model it is bound to (`facts`)
    catalog.py     reading what is indexed: keyframes as hits need them, shots, videos (`catalog`)
    filters.py     which keyframes pass a filter, in SQL and as a Milvus expression (`filters`)
    writes.py      the writer's commits (`writes`)
    mirror.py      the vector index kept in step with SQLite, whatever its backend (`vectors`)
    health.py      counts, damage and the writer's repair (`health`)
    features/      each feature's tables, results, filter and hit fields
    fulltext.py    word search in on-screen text and transcripts (`words`)

`Store(data_dir, writer=True)` takes the folder's lock (one writer at a time); a reader needs an
index there. Nothing outside storage/ touches SQLite, the vector index file or Milvus.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .catalog import Catalog
from .database import Database
from .errors import DataDirError
from .filters import Filters
from .fulltext import Words
from .health import Health
from .meta import IndexFacts
from .migrations import prepare
from .rules import between, rule, text
from .mirror import VectorMirror
from .types import ModelInfo
from .vectors import VectorIndexSettings
from .writes import Writes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StorageSettings:
    """[storage]: where the index lives, and how far its vector index may lag a run."""

    data_dir: str = rule(text("a folder"), default="data")  # relative to the config file
    checkpoint_s: float = rule(between(0), default=10.0)  # save the vector index at least this often in a run


class Store:
    def __init__(self, data_dir: Path, *, writer: bool = False, checkpoint_s: float = 10.0,
                 index: VectorIndexSettings = VectorIndexSettings()):
        self.db = Database(data_dir, writer)
        self.data_dir, self.writer = self.db.data_dir, writer
        try:
            self.facts = IndexFacts(self.db)
            prepare(self.db, self.facts)
        except BaseException:
            self.db.close()
            raise
        self.catalog = Catalog(self.db)
        self.filters = Filters(self.db)
        self.words = Words(self.db)
        self.vectors = VectorMirror(self.db, self.facts, self.catalog, index, checkpoint_s)
        self.writes = Writes(self.db, after_commit=self.vectors.sync, fields_changed=self.vectors.fields_changed)
        self.health = Health(self.db, self.facts, self.catalog, self.vectors)

    def bind_model(self, model: ModelInfo) -> None:
        """Record the embedding model of a new (or still empty) index, or refuse a different one
        (ModelMismatchError); an empty index of another model loses its old vector index."""
        if self.facts.bind_model(model, self.catalog.keyframe_count()):
            self.vectors.drop()

    def writer_active(self) -> bool:
        return self.db.writer_active()

    def close(self) -> None:
        try:
            if self.writer:
                try:
                    self.vectors.flush()
                    self.vectors.prune_removals()
                except DataDirError as exc:  # SQLite holds every vector: the next run catches the index up
                    log.warning("the vector index was not saved (%s); the next `evr index` catches it up", exc)
            self.vectors.close()
        finally:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
