"""The work of an index run as a stream: every core decoding, one batched model stage.

    decode workers (processes, `[index] decode_workers`)       the writer's process
    video -> frames -> shots, keyframes, thumbnails  ---->  model stage: CLIP and frame analyzers
    (one video at a time each)         a pipe per worker     on batches of keyframes from any
                                                             videos -> a video's result once all
                                                             its keyframes are done

Decoding and keyframe selection take one core per video and need no model, so N processes do
them side by side; the models stay loaded once, in this process, and fill each batch (up to
`clip.batch_size`) from whatever videos have keyframes ready, so no batch is cut short at a
video's end. Memory is bounded however long the videos are and however fast decoding runs: a
worker sends `FRAMES_PER_MESSAGE` keyframes at a time and waits while its pipe is full, and this
process reads a message only when its batch has room. File analyzers (speech) run here, on a
video once its keyframes are done.

Crash safety is the writer's as ever (a result is committed whole or not at all). A worker that
dies is replaced and its videos started again from the beginning (the keyframes it had sent are
dropped); a video whose worker dies `[index] max_attempts` times fails. Workers die with this
process (PR_SET_PDEATHSIG), so a killed run leaves none behind.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import pickle
import signal
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from evr.storage.types import NewKeyframe

from ..pixels import on_host
from ..settings import IndexSettings
from ..thumbnails import encode_thumbnail
from ..work import (
    KeyframeStream,
    StreamEnd,
    VideoResult,
    VideoWorker,
    add_seconds,
    error_text,
    keyframe_vectors,
    machine_fault,
    pin_malloc_mmap_threshold,
)
from .base import Runner

log = logging.getLogger(__name__)

FRAMES_PER_MESSAGE = 16  # keyframes per message: 720p frames, 16 x 2.8 MB = 44 MB
POLL_S = 0.5  # how often a waiting model stage looks at its workers' health
NICENESS = 5  # decode workers' priority below the model stage's


@dataclass
class _InFlight:
    """A video the streaming runner has in hand: its result as it fills, and where it is."""

    result: VideoResult
    attempt: int = 1
    waiting: int = 0  # keyframes sent and not through the models yet
    end: StreamEnd | None = None  # set once its worker finished decoding it
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))


@dataclass
class _Worker:
    """A decode worker and its own pipe: videos go down it, keyframes come back. One pipe per
    worker, not a shared queue: a worker killed in the middle of a message breaks only its own
    pipe (a shared queue's lock would stay held and stop every other worker)."""

    proc: mp.Process
    conn: Connection
    videos: deque[str] = field(default_factory=deque)  # given to it, in order; the first is being decoded


class StreamingRunner(Runner):
    def __init__(self, settings: IndexSettings, worker: VideoWorker, decode_workers: int):
        self.settings = settings
        self.worker = worker
        self.decode_workers = decode_workers
        # Videos in hand: one being decoded and one waiting per worker keeps every core busy.
        self.slots = 2 * decode_workers
        self._ctx = mp.get_context("spawn")  # no fork of a process holding torch's threads
        self._workers: list[_Worker] = []
        self._turn = 0  # the worker read first next time (each gets its turn)
        self._idle_deaths = 0  # workers that died holding no video
        self._videos: dict[str, _InFlight] = {}
        self._frames: deque = deque()  # (path, frame_idx, timestamp, rgb, jpeg) in arrival order
        self._done: deque[VideoResult] = deque()
        self._given_early: set[str] = set()  # given to workers in `start`, not submitted yet
        self._encoded = 0  # keyframes through the models in this run: the progress bar shows it

    def start(self, videos: int, first: Sequence[str] = ()) -> None:
        """Decoding starts while the models load (ViT-L-14's took 10 s on a 2-core CPU): the
        workers start on the `first` videos at once, and their keyframes wait in the pipes."""
        for _ in range(min(self.decode_workers, max(videos, 1))):
            self._spawn()
        for path in first:
            self._videos[path] = _InFlight(VideoResult(path, None))  # its plan once the models are loaded
            self._give(path)
        self._given_early = set(first)
        try:
            self.worker.load()  # missing weights stop the run before anything is stored
        except BaseException:
            self.close()
            raise
        plan = self.worker.plan()  # a backend chosen at load may sign it
        for video in self._videos.values():
            video.result.plan = plan

    def _spawn(self) -> None:
        ours, theirs = self._ctx.Pipe()
        proc = self._ctx.Process(target=_decode, args=(self.settings, theirs, os.getpid()), daemon=True)
        proc.start()
        theirs.close()
        self._workers.append(_Worker(proc, ours))

    def submit(self, path: str, only: tuple[str, ...] = ()) -> None:
        if only:  # file analyzers alone, on an indexed video: no decoding, here
            self._done.append(self.worker.index_video(path, None, only))
            return
        if path in self._given_early:  # in a worker's hands since `start`
            self._given_early.discard(path)
            return
        self._videos[path] = _InFlight(VideoResult(path, self.worker.plan()))
        self._give(path)

    def _give(self, path: str) -> None:
        """To the worker with the fewest videos in hand."""
        worker = min(self._workers, key=lambda w: len(w.videos))
        worker.videos.append(path)
        worker.conn.send(path)

    def next_result(self, on_progress: Callable[[str], None] | None = None) -> VideoResult:
        size = self.worker.clip.batch_size
        while not self._done:
            message = self._take(block=not self._frames)
            if message is not None:
                self._handle(*message)
            # A full batch, or whatever is ready when no more is coming right now.
            if len(self._frames) >= size or (self._frames and message is None):
                self._encode(size)
                if on_progress:
                    on_progress(f"{self._encoded} keyframes")
        return self._done.popleft()

    def _take(self, block: bool) -> tuple[_Worker, tuple] | None:
        """One message from some worker, each in turn (None: none ready, or a worker died)."""
        ready = wait([w.conn for w in self._workers], timeout=POLL_S if block else 0)
        if not ready:
            self._check_workers()
            return None
        order = self._workers[self._turn :] + self._workers[: self._turn]
        worker = next(w for w in order if w.conn in ready)
        self._turn = (self._workers.index(worker) + 1) % len(self._workers)
        try:
            return worker, worker.conn.recv()
        except (EOFError, OSError, pickle.UnpicklingError):  # it died, maybe in the middle of a message
            self._replace(worker)
            return None

    def _handle(self, worker: _Worker, message: tuple) -> None:
        kind, path = message[:2]
        video = self._videos[path]
        if kind == "frames":
            _, _, frames, seconds = message
            add_seconds(video.seconds, seconds)
            video.waiting += len(frames)
            self._frames.extend((path, *frame) for frame in frames)
            return
        worker.videos.remove(path)  # the worker is done with it
        if kind == "end":
            _, _, video.end, seconds = message
            add_seconds(video.seconds, seconds)
            self._finish_if_done(path)
        elif kind == "failed":
            _, _, error, seconds = message
            add_seconds(video.seconds, seconds)
            self._fail(path, error)
        elif kind == "machine":  # a full or failing disk where the worker wrote: stop the run
            _, _, errno_, text = message
            raise OSError(errno_, text)

    def _encode(self, size: int) -> None:
        """One batch through the image-text models and the frame analyzers, keyframes from any videos."""
        batch = [self._frames.popleft() for _ in range(min(size, len(self._frames)))]
        seconds: dict[str, float] = defaultdict(float)
        vectors, analyses = self.worker.encode([rgb for _, _, _, rgb, _ in batch], seconds)
        self._encoded += len(batch)
        for i, ((path, idx, timestamp, _, jpeg), found) in enumerate(zip(batch, analyses)):
            video = self._videos[path]
            video.result.keyframes.append(
                NewKeyframe(
                    frame_idx=idx,
                    timestamp=timestamp,
                    shot=0,
                    jpeg=jpeg,
                    analyses=found,
                    **keyframe_vectors(vectors, i),
                )
            )
            video.waiting -= 1
        # Each video's share of the batch's time, by its keyframes in it.
        share = defaultdict(int)
        for path, *_ in batch:
            share[path] += 1
        for path, n in share.items():
            for stage, s in seconds.items():
                self._videos[path].seconds[stage] += s * n / len(batch)
        for path in share:
            self._finish_if_done(path)

    def _finish_if_done(self, path: str) -> None:
        video = self._videos[path]
        if video.end is None or video.waiting:
            return
        del self._videos[path]
        result = video.result
        video.end.apply(result)
        add_seconds(result.stage_seconds, video.seconds)
        self.worker.analyze_file(path, result, tuple(self.worker.file_analyzers), None)
        self._done.append(result)

    def _fail(self, path: str, error: str) -> None:
        video = self._videos.pop(path)
        self._frames = deque(f for f in self._frames if f[0] != path)
        video.result.error = error
        add_seconds(video.result.stage_seconds, video.seconds)
        self._done.append(video.result)

    def _check_workers(self) -> None:
        for worker in list(self._workers):
            if not worker.proc.is_alive():
                self._replace(worker)

    def _replace(self, dead: _Worker) -> None:
        """A new worker for a dead one; each video it held starts again, or fails once its
        workers died max_attempts times."""
        self._workers.remove(dead)
        self._turn = 0
        dead.proc.join(timeout=5)
        dead.conn.close()
        code = dead.proc.exitcode
        why = f"exit code {code}" if code and code > 0 else f"signal {-code}" if code else "it stopped"
        if not dead.videos:
            # Dead before it took a video: a worker that cannot start (it would forever).
            self._idle_deaths += 1
            if self._idle_deaths > 2 * self.decode_workers:
                raise RuntimeError(
                    f"decode workers keep dying before any work ({why}): run with "
                    "index.decode_workers = 1 and -vv to see why"
                )
        self._spawn()
        for path in dead.videos:
            video = self._videos[path]
            self._frames = deque(f for f in self._frames if f[0] != path)
            if video.attempt >= self.settings.run.max_attempts:
                log.error("the worker decoding %s died %d times (%s)", path, video.attempt, why)
                self._fail(path, f"its decode worker died {video.attempt} times ({why})")
                continue
            log.warning("the worker decoding %s died (%s); decoding it again", path, why)
            self._videos[path] = _InFlight(VideoResult(path, video.result.plan), attempt=video.attempt + 1)
            self._give(path)

    def close(self) -> None:
        """Stop the workers (the models stay loaded: the caller's encoder may serve searches)."""
        for worker in self._workers:
            worker.proc.kill()
        for worker in self._workers:
            worker.proc.join(timeout=5)
            worker.conn.close()
        self._workers.clear()


def _decode(settings: IndexSettings, conn: Connection, parent: int) -> None:
    """A decode worker: videos from its pipe; their keyframes and end (or failure) back."""
    _die_with(parent)
    pin_malloc_mmap_threshold()
    _yield_to_the_models()
    width = settings.keyframes.thumbnail_width
    while True:
        try:
            path = conn.recv()
        except EOFError:  # the run closed the pipe: done
            return
        seconds: dict[str, float] = defaultdict(float)
        try:
            stream = KeyframeStream(path, settings, seconds)
            try:
                for batch in stream.batches(FRAMES_PER_MESSAGE):
                    t = time.perf_counter()
                    # Kept keyframes go to the model process through the host (NVDEC's are
                    # tensors in this process's GPU memory until here).
                    host = [on_host(f.rgb) for f in batch]
                    frames = [
                        (f.idx, round(f.timestamp, 4), rgb, encode_thumbnail(rgb, width)) for f, rgb in zip(batch, host)
                    ]
                    seconds["write"] += time.perf_counter() - t
                    conn.send(("frames", path, frames, dict(seconds)))
                    seconds.clear()
                    del frames, batch
                end = stream.finish()
            finally:
                stream.close()
            conn.send(("end", path, end, dict(seconds)))
        except Exception as exc:
            if machine_fault(exc):
                conn.send(("machine", path, getattr(exc, "errno", None), str(exc)))
            else:
                conn.send(("failed", path, error_text(exc), dict(seconds)))


def _yield_to_the_models() -> None:
    """One thread per worker, at a lower priority than the writer's process: where the models
    run on the CPU they are the slow stage and must not wait for a core (on 2 cores, without
    this, two decode workers ran at 0.95x of one, on a loaded machine); where they run on a GPU,
    decoding has the cores the models leave free anyway."""
    import cv2

    cv2.setNumThreads(1)
    try:
        os.nice(NICENESS)
    except OSError:
        pass


def _die_with(parent: int) -> None:
    """Be killed when the writer's process dies, however it dies (Linux; elsewhere the worker
    notices at its next video)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before the call above took effect
        os._exit(1)
