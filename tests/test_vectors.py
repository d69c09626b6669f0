"""The vector index at archive scale, on clustered planted vectors: approximate recall against the
exact index, ids and vectors that stay paired through re-indexing and removals, a kill during a
save or build, catching up on exactly what a file lacks, and filters on both kinds of index."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from benchmarks.scale import clustered
from evr.storage import KeyframeFilter, ModelInfo, NewKeyframe, PersonPose, PersonsInFrame, Store, VideoInfo
from evr.storage.vectors import FlatIndex, IvfIndex, VectorIndexSettings
from evr.storage.vectors.base import IVF_MIN_VECTORS as MIN_VECTORS
from evr.storage.vectors.ivf import training_size

from .conftest import REPO, nearest, vector_of

pytestmark = pytest.mark.unit

DIM = 32
MODEL = ModelInfo("test-model", "none", DIM)
INFO = VideoInfo("planted", 100.0, 25.0, 2500, 320, 240)
PER_VIDEO = 100
IVF = VectorIndexSettings(kind="ivf")
FLAT = VectorIndexSettings(kind="flat")


def clustered_set(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(50, n // 300), dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return clustered(rng, centres, n)


def test_ivf_recall_against_the_exact_index_on_50k_clustered_vectors():
    vectors = clustered_set(50_000, 128)
    ids = np.arange(1, len(vectors) + 1)
    flat = FlatIndex.empty(128, FLAT, Path("unsaved.faiss"))
    flat.add(ids, vectors)
    sample = vectors[np.random.default_rng(1).choice(len(vectors), training_size(len(vectors)), replace=False)]
    ivf = IvfIndex.train(sample, len(vectors), IVF, Path("unsaved.faiss"))
    ivf.add(ids, vectors)
    queries = vectors[np.random.default_rng(2).choice(len(vectors), 200, replace=False)]
    _, exact = flat.search(queries, 10)
    _, approx = ivf.search(queries, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.95, recall
    # Restricted to a sparse subset (1 in 100 ids), it still finds the exact top 10 of that subset.
    allowed = ids[::100]
    _, exact = flat.search(queries[:50], 10, allowed)
    _, approx = ivf.search(queries[:50], 10, allowed)
    assert np.isin(approx, allowed).all()
    assert np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)]) >= 0.95


def persons(count: int) -> PersonsInFrame:
    return PersonsInFrame(
        [
            PersonPose((0.1, 0.1, 0.3, 0.9), 0.9, [(0.2, 0.5, 1.0)] * 17, ["standing" if p % 2 else "sitting"])
            for p in range(count)
        ],
        0.1 * count,
        None,
    )


def plant(store: Store, videos: range, vectors: np.ndarray) -> None:
    """Video v holds vectors[v * PER_VIDEO:(v + 1) * PER_VIDEO]; keyframe i of a video shows i % 5 people."""
    for v in videos:
        vid = store.writes.start_video(f"/archive/v{v:04d}.mp4", 1, 1)
        store.writes.save_video(
            vid,
            INFO,
            [
                NewKeyframe(i * 25, float(i), 0, b"jpeg", vectors[v * PER_VIDEO + i], {"persons": persons(i % 5)})
                for i in range(PER_VIDEO)
            ],
        )


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """12,000 keyframes (120 videos) of clustered vectors, with an IVF index built as `evr index`
    builds it."""
    data = tmp_path_factory.mktemp("archive")
    vectors = clustered_set(12_000, DIM)
    with Store(data, writer=True, checkpoint_s=3600, index=IVF) as store:
        store.bind_model(MODEL)
        plant(store, range(120), vectors)
        assert store.vectors.index.kind == "flat"  # nothing is trained while videos are committed
        assert store.vectors.build() == "ivf"
    return data, vectors


def stored_ids(store: Store) -> set[int]:
    return set(store.filters.ids(KeyframeFilter.of()).tolist())


def assert_paired(store: Store) -> None:
    """The index holds exactly SQLite's keyframes, each under the id of its own vector."""
    store.vectors.sync()
    assert set(store.vectors.index.ids().tolist()) == stored_ids(store)
    sample = sorted(stored_ids(store))[::97]
    ids, vectors = store.catalog.stored_vectors(sample)
    for kid, vec in zip(ids, vectors):
        best = nearest(store, vec, 1)[0]
        assert best[0] == kid and best[1] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.e2e  # whole evr processes
