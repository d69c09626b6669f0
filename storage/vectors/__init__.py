"""The vector index: search structures over the CLIP vectors that SQLite holds, keyed by keyframe id.

One interface (`base.VectorIndex`), one file per kind:
    flat.py  exact inner product over every vector: small archives, and the reference for recall
    ivf.py   approximate: an inverted file over k-means cells with 8-bit scalar-quantised vectors
    milvus.py  the vectors in a Milvus collection (Lite or a server), filters as Milvus expressions

`choose_kind` picks one for a number of vectors (`[index] kind = "auto"`). Building an IVF index
trains k-means, so it happens only in `evr index` / `evr reindex`, never at query time.
"""
from __future__ import annotations

from pathlib import Path

from .base import (
    BACKENDS,
    KINDS,
    IndexFileError,
    IndexState,
    VectorIndex,
    VectorIndexSettings,
    gpu_available,
    read_index_file,
)
from .flat import FlatIndex
from .ivf import IvfIndex

CLASSES: dict[str, type[VectorIndex]] = {"flat": FlatIndex, "ivf": IvfIndex}


def choose_kind(settings: VectorIndexSettings, vectors: int) -> str:
    if settings.kind != "auto":
        return settings.kind
    return "ivf" if vectors >= settings.ivf_min_vectors else "flat"


def load_index(path: Path, dim: int, settings: VectorIndexSettings, mapped: bool = False) -> VectorIndex:
    """The index saved at `path`, `mapped` into memory (read-only, instant) or read into it;
    IndexFileError when it is unreadable or of another dimension."""
    header, faiss_index = read_index_file(path, mapped)
    cls = CLASSES.get(header.get("kind"))
    if cls is None:
        raise IndexFileError(f"{path} holds an index of unknown kind {header.get('kind')!r}")
    index = cls.from_faiss(faiss_index, header, settings, mapped)
    if index.dim != dim:
        raise IndexFileError(f"{path} holds {index.dim}-dim vectors, expected {dim}")
    return index


__all__ = ["BACKENDS", "CLASSES", "KINDS", "FlatIndex", "IndexFileError", "IndexState", "IvfIndex", "VectorIndex",
           "VectorIndexSettings", "choose_kind", "gpu_available", "load_index"]
