"""What a click in the results asks of the server (ui/web/results.js sends it): the details of
keyframes the viewer is about to show, a like or a dislike, a pick for the export, frames similar
to one, a summary read aloud, an answer for DRES, the picked hits sent as answers, a "not it"
for the team. Each is done here, on the browser's session state (any mapping: the tests hand it
a dict), before the rerun that sends back what changed."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass

from evr.search import Hit, QueryError, SearchEngine
from evr.search.summary import Summarizer
from evr.storage import StoreError

from .config import AppConfig
from .contest.answers import answer_for
from .contest.batch import OUTCOMES, send_each
from .contest.client import DresClient, DresError, DuplicateSubmission, SessionInMemory, TaskRefusal
from .hit_view import hit_detail, spoken

log = logging.getLogger(__name__)

KEPT_DETAILS = 64  # keyframes whose details the server keeps per session (the browser keeps its own)


@dataclass(frozen=True)
class Services:
    """What the actions need: the engine, the settings, the summarizer, the summary language."""

    engine: SearchEngine
    config: AppConfig
    summarizer: Summarizer
    language: str


def handle(state: MutableMapping, action: dict, services: Services) -> None:
    kind, keyframe_id = action.get("kind"), action.get("id")
    if kind == "detail":
        for k in action.get("ids", [])[:8]:
            _send(state, detail(state, services, int(k)))
    elif kind in ("like", "dislike"):
        judge(state, int(keyframe_id), kind == "like")
    elif kind == "pick":
        state.setdefault("picked", set()).symmetric_difference_update({int(keyframe_id)})
    elif kind == "similar":
        # The query form's widgets show it: the whole page runs again (app.py does it).
        state["mode"], state["like"], state["rerun_page"] = "Similar frame", int(keyframe_id), True
    elif kind == "speak":
        _send(state, spoken(detail(state, services, int(keyframe_id)), services.language, services.config))
    elif kind == "submit":
        _send(state, submitted(state, services, action))
    elif kind == "submit_picked":
        submit_picked(state, services, {int(k) for k in action.get("ids", [])}, bool(action.get("force")))
    elif kind == "not_it":
        team_mark(state, services, int(keyframe_id), "not_it" if action.get("on") else "not_it_undone")


FORCE_LABEL = "Send even if no task runs or the task takes other answers"  # the checkbox's, in results.js


def team_mark(state: MutableMapping, services: Services, keyframe_id: int, kind: str, verdict: str | None = None):
    """Mark a keyframe for the team (storage/marks.py); a folder that cannot be written loses
    the mark (said in the log), never the submission it records."""
    try:
        services.engine.archive.mark([keyframe_id], kind, who(state), verdict)
    except StoreError as exc:
        log.warning("the team's mark was not kept: %s", exc)


def who(state: MutableMapping) -> str:
    """This browser's user as the team's marks name them: the name typed in the DRES panel, or
    the DRES user it is logged in as."""
    session = SessionInMemory(state).load() or {}
    return str(state.get("team_name") or "").strip()[:40] or str(session.get("username") or "a teammate")


def judge(state: MutableMapping, keyframe_id: int, liked: bool) -> None:
    """A like or dislike: toggles the frame in one list and takes it out of the other."""
    mine, other = (state["more_like"], state["less_like"]) if liked else (state["less_like"], state["more_like"])
    if keyframe_id in mine:
        mine.remove(keyframe_id)
    else:
        mine.append(keyframe_id)
        if keyframe_id in other:
            other.remove(keyframe_id)


def detail(state: MutableMapping, services: Services, keyframe_id: int) -> dict:
    """The viewer's details of a keyframe, made once per keyframe and language."""
    kept = state.setdefault("details", {})
    key = (services.language, keyframe_id)
    if key not in kept:
        hit, chain = _hit_of(state, services.engine, keyframe_id)
        kept[key] = hit_detail(services.engine, services.config, services.summarizer, services.language, hit, chain)
        while len(kept) > KEPT_DETAILS:
            kept.pop(next(iter(kept)))
    return kept[key]


