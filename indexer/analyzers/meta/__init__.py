"""A video's metadata from the file itself: its container's tags (title, artist or author,
date, comment or description, keywords), read by PyAV without decoding a frame, and the
file's modification date as its date where no tag gives one. An AI Challenge package's videos
get theirs from its media-info instead (indexer/sources/aic.py), which this never replaces."""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass

from evr.storage.features.meta import VideoMeta, parse_date

from ..base import FileAnalyzer

log = logging.getLogger(__name__)

# The tags that say each part, first found wins (FFmpeg's names for MP4, Matroska, AVI, ...).
TITLE_TAGS = ("title",)
AUTHOR_TAGS = ("artist", "author", "album_artist", "composer", "publisher")
# A publish date as written ("2024-05-07"); not creation_time, which most tools set to the moment
# they wrote the file (a transcode is no publication).
DATE_TAGS = ("date",)
TEXT_TAGS = ("description", "comment", "synopsis")
KEYWORD_TAGS = ("keywords", "genre")


@dataclass(frozen=True)
class MetaSettings:
    enabled: bool = True


class MetaAnalyzer(FileAnalyzer):
    name = "meta"
    settings_class = MetaSettings
    settings: MetaSettings

    @property
    def signature(self) -> str:
        return "tags+mtime:1"

    def load(self) -> None:
        pass  # no model

    def analyze_file(self, path: str) -> VideoMeta | None:
        """The file's metadata; None when the file cannot be read at all."""
        try:
            modified = dt.date.fromtimestamp(os.stat(path).st_mtime)
        except OSError as exc:
            log.warning("%s: no metadata: %s", path, exc)
            return None
        tags = _tags(path)
        date = None
        for name in DATE_TAGS:
            try:
                date = parse_date(tags[name]) if tags.get(name) else None
            except ValueError:  # a year alone, a date in a form nobody agrees on
                continue
            if date:
                break
        keywords = tuple(k.strip() for name in KEYWORD_TAGS for k in tags.get(name, "").split(",") if k.strip())
        title, author = _first(tags, TITLE_TAGS), _first(tags, AUTHOR_TAGS)
        return VideoMeta(
            title=title,
            author=author,
            published=date or modified,
            keywords=keywords,
            description=_first(tags, TEXT_TAGS),
            source="file tags" if title or author or date else "file date",
        )


def _tags(path: str) -> dict[str, str]:
    """The container's tags, lower-cased names ({} when PyAV cannot open the file: its pictures
    are another decoder's business)."""
    import av

    try:
        with av.open(path, metadata_errors="ignore") as container:
            return {str(k).lower(): str(v).strip() for k, v in container.metadata.items()}
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        log.debug("%s: no container tags: %s", path, exc)
        return {}


def _first(tags: dict[str, str], names: tuple[str, ...]) -> str:
    return next((tags[n] for n in names if tags.get(n)), "")[:2000]
