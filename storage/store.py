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
    marks.py       a team's marks on hits, beside the index (`marks`)

`Store(data_dir, writer=True)` takes the folder's lock (one writer at a time); a reader needs an
index there. Nothing outside storage/ touches SQLite, the vector index file or Milvus.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .catalog import Catalog
from .database import Database
from .errors import DataDirError, UnknownModelError
from .filters import Filters
from .fulltext import Words
from .health import Health
from .marks import Marks
from .meta import IndexFacts
from .migrations import prepare
from .mirror import VectorMirror, prune_removals
from .rules import between, rule, text
from .types import PRIMARY_MODEL, ModelInfo
from .vectors import VectorIndexSettings
from .writes import Writes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StorageSettings:
    """[storage]: where the index lives, and how far its vector index may lag a run."""

    data_dir: str = rule(text("a folder"), default="data")  # relative to the config file
    checkpoint_s: float = rule(between(0), default=10.0)  # save the vector index at least this often in a run


class Store:
    def __init__(
        self,
        data_dir: Path,
        *,
        writer: bool = False,
        checkpoint_s: float = 10.0,
        index: VectorIndexSettings = VectorIndexSettings(),
    ):
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
        self.marks = Marks(self.db)
        self._index_settings, self._checkpoint_s = index, checkpoint_s
        self.vectors = VectorMirror(self.db, self.facts, self.catalog, index, checkpoint_s)  # [clip]'s
        self._others: dict[str, VectorMirror] = {}  # the other models' ([[models]]), opened when asked for
        self.writes = Writes(
            self.db, after_commit=self._each_mirror("sync"), fields_changed=self._each_mirror("fields_changed")
        )
        self.health = Health(self.db, self.facts, self.catalog, self.mirrors)

    # -- the models and their vector indexes ---------------------------------------------------------

    def mirror(self, model: str = PRIMARY_MODEL) -> VectorMirror:
        """The vector index of one model's vectors ([clip]'s is `vectors`)."""
        if model == PRIMARY_MODEL:
            return self.vectors
        if model not in self._others:
            self._others[model] = VectorMirror(
                self.db, self.facts, self.catalog, self._index_settings, self._checkpoint_s, model
            )
        return self._others[model]

    def mirrors(self) -> list[VectorMirror]:
        """The vector index of every model the index holds vectors of, [clip]'s first."""
        return [self.vectors] + [self.mirror(name) for name in self.facts.models() if name != PRIMARY_MODEL]

    def _each_mirror(self, method: str):
        def call(*args) -> None:
            for mirror in self.mirrors():
                getattr(mirror, method)(*args)

        return call

    def bind_model(self, model: ModelInfo) -> None:
        """Record the embedding model of a new (or still empty) index, or refuse a different one
        (ModelMismatchError); an empty index of another model loses its old vector index."""
        if self.facts.bind_model(model, self.catalog.keyframe_count()):
            self.vectors.drop()

    def bind_models(self, models: dict[str, ModelInfo]) -> None:
        """`bind_model` for "clip", `bind_other_model` for each other name."""
        for name, model in models.items():
            self.bind_model(model) if name == PRIMARY_MODEL else self.bind_other_model(name, model)

    def bind_other_model(self, name: str, model: ModelInfo) -> None:
        """Record another model ([[models]]) under its name, or refuse a different one while
        the index holds vectors of the one bound to that name (ModelMismatchError)."""
        stored = self.facts.models().get(name)
        self.facts.bind_other(name, model, self.catalog.vector_count(name) if stored else 0)
        if stored is not None and stored != model:
            self.mirror(name).drop()  # an index of the old model's dimension

    def drop_model(self, name: str) -> int:
        """Delete another model's vectors and its vector index; returns how many vectors went.
        The index goes first: a kill after it leaves the vectors, and the index is built again."""
        if name == PRIMARY_MODEL or name not in self.facts.models():
            raise UnknownModelError(
                f"this index holds no vectors of a model named {name!r}"
                + (" besides [clip]'s, which the index is built on" if name == PRIMARY_MODEL else "")
            )
        mirror = self.mirror(name)
        mirror.discard()
        removed = self.writes.drop_model_vectors(
            name, [mirror.fact(k) for k in ("vectors_built", "vectors_saved", "milvus_state")]
        )
        self.facts.refresh()
        self._others.pop(name).close()
        return removed

    def writer_active(self) -> bool:
        return self.db.writer_active()

    def close(self) -> None:
        try:
            if self.writer:
                try:
                    for mirror in self.mirrors():
                        mirror.flush()
                    prune_removals(self.db, self.facts, self.mirrors())
                except DataDirError as exc:  # SQLite holds every vector: the next run catches the index up
                    log.warning("the vector index was not saved (%s); the next `evr index` catches it up", exc)
            for mirror in [self.vectors, *self._others.values()]:
                mirror.close()
        finally:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
