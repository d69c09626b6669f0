"""The keyframe vectors in Milvus: Milvus Lite (a file, embedded) or a Milvus server or cluster.

One collection per data directory holds each keyframe's vector under its keyframe id, with the
fields filters need beside it (video id, time, and each feature's: person count, pose labels,
whether it has on-screen text, ...), so a filtered search is one Milvus query with a boolean
expression (storage/filters.py). SQLite stays the source of truth: the writer pushes what it
commits (upserts and deletes, idempotent, so replaying them after a crash is harmless) and
records in SQLite how far the collection follows it (storage/mirror.py); `evr reindex --vectors
milvus` fills a collection from nothing.

Index types: FLAT (exact; the default, and what Milvus Lite is for), or HNSW / IVF_FLAT on a
server for large archives, whose top candidates search re-ranks with the exact vectors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..errors import VectorServiceError
from ..features.base import Condition, Field
from .base import IndexState, VectorIndex, VectorIndexSettings

log = logging.getLogger(__name__)

INDEX_TYPES = {
    "FLAT": {},
    "HNSW": {"M": 16, "efConstruction": 200},
    "IVF_FLAT": {"nlist": 1024},
}  # base.MILVUS_INDEX_TYPES
SEARCH_PARAMS = {"FLAT": {}, "HNSW": {"ef": 256}, "IVF_FLAT": {"nprobe": 32}}
BATCH = 2000  # rows per upsert: well under gRPC's 64 MB message limit at 768 float dimensions
CONNECT_TIMEOUT_S = 5.0


class MilvusIndex(VectorIndex):
    """A Milvus collection of keyframe vectors and filter fields, keyed by keyframe id. Its
    state (how far it follows SQLite) is recorded by `record`, in the meta table."""

    kind = "milvus"
    keeps_fields = True
    shared = True  # the writer pushes each commit; readers only search

    def __init__(
        self,
        uri: str,
        collection: str,
        dim: int,
        index_type: str,
        fields: Sequence[Field],
        record: Callable[[dict], None],
    ):
        self.uri, self.collection, self.dim, self.index_type = uri, collection, dim, index_type
        self.fields = fields  # the features' filter fields, beside the core's video and time
        self.record = record
        self.state = IndexState()
        self._client = _connect(uri)

    @property
    def target(self) -> str:
        return f"{self.uri}#{self.collection}"

    @property
    def exact(self) -> bool:
        return self.index_type == "FLAT"

    def exists(self) -> bool:
        return self._call(self._client.has_collection, self.collection)

    def has_fields(self) -> bool:
        """Whether the collection keeps every filter field of this evr's features (one an older
        evr made lacks a newer feature's, and a search filtering on it would fail)."""
        schema = self._call(self._client.describe_collection, self.collection)
        return {f.name for f in self.fields} <= {f["name"] for f in schema.get("fields", [])}

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
        for f in self.fields:
            if f.kind == "labels":
                schema.add_field(f.name, DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=16, max_length=32)
            else:
                kind = {"int": DataType.INT64, "float": DataType.DOUBLE, "bool": DataType.BOOL}[f.kind]
                schema.add_field(f.name, kind, **({"nullable": True} if f.nullable else {}))
        params = self._client.prepare_index_params()
        params.add_index("vector", index_type=self.index_type, metric_type="IP", params=INDEX_TYPES[self.index_type])
        # A server: Strong, so a search sees every write before it (the writer's count check right
        # after a run, a reader right after a commit), as with SQLite. Milvus Lite is one process
        # that sees its own writes, and does not implement the timestamps Strong asks for.
        lite = {} if self.uri.endswith(".db") else {"consistency_level": "Strong"}
        self._call(self._client.create_collection, self.collection, schema=schema, index_params=params, **lite)
        self.load()
        self.state = IndexState()

    def discard(self) -> None:
        if self.exists():
            self._call(self._client.drop_collection, self.collection)

    def load(self) -> None:
        self._call(self._client.load_collection, self.collection)

    @property
    def ntotal(self) -> int:
        rows = self._call(self._client.query, self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

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

    def save(self) -> None:
        """Milvus keeps what it was given: record how far it follows SQLite."""
        self.record({"target": self.target, **asdict(self.state)})

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None, conditions: Sequence[Condition] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        expression = " and ".join(map(milvus_expression, conditions))
        if allowed is not None:
            if len(allowed) == 0:
                return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
            expression = " and ".join(p for p in (expression, f"id in {json.dumps([int(i) for i in allowed])}") if p)
        hits = self._call(
            self._client.search,
            self.collection,
            data=list(queries),
            limit=max(1, min(k, 16384)),
            filter=expression,
            output_fields=["id"],
            search_params={"params": SEARCH_PARAMS[self.index_type]},
        )
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


def milvus_expression(c: Condition) -> str:
    """A field condition (storage/features/base.py) in Milvus' boolean expression language."""
    if c.op == "in":
        return f"{c.field} in {json.dumps(list(c.value), ensure_ascii=False)}"
    if c.op == "contains":
        return f"array_contains({c.field}, {json.dumps(c.value)})"
    if c.op == "contains_all":
        return f"array_contains_all({c.field}, {json.dumps(list(c.value))})"
    if isinstance(c.value, bool):
        value = "true" if c.value else "false"
    elif isinstance(c.value, int):
        value = str(c.value)
    else:
        value = repr(float(c.value))
    return f"{c.field} {c.op} {value}"


def open_collection(
    settings: VectorIndexSettings,
    data_dir: Path,
    dim: int,
    fields: Sequence[Field],
    recorded: dict,
    pruned: int,
    record: Callable[[dict], None],
    writer: bool,
) -> MilvusIndex:
    """The configured collection, with how far it follows SQLite (`recorded`: what the meta table
    says of it). A collection that does not hold this index's vectors (another index's, one that
    lacks removals already pruned from SQLite's log, one without a field a feature filters on,
    none) is made anew by the writer (its next catch-up fills it); a reader is told how to fill it."""
    index = MilvusIndex(
        settings.milvus_uri or str(data_dir / "milvus.db"),
        settings.milvus_collection,
        dim,
        settings.milvus_index,
        fields,
        record,
    )
    current = recorded.get("last_removal", -1) >= pruned
    if recorded.get("target") == index.target and current and index.exists() and index.has_fields():
        index.load()
        index.state = IndexState(recorded["last_keyframe"], recorded["last_removal"])
    elif writer:
        log.info("filling Milvus collection %s from SQLite", index.target)
        index.create()
    else:
        index.close()
        raise VectorServiceError(
            f"{index.target} does not hold this index's vectors: run `evr reindex --vectors milvus` once to fill it"
        )
    return index


def _connect(uri: str):
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    if uri.endswith(".db"):
        # Milvus Lite serves pymilvus from a gRPC server in this process, which does not implement
        # every call pymilvus may try first (AllocTimestamp, before it falls back); gRPC logs each
        # such try as an error with a traceback. No other gRPC server runs in an evr process.
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)

    # pymilvus and Milvus Lite log a failed connection themselves, with tracebacks, before
    # pymilvus raises: the one line the user gets is ours. Some of their loggers set a level of
    # their own (pymilvus.milvus_client: INFO, with its own handler), so each is quieted.
    family = [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in ("pymilvus", "milvus_lite")]
    libraries = [logging.getLogger(name) for name in {"pymilvus", "milvus_lite", *family}]
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
                "for several processes at once use a Milvus server ([storage] milvus_uri)"
            ) from exc
        raise VectorServiceError(
            f"cannot reach Milvus at {uri} ({exc.message}): start it, or fix [storage] milvus_uri "
            "(a path ending in .db runs Milvus Lite in this process)"
        ) from exc
    finally:
        for lib, level in zip(libraries, saved):
            lib.setLevel(level)
