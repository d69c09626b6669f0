"""The vector index as a FAISS index in a file of the data directory (`vectors.faiss`).

The file is the FAISS index followed by one line of JSON (kind, state, kind-specific facts),
written to a temporary file and renamed over the old one: a kill or a full disk mid-write never
leaves a file whose facts and vectors disagree. The facts come last so that FAISS can map the
file into memory as it is: a reader that has nothing to catch up on then starts in milliseconds
and shares the file's pages with every other reader, where reading a million vectors into memory
takes most of a second. A mapped index is read-only (`mapped`).
"""

from __future__ import annotations

import json
import os
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import faiss
import numpy as np

from ..features.base import Condition
from .base import IndexFileError, IndexState, VectorIndex, VectorIndexSettings

MAGIC = b"\nEVR-VECTORS 1 "
TRAILER_MAX = 65536


class FaissIndex(VectorIndex):
    def __init__(
        self,
        index: faiss.Index,
        dim: int,
        settings: VectorIndexSettings,
        state: IndexState,
        path: Path,
        mapped: bool = False,
    ):
        self._index = index
        self.mapped = mapped  # FAISS aborts the process on a change to a mapped index
        self.dim = dim
        self.settings = settings
        self.state = state
        self.path = path
        self._gpu_index = None  # built lazily, dropped on every change

    @classmethod
    @abstractmethod
    def from_faiss(
        cls, index: faiss.Index, header: dict, settings: VectorIndexSettings, path: Path, mapped: bool
    ) -> FaissIndex:
        """The index read from a file, with the header saved with it."""

    @abstractmethod
    def _header(self) -> dict:
        """Kind-specific facts saved in the file's header."""

    @abstractmethod
    def _search_params(self, selector, share: float):
        """FAISS search parameters restricted to `selector`, which admits `share` of the vectors."""

    @property
    def ntotal(self) -> int:
        return self._index.ntotal

    def add(self, ids: np.ndarray, vectors: np.ndarray, fields=None) -> None:
        if len(ids) == 0:
            return
        self._check_writable()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        self._gpu_index = None

    def remove(self, ids) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        self._check_writable()
        self._gpu_index = None
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def _check_writable(self) -> None:
        if self.mapped:
            raise ValueError("a mapped vector index is read-only: load it with mapped=False to change it")

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None, conditions: Sequence[Condition] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        if conditions:
            raise ValueError("a FAISS index evaluates no field conditions: pass the allowed ids")
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        empty = np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        if self.ntotal == 0 or k < 1 or (allowed is not None and len(allowed) == 0):
            return empty
        k = min(k, self.ntotal)
        if allowed is None:
            return self._searcher().search(queries, k)
        # A bitmap over ids: one bit per id up to the largest, tested in O(1) per vector visited
        # (IDSelectorBatch hashes; at a million ids the bitmap is 125 KB and faster).
        allowed = np.asarray(allowed, dtype=np.int64)
        present = np.zeros(int(allowed.max()) + 1, dtype=bool)
        present[allowed] = True
        bits = np.packbits(present, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
        params = self._search_params(selector, min(1.0, len(allowed) / self.ntotal))
        return self._index.search(queries, min(k, len(allowed)), params=params)

    def save(self) -> None:
        """Write atomically (see the module's docstring). Written through a Python file, which
        raises OSError (ENOSPC, EIO) where faiss's own writer does not check the final flush."""
        header = {"kind": self.kind, "dim": self.dim, "ntotal": self.ntotal, **asdict(self.state), **self._header()}
        tmp = self.path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                faiss.write_index(self._index, faiss.PyCallbackIOWriter(f.write))
                f.write(MAGIC + json.dumps(header).encode() + b"\n")
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _searcher(self):
        if self._gpu_index is None and gpu_available():
            self._gpu_index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, self._index)
        return self._gpu_index if self._gpu_index is not None else self._index


def read_index_file(path: Path, mapped: bool) -> tuple[dict, faiss.Index]:
    """(facts, FAISS index) of a file `FaissIndex.save` wrote, mapped into memory or read into
    it; IndexFileError if it is not such a file."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - TRAILER_MAX))
            tail = f.read()
        at = tail.rfind(MAGIC)
        if at < 0 or not tail.endswith(b"\n"):
            raise IndexFileError(f"{path} could not be read (not an evr vector index file)")
        header = json.loads(tail[at + len(MAGIC) :])
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mapped else 0)
    except (OSError, RuntimeError, ValueError) as exc:  # faiss raises RuntimeError on damage
        raise IndexFileError(f"{path} could not be read ({exc})") from exc
    if not isinstance(header, dict) or index.ntotal != header.get("ntotal", index.ntotal):
        raise IndexFileError(f"{path} has a damaged header")
    header["state"] = IndexState(int(header.get("last_keyframe", 0)), int(header.get("last_removal", 0)))
    return header, index


def gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
