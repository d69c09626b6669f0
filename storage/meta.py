"""Facts about the index as a whole (the meta table), and the model it is bound to.

The meta table is small (a dozen rows): it is read whole, in one statement, and the facts are
kept until the commit counter moves (`refresh`), so a search asks SQLite for them once. Each read
checks the facts whose values have a shape (numbers, the models' JSON): a damaged one is one
DamagedMetaError naming the key, whatever command met it, never a bare JSON or type error.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from . import strict_json
from .database import Database
from .errors import DamagedMetaError, ModelMismatchError
from .schema import Meta
from .types import PRIMARY_MODEL, ModelInfo

# Facts that hold a whole number of 0 or more (the commit counter, the schema's version, ...).
WHOLE_NUMBERS = ("schema_version", "clip_dim", "generation", "removals_pruned")
MODEL_KEYS = {"name": str, "pretrained": str, "dim": int}


def parse_models(text: str | None, where: str = "") -> dict[str, ModelInfo]:
    """The `models` fact (the other models by name, as JSON) read and checked; DamagedMetaError
    naming what is wrong. `where`: the data folder, for the message."""
    what = 'a JSON object of model names to {"name", "pretrained", "dim"}'
    try:
        found = strict_json.loads(text or "{}")
    except strict_json.JsonError:
        raise damaged("models", text, what, where) from None
    if not isinstance(found, dict):
        raise damaged("models", text, what, where)
    models = {}
    for name, info in found.items():
        if (
            not isinstance(info, dict)
            or set(info) != set(MODEL_KEYS)
            or not all(type(info[k]) is kind for k, kind in MODEL_KEYS.items())
            or info["dim"] <= 0
        ):
            raise damaged("models", text, f"{what} (the entry {name!r} is not)", where)
        models[name] = ModelInfo(**info)
    return models


def models_json(models: dict[str, ModelInfo]) -> str:
    """The `models` fact's value."""
    return json.dumps(
        {n: {"name": m.name, "pretrained": m.pretrained, "dim": m.dim} for n, m in models.items()}, sort_keys=True
    )


def damaged(key: str, value: Any, what: str, where: str = "") -> DamagedMetaError:
    shown = repr(value) if value is None or len(str(value)) <= 60 else repr(str(value)[:60]) + "..."
    return DamagedMetaError(
        f"the index's meta table{f' ({where})' if where else ''} is damaged: {key} holds {shown}, not {what}. "
        "Restore evr.sqlite from a backup, or move the data folder away and index the videos again"
    )


