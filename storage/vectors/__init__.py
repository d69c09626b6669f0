"""The vector index: search structures over the CLIP vectors that SQLite holds, keyed by keyframe id.

One protocol (`base.VectorIndex`), one file per backend or kind:
    flat.py    exact inner product over every vector (FAISS): small archives, the reference for recall
    ivf.py     approximate (FAISS): an inverted file over k-means cells with 8-bit quantised vectors
    milvus.py  the vectors in a Milvus collection (Lite or a server), filters (field conditions) as Milvus expressions
faiss_file.py holds what the FAISS kinds share: their file in the data directory.

`kind_for` picks one for a number of vectors (`[vectors] kind = "auto"`); `open_index` opens the
configured one and `new_index` makes an empty one to fill. Building an IVF index trains k-means,
so it happens only in `evr index` / `evr reindex`, never at query time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..features.base import Field
from ..types import PRIMARY_MODEL
from .base import BACKENDS, IVF_MIN_VECTORS, KINDS, IndexFileError, IndexState, VectorIndex, VectorIndexSettings
from .faiss_file import FaissIndex, gpu_available, read_index_file
from .flat import FlatIndex
from .ivf import IvfIndex, training_size

CLASSES: dict[str, type[FaissIndex]] = {"flat": FlatIndex, "ivf": IvfIndex}
FILE_NAME = "vectors.faiss"


def kind_for(settings: VectorIndexSettings, vectors: int) -> str:
    """The kind of index to build for this many vectors."""
    if settings.backend == "milvus":
        return "milvus"
    kind = settings.kind if settings.kind != "auto" else "ivf" if vectors >= settings.ivf_min_vectors else "flat"
    return "flat" if kind == "ivf" and vectors < IVF_MIN_VECTORS else kind


def load_index(path: Path, dim: int, settings: VectorIndexSettings, mapped: bool = False) -> FaissIndex:
    """The FAISS index saved at `path`, `mapped` into memory (read-only, instant) or read into
    it; IndexFileError when it is unreadable or of another dimension."""
    header, faiss_index = read_index_file(path, mapped)
    cls = CLASSES.get(header.get("kind"))
    if cls is None:
        raise IndexFileError(f"{path} holds an index of unknown kind {header.get('kind')!r}")
    index = cls.from_faiss(faiss_index, header, settings, path, mapped)
    if index.dim != dim:
        raise IndexFileError(f"{path} holds {index.dim}-dim vectors, expected {dim}")
    return index


def file_name(model: str) -> str:
    """The FAISS file of a model's vectors: [clip]'s is `vectors.faiss`, another's `vectors-NAME.faiss`."""
    return FILE_NAME if model == PRIMARY_MODEL else f"vectors-{model}.faiss"


class Backend:
    """Where one model's vectors of a data directory are searched, as `[vectors]` says: opens
    the index, and makes an empty one to fill. Milvus keeps its state in the meta table
    (`recorded`, `record`) and its filter fields (`fields`); a FAISS file keeps its state in its
    trailer. Each model has its own file, or its own collection (`milvus_collection`_NAME)."""

    def __init__(
        self,
        settings: VectorIndexSettings,
        data_dir: Path,
        fields: Sequence[Field],
        recorded: Callable[[], dict],
        record: Callable[[dict], None],
        model: str = PRIMARY_MODEL,
    ):
        if model != PRIMARY_MODEL:
            settings = replace(settings, milvus_collection=f"{settings.milvus_collection}_{model}")
        self.settings = settings
        self.path = data_dir / file_name(model)
        self.data_dir = data_dir
        self.fields, self.recorded, self.record = fields, recorded, record

    def open(self, dim: int, writer: bool, mapped: bool, pruned: int) -> VectorIndex:
        """The saved index; IndexFileError when a FAISS file is missing or unreadable (the
        caller starts from an empty one and catches up from SQLite)."""
        if self.settings.backend == "milvus":
            from .milvus import open_collection

            return open_collection(
                self.settings, self.data_dir, dim, self.fields, self.recorded(), pruned, self.record, writer
            )
        if not self.path.exists():
            raise IndexFileError(f"{self.path} does not exist")
        return load_index(self.path, dim, self.settings, mapped)

    def empty(
        self, kind: str, dim: int, vectors: int, sample: Callable[[int], np.ndarray], current: VectorIndex | None = None
    ) -> VectorIndex:
        """An empty index of `kind` for about `vectors` vectors; an IVF index is trained on
        `sample(n)` (n stored vectors); a Milvus collection is `current` made anew."""
        if kind == "milvus":
            current.create()
            return current
        if kind == "ivf":
            return IvfIndex.train(sample(training_size(vectors)), vectors, self.settings, self.path)
        return FlatIndex.empty(dim, self.settings, self.path)

    def empty_flat(self, dim: int) -> VectorIndex:
        """An empty exact index to catch up from SQLite when the saved one cannot be read."""
        return FlatIndex.empty(dim, self.settings, self.path)


__all__ = [
    "BACKENDS",
    "Backend",
    "CLASSES",
    "FILE_NAME",
    "FlatIndex",
    "IndexFileError",
    "IndexState",
    "IvfIndex",
    "KINDS",
    "VectorIndex",
    "VectorIndexSettings",
    "file_name",
    "gpu_available",
    "kind_for",
    "load_index",
]
