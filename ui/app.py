"""The evr Streamlit app: search, filter, watch, hear and export.  Run it with `evr ui`.

Configuration comes from config.toml and EVR_* variables (ui/config.py), as for the CLI; the
search itself is `search.SearchEngine.search`, the very code `evr search` runs.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # `streamlit run ui/app.py` runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import streamlit as st
from PIL import Image

from indexer.encoders import ClipEncoder, ModelUnavailableError
from storage.features import FEATURES, FilterParam
from search import Hit, Query, QueryError, SearchEngine, read_image
from search.query import MAX_EVENTS
from search.export import AIC_MAX_LINES, aic_csv, hits_json
from search.printable import printable
from search.summary import LANGUAGES, Summarizer, clock
from storage import KeyframeFilter, NoIndexError, StoreError
from ui.config import AppConfig, ConfigError, load_config
from ui.settings import MAX_PAGE_SIZE
from ui.dres import TASKS, DresClient, DresError, DuplicateSubmission, answer_for
from ui.media import playable_video
from ui.overlay import draw_shapes
from ui.voice import VoiceError, speak
from ui.text import plain

MODES = ("Text", "Similar frame", "Image", "Temporal")
MISSING_THUMBNAIL = np.full((180, 320, 3), 190, np.uint8)  # a grey frame where a thumbnail is missing


@st.cache_resource(show_spinner=False)
def clip_encoder(settings) -> ClipEncoder:
    """One CLIP model per process, shared by every session (loading takes seconds)."""
    return ClipEncoder(settings)


@st.cache_resource(show_spinner=False)
def open_engine(config: AppConfig) -> SearchEngine:
    """One per process: every search first catches the store up with what `evr index` committed."""
    return SearchEngine(config.open_store(), clip_encoder(config.index.clip), config.query)


@st.cache_resource(show_spinner=False)
def summarizer(_engine: SearchEngine, engine_key: int, settings) -> Summarizer:
    """One per engine (engine_key: its id): the tag vocabulary's vectors are computed once."""
    return _engine.summarizer(settings)


def main() -> None:
    st.set_page_config(page_title="evr: video event retrieval", layout="wide")
    st.title("evr: video event retrieval")
    try:
        config = load_config()
        engine = open_engine(config)
        overview = engine.overview()
    except ConfigError as exc:
        st.error(f"Configuration: {plain(exc)}")
        return
    except NoIndexError:
        st.info(f"No index yet in {plain(config.data_dir)}. Index a folder of videos first:\n\n"
                f"```\nevr index /path/to/videos\n```\n\nthen reload this page.")
        return
    except StoreError as exc:  # damaged, incomplete, written by another evr
        st.error(plain(exc))
        return
    videos, keyframes, model = overview.videos, overview.keyframes, overview.model
    if keyframes == 0 or model is None:
        under_way = "An index run is under way: reload this page in a moment." if overview.writer_active \
            else "Run `evr index /path/to/videos`."
        st.info(f"The index in {plain(config.data_dir)} has no keyframes yet. {under_way}")
        return
    st.caption(f"{videos} videos, {keyframes} keyframes · CLIP {plain(model.label)} · {plain(config.data_dir)}")
    if model.pretrained == "none":
        st.warning("CLIP runs with random weights here: indexing and search work, but rankings are not "
                   "meaningful until trained weights are configured (clip.pretrained).")

    filters, k_page, group, language = sidebar(engine, config)
    dres_sidebar(config)
    query = query_form(engine, filters, group)
    if query is not None and not query.then:
        query = with_feedback(query)
    if query is None:
        st.info("Type a description, pick a frame or an image, or use the on-screen text filter.")
        return
    state = st.session_state
    signature = repr(query)  # a new query (filters included) starts again at one page of results
    if state.get("signature") != signature:
        state.signature, state.k = signature, k_page
    hits = run_search(engine, query, state.k)
    if hits is None:
        return
    state.hits = hits
    if hits and hits[0].encoder:
        lang = hits[0].query_language
        st.caption(f"Query read as {plain(lang or 'no particular language')} by {plain(hits[0].encoder)}")
        fallback = engine.text.fallback(lang) if hits[0].encoder == engine.text.native_name else None
        if fallback:
            st.warning(plain(fallback))
    show_results(hits, k_page)
    if not hits:
        return
    selected = next((h for h in hits if h.keyframe_id == state.get("selected")), None)
    if selected is not None:
        show_hit(engine, config, selected, language)
        submit_panel(config, selected)
    export_panel(hits)


