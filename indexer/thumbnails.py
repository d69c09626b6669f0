"""Thumbnail images of keyframes (JPEG bytes; storage decides where they live), and making them
again for indexed videos whose thumbnail folder was lost."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from evr.storage import LostThumbnails, Store

from .decoders import DecodeError, Frame, open_video
from .files import read_regular, why_unreadable
from .settings import IndexSettings

log = logging.getLogger(__name__)


def encode_thumbnail(rgb: np.ndarray, width: int, quality: int = 85) -> bytes:
    h, w = rgb.shape[:2]
    if w > width:
        rgb = cv2.resize(rgb, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def image_thumbnail(path: Path, width: int) -> tuple[bytes, tuple[int, int]]:
    """(JPEG thumbnail `width` wide, the image's own size) of an image file; ValueError when it
    cannot be read. JPEGs are decoded at a reduced scale (libjpeg's DCT scaling, Pillow's draft
    mode): 4 to 8 times less work than a full decode."""
    from PIL import Image

    try:
        data = read_regular(path)  # a FIFO or a folder is refused, never read
    except OSError as exc:
        raise ValueError(f"keyframe {path.name} cannot be read ({why_unreadable(exc)})") from None
    try:
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
            im.draft("RGB", (width, max(1, round(im.height * width / im.width))))
            rgb = np.asarray(im.convert("RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"keyframe {path.name} cannot be read as an image ({exc})") from None
    return encode_thumbnail(rgb, width), size


def restore_lost_thumbnails(store: Store, settings: IndexSettings) -> int:
    """Make the thumbnails of every indexed video whose thumbnail folder is gone again, from
    its video file (decoded as at indexing, only as far as its last keyframe) or, for an imported
    video, from each keyframe's package image; returns how many videos got theirs back. A video
    whose file is gone or changed keeps none (a changed file is indexed again when its folder is)."""
    restored = 0
    lost = store.catalog.lost_thumbnails()
    if lost:
        log.warning("making the thumbnails of %d indexed videos again (their folders are gone)", len(lost))
    for video in lost:
        try:
            if video.origin == "decoded":
                jpegs = _from_video(video, settings)
            else:
                jpegs = _from_images(video, settings.keyframes.thumbnail_width)
        except (DecodeError, OSError, ValueError) as exc:
            log.warning("%s: its thumbnails cannot be made again: %s", video.path, exc)
            continue
        store.writes.restore_thumbnails(video.video_db_id, jpegs)
        restored += 1
    return restored


def _from_video(video: LostThumbnails, settings: IndexSettings) -> dict[int, bytes]:
    wanted = {frame_idx for frame_idx, _ in video.keyframes}
    return {
        frame.idx: encode_thumbnail(frame.rgb, settings.keyframes.thumbnail_width)
        for frame in frames_again(video.path, video.size, video.mtime_ns, wanted, settings)
    }


def frames_again(path: str, size: int, mtime_ns: int, wanted: set[int], settings: IndexSettings) -> Iterator[Frame]:
    """The frames of an indexed video with these indexes, decoded again as at indexing, only
    as far as the last of them; ValueError when the file changed since it was indexed."""
    st = os.stat(path)
    if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
        raise ValueError("the file changed since it was indexed")
    left = set(wanted)
    source = open_video(path, settings.decode.backends, settings.decode.max_short_side)
    try:
        for frame in source.frames():
            if frame.idx in left:
                left.discard(frame.idx)
                yield frame
                if not left:
                    return
    finally:
        source.close()


def _from_images(video: LostThumbnails, width: int) -> dict[int, bytes]:
    return {frame_idx: image_thumbnail(Path(image), width)[0] for frame_idx, image in video.keyframes if image}


def read_rgb(path: str | None) -> np.ndarray:
    """A keyframe image file (an imported package's, or a thumbnail) as RGB; ValueError when it is
    missing or unreadable."""
    if path is None:
        raise ValueError("a keyframe has no source image (it was not imported)")
    try:  # read here, not by cv2.imread: a name that is not UTF-8 would crash OpenCV
        data = read_regular(path)
    except OSError:
        data = b""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None:
        raise ValueError(f"cannot read the keyframe image {path} (moved, deleted or damaged)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)
