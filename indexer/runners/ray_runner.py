"""The work on each video on Ray: a local cluster of N worker processes, or a cluster of machines.

Each Ray worker is an actor that runs the same pipeline a single machine runs (`RunnerActor`):
with `decode_workers` above 1 its own decode processes feed its batched model stage
(indexer/runners/streaming.py), else one video at a time beside its models. It has
`cpus_per_worker` CPUs and, where the cluster has GPUs, `gpus_per_worker` GPUs (Ray sets
CUDA_VISIBLE_DEVICES, so device "auto" picks the worker's GPU). Results come back to the writer
as each video finishes. A worker that dies (killed, out of memory, a crash in native code) is
replaced by a new one and each video it held submitted again; a video whose worker dies
`max_attempts` times is recorded as failed, so one poisonous file cannot stop the run.
"""

from __future__ import annotations

import logging
import socket
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..settings import IndexSettings
from ..work import VideoResult, VideoWorker
from .base import Runner
from .local import local_runner

log = logging.getLogger(__name__)


class RayUnavailableError(Exception):
    """The Ray cluster cannot be reached or cannot hold a worker. The message says what to do."""


class RunnerActor:
    """One Ray worker: the models loaded once and a machine's pipeline (`local_runner`) around
    them. Ray runs an actor's calls one at a time, in the order the writer made them, so a
    `submit` waits while `next_result` does; the videos already in hand keep the decode workers
    busy meanwhile."""

    def __init__(self, settings: IndexSettings, decode_workers: int):
        self.runner = local_runner(settings, VideoWorker(settings), decode_workers)

    def start(self, videos: int) -> int:
        """Start the pipeline (missing weights raise here); how many videos it takes at once."""
        self.runner.start(videos)
        return self.runner.slots

    def submit(self, path: str, only: tuple[str, ...]) -> None:
        self.runner.submit(path, only)

    def next_result(self) -> VideoResult:
        return self.runner.next_result()


@dataclass
class _Actor:
    handle: object
    slots: int
    videos: dict = field(default_factory=dict)  # path -> (only, attempt): submitted, no result yet
    pending: object = None  # the ObjectRef of its next_result call, while one is out