def sidebar(engine: SearchEngine, config: AppConfig):
    sb = st.sidebar
    sb.header("Filters")
    values = {p.name: filter_widget(sb, p) for f in FEATURES.values() for p in f.params}
    videos = sb.multiselect("Videos", engine.video_ids(), key="videos", format_func=printable)
    c1, c2 = sb.columns(2)
    time_from = c1.number_input("From (s)", min_value=0.0, value=None, step=1.0, key="time_from")
    time_to = c2.number_input("To (s)", min_value=0.0, value=None, step=1.0, key="time_to")
    sb.header("Results")
    k_page = int(sb.number_input("Results per page", 1, MAX_PAGE_SIZE, config.ui.page_size, key="page_size"))
    group = sb.toggle("Best hit per video", key="group")
    language = sb.radio("Summary language", LANGUAGES, index=LANGUAGES.index(config.summary.language),
                        format_func={"en": "English", "vi": "Tiếng Việt"}.get, horizontal=True, key="language")
    filters = KeyframeFilter.of(videos=tuple(videos), time_from=time_from, time_to=time_to, **values)
    return filters, k_page, group, language


def filter_widget(where, param: FilterParam):
    """The widget of a feature's filter parameter (storage/features/), keyed by its name; its
    value, or None (empty) when it is not set."""
    if param.many:
        return tuple(where.multiselect(param.label, param.choices, key=param.name, help=param.help)) or None
    if param.kind is str:
        return where.text_input(param.label, key=param.name, help=param.help).strip() or None
    if param.kind is int:
        value = where.number_input(param.label, min_value=0, value=None, step=1, key=param.name, help=param.help)
        return None if value is None else int(value)
    return where.number_input(param.label, min_value=0.0, value=None, step=0.05, key=param.name, help=param.help)


def query_form(engine: SearchEngine, filters: KeyframeFilter, group: bool) -> Query | None:
    """The query the widgets describe, or None while there is nothing to search for."""
    mode = st.radio("Search by", MODES, horizontal=True, key="mode")
    common = dict(filters=filters, group="video" if group else None)
    if mode == "Text":
        # ?q=... in the address starts with that query (shareable links to a search).
        st.session_state.setdefault("query", st.query_params.get("q", ""))
        c1, c2 = st.columns([6, 1])
        text = c1.text_input("Describe the moment (English or Vietnamese)", key="query",
                             placeholder="a man in a red shirt talking in front of a flooded street").strip()
        lang = query_language(c2, engine)
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
    events = int(c1.number_input("Events", min_value=2, max_value=MAX_EVENTS, value=2, step=1, key="events",
                                 help="TRAKE: events in this order in one video"))
    within = c2.number_input("each within (s) of the previous", min_value=0.5, value=10.0, step=1.0, key="within")
    lang = query_language(c3, engine)
    first = st.text_input("First event", key="first").strip()
    # Event 2's box keeps its old key ("then"); later ones are then_3, then_4, ...
    later = [st.text_input(f"then ({n})", key="then" if n == 2 else f"then_{n}").strip() for n in range(2, events + 1)]
    if first and all(later):
        return Query(text=first, then=tuple(later), within=float(within), filters=filters, lang=lang)
    return None


def with_feedback(query: Query) -> Query:
    """The query refined by the thumbs up and down given on its results (Rocchio, in the
    engine). A new query starts without feedback."""
    state = st.session_state
    base = repr(query)
    if state.get("feedback_for") != base:
        state.feedback_for, state.more_like, state.less_like = base, [], []
    if state.more_like or state.less_like:
        c1, c2 = st.columns([6, 1])
        c1.caption(f"Refined by {len(state.more_like)} 👍 and {len(state.less_like)} 👎 (Rocchio on the CLIP vectors)")
        c2.button("Clear", key="feedback_clear", on_click=_clear_feedback)
    return dataclasses.replace(query, more_like=tuple(state.more_like), less_like=tuple(state.less_like))


def _clear_feedback() -> None:
    st.session_state.more_like, st.session_state.less_like = [], []