class IndexFacts:
    def __init__(self, db: Database):
        self.db = db
        self._facts: dict[str, str] | None = None
        self._unused = False  # the facts were just read and nobody has acted on them yet

    def refresh(self) -> dict[str, str]:
        """Read every fact anew (one statement), checked (DamagedMetaError)."""
        with self.db.session() as s:
            facts = dict(s.execute(select(Meta.key, Meta.value)).all())
        self.check(facts)
        self._facts = facts
        self._unused = True
        return self._facts

    def check(self, facts: dict[str, str]) -> None:
        """DamagedMetaError for the first fact a reader could not use."""
        where = str(self.db.data_dir)
        for key in WHOLE_NUMBERS:
            value = facts.get(key)
            if value is not None and not (value.isascii() and value.isdigit()):
                raise damaged(key, value, "a whole number", where)
        if facts.get("clip_model") is not None and int(facts.get("clip_dim") or 0) <= 0:
            raise damaged(
                "clip_dim", facts.get("clip_dim"), "the CLIP model's dimension (a whole number above 0)", where
            )
        parse_models(facts.get("models"), where)
        for key, value in facts.items():
            if (key.startswith("milvus_state") or key == "run") and not isinstance(self._json(value, key), dict):
                raise damaged(key, value, "a JSON object", where)

    def _json(self, value: str, key: str) -> Any:
        try:
            return strict_json.loads(value)
        except strict_json.JsonError:
            raise damaged(key, value, "JSON", str(self.db.data_dir)) from None

    def json_object(self, key: str) -> dict:
        """A fact that holds a JSON object ({} when absent)."""
        return self._json(self.get(key) or "{}", key)

    def current(self) -> dict[str, str]:
        """The facts as they are now: the read just made when nothing has used it yet (the
        store was opened an instant ago), else a new read."""
        if self._unused and self._facts is not None:
            self._unused = False
            return self._facts
        facts = self.refresh()
        self._unused = False
        return facts

    def get(self, key: str) -> str | None:
        """A fact as last read (read now if never read)."""
        facts = self._facts if self._facts is not None else self.refresh()
        return facts.get(key)

    def set(self, values: dict[str, str]) -> None:
        with self.db.transaction() as s:
            for key, value in values.items():
                s.merge(Meta(key=key, value=value))
        if self._facts is not None:
            self._facts.update(values)

    # -- the run under way ------------------------------------------------------------------------

    def record_run(self, command: str, total: int, done: int, started: float) -> None:
        """How far the writer's run is: `total` videos to do, `done` of them (its own commits
        move the counter; readers show it: the app's "indexing: 12 of 46 videos")."""
        self.set({"run": json.dumps({"command": command, "total": total, "done": done, "started": started})})

    def run(self) -> dict | None:
        """The last run's progress as recorded ({"command", "total", "done", "started"}), or None.
        Whether it is still under way is the writer's lock's to say (`Store.writer_active`)."""
        run = self.json_object("run") if self.get("run") else None
        return run or None

    # -- the model ------------------------------------------------------------------------------

    def model(self) -> ModelInfo | None:
        name = self.get("clip_model")
        if name is None:
            return None
        return ModelInfo(name, self.get("clip_pretrained") or "", int(self.get("clip_dim") or 0))

    def bind_model(self, model: ModelInfo, keyframes: int) -> bool:
        """Record the embedding model of a new (or still empty: `keyframes` is 0) index, or refuse
        a different one. Returns whether the binding changed (the caller drops vectors of the old
        model's dimension)."""
        stored = self.model()
        if stored is None or (stored != model and keyframes == 0):
            self.set({"clip_model": model.name, "clip_pretrained": model.pretrained, "clip_dim": str(model.dim)})
            return True
        if stored != model:
            raise ModelMismatchError(
                f"this index ({self.db.data_dir}) was built with CLIP {stored.label}, not "
                f"{model.label}: vectors of different models cannot be compared. Set "
                f"clip.model/clip.pretrained back to {stored.name}/{stored.pretrained}, "
                f"or use another data folder (storage.data_dir) for the new model."
            )
        return False

    # -- the other models ([[models]]), by name ----------------------------------------------------

    def models(self) -> dict[str, ModelInfo]:
        """Every model the index holds vectors of, by name: [clip]'s first, as "clip"."""
        primary = self.model()
        others = parse_models(self.get("models"), str(self.db.data_dir))
        return ({PRIMARY_MODEL: primary} if primary else {}) | dict(sorted(others.items()))

    def bind_other(self, name: str, model: ModelInfo, vectors: int) -> None:
        """Record another model under `name`, or refuse a different one while the index holds
        `vectors` of the one bound to that name."""
        others = parse_models(self.get("models"), str(self.db.data_dir))
        stored = others.get(name)
        if stored == model:
            return
        if stored is not None and vectors:
            raise ModelMismatchError(
                f"the model named {name!r} in this index is {stored.label}, not {model.label}: its {vectors:,} "
                f"vectors cannot be compared with the new model's. Give the new model another name in "
                f"[[models]], or delete the old vectors first: evr models --drop {name}"
            )
        self.set({"models": models_json({**others, name: model})})

    def check_model(self, model: ModelInfo) -> None:
        """Refuse to search with a query encoder other than the one the index was built with."""
        stored = self.model()
        if stored is not None and stored != model:
            if stored.label == model.label:  # the same names: only the vectors' size tells them apart
                raise ModelMismatchError(
                    f"this index holds {stored.dim}-dimensional vectors of CLIP {stored.label}, but that model "
                    f"makes {model.dim}-dimensional ones here: the index was built by another version of "
                    f"it; index again into another data folder (storage.data_dir)."
                )
            raise ModelMismatchError(
                f"this index was built with CLIP {stored.label}, but the query model is "
                f"{model.label}: set clip.model/clip.pretrained to {stored.name}/{stored.pretrained}."
            )
