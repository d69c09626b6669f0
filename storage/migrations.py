"""The schema: created by the writer, checked by everyone, upgraded by the writer.

Every upgrade runs in one transaction, so a kill leaves the old schema whole. A reader of an
index an older evr wrote is told to run `evr index` once. Also here: the writer's one-time
mending of what an older evr wrote, each step noted in the meta table once done.
"""

from __future__ import annotations

import json
import logging

import numpy as np
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import OperationalError

from . import features
from .database import Database
from .errors import StoreError
from .fulltext import fill_terms
from .meta import IndexFacts
from .schema import CORE_DDL, SCHEMA_VERSION, Base, Embedding, Keyframe, Meta, Video
from .sqlutil import vector_blob
from .types import Plan

log = logging.getLogger(__name__)


def prepare(db: Database, facts: IndexFacts) -> None:
    """Make the database ready for this evr: create (writer), check, upgrade (writer)."""
    try:
        version = facts.refresh().get("schema_version")
    except OperationalError as exc:  # no tables yet: being created, or left empty
        log.debug("no meta table: %s", exc)
        version = None
    if not db.writer:
        _check_readable(db, version)
        return
    with db.writing(db.db_path):
        Base.metadata.create_all(db.engine)  # the tables this evr adds; existing ones stay as they are
    if version is not None and int(version) < SCHEMA_VERSION:
        _upgrade(db, int(version))
    with db.transaction() as s:
        for ddl in (*CORE_DDL, *(d for f in features.FEATURES.values() for d in f.ddl)):
            s.execute(text(ddl))
    if version is None:
        facts.set({"schema_version": str(SCHEMA_VERSION)})
    elif int(version) > SCHEMA_VERSION:
        raise StoreError(
            f"{db.data_dir} was written by schema version {version}, this evr uses "
            f"{SCHEMA_VERSION}; index into another data folder (storage.data_dir)"
        )
    _mend_once(db, facts)


def _check_readable(db: Database, version: str | None) -> None:
    if version is None:
        if db.writer_active():
            raise StoreError(f"the index in {db.data_dir} is being created by `evr index`: try again in a moment")
        raise StoreError(
            f"the index in {db.data_dir} is incomplete (its creation was cut short, or "
            "evr.sqlite is empty): run `evr index <folder>` to create it"
        )
    if int(version) < SCHEMA_VERSION:
        raise StoreError(
            f"the index in {db.data_dir} was written by an older evr: run `evr index` "
            "(on any folder) once to upgrade it"
        )
    if int(version) > SCHEMA_VERSION:
        raise StoreError(
            f"{db.data_dir} was written by schema version {version}, this evr uses "
            f"{SCHEMA_VERSION}; index into another data folder (storage.data_dir)"
        )


def _upgrade(db: Database, version: int) -> None:
    log.warning(
        "upgrading the index in %s to this evr's format (once; about a minute per 100,000 keyframes)", db.data_dir
    )
    if version == 2:
        _from_2(db)
    if version <= 3:
        _from_3(db)
    # 4 -> 5 added the speech tables, which create_all made.
    if version <= 5:
        _from_5(db)
    if version <= 6:  # 6 -> 7 added the other models' vectors (model_vectors), which create_all made
        with db.transaction() as s:
            s.merge(Meta(key="schema_version", value="7"))


def _from_2(db: Database) -> None:
    """Schema 2 -> 3: vectors to float16, pose labels into their table. The old index file has
    no header; it is deleted, and this run builds the index from SQLite."""
    from .features.persons import KeyframePose, Person

    with db.transaction() as s:
        poses = {
            (label, kid)
            for kid, labels in s.execute(select(Person.keyframe_id, Person.labels))
            for label in json.loads(labels)
        }
        if poses:
            s.execute(insert(KeyframePose), [{"label": label, "keyframe_id": kid} for label, kid in poses])
        after = 0
        while rows := s.execute(
            select(Embedding.keyframe_id, Embedding.vector)
            .where(Embedding.keyframe_id > after)
            .order_by(Embedding.keyframe_id)
            .limit(10_000)
        ).all():
            s.execute(
                update(Embedding),
                [{"keyframe_id": kid, "vector": vector_blob(np.frombuffer(blob, "<f4"))} for kid, blob in rows],
            )
            after = rows[-1][0]
        s.merge(Meta(key="schema_version", value="3"))
    (db.data_dir / "vectors.faiss").unlink(missing_ok=True)