def submitted(state: MutableMapping, services: Services, action: dict) -> dict:
    """Send an answer to DRES (after the browser's confirmation); the detail with what came of it."""
    keyframe_id = int(action["id"])
    shown = detail(state, services, keyframe_id)
    hit, chain = _hit_of(state, services.engine, keyframe_id)
    task = action.get("task", "kis")
    try:
        span = tuple(float(v) for v in action.get("span", shown["span"]))
        answer = answer_for(
            task,
            chain.chain if task == "trake" and chain else [hit],
            action.get("answer"),
            span=span if task == "kis" else None,
            qa_format=services.config.dres.qa_format,
        )
        client, evaluation = _client(state, services)
        verdict = client.submit(
            evaluation, answer, task, again=bool(action.get("again")), force=bool(action.get("force"))
        )
    except DuplicateSubmission as exc:
        said = ("warning", f'{exc}. To send it anyway, tick "Send it even if it was sent before" and confirm again.')
    except TaskRefusal as exc:
        said = ("warning", f'{exc}. To send it anyway, tick "{FORCE_LABEL}" and confirm again.')
    except (DresError, QueryError, TypeError, ValueError) as exc:
        said = ("error", str(exc))
    else:
        text = f"{verdict.verdict or 'No verdict yet'}" + (f": {verdict.description}" if verdict.description else "")
        said = ({"CORRECT": "success", "WRONG": "error"}.get(verdict.verdict, "info"), text)
        team_mark(state, services, keyframe_id, "submitted", verdict.verdict)
    # Under the answer as the browser's Submit button said it: the verdict shows while it says so.
    updated = {**shown, "said": {"answer": str(action.get("shown", "")), "kind": said[0], "text": said[1]}}
    state["details"][(services.language, keyframe_id)] = updated
    return updated


def submit_picked(state: MutableMapping, services: Services, picked: set[int], force: bool) -> None:
    """The hits picked in the grid (as the browser sent them: a pick a moment before may not
    have reached the server yet), each sent as its own KIS answer (ui/contest/batch.py); what
    became of each is shown on its card (`state["batch"]`), and the sent ones are marked for
    the team."""
    hits = [h for h in state.get("hits") or [] if h.keyframe_id in picked]
    state["picked"] = {h.keyframe_id for h in hits}
    try:
        client, evaluation = _client(state, services)
        outcomes = send_each(client, evaluation, hits, services.config.dres.kis_window_s, force=force)
    except DresError as exc:
        state["batch"] = {"said": str(exc), "outcomes": {}}
        return
    for o in outcomes:
        if o.sent:
            team_mark(state, services, o.hit.keyframe_id, "submitted", o.outcome)
    counts = ", ".join(f"{n} {name}" for name in OUTCOMES if (n := sum(o.outcome == name for o in outcomes)))
    refused = any(o.outcome == "REFUSED" for o in outcomes)
    state["batch"] = {
        "said": f"Sent {sum(o.sent for o in outcomes)} of {len(outcomes)} picked: {counts or 'none'}"
        + (f'. To send the refused ones anyway, tick "{FORCE_LABEL}" and submit again.' if refused else ""),
        "outcomes": {str(o.hit.keyframe_id): {"outcome": o.outcome, "text": o.text} for o in outcomes},
    }


def _client(state: MutableMapping, services: Services) -> tuple[DresClient, str]:
    """This browser's DRES client and the evaluation picked in the sidebar; DresError when it is
    not logged in or has picked none."""
    evaluation = state.get("dres_evaluation")
    client = DresClient(services.config.data_dir, services.config.dres, SessionInMemory(state))
    if client.session() is None or not evaluation:
        raise DresError('log in with the sidebar\'s "DRES (contest server)" panel and pick an evaluation first')
    return client, evaluation


def _hit_of(state: MutableMapping, engine: SearchEngine, keyframe_id: int) -> tuple[Hit, Hit | None]:
    """The hit of a keyframe (a ranked one, an event of a ranked chain, or any keyframe of the
    index), and the chain it is an event of."""
    for h in state.get("hits") or []:
        for event in h.chain:
            if event.keyframe_id == keyframe_id:
                return event, (h if h.then is not None else None)
    return engine.archive.hits([keyframe_id])[0], None


def _send(state: MutableMapping, shown: dict) -> None:
    """A detail for the next rerun to hand the browser (which keeps it)."""
    state.setdefault("details_out", {})[shown["id"]] = shown
