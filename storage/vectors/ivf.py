"""Approximate search: an inverted file (IVF) with 8-bit scalar-quantised vectors (SQ8).

k-means splits the vectors into `cells` (about 2 * sqrt(n)) cells; a query looks only in the
`nprobe` cells nearest to it, and each vector is stored as one byte per dimension (a quarter of
float32). Chosen over HNSW, which cannot remove vectors (re-indexed videos must be able to),
and over PQ, whose coarser codes lose recall that SQ8 keeps (benchmarks/RESULTS.md). Search
(search/ranking.py) re-ranks the top candidates with the exact vectors from SQLite, so scores
are exact.

Training happens only where the index is built (`evr index`, `evr reindex`); new vectors are
added to the nearest cell without training. Once the index holds more than four times what
it was trained for, its cells are too full and the writer builds it again.
"""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

from .base import IndexState, VectorIndexSettings
from .faiss_file import FaissIndex

GROWTH_BEFORE_RETRAIN = 4
SAMPLE_PER_CELL = 50  # training vectors per cell (faiss warns below 39)


def cells_for(vectors: int) -> int:
    return max(16, int(2 * math.sqrt(vectors)))


def training_size(vectors: int) -> int:
    return min(vectors, SAMPLE_PER_CELL * cells_for(vectors))


class IvfIndex(FaissIndex):
    kind = "ivf"
    exact = False

    def __init__(
        self,
        index: faiss.Index,
        dim: int,
        settings: VectorIndexSettings,
        state: IndexState,
        path: Path,
        trained_for: int,
        mapped: bool = False,
    ):
        super().__init__(index, dim, settings, state, path, mapped)
        self.trained_for = trained_for
        self._index.nprobe = settings.nprobe

    @classmethod
    def train(
        cls,
        sample: np.ndarray,
        vectors: int,
        settings: VectorIndexSettings,
        path: Path,
        state: IndexState = IndexState(),
    ) -> IvfIndex:
        """An empty index with cells for `vectors` vectors, learnt from `sample` (see training_size)."""
        dim = sample.shape[1]
        index = faiss.index_factory(dim, f"IVF{cells_for(vectors)},SQ8", faiss.METRIC_INNER_PRODUCT)
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        return cls(index, dim, settings, state, path, vectors)

    @classmethod
    def from_faiss(
        cls, index: faiss.Index, header: dict, settings: VectorIndexSettings, path: Path, mapped: bool
    ) -> IvfIndex:
        return cls(
            index, index.d, settings, header["state"], path, int(header.get("trained_for", index.ntotal)), mapped
        )

    @property
    def cells(self) -> int:
        return self._index.nlist

    @property
    def nbytes(self) -> int:
        return self.ntotal * (self.dim + 8) + self.cells * self.dim * 4

    def ids(self) -> np.ndarray:
        lists = self._index.invlists
        held = [
            faiss.rev_swig_ptr(lists.get_ids(c), lists.list_size(c)).copy()
            for c in range(self.cells)
            if lists.list_size(c)
        ]
        return np.concatenate(held).astype(np.int64) if held else np.zeros(0, np.int64)

    def outgrown(self) -> bool:
        return self.ntotal > GROWTH_BEFORE_RETRAIN * self.trained_for

    def _header(self) -> dict:
        return {"trained_for": self.trained_for, "cells": self.cells}

    def _search_params(self, selector, share: float):
        # A filter that admits a share s of the vectors leaves s of each cell: visit 1/s times
        # as many cells to see as many candidates (all of them once that reaches every cell).
        nprobe = min(self.cells, max(self.settings.nprobe, math.ceil(self.settings.nprobe / share)))
        return faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