def test_removals_and_reindexing_keep_ids_and_vectors_paired(archive, tmp_path):
    data, vectors = archive
    copy = tmp_path / "data"
    subprocess.run(["cp", "-a", str(data), str(copy)], check=True)
    rng = np.random.default_rng(5)
    with Store(copy, writer=True, index=IVF) as store:
        assert store.vectors.index.kind == "ivf"
        for v in (3, 40, 77):  # re-indexed: new vectors under new ids
            vid = store.catalog.video_state(f"/archive/v{v:04d}.mp4").id
            fresh = clustered_set(PER_VIDEO, DIM, seed=100 + v)
            store.writes.save_video(
                vid, INFO, [NewKeyframe(i, float(i), 0, b"jpeg", fresh[i]) for i in range(PER_VIDEO)]
            )
        store.writes.fail_video(store.catalog.video_state("/archive/v0005.mp4").id, "cannot decode")
        store.writes.prune(existing=[f"/archive/v{v:04d}.mp4" for v in range(120) if v != 9])
        assert store.vectors.index.kind == "ivf" and store.vectors.index.ntotal == 12_000 - 2 * PER_VIDEO
        assert_paired(store)
        assert store.vectors.build() is None  # nothing calls for a new build
        again = rng.choice(sorted(stored_ids(store)), 5, replace=False)
    with Store(copy, index=IVF) as reader:  # the saved file, read by another process
        assert reader.vectors.index.kind == "ivf"
        assert_paired(reader)
        assert reader.health.stats()["consistent"] and reader.health.stats()["vectors_pending"] == 0
        assert all(nearest(reader, vector_of(reader, int(k)), 1)[0][0] == k for k in again)


@pytest.mark.e2e  # whole evr processes
def test_catching_up_reads_only_what_the_file_lacks_and_ends_exact(archive, tmp_path):
    data, vectors = archive
    copy = tmp_path / "data"
    subprocess.run(["cp", "-a", str(data), str(copy)], check=True)
    writer = Store(copy, writer=True, checkpoint_s=3600, index=IVF)
    reader = Store(copy, index=IVF)
    assert reader.vectors.sync() == (0, 0) and reader.vectors.index.ntotal == 12_000  # the file was complete
    assert reader.vectors.index.mapped  # so it is mapped, not read into memory
    more = clustered_set(3 * PER_VIDEO, DIM, seed=9)
    plant(writer, range(120, 123), np.concatenate([vectors, more]))  # 300 new keyframes
    vid = writer.catalog.video_state("/archive/v0010.mp4").id
    fresh = clustered_set(50, DIM, seed=10)
    writer.writes.save_video(
        vid, INFO, [NewKeyframe(i, float(i), 0, b"jpeg", fresh[i]) for i in range(50)]
    )  # 100 -> 50
    assert writer.health.stats()["vectors_pending"] == 300 + 100 + 50  # nothing saved: the file lags
    assert reader.vectors.sync() == (350, 100)  # exactly the difference, not a rescan
    assert not reader.vectors.index.mapped  # a mapped index is read-only: read into memory to change it
    assert_paired(reader)
    late = Store(copy, index=IVF)  # a new reader: loads the lagging file and catches up the same
    assert late.vectors.sync() == (350, 100)
    assert set(late.vectors.index.ids().tolist()) == set(reader.vectors.index.ids().tolist())
    writer.close()  # saves, then prunes the removal log the file has applied
    plant_after = Store(copy, writer=True, checkpoint_s=3600, index=IVF)
    plant_after.writes.fail_video(plant_after.catalog.video_state("/archive/v0011.mp4").id, "gone")
    plant_after.close()
    # The log no longer holds the removals `reader` had; it reloads the file and is exact again.
    reader.vectors.sync()
    assert_paired(reader)
    for s in (reader, late):
        s.close()


