"""The evr Streamlit app: search, filter, check, submit and export.  Run it with `evr ui`.

Configuration comes from config.toml and EVR_* variables (ui/config.py), as for the CLI; the
search itself is `search.SearchEngine.search`, the very code `evr search` runs. This file holds
the page, the sidebar's filters and the query; ui/results_view.py the grid and the exports,
ui/hit_view.py the opened hit, ui/contest/panel.py the DRES controls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading

import streamlit as st

from evr.indexer.encoders import ClipEncoder, ModelUnavailableError
from evr.search import Hit, Query, QueryError, SearchEngine, read_image
from evr.search.printable import printable
from evr.search.query import MAX_EVENTS
from evr.search.summary import LANGUAGES, Summarizer
from evr.storage import KeyframeFilter, NoIndexError, StoreError
from evr.storage.features import FEATURES, FilterParam, param
from evr.ui.actions import Services
from evr.ui.config import AppConfig, ConfigError, load_config
from evr.ui.contest.panel import dres_sidebar, log_search
from evr.ui.place_filters import PICKERS
from evr.ui.plan_form import plan_box
from evr.ui.results_view import export_panel, show_results
from evr.ui.searches import kept_search, with_feedback
from evr.ui.settings import MAX_PAGE_SIZE
from evr.ui.share import SHARE_PARAM, Shareable, apply_link, share_link
from evr.ui.text import plain
from evr.ui.timing import run_timer

MODES = ("Text", "Similar frame", "Image", "Temporal")
# The sidebar's own filters besides the features' (widget key: label).
PLACE_FILTERS = {"videos": "Videos", "time_from": "Frames from (s)", "time_to": "Frames to (s)"}
RUN_STATUS_EVERY_S = 3  # how often the page says how far a live index run is
PER_VIDEO = ("few", "best", "all")  # the sidebar's "Hits per video": at most ui.hits_per_video, grouped, every one


@st.cache_resource(show_spinner=False)
def app_logging() -> None:
    """evr's own log lines on stderr at the level `evr ui` was given (`evr -v ui`: INFO, each
    script run's timing from ui/timing.py), once per process."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(os.environ.get("EVR_LOG_LEVEL", "WARNING"))


@st.cache_resource(show_spinner=False)
def clip_encoder(settings) -> ClipEncoder:
    """One of each image-text model per process, shared by every session (loading takes seconds)."""
    return ClipEncoder(settings)


@st.cache_resource(show_spinner=False)
def open_engine(config: AppConfig) -> SearchEngine:
    """One per process: every search first catches the store up with what `evr index` committed."""
    return config.search_engine(config.open_store(), clip_encoder)


@st.cache_resource(show_spinner=False)
def summarizer(_engine: SearchEngine, engine_key: int, settings) -> Summarizer:
    """One per engine (engine_key: its id): the tag vocabulary's vectors are computed once, in the
    background from the first search on, so the first opened hit need not wait for them."""
    made = _engine.summarizer(settings)
    threading.Thread(target=made.warm, daemon=True, name="evr-summary-labels").start()
    return made


def main() -> None:
    st.set_page_config(page_title="evr: video event retrieval", layout="wide")
    app_logging()
    with run_timer("page") as timer:
        page(timer)


# The first screen at 1280x800 holds the query and a whole row of results: Streamlit's own top
# padding (6 rem) and a full-size title would push the grid below the fold.
PAGE_STYLE = "<style>.block-container {padding-top: 2.2rem; padding-bottom: 2rem;}</style>"


