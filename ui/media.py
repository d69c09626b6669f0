"""The media the app shows, by address: thumbnails, videos and spoken summaries are fetched by
the browser from the app server's own routes (ui/server.py) and kept in its cache, not sent
through Streamlit on every rerun. Videos in codecs browsers lack (AVI, MPEG-4 Part 2, ...) get an
H.264 preview made once with ffmpeg and cached under the data dir."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import quote

BROWSER_CODECS = {"h264", "vp8", "vp9", "av1"}
BROWSER_CONTAINERS = {".mp4", ".m4v", ".webm", ".mov"}
THUMB_ROUTE, MEDIA_ROUTE, BOARD_ROUTE = "/evr/thumb", "/evr/media", "/evr/storyboard"
MARKS_ROUTE = "/evr/marks"
# A grey frame where a thumbnail is missing (a deleted thumbs/ folder: `evr reindex` makes it again).
MISSING_THUMBNAIL = "data:image/svg+xml," + quote(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 180">'
    '<rect width="320" height="180" fill="#bebebe"/></svg>'
)
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
}

_served: dict[str, Path] = {}  # token -> a file the app showed: the only files the media route hands out
_served_lock = threading.Lock()


def thumb_url(thumbnail: str | Path, data_dir: Path) -> str:
    """The address of a keyframe's thumbnail, or the grey frame where its file is missing."""
    path = Path(thumbnail)
    try:
        relative = path.relative_to(data_dir / "thumbs")
    except ValueError:
        return MISSING_THUMBNAIL
    return f"{THUMB_ROUTE}/{quote(relative.as_posix())}" if path.is_file() else MISSING_THUMBNAIL


def board_url(video_db_id: int) -> str:
    """The address of a video's storyboard (ui/server.py serves it)."""
    return f"{BOARD_ROUTE}/{int(video_db_id)}"


def served_url(path: Path) -> str:
    """The address the browser loads `path` from (a video the player shows, a spoken summary)."""
    token = _file_key(path)
    with _served_lock:
        _served[token] = Path(path)
    return f"{MEDIA_ROUTE}/{token}{Path(path).suffix.lower()}"


def served_file(name: str) -> Path | None:
    """The file a media address names, if the app handed it out in this process."""
    with _served_lock:
        return _served.get(Path(name).stem)


def media_type(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def _file_key(path: Path) -> str:
    """A key that changes with the file: its name's own bytes (a name that is not UTF-8 has no
    UTF-8 form), size and modification time."""
    st = path.stat()
    return hashlib.sha256(os.fsencode(path) + f"\n{st.st_size}\n{st.st_mtime_ns}".encode()).hexdigest()[:24]


@functools.lru_cache(maxsize=4096)
def _codec(path: Path, size: int, mtime_ns: int) -> str | None:
    """ffprobe's name of the file's video codec, asked once per version of the file (a tenth of a
    second each time, on every opened hit, otherwise)."""
    if not shutil.which("ffprobe"):
        return None
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout.strip() or None


def video_codec(path: Path) -> str | None:
    st = path.stat()
    return _codec(Path(path), st.st_size, st.st_mtime_ns)


def preview_needed(path: Path, cache_dir: Path) -> bool:
    """Whether `playable_video` has an H.264 copy to make first (seconds to minutes: say so)."""
    out = _preview(Path(path), cache_dir)
    return out is not None and not out.is_file()


def _preview(path: Path, cache_dir: Path) -> Path | None:
    """Where the browser-playable copy of `path` goes; None when the file plays as it is (or
    nothing could convert it)."""
    if path.suffix.lower() in BROWSER_CONTAINERS and video_codec(path) in BROWSER_CODECS | {None}:
        return None
    if not shutil.which("ffmpeg"):
        return None  # the player will say it cannot play it; nothing better to offer
    return cache_dir / f"{_file_key(path)}.mp4"


def playable_video(path: Path, cache_dir: Path) -> Path:
    """`path` itself when a browser can play it, else a cached H.264 copy (made on first use)."""
    path = Path(path)
    out = _preview(path, cache_dir)
    if out is None:
        return path
    if not out.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".part.mp4")
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-i",
                str(path),
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "26",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-movflags",
                "+faststart",
                str(tmp),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        tmp.replace(out)
    return out