def _judge(keyframe_id: int, liked: bool) -> None:
    """A thumb: toggles the frame in one list and takes it out of the other."""
    state = st.session_state
    mine, other = (state.more_like, state.less_like) if liked else (state.less_like, state.more_like)
    if keyframe_id in mine:
        mine.remove(keyframe_id)
    else:
        mine.append(keyframe_id)
        if keyframe_id in other:
            other.remove(keyframe_id)


def query_language(where, engine: SearchEngine) -> str | None:
    """The query language picker: detected (None) or one of query.languages."""
    choice = where.selectbox("Language", ["auto", *engine.text.settings.languages], key="query_lang",
                             help="auto: detected from the words (Vietnamese with or without marks)")
    return None if choice == "auto" else choice


def run_search(engine: SearchEngine, query: Query, k: int) -> list[Hit] | None:
    query = dataclasses.replace(query, k=k)
    needs_clip = (query.text is not None or query.image is not None) and not engine.clip.loaded
    try:
        with st.spinner("Loading CLIP (first query only)...") if needs_clip else contextlib.nullcontext():
            return engine.search(query)
    except ModelUnavailableError as exc:
        st.warning(f"Semantic search is off: {plain(exc)}\n\nOn-screen text, spoken words, the other filters and "
                   f"'similar frame' still work.")
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


def shown_thumbnail(path: str | Path):
    """The thumbnail file, or a grey placeholder while it is missing (a deleted thumbnail
    folder: `evr reindex` makes it again)."""
    return str(path) if Path(path).is_file() else MISSING_THUMBNAIL


def show_results(hits: list[Hit], k_page: int) -> None:
    if not hits:
        st.info("No results. Loosen the filters or try other words.")
        return
    st.subheader(f"{len(hits)} results")
    lost = sum(not Path(h.thumbnail).is_file() for h in hits)
    if lost:
        st.warning(f"{lost} of these hits have lost their thumbnail (grey): run `evr reindex` to make them again.")
    columns = 4
    for start in range(0, len(hits), columns):
        for col, h in zip(st.columns(columns), hits[start : start + columns]):
            with col:
                st.image(shown_thumbnail(h.thumbnail), width="stretch")
                facts = [f"**#{h.rank}** {plain(h.video_id)} · {clock(h.timestamp)} · frame {h.frame_idx}",
                         f"score {h.score:.3f} ({h.match})"]
                if h.media("title"):
                    facts.append(f"_{plain(h.media('title')[:60])}_")
                for event in h.chain[1:]:
                    facts.append(f"then {clock(event.timestamp)} (frame {event.frame_idx})")
                facts += [plain(fact) for fact in h.facts()]
                st.markdown("  \n".join(facts))
                b1, b2, b3, b4 = st.columns([3, 3, 2, 2])
                if b1.button("Open", key=f"open_{h.keyframe_id}"):
                    st.session_state.selected = h.keyframe_id
                b2.checkbox("Pick", key=f"pick_{h.keyframe_id}")
                if h.then is None and "more_like" in st.session_state:  # feedback refines single-event queries
                    b3.button("👍", key=f"up_{h.keyframe_id}", help="more like this", on_click=_judge,
                              args=(h.keyframe_id, True), type="primary" if h.keyframe_id in st.session_state.more_like
                              else "secondary")
                    b4.button("👎", key=f"down_{h.keyframe_id}", help="less like this", on_click=_judge,
                              args=(h.keyframe_id, False), type="primary" if h.keyframe_id in st.session_state.less_like
                              else "secondary")
    if len(hits) >= st.session_state.k and st.button("More results", key="more"):
        st.session_state.k += k_page
        st.rerun()


