"""`evr import aic`: an AI Challenge data package (indexer/aic.py reads and checks it) into the
index, without decoding any video. Each video is checked whole before anything of it is written,
then committed in one transaction like an indexed one: a malformed file fails that video, with
the reason, and the others are imported. A video whose files did not change since its import is
skipped."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from evr.storage import PRIMARY_MODEL, ModelInfo, NewKeyframe, Plan, Store, VideoInfo, VideoMedia

from ..aic import (
    PACKAGE_META,
    PACKAGE_OBJECTS,
    AicFormatError,
    AicVideo,
    fps_of,
    keyframe_images,
    media_meta,
    read_features,
    read_map,
    read_media_info,
    read_objects,
)
from ..files import why_unreadable
from ..report import RunReport
from ..settings import IndexSettings
from ..thumbnails import image_thumbnail
from .analysis import KeyframeAnalysis
from .base import Source

log = logging.getLogger(__name__)


class AicPackage(Source):
    """The videos of an AI Challenge package: each one's files read and checked whole (work),
    then committed like an indexed video."""

    command = "import"

    def __init__(self, settings: IndexSettings, videos: list[AicVideo], model: ModelInfo, *, analyze: bool = False):
        """`videos`: what `find_package` found (found first, so a wrong folder writes nothing);
        `model`: the one that made the package's features; `analyze`: run the enabled analyzers
        on the imported keyframes after (sources/analysis.py)."""
        self.settings = settings
        self.videos = videos
        self.model_info = model
        self.thumbnail_width = settings.keyframes.thumbnail_width
        self.objects_min_score = settings.feature("objects").min_score
        self.analyze = analyze
        self.vectors = f"aic:{model.name}/{model.pretrained}"  # what made the package's vectors

    def followed_by(self) -> list[tuple[str, Source]]:
        return [("analyzed", KeyframeAnalysis(self.settings))] if self.analyze else []

    def models(self) -> dict[str, ModelInfo]:
        return {PRIMARY_MODEL: self.model_info}  # the package's clip-features; `evr analyze` adds the others

    def plan(self, store: Store, report: RunReport) -> list[tuple[AicVideo, tuple[int, int], bool]]:
        """Each video to import (video, fingerprint, False), or to give only the metadata of its
        media-info (True: imported before evr read it; its keyframes and analyses stay)."""
        todo = []
        for video in self.videos:
            if video.map_csv is None:
                where = video.keyframe_dir or video.features or video.media_info or video.video_file
                report.videos_failed.append(
                    {"video_id": video.video_id, "path": str(where), "error": "no map-keyframes CSV for this video"}
                )
                continue
            try:
                fingerprint = video.fingerprint()
            except OSError as exc:  # a link that loops, a folder that cannot be listed
                report.videos_failed.append(
                    {
                        "video_id": video.video_id,
                        "path": str(video.map_csv),
                        "error": f"cannot read {exc.filename or 'its files'}: {why_unreadable(exc)}",
                    }
                )
                continue
            state = store.catalog.video_state(str(video.map_csv))
            unchanged = state is not None and (state.size, state.mtime_ns) == fingerprint
            # An imported video whose vectors this import would give again (its analyses aside), or a
            # failure whose files did not change.
            done = unchanged and (
                state.status == "failed"
                or (state.status == "indexed" and state.plan is not None and state.plan.vectors == self.vectors)
            )
            if not done:
                todo.append((video, fingerprint, False))
            elif state.status == "indexed" and video.media_info is not None and "meta" not in state.plan.analyzers:
                todo.append((video, fingerprint, True))
            else:
                report.videos_skipped += 1
        return todo

    def work(self, store: Store, todo: list, note) -> Iterator[tuple[tuple, object]]:
        for video, fingerprint, meta_only in todo:
            note(video.video_id)
            try:
                yield (
                    (video, fingerprint, meta_only),
                    (media_meta(read_media_info(video.media_info)) if meta_only else self._read(video)),
                )
            except AicFormatError as exc:
                yield (video, fingerprint, meta_only), exc

    def commit(self, store: Store, task: tuple, result, report: RunReport) -> None:
        video, (size, mtime_ns), meta_only = task
        if meta_only:  # the keyframes stay as they were imported
            report.videos_skipped += 1
            if isinstance(result, AicFormatError):
                log.warning("%s: %s; its metadata was not read", video.video_id, result)
                report.warnings.append({"video_id": video.video_id, "warning": f"{result}; no metadata read"})
                return
            state = store.catalog.video_state(str(video.map_csv))
            plan = state.plan.with_analyzers({"meta": PACKAGE_META})
            store.writes.save_analysis(state.id, plan, {}, {"meta": result})
            return
        db_id = store.writes.start_video(str(video.map_csv), size, mtime_ns)
        if isinstance(result, AicFormatError):
            log.error("%s: %s", video.video_id, result)
            store.writes.fail_video(db_id, str(result))
            report.videos_failed.append({"video_id": video.video_id, "path": str(video.map_csv), "error": str(result)})
            return
        keyframes, info, media, warnings = result
        for warning in warnings:
            log.warning("%s: %s", video.video_id, warning)
            report.warnings.append({"video_id": video.video_id, "warning": warning})
        # The package's own detections: `evr analyze` keeps them (see KeyframeAnalysis.plan).
        analyzers = {"objects": PACKAGE_OBJECTS} if any("objects" in k.analyses for k in keyframes) else {}
        by_video = {"meta": media_meta(media.info)} if media.info is not None else {}
        if by_video:
            analyzers["meta"] = PACKAGE_META
        report.keyframes_added += store.writes.save_video(
            db_id,
            info,
            keyframes,
            Plan("aic", vectors=self.vectors, analyzers=analyzers),
            media=media,
            video_analyses=by_video,
        )
        report.videos_imported += 1

    def _read(self, video: AicVideo) -> tuple[list[NewKeyframe], VideoInfo, VideoMedia, list[str]]:
        """Everything of one video, checked, before anything is written."""
        if video.duplicates:
            raise AicFormatError(f"found twice: {', '.join(str(p) for p in video.duplicates)}")
        if video.features is None:
            raise AicFormatError("no clip-features-32 file for this video")
        if video.keyframe_dir is None:
            raise AicFormatError("no keyframe folder for this video")
        rows = read_map(video.map_csv)
        vectors = read_features(video.features, len(rows), self.model_info.dim)
        if rows[-1].n > len(vectors):
            raise AicFormatError(
                f"{video.map_csv.name}: keyframe {rows[-1].n} has no feature row "
                f"({video.features.name} has {len(vectors)})"
            )
        images = keyframe_images(video.keyframe_dir)
        missing = [r.n for r in rows if r.n not in images]
        if missing:
            raise AicFormatError(
                f"{len(missing)} keyframe images missing from {video.keyframe_dir} "
                f"(keyframe {', '.join(map(str, missing[:5]))}{', ...' if len(missing) > 5 else ''})"
            )
        warnings, objects = [], {}
        if video.objects_dir is not None:
            try:
                objects = read_objects(video.objects_dir, self.objects_min_score)
            except AicFormatError as exc:  # the keyframes are sound: import them without objects
                warnings.append(f"{exc}; imported without its objects")
        keyframes, size = [], (0, 0)
        for r in rows:
            try:
                jpeg, size = image_thumbnail(images[r.n], self.thumbnail_width)
            except ValueError as exc:
                raise AicFormatError(str(exc)) from None
            keyframes.append(
                NewKeyframe(
                    frame_idx=r.frame_idx,
                    timestamp=round(r.pts_time, 4),
                    shot=0,
                    jpeg=jpeg,
                    vector=vectors[r.n - 1],
                    source_image=str(images[r.n]),
                    analyses={"objects": objects[r.n]} if r.n in objects else {},
                )
            )
        info = None
        if video.media_info is not None:
            try:
                info = read_media_info(video.media_info)
            except AicFormatError as exc:  # the keyframes are sound: import them without it
                warnings.append(f"{exc}; imported without its media-info")
        fps = next((r.fps for r in rows if r.fps), None) or fps_of(rows)
        length = (info or {}).get("length")
        duration = float(length) if isinstance(length, (int, float)) and length > 0 else rows[-1].pts_time
        # The frames the map reaches: the video's own count is not in the package.
        frames = max(r.frame_idx for r in rows) + 1
        media = VideoMedia("aic", str(video.video_file) if video.video_file else None, info)
        return keyframes, VideoInfo("aic", duration, fps, frames, width=size[0], height=size[1]), media, warnings
