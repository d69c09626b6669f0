"""The FAISS index file: exact inner-product search over L2-normalised vectors, keyed by keyframe id.

An exact flat index keeps results identical to brute force (cosine similarity) and needs no
training; at 768 dims it searches a million keyframes in well under a second on a CPU. When
faiss was built with GPU support and a GPU is visible, searches run on a GPU copy.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import faiss
import numpy as np

log = logging.getLogger(__name__)


class VectorIndex:
    def __init__(self, path: Path, dim: int, *, empty: bool = False):
        """The index saved at `path`, or an empty one when there is none (or `empty`)."""
        self.path = path
        self.dim = dim
        if path.exists() and not empty:
            index = faiss.read_index(str(path))
            if index.d != dim:
                raise ValueError(f"{path} holds {index.d}-dim vectors, expected {dim}")
        else:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._index = index
        self._gpu_index = None  # built lazily, dropped on every change

    @property
    def ntotal(self) -> int:
        return self._index.ntotal

    @property
    def nbytes(self) -> int:
        """About the size of the saved file: the vectors and their ids."""
        return self.ntotal * (self.dim * 4 + 8)

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        self._gpu_index = None

    def remove(self, ids) -> None:
        ids = np.asarray(list(ids), dtype=np.int64)
        if len(ids):
            self._index.remove_ids(faiss.IDSelectorBatch(ids))
            self._gpu_index = None

    def reset(self) -> None:
        self._index.reset()
        self._gpu_index = None

    def save(self) -> None:
        """Write to a temporary file, then rename it over the old one: a kill or a full disk
        mid-write never leaves a truncated index. Written through a Python file, which raises
        OSError (ENOSPC, EIO) where faiss's own writer does not check the final flush (faiss
        passes the callback's exception on)."""
        tmp = self.path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                faiss.write_index(self._index, faiss.PyCallbackIOWriter(f.write))
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def search(self, queries: np.ndarray, k: int, allowed_ids=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; ids of -1 mark empty slots.

        `allowed_ids` restricts the search to those keyframes (exactly, not by post-filtering),
        so a filter never starves the result when enough matching keyframes exist.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = max(1, min(k, self.ntotal)) if self.ntotal else 1
        if allowed_ids is not None:
            allowed = np.asarray(list(allowed_ids), dtype=np.int64)
            if len(allowed) == 0 or self.ntotal == 0:
                return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
            scores, ids = self._index.search(queries, min(k, len(allowed)), params=params)
        else:
            scores, ids = self._searcher().search(queries, k)
        return scores, ids

    def _searcher(self):
        if self._gpu_index is None and gpu_available():
            res = faiss.StandardGpuResources()
            self._gpu_index = faiss.index_cpu_to_gpu(res, 0, self._index)
        return self._gpu_index if self._gpu_index is not None else self._index


def gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
