"""The app's searches, each run once: the hits of a query are kept in the browser's session,
keyed by the query (filters and feedback included) and the index's commit counter, so a rerun
that changes nothing (a pick, the details of an opened hit) reads them back instead of searching
again, while a commit by a live `evr index` makes the next rerun search anew."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import streamlit as st

from evr.search import Hit, Query, SearchEngine

from .timing import current

KEPT = 8  # searches kept per session: the last few queries and pages, to go back and forth


def kept_search(engine: SearchEngine, query: Query) -> list[Hit]:
    """The query's hits: kept ones when the index has not changed since, else searched now."""
    state = st.session_state
    kept = state.setdefault("kept_searches", OrderedDict())
    key = (query.key(), engine.archive.version())
    if key in kept:
        kept.move_to_end(key)
        return kept[key]
    current().count("search")
    hits = engine.search(query)
    kept[key] = hits
    while len(kept) > KEPT:
        kept.popitem(last=False)
    return hits


def with_feedback(query: Query) -> Query:
    """The query refined by this session's likes and dislikes on its results (single-event
    queries; a new query starts without feedback)."""
    state = st.session_state
    if query.then:
        return query
    if state.get("feedback_for") != query.key():
        # A new query starts without feedback, or with a shared link's (ui/share.py).
        more, less = state.pop("shared_feedback", ((), ()))
        state.feedback_for, state.more_like, state.less_like = query.key(), list(more), list(less)
    return dataclasses.replace(query, more_like=tuple(state.more_like), less_like=tuple(state.less_like))
