"""The app's own settings ([ui])."""

from __future__ import annotations

from dataclasses import dataclass

from evr.storage.rules import between, rule

MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class UiSettings:
    """[ui]: where `evr ui` serves the app, and its pages."""

    host: str = "127.0.0.1"
    port: int = rule(between(1, 65535), default=8501)
    # Hits per page; "More results" adds another page.
    page_size: int = rule(between(1, MAX_PAGE_SIZE), default=24)
    # At most this many hits of one video on a page, in rank order, unless the user asks for all
    # (a long video otherwise fills the page with near-copies of one moment).
    hits_per_video: int = rule(between(1, MAX_PAGE_SIZE), default=3)
