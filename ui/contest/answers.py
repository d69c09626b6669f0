"""Answers to DRES tasks in the forms the contest takes (../shared/contest/AIC_DATA.md,
"Submissions"): a KIS span of a video, a QA text, a TRAKE list of frames; each checked before
anything is sent. The client that sends them is ui/contest/client.py."""

from __future__ import annotations

import math
from collections.abc import Sequence

from evr.search import Hit, QueryError

from .client import DresSettings

TASKS = ("kis", "qa", "trake")


def kis_span(hit: Hit, window_s: float) -> tuple[float, float]:
    """Seconds (start, end): `window_s` either side of the hit, cut to its shot when the shot
    is known (a span across a cut would also cover another scene)."""
    start, end = max(0.0, hit.timestamp - window_s), hit.timestamp + window_s
    if hit.shot_start is not None and hit.shot_end is not None:
        start, end = max(start, hit.shot_start), min(end, hit.shot_end)
    return start, max(start, end)


def kis_answer(hit: Hit, span: tuple[float, float]) -> dict:
    """The video and a span of it in ms (kis_span, or one the user set)."""
    start, end = span
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
        raise QueryError(f"a KIS span runs forward from 0 s: {start} s to {end} s does not")
    return {"mediaItemName": hit.video_id, "start": _ms(start), "end": _ms(end)}


def qa_answer(hit: Hit, answer: str, qa_format: str = "aic") -> dict:
    """The answer's text (spaces collapsed): in the AI Challenge's form "QA-<answer>-<video>-<ms>"
    (`qa_format` "aic"), or alone ("text")."""
    answer = " ".join(answer.split())
    if not answer:
        raise QueryError("a QA submission needs --answer TEXT")
    if qa_format == "text":
        return {"text": answer}
    return {"text": f"QA-{answer}-{hit.video_id}-{_ms(hit.timestamp)}"}


def trake_answer(chain: Sequence[Hit]) -> dict:
    """`TR-<video>-<frame1>,<frame2>,...`: the events of one video, in time order."""
    if len({h.video_id for h in chain}) != 1:
        raise QueryError("a TRAKE answer's keyframes must all be in one video")
    if any(b.timestamp < a.timestamp for a, b in zip(chain, chain[1:])):
        raise QueryError("a TRAKE answer's keyframes must be given in time order")
    return {"text": f"TR-{chain[0].video_id}-{','.join(str(h.frame_idx) for h in chain)}"}


def answer_for(
    task: str,
    chain: Sequence[Hit],
    answer: str | None = None,
    span: tuple[float, float] | None = None,
    window_s: float = DresSettings.kis_window_s,
    qa_format: str = DresSettings.qa_format,
) -> dict:
    """The ApiClientAnswer of a task: KIS and QA take one hit, TRAKE the hits of a chain; a KIS
    answer spans `span` seconds, or kis_span(hit, window_s); a QA answer is in `qa_format`. An
    answer that cannot be right (no QA text, a chain across videos) is a QueryError."""
    if task not in TASKS:
        raise QueryError(f"the task must be one of {', '.join(TASKS)}, not {task!r}")
    if task != "trake" and len(chain) != 1:
        raise QueryError(f"a {task.upper()} submission is one keyframe; TRAKE takes several")
    if task == "kis":
        return kis_answer(chain[0], span or kis_span(chain[0], window_s))
    if task == "qa":
        return qa_answer(chain[0], answer or "", qa_format)
    return trake_answer(chain)


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))
