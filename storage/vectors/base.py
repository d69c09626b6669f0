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

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KINDS = ("auto", "flat", "ivf")
BACKENDS = ("faiss", "milvus")


class IndexFileError(Exception):
    """The index cannot be read (damaged, of another kind or dimension, missing)."""


@dataclass(frozen=True)
class VectorIndexSettings:
    """`[vectors]` in config.toml: where the vectors are searched, which index, how hard the
    approximate ones look."""

    kind: str = "auto"  # auto | flat | ivf (the FAISS file)
    # "auto" builds an IVF index from this many vectors on: below it exact search takes
    # under ~30 ms on two CPU cores (benchmarks/RESULTS.md), above it grows linearly.
    ivf_min_vectors: int = 100_000
    # Cells an IVF search visits; recall@10 >= 0.95 on clustered vectors at 1M (RESULTS.md).
    nprobe: int = 32
    # Where the vectors are searched: "faiss" (the file in the data directory, kinds above) or
    # "milvus" (storage/vectors/milvus.py).
    backend: str = "faiss"
    milvus_uri: str = ""  # a Milvus Lite file (*.db) or a server's URL; "" = <data_dir>/milvus.db
    milvus_collection: str = "evr_keyframes"
    milvus_index: str = "FLAT"  # FLAT (exact) | HNSW | IVF_FLAT


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
    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
               expression: str = "") -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; ids of -1 mark empty slots. `allowed` (keyframe
        ids) restricts the search to those vectors inside the index, not by dropping results
        afterwards, so a filter never starves the result; `expression`: a filter it evaluates
        itself (only for an index that `keeps_fields`)."""

    @abstractmethod
    def save(self) -> None:
        """Keep what it holds and its state where the backend keeps them."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Every id held (a scan: for checks and tests, not for searching)."""

    def outgrown(self) -> bool:
        """Whether it holds too much more than it was built for and should be built again."""
        return False

    def close(self) -> None:
        """Let go of what it holds open (a connection)."""
