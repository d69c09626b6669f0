"""The index run holds a decoder's frames only until their batch is done, whatever the decoder:
memory then stays flat in video length (benchmarks/index_stages.py --memory measures peak RSS)."""

from __future__ import annotations

import weakref

import pytest

from evr.indexer.decoders import BACKENDS, HOST_BACKENDS
from evr.indexer.run import run
from evr.indexer.sources import VideoFiles
from evr.storage import Store
from evr.ui.config import load_config

pytestmark = pytest.mark.e2e

BATCH = 4


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_frames_are_not_held_beyond_their_batch(backend, videos, tmp_path, monkeypatch):
    real = BACKENDS[backend]
    alive: set[int] = set()  # ids of decoded frame arrays not yet freed
    most_alive = [0]
    decoded = [0]

    class Counting:
        """The real backend, counting its frames' arrays that are still referenced anywhere."""

        def __init__(self, path, max_short_side):
            self._source = real(path, max_short_side)
            self.info = self._source.info

        def frames(self):
            for frame in self._source.frames():
                key = decoded[0]
                decoded[0] += 1
                alive.add(key)
                weakref.finalize(frame.rgb, alive.discard, key)
                most_alive[0] = max(most_alive[0], len(alive))
                yield frame

        def close(self):
            self._source.close()

    monkeypatch.setitem(BACKENDS, backend, Counting)
    monkeypatch.setenv("EVR_DECODE_BACKENDS", backend)
    monkeypatch.setenv("EVR_CLIP_BATCH_SIZE", str(BATCH))
    monkeypatch.setenv("EVR_KEYFRAMES_MIN_CHANGE", "0")  # a keyframe every sample_s: many batches
    config = load_config(environ=None)
    with Store(tmp_path / "data", writer=True) as store:
        report = run(
            store, config.index, VideoFiles(config.index, [videos / "opencv_samples/vtest.avi"]), progress=False
        )
    assert report.videos_indexed == 1 and decoded[0] == 795
    assert report.keyframes_added >= 150  # far more keyframes than the bound below
    # In flight at most: the batch being filled, two queued (prefetch depth), the one being
    # analysed, plus the shot detector's few frames of look-ahead and the frame being decoded.
    assert most_alive[0] <= 4 * BATCH + 4, most_alive[0]
    assert not alive  # nothing kept after the run