def _from_3(db: Database) -> None:
    """Schema 3 -> 4: the columns imported videos need; every video so far was decoded."""
    with db.transaction() as s:
        for ddl in (
            "ALTER TABLE videos ADD COLUMN origin VARCHAR NOT NULL DEFAULT 'decoded'",
            "ALTER TABLE videos ADD COLUMN media_path VARCHAR",
            "ALTER TABLE videos ADD COLUMN media_info TEXT",
            "ALTER TABLE keyframes ADD COLUMN source_image VARCHAR",
            "UPDATE videos SET media_path = path",
        ):
            s.execute(text(ddl))
        s.merge(Meta(key="schema_version", value="5"))


def _from_5(db: Database) -> None:
    """Schema 5 -> 6: each feature's results in its own tables (on-screen text, people), the
    plan of a video as JSON instead of a signature string, the one trigger per job."""
    with db.transaction() as s:
        s.execute(
            text(
                "INSERT INTO keyframe_text(keyframe_id, text) "
                "SELECT id, ocr_text FROM keyframes WHERE ocr_text IS NOT NULL"
            )
        )
        s.execute(
            text(
                "INSERT INTO keyframe_persons(keyframe_id, count, area, mask) "
                "SELECT id, person_count, coalesce(person_area, 0), person_mask FROM keyframes "
                "WHERE person_count IS NOT NULL"
            )
        )
        s.execute(text("DROP TRIGGER IF EXISTS keyframe_deleted"))  # now keyframe_removed + keyframe_text_deleted
        s.execute(text("DROP INDEX IF EXISTS ix_keyframes_person_count"))
        for column in ("ocr_text", "person_count", "person_area", "person_mask"):
            s.execute(text(f"ALTER TABLE keyframes DROP COLUMN {column}"))
        s.execute(text("ALTER TABLE videos RENAME COLUMN analyzers TO plan"))
        plans = [
            {"id": vid, "plan": plan_from_signature(signature, origin).to_json() if signature else None}
            for vid, signature, origin in s.execute(text("SELECT id, plan, origin FROM videos"))
        ]
        if plans:
            s.execute(update(Video), plans)
        s.merge(Meta(key="schema_version", value="6"))


def plan_from_signature(signature: str, origin: str) -> Plan:
    """An older evr's signature ("keyframes:0.5/2.0/0.05|shots:3.0/15.0/12.0/0.4/256|clip|
    ocr:tesseract+craft:vi+en|persons:mediapipe", "aic:ViT-B-32/openai|ocr:en") as a Plan equal
    to the one this evr makes for the same settings, so nothing is indexed again for it."""
    parts = {p.split(":", 1)[0]: p.split(":", 1)[1] if ":" in p else "" for p in signature.split("|") if p}
    numbers = {
        "keyframes": ("sample_s", "max_gap_s", "min_change"),
        "shots": ("adaptive_threshold", "min_content_val", "fade_threshold", "min_shot_s", "detect_width"),
    }
    rules = {
        name: dict(zip(keys, map(float, parts.pop(name).split("/")))) if name in parts else None
        for name, keys in numbers.items()
    }
    vectors = f"aic:{parts.pop('aic')}" if "aic" in parts else "clip"
    parts.pop("clip", None)
    return Plan(
        source="decoded" if origin == "decoded" else origin,
        keyframes=rules["keyframes"],
        shots=rules["shots"],
        vectors=vectors,
        analyzers=parts,
    )


def _mend_once(db: Database, facts: IndexFacts) -> None:
    """The writer's one-time mending of an index an older evr wrote: the terms fulltext.py finds
    near words in, and the videos whose keyframe times were a decoder's "no time" sentinel
    (-3.85e17 s), marked to be indexed again by the next `evr index` of their folder."""
    if facts.get("fts_terms") and facts.get("times_checked"):
        return
    with db.transaction() as s:
        if not facts.get("fts_terms"):
            fill_terms(s, [f.fts_table for f in features.words_features()])
        if not facts.get("times_checked"):
            wrong = select(Keyframe.video_id).where(Keyframe.timestamp < 0).distinct()
            marked = s.execute(update(Video).where(Video.id.in_(wrong)).values(status="indexing")).rowcount
            if marked:
                log.warning(
                    "%d videos hold keyframe times an older evr read wrong: the next `evr index` of "
                    "their folders indexes them again",
                    marked,
                )
    facts.set({"fts_terms": "kept", "times_checked": "1"})
