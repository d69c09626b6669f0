"""Videos the browser can play: files in codecs browsers lack (AVI, MPEG-4 Part 2, ...) get an
H.264 preview made once with ffmpeg and cached under the data dir."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

BROWSER_CODECS = {"h264", "vp8", "vp9", "av1"}
BROWSER_CONTAINERS = {".mp4", ".m4v", ".webm", ".mov"}


def video_codec(path: Path) -> str | None:
    if not shutil.which("ffprobe"):
        return None
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, timeout=30)
    return out.stdout.strip() or None


def playable_video(path: Path, cache_dir: Path) -> Path:
    """`path` itself when a browser can play it, else a cached H.264 copy (made on first use)."""
    path = Path(path)
    if path.suffix.lower() in BROWSER_CONTAINERS and video_codec(path) in BROWSER_CODECS | {None}:
        return path
    if not shutil.which("ffmpeg"):
        return path  # the player will say it cannot play it; nothing better to offer
    st = path.stat()
    # The name's own bytes: a name that is not UTF-8 has no UTF-8 form.
    key = hashlib.sha256(os.fsencode(path) + f"\n{st.st_size}\n{st.st_mtime_ns}".encode()).hexdigest()[:24]
    out = cache_dir / f"{key}.mp4"
    if not out.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".part.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(path), "-c:v", "libx264", "-preset", "veryfast",
                        "-crf", "26", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart", str(tmp)],
                       check=True, capture_output=True, timeout=600)
        tmp.replace(out)
    return out


def shown_thumbnail(path: str | Path):
    """The thumbnail file, or a grey placeholder frame while it is missing (a deleted thumbnail
    folder: `evr reindex` makes it again)."""
    return str(path) if Path(path).is_file() else np.full((180, 320, 3), 190, np.uint8)
