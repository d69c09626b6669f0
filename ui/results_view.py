"""The app's results: the grid of hits with a current hit that keys move, temporal chains with a
thumbnail per event, relevance feedback, and the export files."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from search import Hit, QueryError
from search.export import AIC_MAX_LINES, aic_csv, aic_qa_csv, file_stem, hits_json
from search.summary import clock
from ui.media import shown_thumbnail
from ui.text import plain

# The keyboard keys of the grid's and the opened hit's buttons (Streamlit shows each on its
# button, and reserves C and R).
KEYS = {"next": "J", "previous": "K", "open": "O", "like": "L", "dislike": "D", "submit": "S"}


def open_hit(index: int) -> None:
    """Make hit `index` the current one and open it (a callback)."""
    state = st.session_state
    state.cursor = index
    state.opened, state.event = state.hits[index], 0


def move(step: int) -> None:
    """The next or previous hit becomes current; in an opened hit, it is shown (a callback)."""
    state = st.session_state
    if not state.get("hits"):
        return
    state.cursor = max(0, min(len(state.hits) - 1, state.get("cursor", 0) + step))
    if state.get("opened") is not None:
        state.opened, state.event = state.hits[state.cursor], 0


def close_hit() -> None:
    st.session_state.opened = None


def judge(keyframe_id: int, liked: bool) -> None:
    """A like or dislike: toggles the frame in one list and takes it out of the other (a callback)."""
    state = st.session_state
    mine, other = (state.more_like, state.less_like) if liked else (state.less_like, state.more_like)
    if keyframe_id in mine:
        mine.remove(keyframe_id)
    else:
        mine.append(keyframe_id)
        if keyframe_id in other:
            other.remove(keyframe_id)


def feedback_on() -> bool:
    """Whether the current query takes likes and dislikes (single-event queries do)."""
    return "more_like" in st.session_state


def show_results(hits: list[Hit], k_page: int, keys_here: bool) -> None:
    """The grid; `keys_here`: the keyboard keys act on the grid (no hit is open)."""
    if not hits:
        st.info("No results. Loosen the filters or try other words.")
        return
    state = st.session_state
    state.cursor = min(state.get("cursor", 0), len(hits) - 1)
    current = hits[state.cursor]
    st.subheader(f"{len(hits)} results")
    lost = sum(not Path(h.thumbnail).is_file() for h in hits)
    if lost:
        st.warning(f"{lost} of these hits have lost their thumbnail (grey): run `evr reindex` to make them again.")
    toolbar(current, keys_here)
    # The current hit's card is outlined (its container's class is st-key-card_<index>).
    st.html(f"<style>.st-key-card_{state.cursor} {{outline: 3px solid #ff4b4b; outline-offset: 2px;}}</style>")
    temporal = hits[0].then is not None
    columns = 2 if temporal else 4  # a chain's card holds one thumbnail per event
    for start in range(0, len(hits), columns):
        for col, (i, h) in zip(st.columns(columns), enumerate(hits[start : start + columns], start)):
            with col, st.container(key=f"card_{i}", border=True):
                card(h, i)
    if len(hits) >= state.k and st.button("More results", key="more"):
        state.k += k_page
        st.rerun()


def toolbar(current: Hit, keys_here: bool) -> None:
    """Buttons for the current hit; their keys work while no hit is open (an open hit has its own)."""
    def key(name: str) -> str | None:
        return KEYS[name] if keys_here else None

    state = st.session_state
    with st.container(horizontal=True):
        st.button("Previous", key="grid_previous", on_click=move, args=(-1,),
                  shortcut=key("previous"))
        st.button("Next", key="grid_next", on_click=move, args=(1,), shortcut=key("next"))
        st.button(f"Open #{current.rank}", key="grid_open", on_click=open_hit,
                  args=(state.cursor,), shortcut=key("open"), type="primary")
        if current.then is None and feedback_on():
            st.button(f"Like #{current.rank}", key="grid_like", on_click=judge,
                      args=(current.keyframe_id, True), shortcut=key("like"))
            st.button(f"Dislike #{current.rank}", key="grid_dislike", on_click=judge,
                      args=(current.keyframe_id, False), shortcut=key("dislike"))


def card(h: Hit, index: int) -> None:
    state = st.session_state
    if h.then is None:
        st.image(shown_thumbnail(h.thumbnail), width="stretch")
    else:  # a chain: every event side by side
        for col, (n, event) in zip(st.columns(len(h.chain)), enumerate(h.chain, 1)):
            col.image(shown_thumbnail(event.thumbnail), width="stretch",
                      caption=f"{n}. {clock(event.timestamp)} (frame {event.frame_idx})")
    facts = [f"**#{h.rank}** {plain(h.video_id)} · {clock(h.timestamp)} · frame {h.frame_idx}",
             f"score {h.score:.3f} ({h.match})" + (
                 " · " + ", ".join(f"{name} #{m['rank']}" for name, m in h.models.items())
                 if h.models and len(h.models) > 1 else "")]
    if h.media("title"):
        facts.append(f"_{plain(h.media('title')[:60])}_")
    facts += [plain(fact) for fact in h.facts()]
    st.markdown("  \n".join(facts))
    with st.container(horizontal=True, vertical_alignment="center"):  # whole buttons, wrapping as a row
        st.button("Open", key=f"open_{h.keyframe_id}", on_click=open_hit, args=(index,))
        st.checkbox("Pick", key=f"pick_{h.keyframe_id}")
        if h.then is None and feedback_on():  # feedback refines single-event queries
            st.button("Like", key=f"up_{h.keyframe_id}", help="more like this", on_click=judge,
                      args=(h.keyframe_id, True), type="primary" if h.keyframe_id in state.more_like else "secondary")
            st.button("Dislike", key=f"down_{h.keyframe_id}", help="less like this", on_click=judge,
                      args=(h.keyframe_id, False), type="primary" if h.keyframe_id in state.less_like else "secondary")


def export_panel(hits: list[Hit], query_text: str) -> None:
    """AI Challenge files (KIS or TRAKE, QA) and JSON of the picked hits, or the top N, named
    after the query unless the user names them."""
    st.divider()
    st.subheader("Export")
    state = st.session_state
    picked = [h for h in hits if state.get(f"pick_{h.keyframe_id}")]
    c1, c2, c3 = st.columns([2, 3, 3])
    top_n = c1.number_input("Or take the top N", 1, AIC_MAX_LINES, min(AIC_MAX_LINES, len(hits)) or 1, key="top_n")
    name = c2.text_input("File name", key="export_name", placeholder=file_stem(query_text),
                         help="without extension; empty: made from the query's words")
    answer = c3.text_input("QA answer", key="export_answer", help="written on every line of the QA file")
    chosen = picked or hits[: int(top_n)]
    stem = file_stem(name or query_text)
    st.caption(f"{len(chosen)} hits: {'the ones you picked' if picked else f'the top {int(top_n)}'}"
               f" (AI Challenge files hold at most {AIC_MAX_LINES} lines)")
    temporal = bool(chosen) and chosen[0].then is not None
    b1, b2, b3 = st.columns(3)
    try:
        csv = aic_csv(chosen).encode()
        state.export_csv = csv
        b1.download_button("TRAKE CSV" if temporal else "KIS CSV", csv, file_name=f"{stem}.csv", mime="text/csv",
                           key="export_aic")
        if answer.strip():
            qa = aic_qa_csv(chosen, answer).encode()
            state.export_qa_csv = qa
            b2.download_button("QA CSV", qa, file_name=f"{stem}-qa.csv", mime="text/csv", key="export_qa")
        else:
            b2.caption("Type a QA answer for the QA file.")
    except QueryError as exc:  # a video_id or an answer a CSV row cannot carry
        b2.error(plain(exc))
    b3.download_button("JSON", hits_json(chosen).encode(), file_name=f"{stem}.json", mime="application/json",
                       key="export_json")