class RayRunner(Runner):
    def __init__(self, settings: IndexSettings):
        self.settings = settings
        self.run = settings.run
        self.decode_workers = self.run.decoders_per_ray_worker
        self._started_ray = False
        self._actor_class = None
        self._actors: list[_Actor] = []
        self._done: deque[VideoResult] = deque()  # results to hand out before waiting again
        self._videos_per_worker = 1
        self.slots = 0

    def start(self, videos: int, first: Sequence[str] = ()) -> None:
        import ray

        run = self.run
        if not ray.is_initialized():
            local = not run.ray_address
            _check_reachable(run.ray_address)
            try:
                ray.init(
                    address=run.ray_address or None,
                    # A local cluster gets exactly the CPUs its workers ask for.
                    num_cpus=max(1, round(run.workers * run.cpus_per_worker)) if local else None,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RayUnavailableError(
                    f"cannot reach the Ray cluster at {run.ray_address!r} ({str(exc).splitlines()[0]}): "
                    "start it (`ray start --head`) or fix [index] ray_address / --ray"
                ) from exc
            self._started_ray = True
        resources = ray.cluster_resources()
        gpus = run.gpus_per_worker if resources.get("GPU", 0) > 0 else 0
        workers = min(videos, run.workers or _capacity(resources, run.cpus_per_worker, gpus))
        if workers < 1:
            raise RayUnavailableError(f"the Ray cluster has no room for a worker ({resources})")
        self._actor_class = ray.remote(num_cpus=run.cpus_per_worker, num_gpus=gpus, max_restarts=0)(RunnerActor)
        decoding = f", {self.decode_workers} decode workers" if self.decode_workers > 1 else ""
        log.info(
            "indexing on %d Ray workers (%s CPU%s each%s)",
            workers,
            run.cpus_per_worker,
            f", {gpus} GPU" if gpus else "",
            decoding,
        )
        # Each worker's pipeline sized for its share of the videos, as a machine's is for all.
        self._videos_per_worker = max(1, -(-videos // workers))
        handles = [self._actor_class.remote(self.settings, self.decode_workers) for _ in range(workers)]
        # Missing weights raise here, once.
        slots = _get(ray, [h.start.remote(self._videos_per_worker) for h in handles])
        self._actors = [_Actor(h, n) for h, n in zip(handles, slots)]
        self.slots = sum(slots)

    def submit(self, path: str, only: tuple[str, ...] = (), attempt: int = 1) -> None:
        """To the worker with the most room (the writer never holds more than `slots` videos)."""
        actor = max(self._actors, key=lambda a: a.slots - len(a.videos))
        actor.videos[path] = (only, attempt)
        actor.handle.submit.remote(path, only)

    def next_result(self, on_progress: Callable[[str], None] | None = None) -> VideoResult:
        import ray
        from ray.exceptions import RayActorError

        while not self._done:
            for actor in self._actors:
                if actor.videos and actor.pending is None:
                    actor.pending = actor.handle.next_result.remote()
            waiting = {a.pending: a for a in self._actors if a.pending is not None}
            done, _ = ray.wait(list(waiting), num_returns=1)
            actor = waiting[done[0]]
            actor.pending = None
            try:
                result = _get(ray, done[0])
            except RayActorError as exc:
                self._lost(actor, str(exc).splitlines()[0])
                continue
            actor.videos.pop(result.path, None)
            self._done.append(result)
        return self._done.popleft()

    def _lost(self, dead: _Actor, why: str) -> None:
        """A new worker for a dead one; each video it held is submitted again, or fails once its
        workers died max_attempts times."""
        import ray

        ray.kill(dead.handle, no_restart=True)
        handle = self._actor_class.remote(self.settings, self.decode_workers)
        slots = _get(ray, handle.start.remote(self._videos_per_worker))
        self._actors[self._actors.index(dead)] = _Actor(handle, slots)
        self.slots += slots - dead.slots
        for path, (only, attempt) in dead.videos.items():
            if attempt >= self.run.max_attempts:
                self._done.append(
                    VideoResult(
                        path,
                        "",
                        only=only,
                        error=(
                            f"its worker died {attempt} times while indexing it (out of memory, or a "
                            f"crash in a decoder): {why}"
                        ),
                    )
                )
                continue
            log.warning("the worker indexing %s died (%s); indexing it again", path, why)
            self.submit(path, only, attempt + 1)

    def close(self) -> None:
        import ray

        for actor in self._actors:
            ray.kill(actor.handle, no_restart=True)  # its decode workers die with it
        self._actors, self._done = [], deque()
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once, with one line, when a cluster's host:port does not answer: Ray itself keeps
    trying for a minute or more before it gives up. "" (local) and "auto" are Ray's to find."""
    if address in ("", "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except ValueError:
        raise RayUnavailableError(f"Ray cluster address {address!r} is not HOST:PORT or ray://HOST:PORT") from None
    except OSError as exc:
        raise RayUnavailableError(
            f"cannot reach the Ray cluster at {address!r} ({exc.strerror or exc}): start it "
            "(`ray start --head`) or fix [index] ray_address / --ray"
        ) from None


def _capacity(resources: dict, cpus_per_worker: float, gpus_per_worker: float) -> int:
    """How many workers the cluster holds: one per `gpus_per_worker` GPUs where it asks for
    GPUs, else one per `cpus_per_worker` CPUs."""
    if gpus_per_worker:
        return int(resources.get("GPU", 0) // gpus_per_worker)
    return int(resources.get("CPU", 0) // cpus_per_worker)


def _get(ray, refs):
    """ray.get, raising a worker's own exception (ModelUnavailableError, a full disk) rather
    than Ray's wrapper around it."""
    from ray.exceptions import RayTaskError

    try:
        return ray.get(refs)
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise
