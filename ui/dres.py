"""A DRES client (API v2, ../shared/contest/dres-oas-client.json) for contest finals: log in,
list evaluations, submit an answer and report DRES's verdict.

A wrong submission costs points, so nothing is sent twice by accident: every submission is
logged (data_dir/dres/submissions.jsonl) before it is sent, and the same answer to the same task
of the same evaluation is refused unless the caller says `again`. A submission whose answer never
came (a timeout) counts as sent: DRES may have received it.

The session id DRES returns is kept in data_dir/dres/session.json, readable by its owner only.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from search import Hit, QueryError

TASKS = ("kis", "qa", "trake")
VERDICTS = ("CORRECT", "WRONG", "INDETERMINATE", "UNDECIDABLE")


class DresError(Exception):
    """One line for the user: what DRES (or the network) said, and what to do."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status  # DRES's HTTP status, when it answered


class DuplicateSubmission(DresError):
    pass


@dataclass(frozen=True)
class DresSettings:
    url: str = ""  # e.g. https://eventretrieval.one (the server's base address)
    username: str = ""
    timeout_s: float = 10.0  # for each request


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
    verdict: str | None  # CORRECT, WRONG, INDETERMINATE, UNDECIDABLE; None while undecided (202)
    description: str

    def to_json(self) -> dict:
        return {"evaluation": self.evaluation, "task": self.task, "body": self.body, "verdict": self.verdict,
                "description": self.description}


# -- answers (AIC_DATA.md, "Submissions") ------------------------------------------------------


def kis_answer(hit: Hit) -> dict:
    """The video and the hit's time in ms; its shot's span when the shot is known."""
    if hit.shot_start is not None and hit.shot_end is not None:
        start, end = _ms(hit.shot_start), _ms(hit.shot_end)
    else:
        start = end = _ms(hit.timestamp)
    return {"mediaItemName": hit.video_id, "start": start, "end": end}


def qa_answer(hit: Hit, answer: str) -> dict:
    answer = " ".join(answer.split())
    if not answer:
        raise QueryError("a QA submission needs --answer TEXT")
    return {"text": f"QA-{answer}-{hit.video_id}-{_ms(hit.timestamp)}"}


def trake_answer(chain: Sequence[Hit]) -> dict:
    """`TR-<video>-<frame1>,<frame2>,...`: the events of one video, in time order."""
    if len({h.video_id for h in chain}) != 1:
        raise QueryError("a TRAKE answer's keyframes must all be in one video")
    if any(b.timestamp < a.timestamp for a, b in zip(chain, chain[1:])):
        raise QueryError("a TRAKE answer's keyframes must be given in time order")
    return {"text": f"TR-{chain[0].video_id}-{','.join(str(h.frame_idx) for h in chain)}"}


def answer_for(task: str, chain: Sequence[Hit], answer: str | None = None) -> dict:
    """The ApiClientAnswer of a task: KIS and QA take one hit, TRAKE the hits of a chain.
    An answer that cannot be right (no QA text, a chain across videos) is a QueryError."""
    if task not in TASKS:
        raise QueryError(f"the task must be one of {', '.join(TASKS)}, not {task!r}")
    if task != "trake" and len(chain) != 1:
        raise QueryError(f"a {task.upper()} submission is one keyframe; TRAKE takes several")
    if task == "kis":
        return kis_answer(chain[0])
    if task == "qa":
        return qa_answer(chain[0], answer or "")
    return trake_answer(chain)


def submission(answer: dict) -> dict:
    return {"answerSets": [{"answers": [answer]}]}


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


# -- the client --------------------------------------------------------------------------------