def show_hit(engine: SearchEngine, config: AppConfig, hit: Hit, language: str) -> None:
    st.divider()
    st.subheader(f"{plain(hit.video_id)} at {clock(hit.timestamp)} (frame {hit.frame_idx}, keyframe {hit.keyframe_id})")
    if hit.media_info:  # an imported video: the package's media-info (untrusted text)
        c1, c2 = st.columns([5, 1])
        c1.markdown(" · ".join(plain(v) for v in (hit.media("title"), hit.media("author"), hit.media("publish_date"))
                               if v))
        url = hit.media("watch_url") or ""
        if url.startswith(("https://", "http://")):  # no javascript: or other schemes
            c2.link_button("Watch online", url)
    left, right = st.columns([3, 2])
    with left:
        has_shot = hit.shot_start is not None and hit.shot_end is not None
        if has_shot:
            st.caption(f"Shot {hit.shot + 1}: {clock(hit.shot_start)} to {clock(hit.shot_end)}")
        only_shot = has_shot and st.toggle("Play only this shot", key="only_shot",
                                           help="from the shot's first frame to its last, in a loop")
        try:
            if hit.video_path is None:
                raise FileNotFoundError("the package has no video file for it")
            with st.spinner("Preparing the video for the browser..."):
                video = playable_video(Path(hit.video_path), config.data_dir / "previews")
            if only_shot:
                # Streamlit plays from and to whole seconds: round outwards so the whole shot plays.
                st.video(str(video), start_time=math.floor(hit.shot_start), end_time=math.ceil(hit.shot_end),
                         loop=True)
            else:
                st.video(str(video), start_time=int(hit.timestamp))
        except Exception as exc:  # a vanished or unreadable file must not break the page
            st.error(f"Cannot play {plain(hit.video_path or hit.video_id)}: {plain(exc)}")
        strip = engine.neighbours(hit, 10)
        if strip:
            st.image([shown_thumbnail(r.thumbnail) for r in strip], width=110,
                     caption=[f"{clock(r.timestamp)}{' ◀' if r.keyframe_id == hit.keyframe_id else ''}" for r in strip])
        st.button("Find similar frames", key="similar", on_click=_find_similar, args=(hit.keyframe_id,))
    with right:
        summary = summarizer(engine, id(engine), config.summary).summarize(hit.keyframe_id, language)
        st.markdown("**What happens here**")
        st.markdown(plain(summary.text))
        if st.button("Read aloud", key="speak"):
            try:
                spoken = speak(summary.text, language, config.data_dir / "audio", config.voice)
                st.audio(spoken.path.read_bytes(), format="audio/mpeg" if spoken.path.suffix == ".mp3" else "audio/wav")
                st.caption(f"Spoken by {spoken.engine}" + (" (offline voice)" if spoken.offline else " (Google TTS)"))
                st.session_state.spoken = spoken
            except VoiceError as exc:
                st.error(plain(exc))
        found_in_frame(engine, hit)


def found_in_frame(engine: SearchEngine, hit: Hit) -> None:
    """The keyframe with what the analyzers found drawn on it (text boxes, people, poses)."""
    shapes = {name: found for name, found in engine.shapes(hit.keyframe_id).items() if found}
    if not shapes:
        return
    st.markdown("**What the analyzers found**")
    frame = shown_thumbnail(hit.thumbnail)
    if not isinstance(frame, np.ndarray):
        frame = np.asarray(Image.open(frame).convert("RGB"))
    st.image(draw_shapes(frame, shapes), width="stretch")
    st.caption(plain("; ".join(s.label for found in shapes.values() for s in found if s.box is not None)))


def dres_sidebar(config: AppConfig) -> None:
    """Log in to a DRES server and pick the evaluation that submissions go to."""
    client = DresClient(config.data_dir, config.dres)
    state = st.session_state
    with st.sidebar.expander("DRES (contest server)", expanded=False):
        session = client.session()
        if session is None:
            # A form: its fields reach the app together when "Log in" is pressed, so leaving a
            # field (Tab, a click elsewhere) cannot rerun the page between typing and logging in.
            with st.form("dres_login_form", border=False):
                url = st.text_input("Server", value=config.dres.url, key="dres_url")
                user = st.text_input("User", value=config.dres.username, key="dres_user")
                password = st.text_input("Password", type="password", key="dres_password")
                pressed = st.form_submit_button("Log in", key="dres_login")
            if pressed:
                try:
                    client.login(url, user, password)
                    state.pop("dres_evaluations", None)
                    st.rerun()
                except DresError as exc:
                    st.error(plain(exc))
            return
        st.caption(f"Logged in to {plain(session.url)} as {plain(session.username)}")
        try:
            if "dres_evaluations" not in state or st.button("Refresh", key="dres_refresh"):
                state.dres_evaluations = client.evaluations()
        except DresError as exc:
            st.error(plain(exc))
            state.dres_evaluations = []
        evaluations = {e["id"]: e for e in state.dres_evaluations if "id" in e}
        active = [i for i, e in evaluations.items() if e.get("status") == "ACTIVE"] or list(evaluations)
        st.selectbox("Evaluation", active, key="dres_evaluation",
                     format_func=lambda i: f"{evaluations[i].get('name', i)} ({evaluations[i].get('status', '?')})")
        if st.button("Log out", key="dres_logout"):
            try:
                client.logout()
            except DresError as exc:
                st.warning(plain(exc))
            st.rerun()


