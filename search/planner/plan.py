"""A query plan: what a long description asks for, event by event, in evr's own terms (a visual
description for the image-text models, on-screen words, spoken words, objects with counts and
places, colours, and the gap between events). Every planner's answer is checked against
PLAN_SCHEMA (the JSON schema a language model is asked to follow) and against the filters' own
rules before it becomes a Query: nothing a model returns is trusted beyond that."""

from __future__ import annotations

import math
from dataclasses import dataclass

from evr.storage import KeyframeFilter
from evr.storage.features import param

from ..errors import QueryError
from ..query import MAX_EVENTS, Query

MAX_TEXT = 500  # characters of any one text of a plan

_TEXT = {"type": "string", "maxLength": MAX_TEXT}
PLAN_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["events"],
    "properties": {
        "events": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_EVENTS,
            "description": "the moments the description tells of, in the order they happen",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["visual"],
                "properties": {
                    "visual": {**_TEXT, "description": "what is seen, in plain English, without quoted words"},
                    "ocr": {**_TEXT, "description": "words written on screen (captions, signs), as written"},
                    "speech": {**_TEXT, "description": "words said aloud, as said"},
                    "objects": {
                        "type": "array",
                        "maxItems": 8,
                        "description": "COCO objects that must be in the frame: 'person', 'car:2', 'dog@left'",
                        "items": {"type": "string", "maxLength": 60},
                    },
                    "colors": {
                        "type": "array",
                        "maxItems": 8,
                        "description": "colours that must show: 'red', 'blue@top'",
                        "items": {"type": "string", "maxLength": 40},
                    },
                },
            },
        },
        "within_s": {
            "type": ["number", "null"],
            "minimum": 0.5,
            "maximum": 3600,
            "description": "at most this many seconds between one event and the next",
        },
    },
}


class PlanError(Exception):
    """A planner gave no usable plan (unavailable, timed out, invalid, empty): the next one is tried."""


@dataclass(frozen=True)
class PlannedEvent:
    visual: str
    ocr: str = ""
    speech: str = ""
    objects: tuple[str, ...] = ()  # as `--object` takes them
    colors: tuple[str, ...] = ()  # as `--color` takes them

    def to_json(self) -> dict:
        return {
            "visual": self.visual,
            "ocr": self.ocr,
            "speech": self.speech,
            "objects": list(self.objects),
            "colors": list(self.colors),
        }

    def filters(self) -> KeyframeFilter:
        return KeyframeFilter.of(
            ocr=self.ocr or None,
            speech=self.speech or None,
            object=self.objects or None,
            color=self.colors or None,
        )


@dataclass(frozen=True)
class QueryPlan:
    events: tuple[PlannedEvent, ...]
    within_s: float | None = None
    planner: str = ""  # which planner made it
    notes: tuple[str, ...] = ()  # the planners that failed before it, and why

    def to_json(self) -> dict:
        return {
            "planner": self.planner,
            "events": [e.to_json() for e in self.events],
            "within_s": self.within_s,
            "notes": list(self.notes),
            "unsearched": self.unsearched(),
        }

    def query(self, filters: KeyframeFilter | None = None, within: float = 10.0, **options) -> Query:
        """The evr query that runs the plan: the first event's text and filters (with `filters`
        added), each later event's visual text in order, at most the plan's gap apart (else
        `within`). evr's temporal search filters only the
        first event, so a later event's words, objects and colours are not searched: `unsearched`
        names them."""
        given = filters or KeyframeFilter()
        merged = (
            self.events[0]
            .filters()
            .replace(videos=given.videos, time_from=given.time_from, time_to=given.time_to, **dict(given.features))
        )  # what the user set beside the plan wins
        first = self.events[0]
        then = tuple(e.visual or e.ocr or e.speech for e in self.events[1:])
        gap = self.within_s or within
        return Query(text=first.visual or None, filters=merged, then=then, within=gap, **options)

    def command(self) -> list[str]:
        """The `evr search` arguments that run this plan."""
        first, args = self.events[0], []
        if first.visual:
            args.append(first.visual)
        for flag, value in (("--ocr", first.ocr), ("--speech", first.speech)):
            if value:
                args += [flag, value]
        for flag, values in (("--object", first.objects), ("--color", first.colors)):
            for value in values:
                args += [flag, value]
        for e in self.events[1:]:
            args += ["--then", e.visual or e.ocr or e.speech]
        if len(self.events) > 1 and self.within_s:
            args += ["--within", f"{self.within_s:g}"]
        return args

    def unsearched_said(self) -> list[str]:
        """`unsearched` as sentences for the user."""
        return [
            f"{part} are not searched (evr filters the first event of a temporal query only)"
            for part in self.unsearched()
        ]

    def unsearched(self) -> list[str]:
        """What a later event holds that its search text is not (see `query`)."""
        out = []
        for n, e in enumerate(self.events[1:], 2):
            searched = e.visual or e.ocr or e.speech
            parts = {"on-screen words": e.ocr, "spoken words": e.speech, "objects": e.objects, "colours": e.colors}
            out += [f"event {n}'s {what}" for what, value in parts.items() if value and value != searched]
        return out


def from_json(found, planner: str) -> QueryPlan:
    """The plan a planner answered (parsed JSON), checked against PLAN_SCHEMA and the filters'
    rules; PlanError naming the first fault."""
    import jsonschema  # here: only planning needs it

    try:
        jsonschema.validate(found, PLAN_SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "the plan"
        raise PlanError(f"{where}: {exc.message[:200]}") from None
    events = []
    for n, e in enumerate(found["events"], 1):
        event = PlannedEvent(
            visual=" ".join(e["visual"].split()),
            ocr=" ".join(e.get("ocr", "").split()),
            speech=" ".join(e.get("speech", "").split()),
            objects=tuple(o.strip().lower() for o in e.get("objects", []) if o.strip()),
            colors=tuple(c.strip().lower() for c in e.get("colors", []) if c.strip()),
        )
        if not any((event.visual, event.ocr, event.speech, event.objects, event.colors)):
            continue  # an event that says nothing: left out
        for name, values in (("object", event.objects), ("color", event.colors)):
            check = param(name)[1].check
            for value in values:
                wrong = check(value) if check else None
                if wrong:
                    raise PlanError(f"event {n}'s {name} {value!r} {wrong}")
        events.append(event)
    if not events:
        raise PlanError("the plan holds no event that says anything")
    if any(not (e.visual or e.ocr or e.speech) for e in events[1:]):
        raise PlanError("a later event has no text to search by")
    within = found.get("within_s")
    if within is not None and not math.isfinite(within):
        raise PlanError("within_s is not a number")
    return QueryPlan(tuple(events), float(within) if within is not None else None, planner)


def check_query(plan: QueryPlan) -> QueryPlan:
    """The plan, once its query is one evr can run (QueryError otherwise, as PlanError)."""
    try:
        plan.query().validate()
    except QueryError as exc:
        raise PlanError(f"its query cannot run: {exc}") from None
    return plan