def page(timer) -> None:
    st.html(PAGE_STYLE)
    st.markdown("#### evr: video event retrieval")
    try:
        config = load_config()
        engine = open_engine(config)
        overview = engine.archive.overview()
    except ConfigError as exc:
        st.error(f"Configuration: {plain(exc)}")
        return
    except NoIndexError:
        st.info(
            f"No index yet in {plain(config.data_dir)}. Index a folder of videos first:\n\n"
            f"```\nevr index /path/to/videos\n```\n\nthen reload this page."
        )
        return
    except StoreError as exc:  # damaged, incomplete, written by another evr
        st.error(plain(exc))
        return
    videos, keyframes, model = overview.videos, overview.keyframes, overview.model
    if keyframes == 0 or model is None:
        under_way = (
            "An index run is under way: its first videos show here as soon as they are committed."
            if overview.writer_active
            else "Run `evr index /path/to/videos`."
        )
        st.info(f"The index in {plain(config.data_dir)} has no keyframes yet. {under_way}")
        if overview.writer_active:
            st.fragment(run_every=RUN_STATUS_EVERY_S)(first_keyframes)(engine)
        return
    others = "".join(f" + {plain(name)}" for name in list(engine.encoders)[1:])  # [[models]], fused
    random = (
        (
            " · :orange[**random CLIP weights**: indexing and search work, rankings mean nothing until trained "
            "weights are configured (clip.pretrained)]"
        )
        if model.pretrained == "none"
        else ""
    )
    if overview.run is not None:  # a live index run: its progress, kept up to date
        st.fragment(run_every=RUN_STATUS_EVERY_S)(run_status)(engine)
    st.caption(
        f"{videos} videos, {keyframes} keyframes · CLIP {plain(model.label)}{others} · {plain(config.data_dir)}{random}"
    )
    token = st.query_params.get(SHARE_PARAM)
    if token and st.session_state.get("shared_token") != token:  # a shared search: its widgets, once
        st.session_state.shared_token = token
        left_out = apply_link(st.session_state, token, shareable(engine))
        if left_out:
            st.warning(f"The shared link's {', '.join(map(plain, left_out))} could not be used here: left out.")
    with timer.part("sidebar"):
        filters, k_page, per_video, language = sidebar(engine, config)
        dres_sidebar(config)
    with timer.part("form"):
        plan_box(config.plan)
        query = query_form(engine, filters, per_video)
        filter_chips()
    if query is None:
        st.info(
            "Type a description, pick a frame or an image, or use a filter that is a query alone: on-screen "
            "text, spoken words, objects or colours (the sidebar)."
        )
        return
    state = st.session_state
    if state.get("query_asked") is None or state.query_asked.key() != query.key():
        # A new query (filters included) starts again at one page of results, nothing picked.
        state.query_asked, state.k, state.hits, state.picked, state.batch = query, k_page, [], set(), None
        state.query_version = state.get("query_version", 0) + 1
    results(Services(engine, config, summarizer(engine, id(engine), config.summary), language), k_page)


def first_keyframes(engine: SearchEngine) -> None:
    """While a run has committed nothing yet: the page runs again once it has."""
    if engine.archive.overview().keyframes:
        st.rerun()


def run_status(engine: SearchEngine) -> None:
    """How far the `evr index` run writing to this data folder is, every few seconds (a fragment
    of its own: nothing else reruns). New videos are searchable as soon as they are committed:
    the next search, or the next click after a commit, finds them. When the run ends, the page
    runs once more to show the whole index."""
    now = engine.archive.overview()
    if now.run is None:
        st.rerun()
    st.caption(
        f":blue[**indexing: {now.run['done']} of {now.run['total']} videos**] (evr {now.run['command']}) · "
        f"{now.videos} videos, {now.keyframes} keyframes searchable so far; new ones join the results as "
        "they are committed"
    )


@st.fragment
def results(services: Services, k_page: int) -> None:
    """The results and the opened hit: what a click on them asks reruns here alone (the sidebar
    and the query form stay as they are); the search itself is kept (ui/searches.py)."""
    with run_timer("results") as timer:
        state = st.session_state
        if state.pop("rerun_page", False):  # "Find similar frames": the query form changes
            st.rerun()
        engine = services.engine
        query = dataclasses.replace(with_feedback(state.query_asked), k=state.k)
        feedback_caption(query)
        with timer.part("search"):
            hits = run_search(engine, query)
        if hits is None:
            return
        state.hits = hits
        if state.get("logged") != (query.key(), state.k):  # a new search, or another page: not every rerun
            state.logged = (query.key(), state.k)
            log_search(services.config, query, hits)
        read = ""
        if hits and hits[0].encoder:
            lang = hits[0].query_language
            read = f"query read as {plain(lang or 'no particular language')} by {plain(hits[0].encoder)}"
            fallback = engine.text.fallback(lang) if hits[0].encoder == engine.text.native_name else None
            if fallback:
                st.warning(plain(fallback))
        if not hits:
            for name in engine.archive.unanalyzed(query):
                st.caption(
                    f"No video of this index was analyzed for {name}: the [{name}] analyzer was off, or could "
                    "not load, when they were indexed. Turn it on and index them again."
                )
        with timer.part("grid"):
            show_results(hits, k_page, services, read)
        if hits:
            with st.popover("Share this search"):
                if query.image is not None:
                    st.caption("An image query cannot travel in a link: the link holds the filters only.")
                st.code(share_link(st.context.url, state, shareable(engine)), language=None, wrap_lines=True)
                st.caption("Whoever opens it on this app gets the same query, filters, models and likes.")
            with timer.part("export"):
                export_panel(hits, query.text or "")


