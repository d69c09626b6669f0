"""Finding the video files to index."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def find_videos(paths: Iterable[Path], extensions: Iterable[str]) -> list[Path]:
    """Files named directly, plus video files (by extension) anywhere below named folders.

    Raises FileNotFoundError for a path that does not exist: a typo must not look like an
    empty folder."""
    exts = {e.lower() for e in extensions}
    found: dict[Path, None] = {}
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.suffix.lower() in exts and f.is_file() and not f.name.startswith("."):
                    found[f.resolve()] = None
        elif p.is_file():
            found[p.resolve()] = None
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return list(found)
