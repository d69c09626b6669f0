"""Index progress (the bar, and log lines where no bar is drawn: a demo's log file), the order
videos are handed out in, and the demo's config."""

from __future__ import annotations

import json
import logging
import os
import subprocess

import pytest

from evr.indexer.progress import ProgressLines
from evr.indexer.run import run
from evr.indexer.runners import Runner
from evr.indexer.sources import VideoFiles
from evr.indexer.work import VideoResult
from evr.storage import Store
from evr.ui.config import load_config

from .conftest import REPO, TEST_ENV


@pytest.mark.unit
def test_progress_lines_come_every_tenth_of_the_videos_and_at_the_end(caplog):
    lines = ProgressLines(25, every_s=3600)
    with caplog.at_level(logging.INFO, logger="evr.progress"):
        for _ in range(25):
            lines.update()
    said = [r.getMessage() for r in caplog.records if r.name == "evr.progress"]
    assert [int(m.split()[1]) for m in said] == [*range(2, 25, 2), 25]
    assert said[-1].startswith("indexed 25 of 25 videos (100%) in ") and said[-1].endswith("about 0 s left")


@pytest.mark.unit
def test_progress_lines_estimate_the_time_left_from_the_bytes_done(caplog, monkeypatch):
    """Videos are handed out largest first: after the largest, 700 of 1,000 MB, took 70 s, about
    30 s are left (by videos done it would say 210 s)."""
    clock = iter([0.0, 70.0, 80.0, 90.0, 100.0])
    monkeypatch.setattr("evr.indexer.run.time.monotonic", lambda: next(clock))
    mb = 2**20
    lines = ProgressLines(4, total_size=1000 * mb, every_s=3600)
    with caplog.at_level(logging.INFO, logger="evr.progress"):
        for size in (700, 100, 100, 100):
            lines.update(size * mb)
    said = [r.getMessage() for r in caplog.records if r.name == "evr.progress"]
    assert said[0] == "indexed 1 of 4 videos (700.0 MB of 1000.0 MB, 70%) in 70 s; about 30 s left"
    assert said[-1] == "indexed 4 of 4 videos (1000.0 MB of 1000.0 MB, 100%) in 1.7 min; about 0 s left"


@pytest.mark.unit
def test_progress_lines_do_not_guess_the_time_left_from_the_first_small_files(caplog, monkeypatch):
    """A demo's first file, 77 KB of 7.8 MB, took a minute (the models loading): that said
    "about 106 min left" where four minutes were. Under 5% done, the time left is not guessed."""
    clock = iter([0.0, 62.0, 230.0])
    monkeypatch.setattr("evr.indexer.run.time.monotonic", lambda: next(clock))
    lines = ProgressLines(2, total_size=7_800_000, every_s=0)
    with caplog.at_level(logging.INFO, logger="evr.progress"):
        lines.update(77_000)
        lines.update(7_723_000)
    said = [r.getMessage() for r in caplog.records if r.name == "evr.progress"]
    assert said[0].endswith("in 62 s; the time left is not known yet")
    assert said[-1].endswith("100%) in 3.8 min; about 0 s left")


class _HandOut(Runner):
    """A runner that decodes nothing: it notes the order videos come in and fails each."""

    def __init__(self, slots: int):
        self.slots, self.order, self._held = slots, [], []

    def start(self, videos: int, first=()) -> None:
        pass

    def submit(self, path: str, only: tuple[str, ...] = ()) -> None:
        self.order.append(os.path.basename(path))
        self._held.append(path)

    def next_result(self, on_progress=None) -> VideoResult:
        return VideoResult(self._held.pop(0), None, error="not decoded in this test")

    def close(self) -> None:
        pass


@pytest.mark.unit
@pytest.mark.parametrize("slots, order", [(1, ["a.mp4", "b.mp4", "c.mp4"]), (4, ["a.mp4", "c.mp4", "b.mp4"])])
def test_videos_worked_on_side_by_side_are_handed_out_largest_first(tmp_path, slots, order):
    """With several videos at a time the largest files start first, so the run does not end on
    one long video while the other workers wait; one at a time keeps the folder's order."""
    for name, size in (("a.mp4", 3000), ("b.mp4", 1000), ("c.mp4", 2000)):
        (tmp_path / name).write_bytes(b"\0" * size)
    runner = _HandOut(slots)
    with Store(tmp_path / "data", writer=True) as store:
        settings = load_config(environ=None).index
        report = run(store, settings, VideoFiles(settings, [tmp_path], runner=runner), progress=False)
    assert runner.order == order
    assert len(report.videos_failed) == 3


