"""A DRES client (API v2, ../shared/contest/dres-oas-client.json) for contest finals: log in,
list evaluations, submit an answer and report DRES's verdict.

A wrong submission costs points, so nothing is sent twice by accident: every submission is
logged (data_dir/dres/submissions.jsonl) before it is sent, and the same answer to the same task
of the same evaluation is refused unless the caller says `again`. A submission counts as sent
unless DRES certainly did not judge it: it refused it (4xx: a bad session, a rejected answer),
redirected it, or could not be reached at all. One whose answer never came (a timeout), or came
as something other than a verdict, counts as sent: DRES may have judged it.

Nothing is sent to a task that is not running, nor an answer of a kind the running task does
not take (a KIS span to a QA task), unless the caller says `force`: DRES answers a submission
with no task running with an error that may hide a judgement. The server's clock is read at
login, and the logs sent to DRES carry its time.

A contest server is trusted with the password and the answers only at the address the user
gave (ui/contest/http.py: no redirects, a deadline for each request as a whole, no password in
the address).

The session id DRES returns is kept in data_dir/dres/session.json, readable by its owner only,
for the CLI; the app keeps each browser's session in that browser's own session state
(`SessionInMemory`), so two users of one app never submit under each other's names.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from evr.storage.rules import between, one_of, rule

from .http import DresError, call, check_url, without_credentials
from .submissions import SubmissionLog

VERDICTS = ("CORRECT", "WRONG", "INDETERMINATE", "UNDECIDABLE")
QA_FORMATS = ("aic", "text")


class DuplicateSubmission(DresError):
    pass


class TaskRefusal(DresError):
    """The answer was not sent: no task runs, or the running task takes another kind of answer."""

    def __init__(self, message: str):
        super().__init__(message, judged=False)


def _url_rule(value: str) -> str | None:
    if value == "":
        return None
    if not value.startswith(("http://", "https://")):
        return "must start with http:// or https://"
    try:
        parts = urlsplit(value)
    except ValueError:
        return "is not an address"
    if parts.username is not None or parts.password is not None:
        return "must hold no user name or password (dres.username; the password at the prompt or in $EVR_DRES_PASSWORD)"
    return None


@dataclass(frozen=True)
class DresSettings:
    """[dres]"""

    url: str = rule(_url_rule, default="")  # e.g. https://eventretrieval.one (the server's base address)
    username: str = ""  # the password is never a setting: a prompt, or $EVR_DRES_PASSWORD
    timeout_s: float = rule(between(0, 600, above=True), default=10.0)  # each request, as a whole
    # A KIS answer spans this many seconds either side of the hit, within its shot: the whole
    # shot can be a minute long and a judge may not accept a span that wide.
    kis_window_s: float = rule(between(0, 3600), default=2.0)
    # A QA answer as the contest takes it: the AI Challenge's "QA-<answer>-<video>-<ms>", or the
    # answer's text alone (VBS's QA tasks).
    qa_format: str = rule(one_of(QA_FORMATS), default="aic")
    # While logged in, each search (CLI and app) sends DRES its query and its results
    # (POST /api/v2/log/query and /log/result), in the background (ui/contest/query_log.py).
    log: bool = True


@dataclass(frozen=True)
class Session:
    url: str
    username: str
    session_id: str
    clock_offset_ms: int = 0  # the server's clock minus this machine's, measured at login

    def server_ms(self) -> int:
        """Now on the server's clock, in ms since the epoch."""
        return int(time.time() * 1000) + self.clock_offset_ms


ANSWER_KINDS = {"kis": "a video span", "qa": "a text answer", "trake": "a list of frames"}


def answer_kind(task_type: str, task_group: str = "") -> str | None:
    """The kind of answer ("kis", "qa", "trake") a task of this DRES type (and group) takes, or
    None when its name does not say (a type a contest named otherwise: nothing is refused). KIS
    and ad-hoc (AVS) tasks take video spans."""
    words = f"{task_type} {task_group}".lower()
    if re.search(r"\btrake\b", words):
        return "trake"
    if re.search(r"\b(qa|question)", words):
        return "qa"
    if re.search(r"\b(kis|avs|ad-?hoc|known-item)", words):
        return "kis"
    return None


