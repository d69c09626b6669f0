"""The keyframe vectors in Milvus: Milvus Lite (a file, embedded) or a Milvus server or cluster.

One collection per data directory holds each keyframe's vector under its keyframe id, with the
fields filters need beside it (video id, time, person count, pose labels, whether it has
on-screen text), so a filtered search is one Milvus query with a boolean expression. SQLite
stays the source of truth: the writer pushes what it commits (upserts and deletes, idempotent,
so replaying them after a crash is harmless) and records in SQLite how far the collection
follows it (Store); `evr reindex --vectors milvus` fills a collection from nothing.

Index types: FLAT (exact; the default, and what Milvus Lite is for), or HNSW / IVF_FLAT on a
server for large archives, whose top candidates the store re-ranks with the exact vectors.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import numpy as np

from ..errors import VectorServiceError
from ..types import KeyframeFilter
from .base import IndexState

log = logging.getLogger(__name__)

INDEX_TYPES = {"FLAT": {}, "HNSW": {"M": 16, "efConstruction": 200}, "IVF_FLAT": {"nlist": 1024}}
SEARCH_PARAMS = {"FLAT": {}, "HNSW": {"ef": 256}, "IVF_FLAT": {"nprobe": 32}}
BATCH = 2000  # rows per upsert: well under gRPC's 64 MB message limit at 768 float dimensions
CONNECT_TIMEOUT_S = 5.0


class MilvusIndex:
    """A Milvus collection of keyframe vectors and filter fields, keyed by keyframe id."""

    kind = "milvus"
    mapped = False
    needs_fields = True  # add() takes each keyframe's filter fields (Store.filter_fields)

    def __init__(self, uri: str, collection: str, dim: int, index_type: str = "FLAT"):
        self.uri, self.collection, self.dim, self.index_type = uri, collection, dim, index_type
        self.state = IndexState()  # how far it follows SQLite: set by the store
        self._client = _connect(uri)

    @property
    def target(self) -> str:
        return f"{self.uri}#{self.collection}"

    @property
    def exact(self) -> bool:
        return self.index_type == "FLAT"

    def exists(self) -> bool:
        return self._call(self._client.has_collection, self.collection)

    def create(self) -> None:
        """A new, empty collection (dropping one of that name)."""
        from pymilvus import DataType, MilvusClient

        if self.exists():
            self._call(self._client.drop_collection, self.collection)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("video", DataType.VARCHAR, max_length=1024)
        schema.add_field("time", DataType.DOUBLE)  # SQLite's REAL: the same bounds compare the same
        schema.add_field("persons", DataType.INT64, nullable=True)  # NULL: the analyzer never ran
        schema.add_field("poses", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=16, max_length=32)
        schema.add_field("has_text", DataType.BOOL)
        params = self._client.prepare_index_params()
        params.add_index("vector", index_type=self.index_type, metric_type="IP", params=INDEX_TYPES[self.index_type])
        # A server: Strong, so a search sees every write before it (the writer's count check right
        # after a run, a reader right after a commit), as with SQLite. Milvus Lite is one process
        # that sees its own writes, and does not implement the timestamps Strong asks for.
        lite = {} if self.uri.endswith(".db") else {"consistency_level": "Strong"}
        self._call(self._client.create_collection, self.collection, schema=schema, index_params=params, **lite)
        self.load()

    def load(self) -> None:
        self._call(self._client.load_collection, self.collection)

    @property
    def ntotal(self) -> int:
        rows = self._call(self._client.query, self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    nbytes = 0  # nothing is saved in the data directory

    def add(self, ids: np.ndarray, vectors: np.ndarray, fields: Sequence[dict] | None = None) -> None:
        """Upsert keyframes: `fields` holds each one's filter fields, in the order of `ids`."""
        if fields is None or len(fields) != len(ids):
            raise ValueError("Milvus needs the filter fields of every keyframe it is given")
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        rows = [{"id": int(i), "vector": v, **f} for i, v, f in zip(ids, vectors, fields)]
        for start in range(0, len(rows), BATCH):
            self._call(self._client.upsert, self.collection, rows[start : start + BATCH])

    def remove(self, ids) -> int:
        ids = [int(i) for i in np.asarray(ids, dtype=np.int64)]
        for start in range(0, len(ids), BATCH):
            self._call(self._client.delete, self.collection, ids=ids[start : start + BATCH])
        return len(ids)

    def save(self, path) -> None:
        """Nothing to save: Milvus keeps what it was given (the store records how far)."""

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
               expr: str = "") -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) for each query row, as VectorIndex.search gives them; `allowed`
        (keyframe ids) and `expr` (a Milvus filter) restrict the search inside Milvus."""
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if allowed is not None:
            if len(allowed) == 0:
                return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
            expr = " and ".join(p for p in (expr, f"id in {json.dumps([int(i) for i in allowed])}") if p)
        hits = self._call(self._client.search, self.collection, data=list(queries), limit=max(1, min(k, 16384)),
                          filter=expr, output_fields=["id"], search_params={"params": SEARCH_PARAMS[self.index_type]})
        width = max((len(h) for h in hits), default=0)
        scores = np.full((len(queries), width), -np.inf, np.float32)
        ids = np.full((len(queries), width), -1, np.int64)
        for row, found in enumerate(hits):
            for col, hit in enumerate(found):
                ids[row, col], scores[row, col] = hit["id"], hit["distance"]
        return scores, ids

    def ids(self) -> np.ndarray:
        it = self._client.query_iterator(self.collection, batch_size=10_000, filter="", output_fields=["id"])
        out = []
        while batch := it.next():
            out.extend(r["id"] for r in batch)
        it.close()
        return np.sort(np.asarray(out, dtype=np.int64))

    def close(self) -> None:
        self._client.close()

    def _call(self, fn, *args, **kwargs):
        """A Milvus call, its failure as one VectorServiceError naming the server."""
        from pymilvus.exceptions import MilvusException

        try:
            return fn(*args, **kwargs)
        except MilvusException as exc:
            raise VectorServiceError(f"Milvus at {self.uri} failed: {exc.message}") from exc


def filter_expression(f: KeyframeFilter) -> str:
    """The conditions of `f` that Milvus evaluates, as a Milvus boolean expression. The words of
    an OCR filter are matched by SQLite's full-text index (the caller turns them into ids);
    here an OCR filter only asks for keyframes with some text."""
    parts = []
    if f.videos:
        parts.append(f"video in {json.dumps(list(f.videos), ensure_ascii=False)}")
    if f.time_from is not None:
        parts.append(f"time >= {float(f.time_from)!r}")
    if f.time_to is not None:
        parts.append(f"time <= {float(f.time_to)!r}")
    # A NULL person count (no person analysis) fails every comparison, as in SQLite.
    if f.min_persons is not None:
        parts.append(f"persons >= {int(f.min_persons)}")
    if f.max_persons is not None:
        parts.append(f"persons <= {int(f.max_persons)}")
    if f.poses:
        parts.append(f"array_contains_all(poses, {json.dumps(list(f.poses))})")
    if f.ocr is not None:
        parts.append("has_text == true")
    return " and ".join(parts)


def _connect(uri: str):
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    if uri.endswith(".db"):
        # Milvus Lite serves pymilvus from a gRPC server in this process, which does not implement
        # every call pymilvus may try first (AllocTimestamp, before it falls back); gRPC logs each
        # such try as an error with a traceback. No other gRPC server runs in an evr process.
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)

    # pymilvus and Milvus Lite log a failed connection themselves, with tracebacks, before
    # pymilvus raises: the one line the user gets is ours.
    libraries = [logging.getLogger(name) for name in ("pymilvus", "milvus_lite")]
    saved = [lib.level for lib in libraries]
    for lib in libraries:
        lib.setLevel(logging.CRITICAL)
    try:
        return MilvusClient(uri, timeout=CONNECT_TIMEOUT_S)
    except MilvusException as exc:
        if uri.endswith(".db"):
            raise VectorServiceError(
                f"cannot open Milvus Lite file {uri} ({exc.message}): Milvus Lite serves one process "
                "at a time, and another evr process (the app, a search, an index run) may hold it; "
                "for several processes at once use a Milvus server ([storage] milvus_uri)") from exc
        raise VectorServiceError(
            f"cannot reach Milvus at {uri} ({exc.message}): start it, or fix [storage] milvus_uri "
            "(a path ending in .db runs Milvus Lite in this process)") from exc
    finally:
        for lib, level in zip(libraries, saved):
            lib.setLevel(level)
