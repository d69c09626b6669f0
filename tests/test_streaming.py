"""The streaming index run (indexer/runners/streaming.py): decode workers feeding one batched
model stage give the index the serial run gives, fail a corrupt file alone, redo the video of a
worker that dies, and leave no worker behind when the run itself is killed."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from multiprocessing.connection import wait
from pathlib import Path

import numpy as np
import pytest

from evr.indexer.encoders import ModelUnavailableError
from evr.indexer.runners import StreamingRunner
from evr.indexer.work import VideoWorker
from evr.storage import Store
from evr.ui.config import load_config

from .conftest import REPO, SAMPLE, TEST_ENV, copy_video, evr

pytestmark = pytest.mark.e2e  # decode worker processes

# The sample clips and the longest sample video (about 8 s of decoding here), for a worker to die on.
LONG = "opencv_samples/vtest.avi"


def index_rows(data: Path) -> tuple[list, list, dict]:
    """(keyframes as (video, frame_idx, timestamp, shot), shots, vectors by (video, frame_idx))."""
    with sqlite3.connect(data / "evr.sqlite") as db:
        keyframes = db.execute(
            "SELECT v.stem, k.frame_idx, k.timestamp, k.shot FROM keyframes k "
            "JOIN videos v ON v.id = k.video_id ORDER BY v.stem, k.frame_idx"
        ).fetchall()
        shots = db.execute(
            "SELECT v.stem, s.shot, s.start_frame, s.start, s.end FROM shots s "
            "JOIN videos v ON v.id = s.video_id ORDER BY v.stem, s.shot"
        ).fetchall()
        vectors = {
            (stem, idx): np.frombuffer(blob, np.float16).astype(np.float32)
            for stem, idx, blob in db.execute(
                "SELECT v.stem, k.frame_idx, e.vector FROM keyframes k JOIN videos v ON v.id = k.video_id "
                "JOIN embeddings e ON e.keyframe_id = k.id"
            )
        }
    return keyframes, shots, vectors


@pytest.fixture(scope="module")
def folder(videos, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("streaming-videos")
    for rel in [*SAMPLE, LONG]:
        (d / Path(rel).name).symlink_to(videos / rel)
    return d


@pytest.fixture(scope="module")
def serial(folder, tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("serial")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVR_INDEX_DECODE_WORKERS", "1")
        assert evr("--data-dir", data, "index", folder, "--no-progress")[0] == 0
    return data


def assert_same_index(data: Path, serial: Path) -> None:
    keyframes, shots, vectors = index_rows(data)
    want_keyframes, want_shots, want_vectors = index_rows(serial)
    assert keyframes == want_keyframes
    assert shots == want_shots
    assert vectors.keys() == want_vectors.keys()
    # The same frames through the same model in other batches: equal to float16 storage precision.
    worst = max(float(np.abs(vectors[k] - want_vectors[k]).max()) for k in vectors)
    assert worst < 2e-3, worst


def test_the_parallel_index_equals_the_serial_one(folder, serial, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EVR_INDEX_DECODE_WORKERS", "2")
    code, report = evr("--data-dir", tmp_path, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and report["videos_indexed"] == len(SAMPLE) + 1 and report["videos_failed"] == []
    assert_same_index(tmp_path, serial)
    assert report["frames_decoded"] > 0 and report["stage_seconds"]["decode"] > 0


def test_a_corrupt_video_fails_alone_in_a_parallel_run(videos, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("video7010.mp4", "video7011.mp4", "video7012.mp4"):
        copy_video(videos / "msrvtt" / name, folder / name)
    (folder / "garbage.mp4").write_bytes(os.urandom(50_000))
    monkeypatch.setenv("EVR_INDEX_DECODE_WORKERS", "2")
    code, report = evr("--data-dir", tmp_path / "data", "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 1
    assert report["videos_indexed"] == 3
    assert [Path(f["path"]).name for f in report["videos_failed"]] == ["garbage.mp4"]
    code, stats = evr("--data-dir", tmp_path / "data", "stats", "--json", capsys=capsys)
    assert stats["videos"] == 3 and stats["consistent"]


def test_the_video_of_a_worker_that_dies_is_decoded_again(folder, serial, videos, tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("EVR_INDEX_DECODE_WORKERS", "2")
    settings = load_config().index
    long_path = str(folder / Path(LONG).name)
    with Store(tmp_path, writer=True) as store:
        worker = VideoWorker(settings)
        store.bind_model(worker.clip.info)
        runner = StreamingRunner(settings, worker, 2)
        paths = [str(folder / Path(rel).name) for rel in SAMPLE[:2]] + [long_path]
        ids = {p: store.writes.start_video(p, 1, 1) for p in paths}
        results = {}
        with runner, caplog.at_level(logging.WARNING):
            runner.start(len(paths))
            for p in paths:
                runner.submit(p)
            # The model stage's own reading, until the long video's first keyframes are in: then
            # kill the worker decoding it, in the middle of the video (and maybe of a message).
            while runner._videos[long_path].waiting == 0:
                message = runner._take(block=True)
                if message is not None:
                    runner._handle(*message)
            next(w for w in runner._workers if w.videos and w.videos[0] == long_path).proc.kill()
            while len(results) < len(paths):
                result = runner.next_result()
                results[result.path] = result
        assert "decoding it again" in caplog.text
        assert all(r.error is None for r in results.values())
        for p, result in results.items():
            store.writes.save_video(ids[p], result.info, result.keyframes, result.plan, shots=result.shots)
    keyframes, _, _ = index_rows(tmp_path)
    want = [k for k in index_rows(serial)[0] if k[0] in {Path(p).stem for p in paths}]
    assert keyframes == want


def test_decoding_starts_while_the_models_load(folder, serial, tmp_path, monkeypatch):
    """The videos submitted first are in the decode workers' hands before the models load: a
    model load that waits for their first keyframes (it would wait forever otherwise) ends, and
    the index is the serial one."""
    monkeypatch.setenv("EVR_INDEX_DECODE_WORKERS", "2")
    runners: list[StreamingRunner] = []
    real_init, real_load = StreamingRunner.__init__, VideoWorker.load
    monkeypatch.setattr(
        StreamingRunner, "__init__", lambda self, *a, **k: (runners.append(self), real_init(self, *a, **k))[1]
    )
    keyframes_before_load = []

    def load(worker):
        ready = wait([w.conn for w in runners[-1]._workers], timeout=120)
        keyframes_before_load.append(bool(ready))
        real_load(worker)

    monkeypatch.setattr(VideoWorker, "load", load)
    code, _ = evr("--data-dir", tmp_path, "index", folder, "--no-progress")
    assert code == 0 and keyframes_before_load == [True]
    assert_same_index(tmp_path, serial)


def test_missing_weights_stop_a_parallel_run_before_anything_is_stored(folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EVR_INDEX_DECODE_WORKERS", "2")
    workers: list[int] = []

    def load(worker):
        workers.extend(p.pid for p in multiprocessing.active_children())
        raise ModelUnavailableError("CLIP weights are not here (a test)")

    monkeypatch.setattr(VideoWorker, "load", load)
    code, _ = evr("--data-dir", tmp_path, "index", folder, "--no-progress")
    assert code != 0 and "weights are not here" in capsys.readouterr().err
    assert len(workers) == 2, "the decode workers had not started during the load"
    assert not any(_alive(pid) for pid in workers), "decode workers outlived the failed load"
    with sqlite3.connect(tmp_path / "evr.sqlite") as db:
        assert db.execute("SELECT count(*) FROM videos").fetchone() == (0,)


def test_killing_the_run_kills_its_workers_and_the_next_run_completes(folder, serial, tmp_path):
    env = {**os.environ, **TEST_ENV, "EVR_INDEX_DECODE_WORKERS": "2"}
    run = subprocess.Popen(
        [sys.executable, "-m", "evr.ui.cli", "--data-dir", str(tmp_path), "index", str(folder), "--no-progress"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children: list[int] = []
    deadline = time.monotonic() + 120
    while len(children) < 2 and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.2)
        children = [pid for pid in _children(run.pid) if b"spawn_main" in _cmdline(pid)]
    assert len(children) == 2, "the decode workers did not start"
    time.sleep(1.0)  # decoding
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in children), "decode workers outlived the killed run"
    code, _ = evr("--data-dir", tmp_path, "index", folder, "--no-progress")
    assert code == 0
    assert_same_index(tmp_path, serial)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
