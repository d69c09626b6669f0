"""Plan -> work -> commit with the work on Ray workers: `evr index --workers N` gives the index a
run in one process gives, a killed worker's video is indexed again, and analyses come back from
the workers. Ray runs as a local cluster (ray.init with the workers' CPUs), as on a user's machine."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

from evr.indexer.run import run as index_run
from evr.indexer.sources import VideoFiles
from evr.storage import Store
from evr.ui.config import load_config

from .conftest import SAMPLE, evr, run

pytestmark = pytest.mark.e2e


def _contents(data_dir) -> dict:
    """Per video id: its keyframes (frame, time, shot) in order, their vectors, its shots and
    person counts: what must not depend on where the work ran. Keyframe ids may differ (videos
    are committed in the order they finish), so nothing here names them."""
    out = {}
    with Store(data_dir) as store:
        store.vectors.sync()
        for video_id in store.catalog.video_ids():
            (board,) = store.catalog.storyboards(video_id)
            shots = [s for s in board.shots if s.shot is not None]
            ids = [k.keyframe_id for shot in shots for k in shot.keyframes]
            rows = store.catalog.keyframes(ids)
            ordered = sorted(rows.values(), key=lambda r: (r.timestamp, r.keyframe_id))
            _, vectors = store.catalog.stored_vectors([r.keyframe_id for r in ordered])
            out[video_id] = {
                "keyframes": [(r.frame_idx, r.timestamp, r.shot) for r in ordered],
                "shots": [(s.start, s.end) for s in shots],
                "persons": [r.fields["person_count"] for r in ordered],
                "vectors": vectors,
            }
    return out


def _assert_same_index(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for video_id in a:
        x, y = a[video_id], b[video_id]
        assert x["keyframes"] == y["keyframes"], video_id
        assert x["shots"] == y["shots"] and x["persons"] == y["persons"], video_id
        # Stored as float16: another process's CPU kernels may round a last bit differently.
        np.testing.assert_allclose(x["vectors"], y["vectors"], atol=2e-3)


def test_two_workers_index_what_one_process_does(indexed, sample_dir, tmp_path, capsys):
    code, report = evr(
        "--data-dir", tmp_path / "data", "index", sample_dir, "--workers", "2", "--no-progress", "--json", capsys=capsys
    )
    assert code == 0 and report["videos_indexed"] == len(SAMPLE) and not report["videos_failed"]
    _assert_same_index(_contents(indexed), _contents(tmp_path / "data"))
    # A second run finds nothing to do, workers or not.
    code, again = evr(
        "--data-dir", tmp_path / "data", "index", sample_dir, "--workers", "2", "--no-progress", "--json", capsys=capsys
    )
    assert code == 0 and again["videos_skipped"] == len(SAMPLE) and again["videos_indexed"] == 0


def _kill_first_busy_worker(killed: list, stop: threading.Event) -> None:
    """SIGKILL the first Ray worker seen indexing a video (its process title says so)."""
    while not stop.is_set() and not killed:
        ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
        for line in ps.splitlines():
            pid, _, title = line.strip().partition(" ")
            if title.startswith("ray::RunnerActor.next_result"):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.05)


def _kill_a_worker_with_decode_workers(killed: list, stop: threading.Event) -> None:
    """SIGKILL the first busy Ray worker seen with decode worker processes of its own (its
    children that multiprocessing started): a worker running the streaming pipeline inside."""
    while not stop.is_set() and not killed:
        ps = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
        rows = [line.split(None, 2) for line in ps.splitlines() if len(line.split(None, 2)) == 3]
        busy = {int(pid) for pid, _, title in rows if title.startswith("ray::RunnerActor.next_result")}
        parents = {int(ppid) for _, ppid, title in rows if int(ppid) in busy and "multiprocessing" in title}
        if parents:
            pid = parents.pop()
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.05)


def _run_with_a_kill(paths, data_dir, settings, kill=_kill_first_busy_worker):
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=kill, args=(killed, stop))
    killer.start()
    try:
        with Store(data_dir, writer=True) as store:
            report = index_run(store, settings, VideoFiles(settings, paths), progress=False)
    finally:
        stop.set()
        killer.join()
    return report, killed


def test_a_killed_worker_s_video_is_indexed_again(indexed, sample_dir, tmp_path, caplog):
    settings = load_config(environ=None).index
    settings = dataclasses.replace(settings, run=dataclasses.replace(settings.run, workers=2))
    report, killed = _run_with_a_kill([sample_dir], tmp_path / "data", settings)
    assert killed, "no worker was seen at work"
    assert report.videos_indexed == len(SAMPLE) and not report.videos_failed
    assert "died" in caplog.text and "indexing it again" in caplog.text
    _assert_same_index(_contents(indexed), _contents(tmp_path / "data"))


def test_a_video_whose_worker_dies_every_time_fails_and_the_rest_is_indexed(sample_dir, tmp_path):
    settings = load_config(environ=None).index
    settings = dataclasses.replace(settings, run=dataclasses.replace(settings.run, workers=2, max_attempts=1))
    report, killed = _run_with_a_kill([sample_dir], tmp_path / "data", settings)
    assert killed
    (failure,) = report.videos_failed
    assert "worker died" in failure["error"]
    assert report.videos_indexed == len(SAMPLE) - 1
    with Store(tmp_path / "data") as store:  # recorded as failed, with nothing half-written
        assert store.health.stats()["consistent"] and store.health.stats()["videos_failed"] == 1


def test_ray_workers_run_decode_workers_inside_and_a_killed_one_s_videos_are_indexed_again(
    indexed, sample_dir, tmp_path, caplog
):
    """Each Ray worker runs the streaming pipeline: two decode worker processes of its own
    feeding its models. Killing such a worker in the middle loses none of the videos it held,
    and the index equals the one made in one process."""
    settings = load_config(environ=None).index
    settings = dataclasses.replace(settings, run=dataclasses.replace(settings.run, workers=2, decode_workers=2))
    report, killed = _run_with_a_kill([sample_dir], tmp_path / "data", settings, _kill_a_worker_with_decode_workers)
    assert killed, "no Ray worker was seen with decode workers of its own"
    assert report.videos_indexed == len(SAMPLE) and not report.videos_failed
    assert "indexing it again" in caplog.text
    _assert_same_index(_contents(indexed), _contents(tmp_path / "data"))


def test_analyses_come_back_from_the_workers(videos, tmp_path, monkeypatch):
    monkeypatch.setenv("EVR_PERSONS_ENABLED", "true")
    monkeypatch.setenv("EVR_PERSONS_BACKEND", "mediapipe")
    clip = videos / "asl_gestures/again.mkv"
    code, _ = evr("--data-dir", tmp_path / "serial", "index", clip, "--no-progress")
    assert code == 0
    code, _ = evr("--data-dir", tmp_path / "workers", "index", clip, "--workers", "2", "--no-progress")
    assert code == 0
    serial, workers = _contents(tmp_path / "serial"), _contents(tmp_path / "workers")
    assert any(serial["again"]["persons"]), "the signer was not seen: nothing was compared"
    _assert_same_index(serial, workers)


def test_an_unreachable_ray_cluster_gives_one_clear_line(sample_dir, tmp_path, capsys):
    code, _, err = run(
        capsys, "--data-dir", tmp_path / "data", "index", sample_dir, "--ray", "127.0.0.1:9", "--no-progress"
    )
    assert code == 1
    assert "cannot reach the Ray cluster at '127.0.0.1:9'" in err and "Traceback" not in err
