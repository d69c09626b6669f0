"""A DRES client (API v2, ../shared/contest/dres-oas-client.json) for contest finals: log in,
list evaluations, submit an answer and report DRES's verdict.

A wrong submission costs points, so nothing is sent twice by accident: every submission is
logged (data_dir/dres/submissions.jsonl) before it is sent, and the same answer to the same task
of the same evaluation is refused unless the caller says `again`. A submission counts as sent
unless DRES certainly did not judge it: it refused it (4xx: a bad session, a rejected answer),
redirected it, or could not be reached at all. One whose answer never came (a timeout), or came
as something other than a verdict, counts as sent: DRES may have judged it.

A contest server is trusted with the password and the answers only at the address the user
gave: redirects are never followed (they would carry either elsewhere), a password written
into the address is refused (it would be stored and shown), each request must be answered
within `timeout_s` as a whole (a server that trickles its answer is cut off), and an answer
larger than MAX_ANSWER_BYTES is cut off too.

The session id DRES returns is kept in data_dir/dres/session.json, readable by its owner only,
for the CLI; the app keeps each browser's session in that browser's own session state
(`SessionInMemory`), so two users of one app never submit under each other's names.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from evr.storage.rules import between, one_of, rule

from .submissions import SubmissionLog

VERDICTS = ("CORRECT", "WRONG", "INDETERMINATE", "UNDECIDABLE")
QA_FORMATS = ("aic", "text")
MAX_ANSWER_BYTES = 4 * 1024 * 1024  # DRES's answers are small JSON: an evaluation list is kilobytes


class DresError(Exception):
    """One line for the user: what DRES (or the network) said, and what to do. `judged`: False
    when DRES certainly did not judge what was sent (it refused it, redirected it, or was never
    reached); True when it may have."""

    def __init__(self, message: str, status: int | None = None, judged: bool = True):
        super().__init__(message)
        self.status = status  # DRES's HTTP status, when it answered
        self.judged = judged


class DuplicateSubmission(DresError):
    pass


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
            return Session(without_credentials(data["url"]), data["username"], data["session_id"])
        except (ValueError, KeyError, TypeError):
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
        self.sessions.save({"url": url, "username": username, "session_id": session_id})
        return Session(url, username, session_id)

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

    def current_task(self, evaluation: str) -> str | None:
        """The name of the task running in the evaluation, or None when DRES says none is (404).
        An answer that names no task is an error: an answer logged against no task would pass
        the duplicate guard once the task is known."""
        session = self._need_session()
        try:
            task = self._call(
                "GET",
                session.url,
                f"/api/v2/client/evaluation/currentTask/{evaluation}",
                params={"session": session.session_id},
                action="ask for the current task",
            )
        except DresError as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(task, dict) or not isinstance(task.get("name"), str):
            raise DresError(
                f"DRES at {session.url} answered the question for the current task with something "
                "that names no task: nothing was submitted"
            )
        return task["name"]

    # submissions

    def submit(self, evaluation: str, answer: dict, again: bool = False) -> Verdict:
        """Send one answer to the evaluation's current task; DuplicateSubmission when this
        answer was sent to this task before (unless `again`)."""
        session = self._need_session()
        task = self.current_task(evaluation)
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
            log.append({**key, "attempt": attempt, "time": time.time(), "verdict": None})
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

    # HTTP

    def _call(self, method: str, url: str, path: str, *, action: str, **kwargs):
        """One request to DRES at `url` and its answer's JSON (None when it is not JSON), within
        timeout_s as a whole; DresError for anything but a 2xx answer."""
        timeout = self.settings.timeout_s
        outcome: dict = {}

        def exchange() -> None:
            try:
                outcome["answer"] = _exchange(method, url + path, timeout, kwargs)
            except BaseException as exc:  # handed to the caller below
                outcome["error"] = exc

        # The request runs in a thread the caller stops waiting for at the deadline: requests'
        # own timeout bounds each read, so a server sending a byte a second would hold it for
        # as long as it likes. The thread dies with the process, or at its next read timeout.
        worker = threading.Thread(target=exchange, daemon=True, name="evr-dres")
        worker.start()
        worker.join(timeout)
        sent_maybe = " (the submission may have arrived: it counts as sent)" if action == "submit" else ""
        if worker.is_alive():
            raise DresError(f"DRES at {url} did not answer within {timeout:g} s, could not {action}{sent_maybe}")
        if "error" in outcome:
            raise _network_error(outcome["error"], url, action, timeout, sent_maybe)
        status, data, location = outcome["answer"]
        if 200 <= status < 300:
            return data
        if 300 <= status < 400:
            where = without_session(location) if location else "another address"
            raise DresError(
                f"DRES at {url} answered {status}, a redirect to {where}, "
                f"to {action}: not followed (it would carry what was sent elsewhere); if the server "
                "moved, log in again with its new address",
                status,
                judged=False,
            )
        said = data.get("description") if isinstance(data, dict) else None
        said = f": {said}" if isinstance(said, str) and said else ""
        if status == 401:
            message = (
                f"DRES refused the user name or password (401){said}"
                if path.endswith("/login")
                else f"DRES does not know this session (401){said}; log in again with `evr dres login`"
            )
        elif status == 412:
            message = f"DRES rejected the submission (412){said}"
        else:
            message = f"DRES answered {status} to {action}{said}"
        # DRES judges nothing it answers 4xx to (a bad session, a bad or refused answer).
        raise DresError(message, status, judged=status >= 500)


def check_url(url: str) -> str:
    """The DRES address as given, checked: http(s), a host, and no user or password in it
    (a password there would be kept in session.json and shown in messages)."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise DresError(f"the DRES address must start with http:// or https://, not {without_credentials(url)!r}")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise DresError(f"the DRES address {without_credentials(url)} is malformed") from None
    if parts.username is not None or parts.password is not None:
        raise DresError(
            f"the DRES address {without_credentials(url)} holds a user name or password: give the "
            "user with --user (or dres.username) and the password at the prompt or in "
            "$EVR_DRES_PASSWORD"
        )
    if not parts.hostname:
        raise DresError(f"the DRES address {url!r} names no host")
    return url