def submit_panel(config: AppConfig, hit: Hit) -> None:
    """Submit the open hit (or its chain, for TRAKE) after a confirmation; show DRES's verdict."""
    st.markdown("**Submit to DRES**")
    client = DresClient(config.data_dir, config.dres)
    state = st.session_state
    evaluation = state.get("dres_evaluation")
    if client.session() is None or not evaluation:
        st.caption("Log in to DRES in the sidebar and pick an evaluation to submit from here.")
        return
    c1, c2 = st.columns([2, 3])
    task = c1.radio("Task", TASKS, index=TASKS.index("trake" if hit.then is not None else "kis"), key="submit_task", horizontal=True,
                    format_func=str.upper)
    answer_text = c2.text_input("Answer (QA)", key="submit_answer") if task == "qa" else None
    try:
        answer = answer_for(task, hit.chain if task == "trake" else [hit], answer_text)
    except QueryError as exc:
        st.caption(plain(exc))
        return
    shown = answer.get("text") or f"{answer['mediaItemName']} {answer['start']}-{answer['end']} ms"
    if st.button(f"Submit {shown}", key="submit"):
        state.pending_submit = (evaluation, answer, shown)
        state.pop("verdict", None)
    pending = state.get("pending_submit")
    if pending and pending[1] == answer:
        st.warning(f"Send {plain(pending[2])} to evaluation {plain(pending[0])}? A wrong answer costs points.")
        again = st.checkbox("Send it even if it was sent before", key="submit_again")
        b1, b2 = st.columns(2)
        if b1.button("Confirm", key="submit_confirm", type="primary"):
            state.pending_submit = None
            try:
                state.verdict = client.submit(pending[0], pending[1], again=again)
            except DuplicateSubmission as exc:
                state.verdict = None
                st.warning(plain(exc))
            except DresError as exc:
                state.verdict = None
                st.error(plain(exc))
        if b2.button("Cancel", key="submit_cancel"):
            state.pending_submit = None
            st.rerun()
    verdict = state.get("verdict")
    if verdict is not None and verdict.body["answerSets"][0]["answers"][0] == answer:
        said = f"{verdict.verdict or 'No verdict yet'}" + (f": {verdict.description}" if verdict.description else "")
        {"CORRECT": st.success, "WRONG": st.error}.get(verdict.verdict, st.info)(plain(said))


def _find_similar(keyframe_id: int) -> None:
    # A callback: widget values (the mode radio, the keyframe box) may only change before a rerun.
    st.session_state.mode, st.session_state.like = "Similar frame", keyframe_id


def export_panel(hits: list[Hit]) -> None:
    st.divider()
    st.subheader("Export")
    picked = [h for h in hits if st.session_state.get(f"pick_{h.keyframe_id}")]
    top_n = st.number_input("Or take the top N", 1, AIC_MAX_LINES, min(AIC_MAX_LINES, len(hits)) or 1, key="top_n")
    chosen = picked or hits[: int(top_n)]
    st.caption(f"{len(chosen)} hits: {'the ones you picked' if picked else f'the top {int(top_n)}'}"
               f" (AI Challenge files hold at most {AIC_MAX_LINES} lines)")
    c1, c2 = st.columns(2)
    try:
        csv = aic_csv(chosen).encode()
        st.session_state.export_csv = csv
        c1.download_button("AI Challenge CSV", csv, file_name="answers.csv", mime="text/csv", key="export_aic")
    except QueryError as exc:  # a video_id a CSV row cannot carry
        c1.error(plain(exc))
    c2.download_button("JSON", hits_json(chosen).encode(), file_name="hits.json", mime="application/json",
                       key="export_json")


main()