def sidebar(engine: SearchEngine, config: AppConfig):
    sb = st.sidebar
    sb.header("Filters")
    # A picker says when nothing in the index was analyzed for it: "No results" alone would not.
    unanalyzed = {name for name in PICKERS if not engine.store.catalog.analyzed_by(param(name)[0].name)}
    values = {p.name: filter_widget(sb, p, p.name in unanalyzed) for f in FEATURES.values() for p in f.params}
    videos = sb.multiselect(PLACE_FILTERS["videos"], engine.archive.video_ids(), key="videos", format_func=printable)
    c1, c2 = sb.columns(2)
    time_from = c1.number_input(PLACE_FILTERS["time_from"], min_value=0.0, value=None, step=1.0, key="time_from")
    time_to = c2.number_input(PLACE_FILTERS["time_to"], min_value=0.0, value=None, step=1.0, key="time_to")
    sb.button("Clear filters", key="clear_filters", on_click=_clear_filters)
    sb.header("Results")
    k_page = int(sb.number_input("Results per page", 1, MAX_PAGE_SIZE, config.ui.page_size, key="page_size"))
    few = config.ui.hits_per_video
    per_video = sb.radio(
        "Hits per video",
        PER_VIDEO,
        key="per_video_mode",
        format_func={
            "few": f"At most {few}, in rank order",
            "best": "The best one, grouped by video",
            "all": "Every hit",
        }.get,
    )
    if len(engine.encoders) > 1:  # [[models]]: search with all of them (fused) or some
        st.session_state.setdefault("models", list(engine.encoders))  # a shared link's, or every one
        chosen = sb.multiselect(
            "Models",
            list(engine.encoders),
            key="models",
            help="the image-text models whose rankings are fused; none chosen: every one",
        )
    else:
        chosen = []
    language = sb.radio(
        "Summary language",
        LANGUAGES,
        index=LANGUAGES.index(config.summary.language),
        format_func={"en": "English", "vi": "Tiếng Việt"}.get,
        horizontal=True,
        key="language",
    )
    filters = KeyframeFilter.of(videos=tuple(videos), time_from=time_from, time_to=time_to, **values)
    grouping = {"few": {"group": "limit", "per_video": few}, "best": {"group": "video"}, "all": {}}[per_video]
    return filters, k_page, {**grouping, "models": tuple(chosen)}, language


def shareable(engine: SearchEngine) -> Shareable:
    """The widgets a shared link carries (ui/share.py), and what each can hold here."""
    params = [p for f in FEATURES.values() for p in f.params]
    big = float(2**53)
    return Shareable(
        texts=["query", "first", "then", *(f"then_{n}" for n in range(3, MAX_EVENTS + 1))]
        + [p.name for p in params if p.kind is str and not p.many],
        numbers={
            "like": (int, 1, big),
            "events": (int, 2, MAX_EVENTS),
            "within": (float, 0.5, big),
            "time_from": (float, 0, big),
            "time_to": (float, 0, big),
            **{p.name: (p.kind, 0, big) for p in params if p.kind in (int, float) and not p.many},
        },
        one_of={"mode": MODES, "query_lang": ["auto", *engine.text.settings.languages], "per_video_mode": PER_VIDEO},
        some_of={
            "videos": engine.archive.video_ids(),
            "models": list(engine.encoders),
            **{p.name: p.choices for p in params if p.many and p.name not in PICKERS},
        },
        lists={p.name: p.check or (lambda _: None) for p in params if p.many and p.name in PICKERS},
    )


def _filter_labels() -> dict[str, str]:
    """Widget key -> label of every filter: each feature's parameters, the videos, the time range."""
    return {**{p.name: p.label for f in FEATURES.values() for p in f.params}, **PLACE_FILTERS}


def _clear_filters() -> None:
    for key in _filter_labels():
        _clear_filter(key)


def _clear_filter(key: str) -> None:
    """Back to the widget's empty value (a callback: before the widgets are drawn again)."""
    value = st.session_state.get(key)
    st.session_state[key] = [] if isinstance(value, (list, tuple)) else "" if isinstance(value, str) else None


def filter_chips() -> None:
    """Every filter that is on, as a button that takes it off: none stays on unseen."""
    labels = _filter_labels()
    on = [(key, st.session_state.get(key)) for key in labels]
    on = [(key, value) for key, value in on if value not in (None, "", [], ())]
    if not on:
        return
    with st.container(horizontal=True):
        st.caption("Filters on:")
        for key, value in on:
            shown = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
            st.button(
                f"{labels[key]}: {plain(shown[:40])} (remove)",
                key=f"chip_{key}",
                on_click=_clear_filter,
                args=(key,),
                type="tertiary",
            )
        st.button("Clear filters", key="clear_filters_chips", on_click=_clear_filters)