def without_session(url: str) -> str:
    """An address with the value of any `session` parameter (a DRES session id: whoever holds it
    submits as this user) shown as ***, and any user name and password too."""
    return re.sub(r"(?i)([?&;]session=)[^&;#]*", r"\1***", without_credentials(url))


def without_credentials(url: str) -> str:
    """The address with any user name and password in it shown as ***."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed address: show none of it
        return "(a malformed address)"
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _exchange(method: str, url: str, timeout: float, kwargs: dict) -> tuple[int, object, str | None]:
    """(status, the answer's JSON or None, a redirect's Location): one request, no redirect
    followed, at most MAX_ANSWER_BYTES of answer read."""
    import requests  # here: every command reads this module's settings, few talk to DRES

    with requests.Session() as http:
        response = http.request(method, url, timeout=timeout, allow_redirects=False, stream=True, **kwargs)
        with response:
            body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
    if len(body) > MAX_ANSWER_BYTES:
        raise DresError(f"DRES at {url} sent an answer of more than {MAX_ANSWER_BYTES // 1024 // 1024} MB")
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    return response.status_code, data, response.headers.get("Location")


def _network_error(exc: BaseException, url: str, action: str, timeout: float, sent_maybe: str) -> DresError:
    import requests

    if isinstance(exc, DresError):
        return exc
    if isinstance(exc, requests.ConnectTimeout) or (
        isinstance(exc, requests.ConnectionError) and _never_connected(exc)
    ):
        return DresError(f"cannot reach DRES at {url} to {action}: {type(exc).__name__}", judged=False)
    if isinstance(exc, requests.Timeout):
        return DresError(f"DRES at {url} did not answer within {timeout:g} s, could not {action}{sent_maybe}")
    if isinstance(exc, requests.RequestException):
        return DresError(
            f"the connection to DRES at {url} failed while trying to {action}: {type(exc).__name__}{sent_maybe}"
        )
    return DresError(f"cannot {action} at DRES {url}: {type(exc).__name__}: {exc}")


def _never_connected(exc: BaseException) -> bool:
    """Whether a connection error happened before anything was sent (refused, no such host):
    requests wraps urllib3's MaxRetryError, whose reason says."""
    from urllib3.exceptions import NewConnectionError  # NameResolutionError is one too

    reason = exc.args[0] if exc.args else None
    return isinstance(getattr(reason, "reason", reason), NewConnectionError)
