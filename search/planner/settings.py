"""[plan]: how `evr plan`, `evr search --plan` and the app's Plan button turn a description
into a query (search/planner/)."""

from __future__ import annotations

from dataclasses import dataclass

from evr.storage.rules import between, rule

PLANNERS = ("llm", "local", "rules")


def _planners(value) -> str | None:
    if not isinstance(value, list) or not value:
        return 'must be a list of planners, e.g. ["llm", "rules"]'
    unknown = [p for p in value if p not in PLANNERS]
    if unknown:
        return f"names an unknown planner {unknown[0]!r} (known: {', '.join(PLANNERS)})"
    if len(set(value)) != len(value):
        return "names a planner twice"
    return None


@dataclass(frozen=True)
class PlanSettings:
    # Tried in this order; the next runs when one gives no valid plan in time. `rules` needs no
    # model and always answers: keep it last.
    planners: list[str] = rule(_planners, default_factory=lambda: ["llm", "rules"])
    # `llm`: an OpenAI-compatible server's base address ("" = off), e.g. http://localhost:11434/v1
    # (ollama), http://localhost:8000/v1 (vLLM); the chat model's name there; the environment
    # variable holding its API key, if it needs one (not an EVR_ name: those are settings).
    url: str = ""
    model: str = "qwen2.5:7b-instruct"
    key_env: str = "OPENAI_API_KEY"
    # `local`: a small instruction model run in this process (transformers): a Hugging Face name
    # (downloaded on first use) or a folder; "" = off. A GPU when there is one.
    local_model: str = ""
    timeout_s: float = rule(between(0, 600, above=True), default=20.0)  # each planner's answer, whole
