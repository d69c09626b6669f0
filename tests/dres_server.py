"""A local stand-in for a DRES server (client API v2) for the tests.

Every request is checked against ../shared/contest/dres-oas-client.json: its path and method
must be the API's, its query parameters ones the path declares, its body valid against its
schema; and so is every answer this server gives, so the client is held to the real API's
shapes. It answers as DRES does: a session id on login (the session then goes as the `session`
parameter, or as the SESSIONID cookie where a path declares no such parameter), 401 for an
unknown session, 400 for a body the schema refuses, 404 when no task runs, 412 when a
submission is rejected, a verdict (CORRECT / WRONG) judged against the current task's expected
answer, the evaluation's state with the running task's time left, and the server's clock. Query and result logs are
kept (`logs`), or refused, or held unanswered, as a test asks."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_FILE = Path(__file__).resolve().parents[2] / "shared" / "contest" / "dres-oas-client.json"


def _validator(spec: dict, name: str) -> jsonschema.Draft202012Validator:
    # The spec's schemas, addressed as urn:dres#/components/schemas/NAME (OpenAPI 3.0's
    # "nullable" is no JSON Schema keyword: ignored, so a null where a string belongs fails).
    registry = Registry().with_resource("urn:dres", Resource.from_contents(spec, default_specification=DRAFT202012))
    return jsonschema.Draft202012Validator({"$ref": f"urn:dres#/components/schemas/{name}"}, registry=registry)


@dataclass
class Task:
    name: str
    task_type: str  # "kis", "qa", "trake"
    expected: dict  # the ApiClientAnswer judged CORRECT (KIS: a range that must overlap)
    status: str = "RUNNING"  # ApiTaskStatus: a test ends it with "ENDED"
    duration_s: int = 300
    started: float = field(default_factory=time.monotonic)

    def time_left_s(self) -> int:
        return max(0, int(self.duration_s - (time.monotonic() - self.started)))


@dataclass
class FakeDres:
    user: str = "team1"
    password: str = "secret"
    evaluation: str = "eval-final"
    task: Task | None = None
    reject: str | None = None  # the next submission gets 412 with this description
    delay_s: float = 0.0  # answers to submissions come this late
    refuse_logs: bool = False  # query and result logs get 500
    hold_logs: threading.Event | None = None  # when set up, a log's answer waits until it is set
    logs: list[tuple[str, dict]] = field(default_factory=list)  # ("query" | "result", body), valid ones only
    sessions: set[str] = field(default_factory=set)
    submissions: list[dict] = field(default_factory=list)  # the bodies received, valid ones only
    problems: list[str] = field(default_factory=list)  # schema violations, by the client or by us
    clock_skew_ms: int = 0  # the server's clock runs this far ahead of the machine's
    refuse_state: int | None = None  # the evaluation state answers this error (kept from participants)
    calls: list[str] = field(default_factory=list)  # "METHOD /path", every request

    def __post_init__(self):
        spec = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
        # Each path as a pattern ({evaluationId} -> one segment), with its methods' query parameters.
        self.paths = [
            (
                re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"),
                {
                    method.upper(): {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
                    for method, op in ops.items()
                },
            )
            for path, ops in spec["paths"].items()
        ]
        self.schemas = {
            name: _validator(spec, name)
            for name in (
                "LoginRequest",
                "ApiUser",
                "ApiClientEvaluationInfo",
                "ApiClientTaskTemplateInfo",
                "ApiClientSubmission",
                "SuccessfulSubmissionsStatus",
                "ErrorStatus",
                "QueryEventLog",
                "QueryResultLog",
                "SuccessStatus",
                "ApiEvaluationState",
                "CurrentTime",
            )
        }

    def check_call(self, method: str, path: str, query: dict) -> None:
        """A request whose path, method or query parameters the API does not have is a problem."""
        self.calls.append(f"{method} {path}")
        methods = next((m for pattern, m in self.paths if pattern.match(path)), None)
        if methods is None or method not in methods:
            self.problems.append(f"client {method} {path}: not in the API")
        elif undeclared := sorted(set(query) - methods[method]):
            self.problems.append(f"client {method} {path}: undeclared parameters {undeclared}")

    def check(self, schema: str, value, who: str) -> bool:
        errors = [e.message for e in self.schemas[schema].iter_errors(value)]
        if errors:
            self.problems.append(f"{who} {schema}: {errors[0]}")
        return not errors

    def evaluations(self) -> list[dict]:
        tasks = [
            {"name": "kis-01", "taskGroup": "KIS", "taskType": "kis", "duration": 300},
            {"name": "qa-01", "taskGroup": "QA", "taskType": "qa", "duration": 300},
        ]
        return [
            {
                "id": self.evaluation,
                "name": "AIC 2025 final",
                "type": "SYNCHRONOUS",
                "status": "ACTIVE",
                "templateId": "t1",
                "templateDescription": "finals",
                "teams": ["team1"],
                "taskTemplates": tasks,
            },
            {
                "id": "eval-old",
                "name": "warm-up",
                "type": "SYNCHRONOUS",
                "status": "TERMINATED",
                "templateId": "t0",
                "teams": ["team1"],
                "taskTemplates": [],
            },
        ]

    def judge(self, answer: dict) -> str:
        want = self.task.expected
        if "text" in want:
            return "CORRECT" if answer.get("text") == want["text"] else "WRONG"
        overlaps = (
            answer.get("mediaItemName") == want["mediaItemName"]
            and answer.get("start", -1) <= want["end"]
            and answer.get("end", -1) >= want["start"]
        )
        return "CORRECT" if overlaps else "WRONG"


def serve(dres: FakeDres):
    """Start the server in a thread; returns (base URL, stop function)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def reply(self, status: int, body, schema: str | None = None) -> None:
            if schema is not None:
                items = body if isinstance(body, list) else [body]
                for item in items:
                    dres.check(schema, item, "server")
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, status: int, description: str) -> None:
            self.reply(status, {"status": False, "description": description}, "ErrorStatus")

        def body(self):
            length = int(self.headers.get("Content-Length") or 0)
            try:
                return json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                return None

        def session_ok(self, query: dict) -> bool:
            cookie = re.search(r"(?:^|;\s*)SESSIONID=([^;]+)", self.headers.get("Cookie") or "")
            if query.get("session", [None])[0] in dres.sessions or (cookie and cookie.group(1) in dres.sessions):
                return True
            self.error(401, "Unauthorized: no valid session")
            return False

        def do_POST(self):
            url = urlparse(self.path)
            query = parse_qs(url.query)
            dres.check_call("POST", url.path, query)
            body = self.body()
            if url.path == "/api/v2/login":
                if not dres.check("LoginRequest", body, "client"):
                    return self.error(400, "Invalid parameters")
                if (body["username"], body["password"]) != (dres.user, dres.password):
                    return self.error(401, "Invalid credentials")
                session = uuid.uuid4().hex
                dres.sessions.add(session)
                return self.reply(
                    200, {"id": "u1", "username": dres.user, "role": "PARTICIPANT", "sessionId": session}, "ApiUser"
                )
            if url.path.startswith("/api/v2/log/"):
                kind = url.path.split("/")[4]
                if not self.session_ok(query):
                    return
                if url.path.rsplit("/", 1)[1] != dres.evaluation:
                    return self.error(404, "Evaluation not found")
                if dres.hold_logs is not None:
                    dres.hold_logs.wait(30)
                if dres.refuse_logs:
                    return self.error(500, "log store unavailable")
                if not dres.check({"query": "QueryEventLog", "result": "QueryResultLog"}[kind], body, "client"):
                    return self.error(400, "Invalid log")
                dres.logs.append((kind, body))
                return self.reply(200, {"status": True, "description": "Logged"}, "SuccessStatus")
            if url.path.startswith("/api/v2/submit/"):
                if not self.session_ok(query):
                    return
                if url.path.rsplit("/", 1)[1] != dres.evaluation:
                    return self.error(404, "Evaluation not found")
                if not dres.check("ApiClientSubmission", body, "client"):
                    return self.error(400, "Invalid submission")
                dres.submissions.append(body)
                time.sleep(dres.delay_s)
                if dres.reject is not None:
                    reason, dres.reject = dres.reject, None
                    return self.error(412, reason)
                if dres.task is None or dres.task.status != "RUNNING":
                    return self.error(412, "No active task")
                verdict = dres.judge(body["answerSets"][0]["answers"][0])
                return self.reply(
                    200,
                    {
                        "status": True,
                        "submission": verdict,
                        "description": f"Submission to {dres.task.name}: {verdict}",
                    },
                    "SuccessfulSubmissionsStatus",
                )
            self.error(404, "Not found")

        def do_GET(self):
            url = urlparse(self.path)
            query = parse_qs(url.query)
            dres.check_call("GET", url.path, query)
            if url.path == "/api/v2/status/time":
                self.reply(200, {"timeStamp": int(time.time() * 1000) + dres.clock_skew_ms}, "CurrentTime")
            elif url.path.startswith("/api/v2/evaluation/") and url.path.endswith("/state"):
                if dres.refuse_state is not None:
                    return self.error(dres.refuse_state, "Forbidden")
                if not self.session_ok(query):
                    return
                if url.path.split("/")[4] != dres.evaluation:
                    return self.error(404, "Evaluation not found")
                task = dres.task
                state = {
                    "evaluationId": dres.evaluation,
                    "evaluationStatus": "ACTIVE",
                    "taskStatus": task.status if task else "NO_TASK",
                    "timeLeft": task.time_left_s() if task and task.status == "RUNNING" else -1,
                    "timeElapsed": int(time.monotonic() - task.started) if task else 0,
                }
                if task:
                    state.update(taskId=f"run-{task.name}", taskTemplateId=task.name)
                self.reply(200, state, "ApiEvaluationState")
            elif url.path == "/api/v2/client/evaluation/list":
                if self.session_ok(query):
                    self.reply(200, dres.evaluations(), "ApiClientEvaluationInfo")
            elif url.path.startswith("/api/v2/client/evaluation/currentTask/"):
                if not self.session_ok(query):
                    return
                if dres.task is None:
                    return self.error(404, "No active task")
                self.reply(
                    200,
                    {
                        "name": dres.task.name,
                        "taskGroup": dres.task.task_type.upper(),
                        "taskType": dres.task.task_type,
                        "duration": 300,
                    },
                    "ApiClientTaskTemplateInfo",
                )
            elif url.path == "/api/v2/logout":
                dres.sessions.discard(query.get("session", [None])[0])
                self.reply(200, {"status": True, "description": "Logged out"})
            else:
                self.error(404, "Not found")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}", stop
