"""The work on each video on Ray: a local cluster of N worker processes, or a cluster of machines.

Each worker is a Ray actor holding one `VideoWorker` (models loaded once), with
`cpus_per_worker` CPUs and, where the cluster has GPUs, `gpus_per_worker` GPUs (Ray sets
CUDA_VISIBLE_DEVICES, so device "auto" picks the worker's GPU). Results come back to the writer
as each video finishes. A worker that dies (killed, out of memory, a crash in native code) is
replaced by a new one and its video submitted again; a video whose worker dies
`max_attempts` times is recorded as failed, so one poisonous file cannot stop the run.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ..settings import IndexSettings
from ..work import VideoResult, VideoWorker
from .base import Runner

log = logging.getLogger(__name__)


class RayUnavailableError(Exception):
    """The Ray cluster cannot be reached or cannot hold a worker. The message says what to do."""


@dataclass
class _Task:
    actor: object
    path: str
    only: tuple[str, ...]
    attempt: int


class RayRunner(Runner):
    def __init__(self, settings: IndexSettings):
        self.settings = settings
        self.run = settings.run
        self._started_ray = False
        self._actor_class = None
        self._idle: list = []
        self._tasks: dict = {}  # ObjectRef -> _Task
        self.slots = 0

    def start(self, videos: int) -> None:
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
                    "start it (`ray start --head`) or fix [index] ray_address / --ray") from exc
            self._started_ray = True
        resources = ray.cluster_resources()
        gpus = run.gpus_per_worker if resources.get("GPU", 0) > 0 else 0
        workers = min(videos, run.workers or _capacity(resources, run.cpus_per_worker, gpus))
        if workers < 1:
            raise RayUnavailableError(f"the Ray cluster has no room for a worker ({resources})")
        self._actor_class = ray.remote(num_cpus=run.cpus_per_worker, num_gpus=gpus, max_restarts=0)(VideoWorker)
        log.info("indexing on %d Ray workers (%s CPU%s each)", workers, run.cpus_per_worker,
                 f", {gpus} GPU" if gpus else "")
        actors = [self._actor_class.remote(self.settings) for _ in range(workers)]
        _get(ray, [a.load.remote() for a in actors])  # missing weights raise here, once
        self._idle = actors
        self.slots = workers

    def submit(self, path: str, only: tuple[str, ...] = (), attempt: int = 1) -> None:
        actor = self._idle.pop()
        self._tasks[actor.index_video.remote(path, None, only)] = _Task(actor, path, only, attempt)

    def next_result(self, on_progress: Callable[[str], None] | None = None) -> VideoResult:
        import ray
        from ray.exceptions import RayActorError

        while True:
            done, _ = ray.wait(list(self._tasks), num_returns=1)
            task = self._tasks.pop(done[0])
            try:
                result = _get(ray, done[0])
            except RayActorError as exc:
                self._replace(task.actor)
                if task.attempt >= self.run.max_attempts:
                    return VideoResult(task.path, "", only=task.only, error=(
                        f"its worker died {task.attempt} times while indexing it (out of memory, or a "
                        f"crash in a decoder): {str(exc).splitlines()[0]}"))
                log.warning("the worker indexing %s died (%s); indexing it again", task.path,
                            str(exc).splitlines()[0])
                self.submit(task.path, task.only, task.attempt + 1)
                continue
            self._idle.append(task.actor)
            return result

    def _replace(self, dead) -> None:
        import ray

        ray.kill(dead, no_restart=True)
        actor = self._actor_class.remote(self.settings)
        _get(ray, actor.load.remote())
        self._idle.append(actor)

    def close(self) -> None:
        import ray

        for actor in self._idle + [t.actor for t in self._tasks.values()]:
            ray.kill(actor, no_restart=True)
        self._idle, self._tasks = [], {}
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
            "(`ray start --head`) or fix [index] ray_address / --ray") from None


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