def filter_widget(where, param: FilterParam, unanalyzed: bool = False):
    """The widget of a feature's filter parameter (storage/features/), keyed by its name; its
    value, or None (empty) when it is not set."""
    if param.name in PICKERS:  # what is where: ui/place_filters.py
        return PICKERS[param.name](where, param, unanalyzed)
    if param.many:
        return tuple(where.multiselect(param.label, param.choices, key=param.name, help=param.help)) or None
    if param.kind is str:
        return where.text_input(param.label, key=param.name, help=param.help).strip() or None
    if param.kind is int:
        value = where.number_input(param.label, min_value=0, value=None, step=1, key=param.name, help=param.help)
        return None if value is None else int(value)
    return where.number_input(param.label, min_value=0.0, value=None, step=0.05, key=param.name, help=param.help)


def query_form(engine: SearchEngine, filters: KeyframeFilter, grouping: dict) -> Query | None:
    """The query the widgets describe, or None while there is nothing to search for; `grouping`:
    the sidebar's hits per video and models."""
    mode = st.radio("Search by", MODES, horizontal=True, key="mode", label_visibility="collapsed")
    common = dict(filters=filters, **grouping)
    if mode == "Text":
        # ?q=... in the address starts with that query (shareable links to a search).
        st.session_state.setdefault("query", st.query_params.get("q", ""))
        c1, c2 = st.columns([6, 1])
        text = c1.text_input(
            "Describe the moment (English or Vietnamese)",
            key="query",
            label_visibility="collapsed",
            placeholder="Describe the moment (English or Vietnamese): a man in a red shirt talking "
            "in front of a flooded street",
        ).strip()
        lang = query_language(c2, engine, collapsed=True)
        words_only = any(filters.get(p.name) for f in FEATURES.values() for p in f.params if p.query)  # words alone
        return Query(text=text, lang=lang, **common) if text else (Query(**common) if words_only else None)
    if mode == "Similar frame":
        like = st.number_input("Keyframe id", min_value=1, value=None, step=1, key="like")
        return Query(like=int(like), **common) if like else None
    if mode == "Image":
        upload = st.file_uploader("An example image", type=["jpg", "jpeg", "png", "webp", "bmp"], key="upload")
        if upload is None:
            return None
        try:
            return Query(image=read_image(upload.getvalue()), **common)
        except QueryError as exc:
            st.error(plain(exc))
            return None
    c1, c2, c3 = st.columns([2, 2, 2])
    st.session_state.setdefault("events", 2)  # a shared link's, or 2
    st.session_state.setdefault("within", 10.0)
    events = int(
        c1.number_input(
            "Events",
            min_value=2,
            max_value=MAX_EVENTS,
            step=1,
            key="events",
            help="TRAKE: events in this order in one video",
        )
    )
    within = c2.number_input("each within (s) of the previous", min_value=0.5, step=1.0, key="within")
    lang = query_language(c3, engine)
    first = st.text_input("First event", key="first").strip()
    # Event 2's box keeps its old key ("then"); later ones are then_3, then_4, ...
    later = [st.text_input(f"then ({n})", key="then" if n == 2 else f"then_{n}").strip() for n in range(2, events + 1)]
    if first and all(later):
        return Query(
            text=first, then=tuple(later), within=float(within), filters=filters, lang=lang, models=grouping["models"]
        )
    return None


def feedback_caption(query: Query) -> None:
    """How many likes and dislikes refine the query, and a button that clears them."""
    if query.more_like or query.less_like:
        c1, c2 = st.columns([6, 1])
        c1.caption(
            f"Refined by {len(query.more_like)} liked and {len(query.less_like)} disliked (Rocchio on the CLIP vectors)"
        )
        c2.button("Clear", key="feedback_clear", on_click=_clear_feedback)


def _clear_feedback() -> None:
    st.session_state.more_like, st.session_state.less_like = [], []


def query_language(where, engine: SearchEngine, collapsed: bool = False) -> str | None:
    """The query language picker: detected (None) or one of query.languages."""
    choice = where.selectbox(
        "Language",
        ["auto", *engine.text.settings.languages],
        key="query_lang",
        help="auto: detected from the words (Vietnamese with or without marks)",
        label_visibility="collapsed" if collapsed else "visible",
        format_func=lambda code: "lang: auto" if code == "auto" and collapsed else code,
    )
    return None if choice == "auto" else choice


def run_search(engine: SearchEngine, query: Query) -> list[Hit] | None:
    needs_clip = (query.text is not None or query.image is not None) and not engine.clip.loaded
    try:
        with st.spinner("Loading CLIP (first query only)...") if needs_clip else contextlib.nullcontext():
            return kept_search(engine, query)
    except ModelUnavailableError as exc:
        st.warning(
            f"Semantic search is off: {plain(exc)}\n\nOn-screen text, spoken words, the other filters and "
            f"'similar frame' still work."
        )
        if query.text and not query.then:
            st.caption("Showing frames whose on-screen text or speech holds your words instead.")
            try:
                return engine.words_instead(query)
            except QueryError:
                return []
        return None
    except (QueryError, StoreError) as exc:
        st.error(plain(exc))
        return None


main()
