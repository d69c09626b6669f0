"""What every vector backend does: the FAISS file's kinds (flat, ivf) and a Milvus collection.

An index answers inner-product top-k over L2-normalised vectors keyed by keyframe id, optionally
only over a given set of ids. It remembers how far it follows SQLite (`IndexState`), and `save`
keeps that where the backend keeps its vectors (the FAISS file's trailer, Milvus's record in
the meta table), so a process that opens it catches up on what was committed since, and only
on that (storage/mirror.py).

What backends differ in is said by properties, not by their type:
- `exact`: its scores and order need no re-ranking with the stored vectors;
- `mapped`: read-only in this process (a FAISS file mapped into memory);
- `keeps_fields`: it keeps each keyframe's filter fields beside its vector and evaluates a
  filter expression itself (Milvus): `add` takes the fields, `search` an expression;
- `shared`: a service every process reads; only the writer changes it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..features.base import Condition
from ..rules import between, one_of, rule

KINDS = ("auto", "flat", "ivf")
BACKENDS = ("faiss", "milvus")
MILVUS_INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT")
# Fewer vectors than this are searched exactly however `kind` is set: k-means would have too few
# vectors per cell, and exact search over so few takes about 3 ms anyway.
IVF_MIN_VECTORS = 10_000


class IndexFileError(Exception):
    """The index cannot be read (damaged, of another kind or dimension, missing)."""


def _milvus_uri(value: str) -> str | None:
    if value == "" or value.startswith(("http://", "https://", "tcp://")) or value.endswith(".db"):
        return None
    return "must be a Milvus Lite file ending in .db, or a server URL (http://host:19530)"


def _collection(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", value):
        return None
    return "must be a Milvus collection name (letters, digits, underscores; not starting with a digit)"


@dataclass(frozen=True)
class VectorIndexSettings:
    """[vectors]: where the vectors are searched, which index, how hard the approximate ones look."""

    kind: str = rule(one_of(KINDS), default="auto")  # auto | flat | ivf (the FAISS file)
    # "auto" builds an IVF index from this many vectors on: below it exact search takes
    # under ~30 ms on two CPU cores (benchmarks/RESULTS.md), above it grows linearly.
    ivf_min_vectors: int = rule(between(IVF_MIN_VECTORS), default=100_000)
    # Cells an IVF search visits; recall@10 >= 0.95 on clustered vectors at 1M (RESULTS.md).
    nprobe: int = rule(between(1, 65536), default=32)
    # Where the vectors are searched: "faiss" (the file in the data directory, kinds above) or
    # "milvus" (storage/vectors/milvus.py).
    backend: str = rule(one_of(BACKENDS), default="faiss")
    # A Milvus Lite file (*.db, relative to the config file) or a server's URL; "" = <data_dir>/milvus.db
    milvus_uri: str = rule(_milvus_uri, default="")
    milvus_collection: str = rule(_collection, default="evr_keyframes")  # one per data directory
    milvus_index: str = rule(one_of(MILVUS_INDEX_TYPES), default="FLAT")  # FLAT (exact) | HNSW | IVF_FLAT


@dataclass(frozen=True)
class IndexState:
    """The index holds the vectors of every keyframe with id <= last_keyframe that SQLite still
    has, and has applied every logged removal with seq <= last_removal."""

    last_keyframe: int = 0
    last_removal: int = 0


class VectorIndex(ABC):
    kind: str
    exact: bool
    mapped: bool = False
    keeps_fields: bool = False
    shared: bool = False
    dim: int
    state: IndexState

    @property
    @abstractmethod
    def ntotal(self) -> int:
        """How many vectors it holds."""

    @property
    def nbytes(self) -> int:
        """About what saving it writes in the data folder."""
        return 0

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray, fields: Sequence[dict] | None = None) -> None:
        """Add (or replace) vectors by keyframe id; `fields`: each one's filter fields, in the
        order of `ids`, for an index that `keeps_fields`."""

    @abstractmethod
    def remove(self, ids) -> int:
        """Remove these keyframes' vectors; returns how many it held."""

    @abstractmethod
    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None, conditions: Sequence[Condition] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; ids of -1 mark empty slots. `allowed` (keyframe
        ids) restricts the search to those vectors inside the index, not by dropping results
        afterwards, so a filter never starves the result; `conditions`: field conditions it
        evaluates itself, all of which must hold (only for an index that `keeps_fields`)."""

    @abstractmethod
    def save(self) -> None:
        """Keep what it holds and its state where the backend keeps them."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Every id held (a scan: for checks and tests, not for searching)."""

    def outgrown(self) -> bool:
        """Whether it holds too much more than it was built for and should be built again."""
        return False

    def discard(self) -> None:
        """Delete what it keeps outside its file in the data folder (a collection): its model's
        vectors were deleted. The caller deletes the file."""

    def close(self) -> None:
        """Let go of what it holds open (a connection)."""
