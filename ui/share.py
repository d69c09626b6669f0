"""A search as a link: what the query form and the sidebar hold (the text or the events, the
filters, hits per video, the models, the page size) and the likes and dislikes, packed into the
address's `s` parameter, so a teammate who opens the link gets the same results. An image
query cannot travel in an address; the link says so.

The values come back through each widget's own session state key, checked first: a link is
typed by anyone, and a value a widget cannot hold (a video this index does not have, a word
where a number goes) is left out and named, never handed to Streamlit."""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass

SHARE_PARAM = "s"
MAX_TOKEN = 8000  # characters: an address longer than this is no link to pass around
FEEDBACK_KEYS = ("more_like", "less_like")


@dataclass(frozen=True)
class Shareable:
    """The widgets a link carries, by session state key, and what each can hold."""

    texts: Sequence[str]  # text boxes
    numbers: Mapping[str, tuple[type, float, float]]  # number boxes: int or float, lowest, highest
    one_of: Mapping[str, Sequence]  # radio buttons and select boxes: their options
    some_of: Mapping[str, Sequence]  # multiselects: their options
    lists: Mapping[str, Callable[[str], str | None]]  # lists of specs a picker builds: what is wrong with one

    def keys(self) -> list[str]:
        return [*self.texts, *self.numbers, *self.one_of, *self.some_of, *self.lists, *FEEDBACK_KEYS]


def pack(state: Mapping, shareable: Shareable) -> str:
    """The token of what `state` holds of the shareable widgets and the feedback (empty ones left out)."""
    values = {k: _plain(state[k]) for k in shareable.keys() if state.get(k) not in (None, "", [], ())}
    data = zlib.compress(json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode())
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unpack(token: str, shareable: Shareable) -> tuple[dict, list[str]]:
    """The widget values a token holds that the widgets can take, and the keys left out."""
    try:
        if len(token) > MAX_TOKEN:
            raise ValueError("too long")
        raw = zlib.decompress(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), bufsize=MAX_TOKEN * 4)
        values = json.loads(raw)
        if not isinstance(values, dict):
            raise ValueError("not an object")
    except (ValueError, binascii.Error, zlib.error):
        return {}, ["the whole link (it is cut short or was not made by evr)"]
    taken, left_out = {}, []
    for key, value in values.items():
        fitting = _fit(key, value, shareable)
        if fitting is None:
            left_out.append(str(key)[:40])
        else:
            taken[key] = fitting
    return taken, left_out


def share_link(page_url: str | None, state: Mapping, shareable: Shareable) -> str:
    """The address of this app (`page_url`: as the browser asked for it; None: unknown, the link
    is then relative) with the search in `state` packed into it."""
    return f"{(page_url or '').split('?')[0].split('#')[0]}?{SHARE_PARAM}={pack(state, shareable)}"


def apply_link(state: MutableMapping, token: str, shareable: Shareable) -> list[str]:
    """Set the widgets (before they are drawn) and the feedback from a link's token; the keys
    left out."""
    taken, left_out = unpack(token, shareable)
    feedback = tuple(taken.pop(k, []) for k in FEEDBACK_KEYS)
    state.update(taken)
    if any(feedback):
        state["shared_feedback"] = feedback  # ui/searches.py: the first search of the link takes it
    return left_out


def _fit(key, value, shareable: Shareable):
    """The value as its widget takes it, or None when it cannot."""
    if key in FEEDBACK_KEYS:
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
        return value[:200] if ok else None
    if key in shareable.some_of:
        options = set(shareable.some_of[key])
        ok = isinstance(value, list) and all(isinstance(v, str) and v in options for v in value)
        return value if ok else None
    if key in shareable.lists:
        check = shareable.lists[key]
        ok = isinstance(value, list) and all(isinstance(v, str) and check(v) is None for v in value)
        return value if ok else None
    if key in shareable.one_of:
        return value if isinstance(value, (str, int)) and value in shareable.one_of[key] else None
    if key in shareable.texts:
        return value[:2000] if isinstance(value, str) else None
    if key in shareable.numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        kind, lowest, highest = shareable.numbers[key]
        if not math.isfinite(value) or not lowest <= value <= highest or (kind is int and value != int(value)):
            return None
        return kind(value)
    return None


def _plain(value):
    return list(value) if isinstance(value, (list, tuple, set)) else value
