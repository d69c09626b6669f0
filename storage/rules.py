"""The rules settings carry: every layer's settings dataclasses mark each field's rule with
`rule(...)`, and may add `check()` for rules across fields; `problem(settings)` says the first
setting that breaks one. The edges (ui/config.py) only read values and report the problem with
where the value came from."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

Rule = Callable[[Any], str | None]  # a value -> what is wrong with it, or None


def rule(check: Rule, **field_kwargs) -> Any:
    """A dataclass field whose values must pass `check` (`default=` or `default_factory=` as
    for dataclasses.field)."""
    return dataclasses.field(metadata={"rule": check}, **field_kwargs)


def problem(settings) -> tuple[str, str] | None:
    """(the setting's name, what is wrong) for the first setting of `settings` that breaks its
    rule, else for what `settings.check()` says across its settings ("" for the name when it
    names none), else None."""
    for f in dataclasses.fields(settings):
        check = f.metadata.get("rule")
        wrong = check(getattr(settings, f.name)) if check else None
        if wrong:
            return f.name, wrong
    across = settings.check() if hasattr(settings, "check") else None
    return ("", across) if across else None


def one_of(allowed: Iterable[str] | Callable[[], Iterable[str]]) -> Rule:
    """One of these values (a function giving them is called when a value is checked)."""

    def check(value) -> str | None:
        known = tuple(allowed() if callable(allowed) else allowed)
        return None if value in known else f"must be one of {', '.join(known)}"

    return check


def some_of(allowed: Iterable[str] | Callable[[], Iterable[str]]) -> Rule:
    """A non-empty list of these values."""

    def check(values: list[str]) -> str | None:
        known = tuple(allowed() if callable(allowed) else allowed)
        if not values:
            return f"must name at least one of {', '.join(known)}"
        bad = [v for v in values if v not in known]
        return f"has unknown {', '.join(map(repr, bad))} (known: {', '.join(known)})" if bad else None

    return check


def between(low: float, high: float = math.inf, *, above: bool = False) -> Rule:
    """A number from `low` (or above it) to `high`."""

    def check(v: float) -> str | None:
        if (v > low if above else v >= low) and v <= high:
            return None
        lowest = f"more than {low}" if above else f"at least {low}"
        return f"must be {lowest}" + (f" and at most {high}" if high != math.inf else "")

    return check


def text(what: str) -> Rule:
    """A string that is not blank."""
    return lambda v: None if v.strip() else f"must name {what}"


@functools.cache
def language_codes() -> tuple[str, ...]:
    """The ISO 639-1 codes settings and queries may name: lingua's languages (its models ship in
    its wheel), which detection and transcription choose among."""
    from lingua import Language

    return tuple(sorted(lang.iso_code_639_1.name.lower() for lang in Language.all()))