@pytest.mark.e2e
def test_the_demo_leaves_a_config_that_points_the_cli_at_its_index(tmp_path, videos):
    """Offline the demo falls back to random weights in its own data folder; the config it
    writes is what `evr` needs to find that index again."""
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "counter.mp4").symlink_to(videos / "scene_cuts/counter.mp4")
    env = {
        k: v
        for k, v in {**os.environ, **TEST_ENV}.items()
        if not k.startswith(("EVR_CLIP_", "EVR_STORAGE_", "EVR_CONFIG"))
    }
    env.update(VIDEOS=str(tmp_path / "v"), DEMO_NO_APP="1", PATH=f"{REPO / '.venv' / 'bin'}:{env['PATH']}")
    run = subprocess.run(
        ["bash", str(REPO / "scripts" / "demo.sh")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stderr[-2000:]
    config = tmp_path / "data" / "demo.toml"
    assert f"export EVR_CONFIG={config}" in run.stdout + run.stderr
    # The explanation of the fallback comes first, and no error line before it.
    assert "evr: error" not in run.stderr.split("falling back to RANDOM weights")[0]
    stats = subprocess.run(
        ["evr", "stats", "--json"],
        cwd=tmp_path,
        env={**env, "EVR_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["videos"] == 1 and json.loads(stats.stdout)["keyframes"] >= 1


@pytest.mark.unit
def test_the_index_bar_counts_bytes_and_videos(tmp_path, capsys):
    for name, size in (("a.mp4", 3000), ("b.mp4", 1000), ("c.mp4", 2000)):
        (tmp_path / name).write_bytes(b"\0" * size)
    with Store(tmp_path / "data", writer=True) as store:
        settings = load_config(environ=None).index
        run(store, settings, VideoFiles(settings, [tmp_path], runner=_HandOut(4)), progress=True)
    bar = capsys.readouterr().err.split("\r")[-1]
    assert bar.startswith("3/3 videos: 100%") and "5.86k/5.86k" in bar


@pytest.mark.unit
def test_a_run_under_way_says_how_far_it_is_to_readers(tmp_path):
    """Between two commits of a run, a reader of the same data folder (the app, `evr stats`) sees
    how many of the run's videos are done; once the run has ended (its lock released), none."""
    import threading

    import numpy as np

    from evr.indexer.run import run
    from evr.indexer.settings import IndexSettings
    from evr.indexer.sources import Source
    from evr.search import SearchEngine
    from evr.storage import ModelInfo, NewKeyframe, Plan, VideoInfo

    model = ModelInfo("test", "none", 8)
    committed, go_on = threading.Semaphore(0), threading.Semaphore(0)

    class Three(Source):
        command = "index"

        def plan(self, store, report):
            return ["a", "b", "c"]

        def models(self):
            return {"clip": model}

        def work(self, store, todo, note):
            for name in todo:
                yield name, name  # back here once the run has committed it and said how far it is
                committed.release()
                go_on.acquire()  # the test looks between two commits

        def commit(self, store, task, result, report):
            vid = store.writes.start_video(f"/v/{task}.mp4", 1, 1)
            vector = np.ones(8, np.float32) / np.sqrt(8)
            store.writes.save_video(
                vid,
                VideoInfo("decord", 1.0, 25.0, 25, 8, 8),
                [NewKeyframe(0, 0.0, 0, b"j", vector)],
                plan=Plan("decoded"),
            )
            report.videos_indexed += 1

    data = tmp_path / "data"
    with Store(data, writer=True) as writer:
        # daemon: a failing assertion below must not leave the session waiting on it
        worker = threading.Thread(target=run, args=(writer, IndexSettings(), Three(), False), daemon=True)
        worker.start()
        committed.acquire()
        with Store(data) as reader:
            seen = SearchEngine(reader, None).archive.overview()
            stats = reader.health.stats()
        assert seen.writer_active and seen.run["done"] == 1 and seen.run["total"] == 3 and seen.videos == 1
        assert (stats["run"]["command"], stats["run"]["done"], stats["run"]["total"]) == ("index", 1, 3)
        go_on.release()
        committed.acquire()
        with Store(data) as reader:
            assert SearchEngine(reader, None).archive.overview().run["done"] == 2
        go_on.release()
        committed.acquire()
        go_on.release()  # after the last video
        worker.join(60)
        assert not worker.is_alive()
    with Store(data) as reader:
        assert SearchEngine(reader, None).archive.overview().run is None and reader.health.stats()["run"] is None
