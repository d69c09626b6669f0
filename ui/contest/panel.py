"""The app's DRES controls in the sidebar: log in and pick the evaluation (the opened hit submits
to it: ui/actions.py), the running task's clock, and the query logs of each search. Each browser
has its own DRES session, kept in its session state (the CLI keeps its session in a file); the
log of what was sent is the data folder's, shared, so an answer sent from one browser is not
sent again by accident from another."""

from __future__ import annotations

import os

import streamlit as st

from evr.search import Hit, Query
from evr.ui.components import task_clock as task_clock_element
from evr.ui.config import AppConfig
from evr.ui.text import plain

from .client import ANSWER_KINDS, DresClient, DresError, SessionInMemory
from .query_log import QueryLogger

TASK_EVERY_S = 5  # how often the sidebar asks DRES what task runs (the page counts down between)


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
                # $EVR_DRES_PASSWORD fills it, as it does for `evr dres login`.
                password = st.text_input(
                    "Password", type="password", key="dres_password", value=os.environ.get("EVR_DRES_PASSWORD", "")
                )
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
        st.selectbox(
            "Evaluation",
            active,
            key="dres_evaluation",
            format_func=lambda i: f"{evaluations[i].get('name', i)} ({evaluations[i].get('status', '?')})",
        )
        st.text_input("Your name on the team's marks", key="team_name", placeholder=session.username, max_chars=40)
        if st.button("Log out", key="dres_logout"):
            try:
                dres.logout()
            except DresError as exc:
                st.warning(plain(exc))
            state.pop("dres_task", None)
            st.rerun()
    if state.get("dres_evaluation"):
        with st.sidebar:
            st.fragment(run_every=TASK_EVERY_S)(task_clock)(config)


def task_clock(config: AppConfig) -> None:
    """The running task's name, type and time left (counting down in the page), or that none
    runs; read from DRES again at each run of this fragment, and kept for the submit panel."""
    state = st.session_state
    try:
        task = client(config).task_state(state.dres_evaluation)
    except DresError as exc:
        state.pop("dres_task", None)
        st.caption(f"Task: {plain(exc)}")
        return
    found = task.to_json()
    state.dres_task = found
    state.dres_task_reads = state.get("dres_task_reads", 0) + 1
    if task.running:
        takes = f", takes {ANSWER_KINDS[task.kind]}" if task.kind else ""
        text = f"Task {task.name} ({task.task_type}{takes})"
    else:
        text = f"No task running (DRES: {task.status})"
    task_clock_element({**found, "text": text, "stamp": state.dres_task_reads})


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
        logger = QueryLogger(
            DresClient(config.data_dir, config.dres, SessionInMemory({"dres_session": session})), evaluation
        )
        state.dres_logger = logger
    logger.log(query, hits)
