"""The app's Plan button: a long description (Vietnamese or English) turned into the query form's
fields by the configured planners (search/planner/), for the user to check and edit before
searching: one event fills the text query and its on-screen words, spoken words, objects and
colours; several fill the temporal form, event by event, and the gap between them."""

from __future__ import annotations

import streamlit as st

from evr.search import QueryError
from evr.search.planner import PlanSettings, make_plan
from evr.search.query import MAX_EVENTS

from .text import plain


def plan_box(settings: PlanSettings) -> None:
    """The description box and its Plan button, above the query form."""
    with st.expander("Plan a query from a long description", expanded=bool(st.session_state.get("plan_said"))):
        st.text_area(
            "Description",
            key="plan_description",
            height=90,
            placeholder="Một phóng viên đứng trước con đường ngập nước, có dòng chữ 'LŨ LỤT'. Sau đó ...",
        )
        st.button("Plan", key="plan_button", on_click=_fill_form, args=(settings,))
        kind, said = st.session_state.get("plan_said") or (None, "")
        if kind:
            getattr(st, kind)(plain(said))


def _fill_form(settings: PlanSettings) -> None:
    """The plan's fields into the query form's widgets (a callback: before they are drawn)."""
    state = st.session_state
    try:
        plan = make_plan(state.get("plan_description", ""), settings)
    except QueryError as exc:
        state.plan_said = ("error", str(exc))
        return
    first = plan.events[0]
    state.ocr, state.speech = first.ocr, first.speech
    state.object, state.color = list(first.objects), list(first.colors)
    if len(plan.events) == 1:
        state.mode, state.query = "Text", first.visual or first.ocr or first.speech
    else:
        events = plan.events[:MAX_EVENTS]
        state.mode, state.events, state.first = "Temporal", len(events), first.visual or first.ocr or first.speech
        for n, e in enumerate(events[1:], 2):
            state["then" if n == 2 else f"then_{n}"] = e.visual or e.ocr or e.speech
        if plan.within_s:
            state.within = float(plan.within_s)
    notes = [*plan.notes, *plan.unsearched_said()]
    said = f"Planned by {plan.planner}: check the fields below, then search."
    state.plan_said = ("info", said + "".join(f" {n[0].upper()}{n[1:]}." for n in notes))