TASK_STATUSES = ("NO_TASK", "CREATED", "PREPARING", "RUNNING", "ENDED", "IGNORED")  # ApiTaskStatus


@dataclass(frozen=True)
class TaskState:
    """What runs in an evaluation now (ApiEvaluationState, and the running task's template)."""

    evaluation: str
    status: str  # one of TASK_STATUSES
    time_left_s: int | None  # while a task runs
    name: str | None = None  # the running task's
    task_type: str | None = None  # as DRES names it ("Textual KIS", "qa", ...)
    kind: str | None = None  # the answer it takes: answer_kind(task_type, its group)

    @property
    def running(self) -> bool:
        return self.status == "RUNNING" and self.name is not None

    def to_json(self) -> dict:
        return {
            "evaluation": self.evaluation,
            "status": self.status,
            "running": self.running,
            "task": self.name,
            "task_type": self.task_type,
            "answer_kind": self.kind,
            "time_left_s": self.time_left_s,
        }

    def describe(self) -> str:
        """One line: the task, its type and its time left, or that none runs."""
        if not self.running:
            return f"no task running in evaluation {self.evaluation} (DRES: {self.status})"
        left = "" if self.time_left_s is None else f", {self.time_left_s // 60}:{self.time_left_s % 60:02d} left"
        return f"task {self.name} ({self.task_type}){left}"


@dataclass(frozen=True)
class Verdict:
    evaluation: str
    task: str | None  # the task DRES said was running, when it said
    body: dict  # what was sent (ApiClientSubmission)
    verdict: str  # CORRECT, WRONG, INDETERMINATE (not judged yet: a 202), UNDECIDABLE
    description: str

    def to_json(self) -> dict:
        return {
            "evaluation": self.evaluation,
            "task": self.task,
            "body": self.body,
            "verdict": self.verdict,
            "description": self.description,
        }


# What evr reads of each ApiClientEvaluationInfo (the client API requires these and more).
EVALUATION_FIELDS = {"id": str, "name": str, "type": str, "status": str, "taskTemplates": list}


def evaluation_list_problem(found) -> str | None:
    """What keeps a DRES answer from being a list of ApiClientEvaluationInfo as evr reads it
    (None: nothing)."""
    if not isinstance(found, list):
        return f"a JSON {type(found).__name__ if found is not None else 'answer that is not JSON'}, not a list"
    for i, e in enumerate(found, start=1):
        if not isinstance(e, dict):
            return f"item {i} is a JSON {type(e).__name__ if e is not None else 'null'}, not an evaluation object"
        for key, kind in EVALUATION_FIELDS.items():
            if not isinstance(e.get(key), kind):
                return f"evaluation {i} has no {key} ({'text' if kind is str else 'list'})"
        if not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in e["taskTemplates"]):
            return f"evaluation {i} has a task template without a name"
    return None


def submission(answer: dict) -> dict:
    return {"answerSets": [{"answers": [answer]}]}


# -- the client --------------------------------------------------------------------------------


