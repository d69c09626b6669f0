"""The `llm` planner: any OpenAI-compatible chat endpoint (a local ollama, vLLM or llama.cpp
server, or a hosted one) asked for a plan as JSON that follows PLAN_SCHEMA (structured output:
`response_format` of type `json_schema`). The answer is parsed and validated (plan.from_json)
before use; a server that is not configured, does not answer within [plan] timeout_s, answers
with an error, or with anything but a valid plan is a PlanError, and the next planner runs."""

from __future__ import annotations

import json
import os
import re
import threading

from .plan import PLAN_SCHEMA, PlanError, QueryPlan, from_json
from .settings import PlanSettings

NAME = "llm"
MAX_ANSWER_BYTES = 1024 * 1024

INSTRUCTIONS = (
    "You turn a description of a moment in a news video (Vietnamese or English) into a search plan "
    "for a video retrieval engine. Split it into the events it tells of, in the order they happen "
    "(words such as 'then', 'sau đó', 'tiếp theo' start a new event). For each event give: 'visual', "
    "what is seen, rewritten in short plain English for an image-text model, without any quoted words; "
    "'ocr', the words written on screen, exactly as quoted; 'speech', the words said aloud, exactly as "
    "quoted; 'objects', COCO objects that must be visible, as 'label', 'label:count' or "
    "'label@place' (places: left, right, top, bottom, centre, top-left, ...); 'colors', colours that "
    "must show ('red', 'blue@top'). Give 'within_s', the most seconds between events, only when the "
    "description says it. Leave out what the description does not say. Answer with the JSON only."
)


def request_body(description: str, settings: PlanSettings) -> dict:
    return {
        "model": settings.model,
        "messages": [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": description}],
        "temperature": 0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "evr_query_plan", "strict": True, "schema": PLAN_SCHEMA},
        },
    }


def plan(description: str, settings: PlanSettings) -> QueryPlan:
    if not settings.url:
        raise PlanError("no [plan] url is set")
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(settings.key_env, "") if settings.key_env else ""
    if key:
        headers["Authorization"] = f"Bearer {key}"
    status, body = _post(
        settings.url.rstrip("/") + "/chat/completions", request_body(description, settings), headers, settings.timeout_s
    )
    if status != 200:
        raise PlanError(f"{settings.url} answered {status}")
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise PlanError("its answer is not a chat completion") from None
    return from_json(_json_in(content), NAME)


def _json_in(content) -> object:
    """The JSON object a model wrote (some wrap it in a ```json fence despite the schema)."""
    if not isinstance(content, str):
        raise PlanError("its message holds no text")
    fenced = re.search(r"```(?:json)?\s*(.*?)```", content, re.S)
    try:
        return json.loads(fenced.group(1) if fenced else content)
    except ValueError:
        raise PlanError("its answer is not JSON") from None


def _post(url: str, body: dict, headers: dict, timeout_s: float) -> tuple[int, bytes]:
    """(status, body) of one POST, answered whole within `timeout_s` (a server that trickles its
    answer is cut off), redirects not followed, at most MAX_ANSWER_BYTES read."""
    import requests

    outcome: dict = {}

    def exchange() -> None:
        try:
            with requests.post(
                url, json=body, headers=headers, timeout=timeout_s, allow_redirects=False, stream=True
            ) as r:
                outcome["answer"] = (r.status_code, r.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True))
        except Exception as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=exchange, daemon=True, name="evr-plan")
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise PlanError(f"{url} did not answer within {timeout_s:g} s")
    if "error" in outcome:
        raise PlanError(f"cannot reach {url}: {type(outcome['error']).__name__}")
    status, data = outcome["answer"]
    if len(data) > MAX_ANSWER_BYTES:
        raise PlanError(f"{url} sent more than {MAX_ANSWER_BYTES // 1024} KB")
    return status, data
