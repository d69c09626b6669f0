"""Facts about the index as a whole (the meta table), and the model it is bound to.

The meta table is small (a dozen rows): it is read whole, in one statement, and the facts are
kept until the commit counter moves (`refresh`), so a search asks SQLite for them once.
"""
from __future__ import annotations

import json

from sqlalchemy import select

from .database import Database
from .errors import ModelMismatchError
from .schema import Meta
from .types import PRIMARY_MODEL, ModelInfo


class IndexFacts:
    def __init__(self, db: Database):
        self.db = db
        self._facts: dict[str, str] | None = None
        self._unused = False  # the facts were just read and nobody has acted on them yet

    def refresh(self) -> dict[str, str]:
        """Read every fact anew (one statement)."""
        with self.db.session() as s:
            self._facts = dict(s.execute(select(Meta.key, Meta.value)).all())
        self._unused = True
        return self._facts

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
                f"or use another data folder (storage.data_dir) for the new model.")
        return False

    # -- the other models ([[models]]), by name ----------------------------------------------------

    def models(self) -> dict[str, ModelInfo]:
        """Every model the index holds vectors of, by name: [clip]'s first, as "clip"."""
        primary = self.model()
        others = {name: ModelInfo(**info) for name, info in json.loads(self.get("models") or "{}").items()}
        return ({PRIMARY_MODEL: primary} if primary else {}) | dict(sorted(others.items()))

    def bind_other(self, name: str, model: ModelInfo, vectors: int) -> None:
        """Record another model under `name`, or refuse a different one while the index holds
        `vectors` of the one bound to that name."""
        others = json.loads(self.get("models") or "{}")
        stored = ModelInfo(**others[name]) if name in others else None
        if stored == model:
            return
        if stored is not None and vectors:
            raise ModelMismatchError(
                f"the model named {name!r} in this index is {stored.label}, not {model.label}: its {vectors:,} "
                f"vectors cannot be compared with the new model's. Give the new model another name in "
                f"[[models]], or delete the old vectors first: evr models --drop {name}")
        others[name] = {"name": model.name, "pretrained": model.pretrained, "dim": model.dim}
        self.set({"models": json.dumps(others, sort_keys=True)})

    def check_model(self, model: ModelInfo) -> None:
        """Refuse to search with a query encoder other than the one the index was built with."""
        stored = self.model()
        if stored is not None and stored != model:
            raise ModelMismatchError(
                f"this index was built with CLIP {stored.label}, but the query model is "
                f"{model.label}: set clip.model/clip.pretrained to {stored.name}/{stored.pretrained}.")
