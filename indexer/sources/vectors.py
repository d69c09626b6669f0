"""The other models' vectors ([[models]]) that kept keyframes lack: a model added to an existing
index, or an imported package (its `clip-features` are [clip]'s). A source of the run loop
(indexer/run.py), run by `evr index` and `evr analyze` after their own work:

- plan: the indexed videos with keyframes that lack a configured model's vector;
- work: each video's keyframe images, from the stored thumbnails when they are at least as
  large as every needed model's input, else from the video file decoded again (only as far as
  its last keyframe), or from an imported package's full-size keyframe images; then only those
  models, batched. No OCR, persons or speech run again, and no keyframe changes;
- commit: one video's new vectors in one transaction; a kill loses at most that video's, which
  the next run computes (it plans only what is missing).

A video whose file is gone or changed, or whose images cannot be read, is reported and skipped;
its keyframes stay searchable by the models that have them.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from evr.storage import PRIMARY_MODEL, MissingVectors, ModelInfo, Store

from ..decoders import DecodeError
from ..encoders import ClipEncoder
from ..report import RunReport
from ..settings import IndexSettings
from ..thumbnails import frames_again, read_rgb
from .base import Source

log = logging.getLogger(__name__)


@dataclass
class _Task:
    video: MissingVectors
    models: dict[str, set[int]]  # model name -> the keyframe ids lacking its vector


class ModelVectors(Source):
    command = "embed"
    stages = ("read", "decode", "clip", "write")

    def __init__(self, settings: IndexSettings, encoders: dict[str, ClipEncoder] | None = None):
        self.settings = settings
        # The other models' encoders by name: an index run's, already loaded, or made here.
        self.encoders = encoders or {
            name: ClipEncoder(cs) for name, cs in settings.image_models.items() if name != PRIMARY_MODEL
        }

    def models(self) -> dict[str, ModelInfo]:
        return {name: encoder.info for name, encoder in self.encoders.items()}

    def plan(self, store: Store, report: RunReport) -> list[_Task]:
        if store.facts.model() is None:
            return []
        videos: dict[int, MissingVectors] = {}
        keyframes: dict[int, dict[int, tuple]] = defaultdict(dict)  # video -> keyframe id -> its row
        models: dict[int, dict[str, set[int]]] = defaultdict(dict)
        for name in self.encoders:
            for video in store.catalog.missing_vectors(name):
                videos[video.video_db_id] = video
                keyframes[video.video_db_id].update((k[0], k) for k in video.keyframes)
                models[video.video_db_id][name] = {k[0] for k in video.keyframes}
        tasks = [
            _Task(replace(video, keyframes=sorted(keyframes[vid].values())), models[vid])
            for vid, video in videos.items()
        ]
        return sorted(tasks, key=lambda t: t.video.keyframes[0][0])

    def work(self, store: Store, todo: list[_Task], note) -> Iterator[tuple[_Task, dict | ValueError]]:
        for name in {n for task in todo for n in task.models}:
            self.encoders[name].load()  # missing weights stop here, before any work
        for task in todo:
            note(task.video.path.rsplit("/", 1)[-1])
            try:
                yield task, self._embed(task)
            except (ValueError, OSError, DecodeError) as exc:  # the file's fault: that video fails
                yield task, ValueError(str(exc))

    def commit(self, store: Store, task: _Task, result: dict | ValueError, report: RunReport) -> None:
        if isinstance(result, ValueError):
            log.error("%s: its vectors of %s were not computed: %s", task.video.path, ", ".join(task.models), result)
            report.videos_failed.append({"path": task.video.path, "error": str(result)})
            return
        vectors, seconds = result
        for stage, s in seconds.items():
            report.stage_seconds[stage] += s
        t = time.perf_counter()
        added = store.writes.save_model_vectors(vectors)
        for name, n in added.items():
            report.vectors_added[name] = report.vectors_added.get(name, 0) + n
        report.videos_embedded += 1
        report.stage_seconds["write"] += time.perf_counter() - t

    def _embed(self, task: _Task) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, float]]:
        """Each needed model's (keyframe ids, vectors) of the video, and the time each stage took."""
        video, seconds = task.video, defaultdict(float)
        batch_size = min(self.encoders[name].batch_size for name in task.models)
        out: dict[str, tuple[list[int], list[np.ndarray]]] = {name: ([], []) for name in task.models}

        def encode(kids: list[int], images: list[np.ndarray]) -> None:
            t = time.perf_counter()
            for name, lacking in task.models.items():
                chosen = [i for i, kid in enumerate(kids) if kid in lacking]
                if chosen:
                    out[name][0].extend(kids[i] for i in chosen)
                    out[name][1].append(self.encoders[name].encode_images([images[i] for i in chosen]))
            seconds["clip"] += time.perf_counter() - t

        done = 0
        for kids, images in self._images(video, task.models, seconds, batch_size):
            encode(kids, images)
            done += len(kids)
        if done < len(video.keyframes):  # decoding ends early now (the same every time: say so)
            raise ValueError(f"only {done} of its {len(video.keyframes)} keyframes could be decoded again")
        return (
            {name: (np.array(ids, np.int64), np.concatenate(vecs)) for name, (ids, vecs) in out.items() if ids},
            seconds,
        )

    def _images(
        self, video: MissingVectors, models: dict[str, set[int]], seconds: dict[str, float], batch_size: int
    ) -> Iterator[tuple[list[int], list[np.ndarray]]]:
        """Batches of (keyframe ids, RGB images) of the video's keyframes that need a vector."""
        kids, images = [], []
        t = time.perf_counter()
        if video.origin != "decoded":  # an imported package's full-size keyframe images
            source = ((kid, read_rgb(image)) for kid, _, _, image in video.keyframes)
            stage = "read"
        elif self._thumbnails_suffice(video, models):
            source = ((kid, read_rgb(thumbnail)) for kid, _, thumbnail, _ in video.keyframes)
            stage = "read"
        else:
            by_frame = {frame_idx: kid for kid, frame_idx, _, _ in video.keyframes}
            frames = frames_again(video.path, video.size, video.mtime_ns, set(by_frame), self.settings)
            source = ((by_frame[f.idx], f.rgb) for f in frames)
            stage = "decode"
        for kid, rgb in source:
            kids.append(kid)
            images.append(rgb)
            if len(kids) == batch_size:
                seconds[stage] += time.perf_counter() - t
                yield kids, images
                kids, images, t = [], [], time.perf_counter()
        seconds[stage] += time.perf_counter() - t
        if kids:
            yield kids, images

    def _thumbnails_suffice(self, video: MissingVectors, models: dict[str, set[int]]) -> bool:
        """Whether the video's thumbnails are at least as large as every needed model's input
        on their short side (their size is read from the first one's header)."""
        try:
            with Image.open(video.keyframes[0][2]) as first:
                short = min(first.size)
        except OSError:
            return False
        return short >= max(self.encoders[name].image_size for name in models)
