"""The `local` planner: a small instruction model run in this process through transformers
([plan] local_model: a Hugging Face name, downloaded on first use, or a folder), on the GPU when
there is one. It is given the same instructions and schema as the `llm` planner and greedy-decodes
an answer, whose first JSON object is validated like any planner's (plan.from_json). Loaded once
per process, on the first plan."""

from __future__ import annotations

import functools
import json
import logging
import threading

from .llm import INSTRUCTIONS, _json_in
from .plan import PLAN_SCHEMA, PlanError, QueryPlan, from_json
from .settings import PlanSettings

NAME = "local"
MAX_NEW_TOKENS = 384
log = logging.getLogger(__name__)
_lock = threading.Lock()  # one generation at a time per process (the app's sessions share the model)


@functools.cache
def _model(name: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # stderr holds evr's own lines
    device = "cuda" if torch.cuda.is_available() else "cpu"
    log.info("loading the planner model %s on %s, once for this process...", name, device)
    tokenizer = AutoTokenizer.from_pretrained(name)
    model = AutoModelForCausalLM.from_pretrained(name).to(device).eval()
    return tokenizer, model, device


def prompt(tokenizer, description: str) -> str:
    """The instructions, the schema and the description, in the model's chat template when it has one."""
    system = f"{INSTRUCTIONS}\nThe JSON schema:\n{json.dumps(PLAN_SCHEMA, ensure_ascii=False)}"
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": description}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{system}\n\nDescription: {description}\nJSON:"


def plan(description: str, settings: PlanSettings) -> QueryPlan:
    if not settings.local_model:
        raise PlanError("no [plan] local_model is set")
    try:
        tokenizer, model, device = _model(settings.local_model)
    except (OSError, ValueError) as exc:  # not downloadable here, not a model folder
        raise PlanError(f"cannot load {settings.local_model}: {str(exc).splitlines()[0][:200]}") from None
    import torch

    with _lock, torch.inference_mode():
        inputs = tokenizer(prompt(tokenizer, description), return_tensors="pt").to(device)
        out = model.generate(
            **inputs,
            max_new_tokens=MAX_NEW_TOKENS,
            do_sample=False,
            max_time=settings.timeout_s,  # generation stops here: an answer cut short fails validation
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        )
    said = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    start = said.find("{")
    if start < 0:
        raise PlanError("its answer holds no JSON object")
    try:
        found, _ = json.JSONDecoder().raw_decode(said[start:])
    except ValueError:
        found = _json_in(said)  # raises PlanError
    return from_json(found, NAME)
