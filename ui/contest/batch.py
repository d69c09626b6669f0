"""Many answers at once, as ad-hoc (AVS) tasks reward: each hit sent as its own KIS span through
the client's guards (no task running, a task of another kind, an answer sent before), each with
its own outcome. `evr dres submit-many` reads the hits from a list; the app sends the hits picked
in its grid."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

from evr.search import Hit, QueryError
from evr.search.archive import Archive

from .answers import kis_answer, kis_span
from .client import DresClient, DresError, DuplicateSubmission, TaskRefusal

# What became of one answer: DRES's verdict, or why it was not sent (or not judged).
OUTCOMES = ("CORRECT", "WRONG", "INDETERMINATE", "UNDECIDABLE", "DUPLICATE", "REFUSED", "FAILED")


@dataclass(frozen=True)
class Outcome:
    hit: Hit
    outcome: str  # one of OUTCOMES
    text: str  # DRES's description of its verdict, or why it was not sent
    sent: bool  # it reached DRES, or may have (FAILED after it left)

    def to_json(self) -> dict:
        return {
            "keyframe_id": self.hit.keyframe_id,
            "video_id": self.hit.video_id,
            "timestamp": round(self.hit.timestamp, 3),
            "outcome": self.outcome,
            "sent": self.sent,
            "text": self.text,
        }

    def line(self) -> str:
        return f"{self.hit.video_id} at {self.hit.timestamp:.2f} s: {self.outcome}" + (
            f": {self.text}" if self.text else ""
        )


def send_each(
    client: DresClient, evaluation: str, hits: Iterable[Hit], window_s: float, force: bool = False, again: bool = False
) -> list[Outcome]:
    """Send each hit as a KIS span (kis_span: `window_s` either side, within its shot) to the
    evaluation's running task, one answer each, in order; what became of each."""
    out = []
    for hit in hits:
        try:
            verdict = client.submit(evaluation, kis_answer(hit, kis_span(hit, window_s)), "kis", again, force)
        except DuplicateSubmission as exc:
            out.append(Outcome(hit, "DUPLICATE", str(exc), False))
        except TaskRefusal as exc:
            out.append(Outcome(hit, "REFUSED", str(exc), False))
        except (DresError, QueryError) as exc:
            out.append(Outcome(hit, "FAILED", str(exc), isinstance(exc, DresError) and exc.judged))
        else:
            out.append(Outcome(hit, verdict.verdict, verdict.description, True))
    return out


def read_list(text: str, archive: Archive) -> list[Hit]:
    """The hits a list names, in its order: a JSON array (the hits of `evr search --json`, or the
    app's JSON export of its picked hits) or JSON lines; each item a `keyframe_id`, or a
    `video_id` and a `timestamp` in seconds. QueryError naming the first item that is neither."""
    text = text.strip()
    if not text:
        raise QueryError("the list of answers is empty")
    try:
        items = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line]
    except ValueError as exc:
        raise QueryError(f"the list of answers is not JSON (an array, or one object a line): {exc}") from None
    return [_hit(item, n, archive) for n, item in enumerate(items, 1)]


def _hit(item, n: int, archive: Archive) -> Hit:
    if isinstance(item, dict) and isinstance(item.get("keyframe_id"), int):
        return archive.hits([item["keyframe_id"]])[0]
    if isinstance(item, dict) and isinstance(item.get("video_id"), str):
        seconds = item.get("timestamp")
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds):
            return archive.at(item["video_id"], float(seconds))
    raise QueryError(f"answer {n} of the list names no keyframe_id, nor a video_id and a timestamp (seconds)")