KILL_DURING_SAVE = textwrap.dedent("""
    import os, signal, sys
    import faiss
    from evr.storage import Store, VectorIndexSettings
    real = faiss.PyCallbackIOWriter
    def dying(write):
        written = [0]
        def write_then_die(chunk):
            written[0] += len(chunk)
            if written[0] > 200_000:  # part of the new file is on disk
                os.kill(os.getpid(), signal.SIGKILL)
            return write(chunk)
        return real(write_then_die)
    faiss.PyCallbackIOWriter = dying
    with Store(sys.argv[1], writer=True, index=VectorIndexSettings(kind=sys.argv[2])) as store:
        store.vectors.build(force=True)
""")


@pytest.mark.e2e  # whole evr processes
@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_a_kill_while_the_index_is_built_leaves_a_usable_index(archive, tmp_path, kind):
    data, _ = archive
    copy = tmp_path / "data"
    subprocess.run(["cp", "-a", str(data), str(copy)], check=True)
    before = (copy / "vectors.faiss").read_bytes()
    done = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, str(copy), kind], cwd=REPO)
    assert done.returncode == -signal.SIGKILL
    assert (copy / "vectors.faiss").read_bytes() == before  # the old file, whole
    with Store(copy, index=IVF) as reader:
        stats = reader.health.stats()
        assert stats["consistent"] and stats["vectors"] == stats["keyframes"] == 12_000
        assert_paired(reader)
    with Store(copy, writer=True, index=VectorIndexSettings(kind=kind)) as writer:  # the next run
        writer.health.repair()
        assert not (copy / "vectors.tmp").exists()  # the half-written file is cleared away
        assert writer.vectors.build(force=True) == kind
        assert_paired(writer)


def test_filters_give_the_exact_hits_on_either_index(archive):
    data, vectors = archive
    queries = vectors[np.random.default_rng(3).choice(len(vectors), 20, replace=False)]
    # A fifth of the keyframes pass the broad filter (tried on the nearest candidates first), 1 in
    # 40 the selective one (too few among the candidates: searched among the passing ones only).
    broad = KeyframeFilter.of(min_persons=4)
    selective = KeyframeFilter.of(min_persons=2, pose=("standing",), videos=tuple(f"v{v:04d}" for v in range(5)))
    with Store(data, index=IVF) as store:
        assert store.vectors.index.kind == "ivf"
        for where in (broad, selective):
            ids, stored = store.catalog.stored_vectors(store.filters.ids(where))
            found = 0
            for q in queries:
                got = [k for k, _ in nearest(store, q, 10, where)]
                exact = ids[np.argsort(-(stored @ q), kind="stable")[:10]]  # brute force over the passing
                assert len(got) == 10 and set(got) <= set(ids.tolist())
                found += len(set(got) & set(exact.tolist()))
            assert found / (10 * len(queries)) >= 0.95


def test_auto_builds_ivf_only_from_the_configured_size(tmp_path):
    vectors = clustered_set(MIN_VECTORS + PER_VIDEO, DIM)
    settings = VectorIndexSettings(kind="auto", ivf_min_vectors=MIN_VECTORS)
    with Store(tmp_path / "d", writer=True, index=settings) as store:
        store.bind_model(MODEL)
        plant(store, range(MIN_VECTORS // PER_VIDEO - 1), vectors)
        assert store.vectors.build() is None and store.vectors.index.kind == "flat"
        plant(store, range(MIN_VECTORS // PER_VIDEO - 1, MIN_VECTORS // PER_VIDEO + 1), vectors)
        assert store.vectors.build() == "ivf" and store.health.stats()["vector_index"] == "ivf"
    assert os.path.getsize(tmp_path / "d" / "vectors.faiss") < (MIN_VECTORS + PER_VIDEO) * (DIM * 4)
