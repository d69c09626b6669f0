"""Long descriptions in, evr queries out: `evr plan`, `evr search --plan` and the app's Plan
button turn a description of a moment (Vietnamese or English, often several events in order)
into a query plan (plan.py): per event a visual description, on-screen words, spoken words,
objects, colours; and the gap between events.

Planners are tried in the order [plan] planners names them: `llm` (an OpenAI-compatible
server, llm.py), `local` (a small instruction model in this process, local.py), `rules` (no
model, rules.py; it always answers). One that is not configured is passed over; one that times
out, fails, or answers with anything but a valid plan that can run is passed over with one
warning line, and the next runs; its reason stays in the plan's `notes`."""

from __future__ import annotations

import logging

from ..errors import QueryError
from . import llm, local, rules
from .plan import PLAN_SCHEMA, PlanError, PlannedEvent, QueryPlan, check_query
from .settings import PLANNERS, PlanSettings

log = logging.getLogger(__name__)

MAX_DESCRIPTION = 4000  # characters


def make_plan(description: str, settings: PlanSettings) -> QueryPlan:
    """The plan of the first planner that gives a valid one; QueryError when none does."""
    description = " ".join(description.split())
    if not description:
        raise QueryError("the description is empty")
    if len(description) > MAX_DESCRIPTION:
        raise QueryError(f"a description holds at most {MAX_DESCRIPTION} characters, not {len(description)}")
    notes, idle = [], []
    for name in settings.planners:
        try:
            if name == "rules":
                found = rules.plan(description)
            else:
                found = (llm if name == "llm" else local).plan(description, settings)
            found = check_query(found)
        except PlanError as exc:
            if not configured(name, settings):
                idle.append(f"{name} is not set up ([plan] {'url' if name == 'llm' else 'local_model'})")
                continue  # passed over without a word
            said = f"the {name} planner gave no plan: {exc}"
            log.warning("%s; trying the next one", said)
            notes.append(said)
            continue
        return QueryPlan(found.events, found.within_s, found.planner, tuple(notes))
    raise QueryError("no planner gave a plan: " + "; ".join(notes + idle))


def configured(name: str, settings: PlanSettings) -> bool:
    """Whether a planner is set up to run (the rules always are)."""
    return bool({"llm": settings.url, "local": settings.local_model, "rules": True}[name])


__all__ = ["PLAN_SCHEMA", "PLANNERS", "PlanError", "PlanSettings", "PlannedEvent", "QueryPlan", "make_plan"]
