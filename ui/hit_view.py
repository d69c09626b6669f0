"""The opened hit, in a dialog over the grid (where the user is, whatever the scroll): the player
at the hit, a strip of the neighbouring keyframes to click through, each event of a chain, what
happens there (read aloud on request), what the analyzers found, and submission to DRES. Its
buttons have keyboard keys (results_view.KEYS); Esc closes it."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from search import Hit, QueryError, SearchEngine
from search.summary import Summarizer, clock
from ui.config import AppConfig
from ui.dres_panel import submit_panel
from ui.media import playable_video, shown_thumbnail
from ui.overlay import draw_shapes
from ui.results_view import KEYS, close_hit, feedback_on, judge, move
from ui.text import plain
from ui.voice import VoiceError, speak

STRIP_SECONDS = 10  # the strip holds the keyframes this many seconds either side of the hit
STRIP_MAX = 9  # and at most this many of them, the hit in the middle


@st.dialog("Opened hit", width="large", on_dismiss=close_hit)
def hit_dialog(engine: SearchEngine, config: AppConfig, summarizer: Summarizer, language: str) -> None:
    state = st.session_state
    opened: Hit = state.opened
    event = min(state.get("event", 0), len(opened.chain) - 1)
    hit = opened.chain[event]  # the event the player shows (a single hit: itself)
    buttons(opened)
    st.subheader(f"{plain(hit.video_id)} at {clock(hit.timestamp)} (frame {hit.frame_idx}, keyframe {hit.keyframe_id})")
    if opened.rank:
        st.caption(f"Hit #{opened.rank} of {len(state.get('hits', []))}")
    else:
        st.caption("A neighbouring keyframe (picked in the strip)")
    if hit.media_info:  # an imported video: the package's media-info (untrusted text)
        c1, c2 = st.columns([5, 1])
        c1.markdown(" · ".join(plain(v) for v in (hit.media("title"), hit.media("author"), hit.media("publish_date"))
                               if v))
        url = hit.media("watch_url") or ""
        if url.startswith(("https://", "http://")):  # no javascript: or other schemes
            c2.link_button("Watch online", url)
    left, right = st.columns([3, 2])
    with left:
        if opened.then is not None:
            chain_events(opened, event)
        player(engine, hit, config)
        strip(engine, hit)
    with right:
        summary = summarizer.summarize(hit.keyframe_id, language)
        st.markdown("**What happens here**")
        st.markdown(plain(summary.text))
        if st.button("Read aloud", key="speak"):
            try:
                spoken = speak(summary.text, language, config.data_dir / "audio", config.voice)
                st.audio(spoken.path.read_bytes(), format="audio/mpeg" if spoken.path.suffix == ".mp3" else "audio/wav")
                st.caption(f"Spoken by {spoken.engine}" + (" (offline voice)" if spoken.offline else " (Google TTS)"))
                state.spoken = spoken
            except VoiceError as exc:
                st.error(plain(exc))
        found_in_frame(engine, hit)
        submit_panel(config, opened, hit, shortcut=KEYS["submit"])


def buttons(opened: Hit) -> None:
    state = st.session_state
    with st.container(horizontal=True):
        st.button("Previous hit", key="hit_previous", on_click=move, args=(-1,),
                  shortcut=KEYS["previous"])
        st.button("Next hit", key="hit_next", on_click=move, args=(1,), shortcut=KEYS["next"])
        if opened.then is None and feedback_on():
            liked, disliked = opened.keyframe_id in state.more_like, opened.keyframe_id in state.less_like
            # A like re-ranks the grid behind the dialog: the whole page runs again.
            if st.button("Like", key="hit_like", shortcut=KEYS["like"],
                         type="primary" if liked else "secondary"):
                judge(opened.keyframe_id, True)
                st.rerun()
            if st.button("Dislike", key="hit_dislike", shortcut=KEYS["dislike"],
                         type="primary" if disliked else "secondary"):
                judge(opened.keyframe_id, False)
                st.rerun()
        st.button("Find similar frames", key="similar", on_click=_find_similar, args=(opened.keyframe_id,))


def chain_events(opened: Hit, shown: int) -> None:
    """Each event of a chain, its thumbnail and time; a click shows it in the player."""
    for col, (n, event) in zip(st.columns(len(opened.chain)), enumerate(opened.chain)):
        col.image(shown_thumbnail(event.thumbnail), width="stretch")
        col.button(f"{n + 1}. {clock(event.timestamp)}", key=f"event_{n}", on_click=_show_event, args=(n,),
                   type="primary" if n == shown else "secondary", width="stretch")


def player(engine: SearchEngine, hit: Hit, config: AppConfig) -> None:
    has_shot = hit.shot_start is not None and hit.shot_end is not None
    # A video of one shot has nothing to narrow the player to: "only this shot" would only
    # send it back to 0:00.
    whole = has_shot and _shots_in(engine, hit.video_id) == 1
    if has_shot:
        st.caption(f"Shot {hit.shot}: {clock(hit.shot_start)} to {clock(hit.shot_end)}"
                   + (" (the whole video)" if whole else ""))
    only_shot = has_shot and not whole and st.toggle("Play only this shot", key="only_shot",
                                                     help="from the shot's first frame to its last, in a loop")
    try:
        if hit.video_path is None:
            raise FileNotFoundError("the package has no video file for it")
        with st.spinner("Preparing the video for the browser..."):
            video = playable_video(Path(hit.video_path), config.data_dir / "previews")
        if only_shot:
            # Streamlit plays from and to whole seconds: round outwards so the whole shot plays.
            st.video(str(video), start_time=math.floor(hit.shot_start), end_time=math.ceil(hit.shot_end), loop=True)
        else:
            st.video(str(video), start_time=int(hit.timestamp))
    except Exception as exc:  # a vanished or unreadable file must not break the page
        st.error(f"Cannot play {plain(hit.video_path or hit.video_id)}: {plain(exc)}")


def _shots_in(engine: SearchEngine, video_id: str) -> int | None:
    """How many shots the video has; None where the id is ambiguous (several files share it)."""
    try:
        return len(engine.shots(video_id))
    except QueryError:
        return None


def strip(engine: SearchEngine, hit: Hit) -> None:
    """The neighbouring keyframes; a click makes one the current keyframe (player, summary, submit)."""
    rows = engine.neighbours(hit, STRIP_SECONDS)
    if len(rows) <= 1:
        return
    at = next((i for i, r in enumerate(rows) if r.keyframe_id == hit.keyframe_id), len(rows) // 2)
    first = max(0, min(at - STRIP_MAX // 2, len(rows) - STRIP_MAX))
    rows = rows[first : first + STRIP_MAX]
    st.caption("Keyframes around it: click one to jump there")
    for col, row in zip(st.columns(len(rows)), rows):
        here = row.keyframe_id == hit.keyframe_id
        col.image(shown_thumbnail(row.thumbnail), width="stretch")
        col.button(clock(row.timestamp), key=f"strip_{row.keyframe_id}", on_click=_show_keyframe,
                   args=(engine, row.keyframe_id), type="primary" if here else "secondary", width="stretch",
                   help="this keyframe" if here else f"keyframe {row.keyframe_id}, frame {row.frame_idx}")


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


def _show_event(n: int) -> None:
    st.session_state.event = n


def _show_keyframe(engine: SearchEngine, keyframe_id: int) -> None:
    """A strip click: that keyframe becomes the opened hit (outside the results: no rank)."""
    state = st.session_state
    if keyframe_id != state.opened.chain[state.get("event", 0)].keyframe_id:
        state.opened, state.event = engine.hits([keyframe_id])[0], 0


def _find_similar(keyframe_id: int) -> None:
    # A callback: widget values (the mode radio, the keyframe box) may only change before a rerun.
    state = st.session_state
    state.mode, state.like, state.opened = "Similar frame", keyframe_id, None
