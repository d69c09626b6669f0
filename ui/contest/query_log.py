"""What a search asked and found, logged to DRES as VBS asks of its participants: a
`QueryEventLog` (POST /api/v2/log/query/{evaluation}) and a `QueryResultLog` (POST
/api/v2/log/result/{evaluation}) for each search, while logged in and `[dres] log` is on.

The bodies are built at once (cheap) and sent by one background thread, in order, so a DRES that
refuses, hangs or is gone never blocks or slows a search: a search only puts them in a queue.
The first failure is said once (a warning); later ones only at debug level. The command line
waits for the last bodies at its exit, after its results are printed, at most `[dres] timeout_s`
per request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from evr.search import Hit, Query

from .client import DresClient, DresError

log = logging.getLogger(__name__)

QUEUE_SIZE = 64  # searches waiting to be logged; beyond, the oldest are dropped rather than wait
RESULTS = 100  # hits logged per search (the ranked list a judge could look at)


def query_events(query: Query, at_ms: int) -> list[dict]:
    """The query as DRES event categories: TEXT (the text, each later event of a temporal
    query), IMAGE (an example image, a keyframe, relevance feedback), FILTER (each filter on),
    OTHER (the models searched with)."""
    events = []

    def event(category: str, kind: str, value) -> None:
        events.append({"timestamp": at_ms, "category": category, "type": kind, "value": str(value)})

    if query.text is not None:
        event("TEXT", "text", query.text)
    for text in query.then:
        event("TEXT", "then", text)
    if query.then:
        event("FILTER", "within", query.within)
    if query.image is not None:
        event("IMAGE", "image", f"uploaded image {query.image.shape[1]}x{query.image.shape[0]}")
    if query.like is not None:
        event("IMAGE", "keyframe", query.like)
    for keyframe in query.more_like:
        event("IMAGE", "relevanceFeedback", f"like {keyframe}")
    for keyframe in query.less_like:
        event("IMAGE", "relevanceFeedback", f"dislike {keyframe}")
    f = query.filters
    for video in f.videos:
        event("FILTER", "video", video)
    for name, value in (("time_from", f.time_from), ("time_to", f.time_to)):
        if value is not None:
            event("FILTER", name, value)
    for name, value in f.features:
        for v in value if isinstance(value, tuple) else (value,):
            event("FILTER", name, v)
    if query.models:
        event("OTHER", "models", ",".join(query.models))
    return events


def result_log(hits: list[Hit], events: list[dict], at_ms: int) -> dict:
    """The ranked hits as DRES answers: each keyframe's video and its time (ms)."""
    results = [
        {
            "answer": {
                "mediaItemName": h.video_id,
                "start": round(h.timestamp * 1000),
                "end": round(h.timestamp * 1000),
            },
            "rank": h.rank or i,
        }
        for i, h in enumerate(hits[:RESULTS], start=1)
    ]
    return {
        "timestamp": at_ms,
        "sortType": "score",
        "resultSetAvailability": "top",
        "results": results,
        "events": events,
    }


class QueryLogger:
    """Sends each search's logs to the evaluation `evaluation` (None: the only active one, asked
    for once) through `client`'s session."""

    def __init__(self, client: DresClient, evaluation: str | None = None):
        self.client = client
        self.evaluation = evaluation  # as asked for
        self._resolved = evaluation
        self._queue: queue.Queue = queue.Queue(QUEUE_SIZE)
        self._failed = False  # said once
        self._thread: threading.Thread | None = None

    def log(self, query: Query, hits: list[Hit]) -> None:
        """Queue this search's logs; returns at once."""
        session = self.client.session()
        at_ms = session.server_ms() if session else int(time.time() * 1000)  # DRES's clock (measured at login)
        events = query_events(query, at_ms)
        item = ({"timestamp": at_ms, "events": events}, result_log(hits, events, at_ms))
        while True:
            try:
                self._queue.put_nowait(item)
                break
            except queue.Full:  # DRES is slower than the searches: the oldest waiting log goes
                try:
                    self._queue.get_nowait()
                    self._queue.task_done()
                except queue.Empty:
                    pass
        if self._thread is None:
            self._thread = threading.Thread(target=self._send_all, daemon=True, name="evr-dres-log")
            self._thread.start()

    def wait(self, timeout_s: float) -> bool:
        """Wait at most `timeout_s` for the queued logs to be sent (or to fail); whether they were."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks

    def _send_all(self) -> None:
        while True:
            events, results = self._queue.get()
            try:
                evaluation = self._resolved = self._resolved or self.client.choose_evaluation(None)
                self.client.send_log(evaluation, "query", events)
                self.client.send_log(evaluation, "result", results)
            except Exception as exc:  # never let the logger's thread die: the next search logs again
                if not self._failed:
                    self._failed = True
                    said = exc if isinstance(exc, DresError) else f"{type(exc).__name__}: {exc}"
                    log.warning(
                        "the query log was not sent to DRES (%s); searches go on, and later failures "
                        "are not said again",
                        said,
                    )
                log.debug("query log not sent", exc_info=True)
            finally:
                self._queue.task_done()
