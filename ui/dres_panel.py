"""The app's DRES controls: log in (in the sidebar), and submit the opened hit after a
confirmation. Each browser has its own DRES session, kept in its session state (the CLI keeps
its session in a file); the log of what was sent is the data folder's, shared, so an answer sent
from one browser is not sent again by accident from another."""
from __future__ import annotations

import streamlit as st

from search import Hit, Query, QueryError
from ui.config import AppConfig
from ui.dres import TASKS, DresClient, DresError, DuplicateSubmission, SessionInMemory, answer_for, kis_span
from ui.dres_log import QueryLogger
from ui.text import plain


def client(config: AppConfig) -> DresClient:
    return DresClient(config.data_dir, config.dres, SessionInMemory(st.session_state))


def evaluation_name(evaluation: str) -> str:
    found = next((e for e in st.session_state.get("dres_evaluations", []) if e.get("id") == evaluation), {})
    return str(found.get("name") or evaluation)


def dres_sidebar(config: AppConfig) -> None:
    """Log in to a DRES server and pick the evaluation that submissions go to."""
    dres = client(config)
    state = st.session_state
    with st.sidebar.expander("DRES (contest server)", expanded=False):
        session = dres.session()
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
                    dres.login(url, user, password)
                    state.pop("dres_evaluations", None)
                    st.rerun()
                except DresError as exc:
                    st.error(plain(exc))
            return
        st.caption(f"Logged in to {plain(session.url)} as {plain(session.username)} (in this browser)")
        try:
            if "dres_evaluations" not in state or st.button("Refresh", key="dres_refresh"):
                state.dres_evaluations = dres.evaluations()
        except DresError as exc:
            st.error(plain(exc))
            state.dres_evaluations = []
        evaluations = {e["id"]: e for e in state.dres_evaluations if "id" in e}
        active = [i for i, e in evaluations.items() if e.get("status") == "ACTIVE"] or list(evaluations)
        st.selectbox("Evaluation", active, key="dres_evaluation",
                     format_func=lambda i: f"{evaluations[i].get('name', i)} ({evaluations[i].get('status', '?')})")
        if st.button("Log out", key="dres_logout"):
            try:
                dres.logout()
            except DresError as exc:
                st.warning(plain(exc))
            st.rerun()


def submit_panel(config: AppConfig, opened: Hit, hit: Hit, shortcut: str) -> None:
    """Submit the opened hit (KIS: a span around `hit`, the event shown; TRAKE: the chain) after
    a confirmation; show DRES's verdict."""
    st.markdown("**Submit to DRES**")
    dres = client(config)
    state = st.session_state
    evaluation = state.get("dres_evaluation")
    if dres.session() is None or not evaluation:
        st.caption("Log in with the sidebar's \"DRES (contest server)\" panel and pick an evaluation to submit "
                   "from here.")
        return
    task = st.radio("Task", TASKS, index=TASKS.index("trake" if opened.then is not None else "kis"),
                    key="submit_task", horizontal=True, format_func=str.upper)
    answer_text, span = None, None
    if task == "qa":
        answer_text = st.text_input("Answer (QA)", key="submit_answer")
    if task == "kis":
        start, end = kis_span(hit, config.dres.kis_window_s)
        c1, c2 = st.columns(2)
        # Keyed by the keyframe: another hit starts from its own default span.
        start = c1.number_input("From (s)", min_value=0.0, value=round(start, 3), step=0.5, format="%.3f",
                                key=f"kis_from_{hit.keyframe_id}")
        end = c2.number_input("To (s)", min_value=0.0, value=round(end, 3), step=0.5, format="%.3f",
                              key=f"kis_to_{hit.keyframe_id}")
        span = (start, end)
    try:
        answer = answer_for(task, opened.chain if task == "trake" else [hit], answer_text, span=span)
    except QueryError as exc:
        st.caption(plain(exc))
        return
    shown = answer.get("text") or f"{answer['mediaItemName']} {answer['start']}-{answer['end']} ms"
    st.button(f"Submit {plain(shown)}", key="submit", shortcut=shortcut, on_click=_ask,
              args=((evaluation, answer, shown),))
    pending = state.get("pending_submit")
    if pending and pending[1] == answer:
        st.warning(f"Send {plain(pending[2])} to {plain(evaluation_name(pending[0]))}? A wrong answer costs points.")
        again = st.checkbox("Send it even if it was sent before", key="submit_again")
        b1, b2 = st.columns(2)
        if b1.button("Confirm", key="submit_confirm", type="primary"):
            state.pending_submit = None
            try:
                state.verdict = dres.submit(pending[0], pending[1], again=again)
            except DuplicateSubmission as exc:
                state.verdict, state.pending_submit = None, pending  # the confirmation stays, to tick and confirm
                st.warning(f"{plain(exc)}. To send it anyway, tick \"Send it even if it was sent before\" and "
                           "confirm again.")
            except DresError as exc:
                state.verdict = None
                st.error(plain(exc))
        b2.button("Cancel", key="submit_cancel", on_click=_ask, args=(None,))
    verdict = state.get("verdict")
    if verdict is not None and verdict.body["answerSets"][0]["answers"][0] == answer:
        said = f"{verdict.verdict or 'No verdict yet'}" + (f": {verdict.description}" if verdict.description else "")
        {"CORRECT": st.success, "WRONG": st.error}.get(verdict.verdict, st.info)(plain(said))


def log_search(config: AppConfig, query: Query, hits: list[Hit]) -> None:
    """While this browser is logged in (and [dres] log is on), send DRES the search's logs in
    the background, to the evaluation picked in the sidebar."""
    session = SessionInMemory(st.session_state).load()
    if not config.dres.log or session is None:
        return
    state = st.session_state
    evaluation = state.get("dres_evaluation")
    logger = state.get("dres_logger")
    if logger is None or (logger.client.sessions.load(), logger.evaluation) != (session, evaluation):
        # The logger's thread outlives this script run: it gets its own copy of the session,
        # never this browser's session state.
        logger = QueryLogger(DresClient(config.data_dir, config.dres, SessionInMemory({"dres_session": session})),
                             evaluation)
        state.dres_logger = logger
    logger.log(query, hits)


def _ask(pending: tuple | None) -> None:
    """Submit pressed (pending: what to send, waiting for Confirm) or Cancel (None)."""
    st.session_state.pending_submit = pending
    st.session_state.pop("verdict", None)
