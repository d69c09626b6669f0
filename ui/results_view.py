"""The app's results: the grid of hits and the opened hit, drawn in the browser as one element
(ui/components.py says why), with a current hit that J and K move and the page follows, temporal
chains with a thumbnail per event, relevance feedback and picks; and the export files."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path

import streamlit as st

from evr.search import Hit, QueryError
from evr.search.printable import printable
from evr.search.summary import clock
from evr.ui.contest.export import AIC_MAX_LINES, aic_csv, aic_qa_csv, file_stem, hits_json

from .actions import FORCE_LABEL, Services, handle
from .components import results
from .contest.answers import TASKS
from .contest.client import DresClient, SessionInMemory
from .media import MARKS_ROUTE, board_url, thumb_url
from .text import plain


def show_results(hits: list[Hit], k_page: int, services: Services, read: str = "") -> None:
    """The grid and the opened hit (the viewer), or a hint when there is nothing; `read`: how
    the text query was read (Markdown)."""
    if not hits:
        st.info("No results. Loosen the filters or try other words.")
        return
    state = st.session_state
    data_dir = services.config.data_dir
    lost = sum(not Path(e.thumbnail).is_file() for h in hits for e in h.chain)
    line = (
        f"**{len(hits)} results**{' · ' + read if read else ''} · :gray[J and K move, O opens, L and D like "
        "and dislike, S submits]"
    )
    st.markdown(
        line
        if not lost
        else line + f"  \n{lost} of these hits have lost their thumbnail (grey): run `evr reindex` to make them again."
    )
    results(results_data(state, hits, data_dir, services), on_action=lambda action: handle(state, action, services))
    if len(hits) >= state["k"]:
        st.button("More results", key="more", on_click=_more, args=(k_page,))


def results_data(state: MutableMapping, hits: list[Hit], data_dir: Path, services: Services) -> dict:
    """What the browser draws: the cards, the details it asked for since the last rerun (it keeps
    them), and whether and where this browser can submit."""
    feedback = "more_like" in state and hits[0].then is None  # single-event queries take feedback
    picked = state.get("picked", set())
    return {
        "version": state.get("query_version", 0),
        "language": services.language,
        "columns": 2 if hits[0].then is not None else 4,
        "cards": [card(h, data_dir, feedback, state, picked) for h in hits],
        "details": {str(k): v for k, v in state.pop("details_out", {}).items()},
        "submit": submit_state(state, services),
        "batch": state.get("batch"),  # what became of the picked hits sent at once, on their cards
        "marks": MARKS_ROUTE,  # the team's marks, asked for twice a second
    }


def card(h: Hit, data_dir: Path, feedback: bool, state: MutableMapping, picked: set[int]) -> dict:
    if h.then is None:
        images = [{"src": thumb_url(h.thumbnail, data_dir), "caption": ""}]
    else:  # a chain: every event side by side
        images = [
            {"src": thumb_url(e.thumbnail, data_dir), "caption": f"{n}. {clock(e.timestamp, 1)} (frame {e.frame_idx})"}
            for n, e in enumerate(h.chain, 1)
        ]
    models = (
        " · " + ", ".join(f"{name} #{m['rank']}" for name, m in h.models.items())
        if h.models and len(h.models) > 1
        else ""
    )
    lines = [
        f"{printable(h.video_id)} · {clock(h.timestamp, 1)} · frame {h.frame_idx}",
        f"score {h.score:.3f} ({h.match}){models}",
    ]
    if h.media("title"):
        lines.append(printable(h.media("title"))[:60])
    lines += [printable(fact) for fact in h.facts()]
    return {
        "id": h.keyframe_id,
        "rank": h.rank,
        "title": f"#{h.rank}",
        "lines": lines,
        "images": images,
        "board": board_url(h.video_db_id),  # fetched as the hit opens, beside its details
        "heading": f"{printable(h.video_id)} at {clock(h.timestamp, 1)} "
        f"(frame {h.frame_idx}, keyframe {h.keyframe_id})",
        "events": [
            {
                "id": e.keyframe_id,
                "src": thumb_url(e.thumbnail, data_dir),
                "label": f"{n}. {clock(e.timestamp, 1)}",
                "tip": f"event {n}, frame {e.frame_idx}",
            }
            for n, e in enumerate(h.chain, 1)
        ]
        if h.then
        else [],
        "feedback": feedback,
        "liked": feedback and h.keyframe_id in state.get("more_like", []),
        "disliked": feedback and h.keyframe_id in state.get("less_like", []),
        "picked": h.keyframe_id in picked,
    }


def submit_state(state: MutableMapping, services: Services) -> dict:
    """Whether this browser can submit (logged in, an evaluation picked), and to what."""
    session = DresClient(services.config.data_dir, services.config.dres, SessionInMemory(state)).session()
    evaluation = state.get("dres_evaluation")
    ready = session is not None and bool(evaluation)
    names = {e.get("id"): e.get("name") for e in state.get("dres_evaluations", []) if isinstance(e, dict)}
    task = state.get("dres_task") or {}  # as the sidebar's clock last read it
    return {
        "ready": ready,
        "tasks": list(TASKS),
        "qa_format": services.config.dres.qa_format,  # the QA answer as the button shows it
        "evaluation": str(names.get(evaluation) or evaluation or ""),
        "task": {"name": task.get("task"), "type": task.get("task_type"), "kind": task.get("answer_kind")}
        if task.get("running")
        else None,
        "task_line": (
            f"Task {task.get('task')} ({task.get('task_type')})"
            if task.get("running")
            else f"No task running (DRES: {task['status']})"
            if task
            else ""
        ),
        "force_label": FORCE_LABEL,
        "why": ""
        if ready
        else 'Log in with the sidebar\'s "DRES (contest server)" panel and pick an evaluation to submit from here.',
    }


def _more(k_page: int) -> None:
    st.session_state.k += k_page


def export_panel(hits: list[Hit], query_text: str) -> None:
    """AI Challenge files (KIS or TRAKE, QA) and JSON of the picked hits, or the top N, named
    after the query unless the user names them."""
    st.divider()
    st.subheader("Export")
    state = st.session_state
    picked = state.get("picked", set())
    chosen_hits = [h for h in hits if h.keyframe_id in picked]
    c1, c2, c3 = st.columns([2, 3, 3])
    top_n = c1.number_input("Or take the top N", 1, AIC_MAX_LINES, min(AIC_MAX_LINES, len(hits)) or 1, key="top_n")
    name = c2.text_input(
        "File name",
        key="export_name",
        placeholder=file_stem(query_text),
        help="without extension; empty: made from the query's words",
    )
    answer = c3.text_input("QA answer", key="export_answer", help="written on every line of the QA file")
    chosen = chosen_hits or hits[: int(top_n)]
    stem = file_stem(name or query_text)
    st.caption(
        f"{len(chosen)} hits: {'the ones you picked' if chosen_hits else f'the top {int(top_n)}'}"
        f" (AI Challenge files hold at most {AIC_MAX_LINES} lines)"
    )
    temporal = bool(chosen) and chosen[0].then is not None
    b1, b2, b3 = st.columns(3)
    try:
        csv = aic_csv(chosen).encode()
        state.export_csv = csv
        b1.download_button(
            "TRAKE CSV" if temporal else "KIS CSV", csv, file_name=f"{stem}.csv", mime="text/csv", key="export_aic"
        )
        if answer.strip():
            qa = aic_qa_csv(chosen, answer).encode()
            state.export_qa_csv = qa
            b2.download_button("QA CSV", qa, file_name=f"{stem}-qa.csv", mime="text/csv", key="export_qa")
        else:
            b2.caption("Type a QA answer for the QA file.")
    except QueryError as exc:  # a video_id or an answer a CSV row cannot carry
        b2.error(plain(exc))
    b3.download_button(
        "JSON", hits_json(chosen).encode(), file_name=f"{stem}.json", mime="application/json", key="export_json"
    )