class SessionFile:
    """The CLI's session: one file, readable by its owner only, shared by its commands."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def save(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the file was there before, with other permissions
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class SessionInMemory:
    """A session kept in a mapping the caller owns (the app: one browser's session state)."""

    def __init__(self, holder, key: str = "dres_session"):
        self.holder, self.key = holder, key

    def load(self) -> dict | None:
        return self.holder.get(self.key)

    def save(self, data: dict) -> None:
        self.holder[self.key] = dict(data)

    def clear(self) -> None:
        self.holder.pop(self.key, None)


class DresClient:
    def __init__(self, data_dir: Path, settings: DresSettings, sessions: SessionFile | SessionInMemory | None = None):
        self.folder = Path(data_dir) / "dres"
        self.settings = settings
        self.sessions = sessions or SessionFile(self.folder / "session.json")
        # shared: a duplicate is refused whoever sent it first
        self.submissions = SubmissionLog(self.folder / "submissions.jsonl")

    # session

    def session(self) -> Session | None:
        data = self.sessions.load()
        try:
            # An address saved by an older evr may hold a user and password: never shown again.
            return Session(
                without_credentials(data["url"]),
                data["username"],
                data["session_id"],
                int(data.get("clock_offset_ms", 0)),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def _need_session(self) -> Session:
        session = self.session()
        if session is None:
            raise DresError("not logged in to DRES: run `evr dres login --url URL --user NAME`")
        return session

    def login(self, url: str, username: str, password: str) -> Session:
        url = check_url(url)
        if not username or not password:
            raise DresError("DRES needs a user name and a password")
        user = self._call(
            "POST", url, "/api/v2/login", json={"username": username, "password": password}, action="log in"
        )
        session_id = user.get("sessionId") if isinstance(user, dict) else None
        if not session_id:
            raise DresError(f"DRES at {url} accepted the login but sent no session id")
        session = Session(url, username, session_id, self._clock_offset_ms(url))
        self.sessions.save(
            {"url": url, "username": username, "session_id": session_id, "clock_offset_ms": session.clock_offset_ms}
        )
        return session

    def _clock_offset_ms(self, url: str) -> int:
        """The server's clock minus this machine's (GET /api/v2/status/time), taken at the middle
        of the request's round trip; 0 when the server does not say."""
        asked = time.time() * 1000
        found = self._call("GET", url, "/api/v2/status/time", action="read the server's clock")
        answered = time.time() * 1000
        stamp = found.get("timeStamp") if isinstance(found, dict) else None
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            return 0
        return int(stamp - (asked + answered) / 2)

    def logout(self) -> None:
        session = self.session()
        if session is not None:
            try:
                self._call(
                    "GET", session.url, "/api/v2/logout", params={"session": session.session_id}, action="log out"
                )
            finally:
                self.sessions.clear()

    # evaluations

    def evaluations(self) -> list[dict]:
        """The evaluations this user sees (ApiClientEvaluationInfo), each checked for the fields
        evr reads; DresError naming the first that is not one."""
        session = self._need_session()
        found = self._call(
            "GET",
            session.url,
            "/api/v2/client/evaluation/list",
            params={"session": session.session_id},
            action="list evaluations",
        )
        wrong = evaluation_list_problem(found)
        if wrong:
            raise DresError(f"DRES at {session.url} answered the list of evaluations with something else: {wrong}")
        return found

    def choose_evaluation(self, evaluation: str | None) -> str:
        """The evaluation given, or the only active one."""
        if evaluation:
            return evaluation
        active = [e for e in self.evaluations() if e.get("status") == "ACTIVE"]
        if len(active) == 1:
            return active[0]["id"]
        names = ", ".join(f"{e.get('id')} ({e.get('name')})" for e in active) or "none"
        raise DresError(f"{len(active)} evaluations are active ({names}): name one with --evaluation ID")

    def task_state(self, evaluation: str) -> TaskState:
        """What runs in the evaluation now: its state (GET /api/v2/evaluation/{id}/state, whose
        session goes as the API's SESSIONID cookie: the path takes no session parameter) and,
        while a task runs, its template (the client's currentTask: name, type, group)."""
        session = self._need_session()
        try:
            state = self._call(
                "GET",
                session.url,
                f"/api/v2/evaluation/{evaluation}/state",
                cookies={"SESSIONID": session.session_id},
                action="read the evaluation's state",
            )
        except DresError as exc:
            if exc.status not in (401, 403, 404, 405):
                raise
            # A DRES that keeps this path from participants, or knows no cookie session: the
            # current task alone says what runs (without the time left).
            state = {"taskStatus": "RUNNING", "timeLeft": -1}
        status = state.get("taskStatus") if isinstance(state, dict) else None
        left = state.get("timeLeft") if isinstance(state, dict) else None
        if status not in TASK_STATUSES or not isinstance(left, int) or isinstance(left, bool):
            raise DresError(
                f"DRES at {session.url} answered the question for the evaluation's state with something "
                "that is not one (no taskStatus or timeLeft): nothing was submitted"
            )
        if status != "RUNNING":
            return TaskState(evaluation, status, None)
        try:
            task = self._call(
                "GET",
                session.url,
                f"/api/v2/client/evaluation/currentTask/{evaluation}",
                params={"session": session.session_id},
                action="ask for the current task",
            )
        except DresError as exc:
            if exc.status == 404:  # none runs (or it ended between the two questions)
                return TaskState(evaluation, "NO_TASK" if left < 0 else "ENDED", None)
            raise
        if not isinstance(task, dict) or not isinstance(task.get("name"), str):
            raise DresError(
                f"DRES at {session.url} answered the question for the current task with something "
                "that names no task: nothing was submitted"
            )
        task_type, group = str(task.get("taskType") or ""), str(task.get("taskGroup") or "")
        time_left = max(0, left) if left >= 0 else None
        return TaskState(evaluation, status, time_left, task["name"], task_type, answer_kind(task_type, group))

    # submissions

    def submit(self, evaluation: str, answer: dict, kind: str, again: bool = False, force: bool = False) -> Verdict:
        """Send one answer of this kind ("kis", "qa", "trake") to the evaluation's running task.
        TaskRefusal when no task runs or the task takes another kind of answer, unless `force`;
        DuplicateSubmission when this answer was sent to this task before, unless `again`."""
        session = self._need_session()
        state = self.task_state(evaluation)
        if not force:
            refuse_unfit(state, kind)
        task = state.name
        body = submission(answer)
        key = {"url": session.url, "evaluation": evaluation, "task": task, "body": body}
        attempt = uuid.uuid4().hex
        with self.submissions.locked() as log:
            earlier = log.sent_before(key)
            if earlier and not again:
                when = time.strftime("%H:%M:%S", time.localtime(earlier[-1]["time"]))
                raise DuplicateSubmission(
                    f"this answer was sent to task {task or '(unknown)'} of evaluation {evaluation} at {when} "
                    f"({earlier[-1].get('verdict') or 'no verdict'}): not sent again"
                )
            # Logged before it leaves: a crash while it is under way counts it as sent.
            log.append(
                {**key, "attempt": attempt, "time": time.time(), "server_ms": session.server_ms(), "verdict": None}
            )
        try:
            result = self._call(
                "POST",
                session.url,
                f"/api/v2/submit/{evaluation}",
                params={"session": session.session_id},
                json=body,
                action="submit",
            )
            verdict = result.get("submission") if isinstance(result, dict) else None
            if verdict not in VERDICTS:  # the API's answer always holds one (SuccessfulSubmissionsStatus)
                raise DresError(
                    f"DRES at {session.url} answered the submission with something that is not a "
                    "verdict: it may have judged it, so it counts as sent"
                )
        except DresError as exc:
            self.submissions.record(
                {
                    **key,
                    "attempt": attempt,
                    "time": time.time(),
                    "verdict": None,
                    "error": str(exc),
                    "judged": exc.judged,
                }
            )
            raise
        description = result.get("description") if isinstance(result.get("description"), str) else ""
        self.submissions.record(
            {**key, "attempt": attempt, "time": time.time(), "verdict": verdict, "description": description}
        )
        return Verdict(evaluation, task, body, verdict, description)

    def _call(self, method: str, url: str, path: str, *, action: str, **kwargs):
        return call(method, url, path, action=action, timeout=self.settings.timeout_s, **kwargs)

    def send_log(self, evaluation: str, kind: str, body: dict) -> None:
        """A search's "query" log (QueryEventLog) or "result" log (QueryResultLog) to the evaluation."""
        session = self._need_session()
        self._call(
            "POST",
            session.url,
            f"/api/v2/log/{kind}/{evaluation}",
            params={"session": session.session_id},
            json=body,
            action=f"send the {kind} log",
        )


def refuse_unfit(state: TaskState, kind: str) -> None:
    """TaskRefusal when no task runs, or when the running task takes another kind of answer."""
    if not state.running:
        raise TaskRefusal(f"{state.describe()}: nothing was sent")
    if state.kind is not None and kind != state.kind:
        raise TaskRefusal(
            f"task {state.name} is a {state.task_type} task, which takes {ANSWER_KINDS[state.kind]}, "
            f"not {ANSWER_KINDS.get(kind, kind)} ({kind.upper()}): nothing was sent"
        )