class DresClient:
    def __init__(self, data_dir: Path, settings: DresSettings):
        self.folder = Path(data_dir) / "dres"
        self.settings = settings
        self.session_file = self.folder / "session.json"
        self.log_file = self.folder / "submissions.jsonl"

    # session

    def session(self) -> Session | None:
        try:
            data = json.loads(self.session_file.read_text(encoding="utf-8"))
            return Session(data["url"], data["username"], data["session_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _need_session(self) -> Session:
        session = self.session()
        if session is None:
            raise DresError("not logged in to DRES: run `evr dres login --url URL --user NAME`")
        return session

    def login(self, url: str, username: str, password: str) -> Session:
        url = url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise DresError(f"the DRES address must start with http:// or https://, not {url!r}")
        if not username or not password:
            raise DresError("DRES needs a user name and a password")
        user = self._call("POST", url, "/api/v2/login", json={"username": username, "password": password},
                          action="log in")
        session_id = user.get("sessionId") if isinstance(user, dict) else None
        if not session_id:
            raise DresError(f"DRES at {url} accepted the login but sent no session id")
        session = Session(url, username, session_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.session_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the file was there before, with other permissions
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"url": url, "username": username, "session_id": session_id}, f)
        return session

    def logout(self) -> None:
        session = self.session()
        if session is not None:
            try:
                self._call("GET", session.url, "/api/v2/logout", params={"session": session.session_id},
                           action="log out")
            finally:
                self.session_file.unlink(missing_ok=True)

    # evaluations

    def evaluations(self) -> list[dict]:
        session = self._need_session()
        found = self._call("GET", session.url, "/api/v2/client/evaluation/list",
                           params={"session": session.session_id}, action="list evaluations")
        return found if isinstance(found, list) else []

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
        """The name of the task running in the evaluation, or None when DRES says none is."""
        session = self._need_session()
        try:
            task = self._call("GET", session.url, f"/api/v2/client/evaluation/currentTask/{evaluation}",
                              params={"session": session.session_id}, action="ask for the current task")
        except DresError as exc:
            if exc.status == 404:
                return None
            raise
        return task.get("name") if isinstance(task, dict) else None

    # submissions

    def submit(self, evaluation: str, answer: dict, again: bool = False) -> Verdict:
        """Send one answer to the evaluation's current task; DuplicateSubmission when this
        answer was sent to this task before (unless `again`)."""
        session = self._need_session()
        task = self.current_task(evaluation)
        body = submission(answer)
        key = {"url": session.url, "evaluation": evaluation, "task": task, "body": body}
        with self._log_locked() as log:
            earlier = [e for e in _entries(log) if {k: e.get(k) for k in key} == key]
            if earlier and not again:
                when = time.strftime("%H:%M:%S", time.localtime(earlier[-1]["time"]))
                raise DuplicateSubmission(
                    f"this answer was sent to task {task or '(unknown)'} of evaluation {evaluation} at {when} "
                    f"({earlier[-1].get('verdict') or 'no verdict'}): not sent again (--again sends it anyway)")
            _append(log, {**key, "time": time.time(), "verdict": None})
        try:
            result = self._call("POST", session.url, f"/api/v2/submit/{evaluation}",
                                params={"session": session.session_id}, json=body, action="submit")
        except DresError as exc:
            self._record({**key, "time": time.time(), "verdict": None, "error": str(exc)})
            raise
        verdict = result.get("submission") if isinstance(result, dict) else None
        description = (result.get("description") if isinstance(result, dict) else None) or ""
        self._record({**key, "time": time.time(), "verdict": verdict, "description": description})
        return Verdict(evaluation, task, body, verdict if verdict in VERDICTS else None, description)

    def _record(self, entry: dict) -> None:
        with self._log_locked() as log:
            _append(log, entry)

    def _log_locked(self):
        """The submission log, opened for reading and appending under an exclusive lock (the
        app's sessions and the command line may submit at once)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        f = open(self.log_file, "a+", encoding="utf-8")
        fcntl.flock(f, fcntl.LOCK_EX)
        return f  # closing it releases the lock

    # HTTP

    def _call(self, method: str, url: str, path: str, *, action: str, **kwargs):
        import requests  # here: every command reads this module's settings, few talk to DRES

        timeout = self.settings.timeout_s
        try:
            response = requests.request(method, url + path, timeout=timeout, **kwargs)
        except requests.Timeout:
            raise DresError(f"DRES at {url} did not answer within {timeout:g} s, could not {action}"
                            + (" (the submission may have arrived: it counts as sent)" if action == "submit" else ""))
        except requests.RequestException as exc:
            raise DresError(f"cannot reach DRES at {url} to {action}: {type(exc).__name__}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.ok:
            return data
        said = data.get("description") if isinstance(data, dict) else None
        said = f": {said}" if said else ""
        if response.status_code == 401:
            message = (f"DRES refused the user name or password (401){said}" if path.endswith("/login") else
                       f"DRES does not know this session (401){said}; log in again with `evr dres login`")
        elif response.status_code == 412:
            message = f"DRES rejected the submission (412){said}"
        else:
            message = f"DRES answered {response.status_code} to {action}{said}"
        raise DresError(message, response.status_code)


def _entries(log) -> list[dict]:
    log.seek(0)
    out = []
    for line in log:
        try:
            out.append(json.loads(line))
        except ValueError:  # a line cut short by a crash: the others still count
            continue
    return out


def _append(log, entry: dict) -> None:
    log.seek(0, os.SEEK_END)
    log.write(json.dumps(entry, ensure_ascii=False) + "\n")
    log.flush()
    os.fsync(log.fileno())
