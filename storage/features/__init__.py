"""The feature registry: every feature (OCR, persons, speech, ...) registered once, here for the
built-in ones, by `register(its storage, analyzer="module:Class")`.

A feature is a unit: its storage module under storage/features/ (tables, put/clear/read, filter
in SQL and as field conditions, hit fields: the contract in base.py) and its analyzer under
indexer/analyzers/ (extractor and settings). The registry names the analyzer by its import path,
so storage needs no indexer code, and the indexer, the config reader, the CLI's flags, the app's
widgets, hits and their JSON all take what they show and ask for from here.
"""

from __future__ import annotations

from ..schema import Base
from .base import Condition, FeatureStorage, Field, FilterParam, WordsFeature
from .captions import CaptionStorage
from .colors import ColorGrid, ColorStorage
from .meta import MetaStorage, VideoMeta
from .objects import DetectedObject, ObjectsInFrame, ObjectStorage
from .ocr import OcrStorage, TextBox
from .persons import POSE_LABELS, POSTURES, PersonPose, PersonsInFrame, PersonStorage
from .speech import SPEECH_REACH_S, SpeechSegment, SpeechStorage

FEATURES: dict[str, FeatureStorage] = {}
ANALYZER_PATHS: dict[str, str] = {}  # feature name -> "module:Class" of its analyzer


def register(storage: FeatureStorage, analyzer: str) -> None:
    """Add a feature: its storage (whose tables must be defined on schema.Base) and the import
    path of its analyzer ("package.module:Class"). Its filter parameters must not clash with
    another feature's."""
    taken = {p.name for f in FEATURES.values() if f.name != storage.name for p in f.params}
    clash = [p.name for p in storage.params if p.name in taken or p.name in ("videos", "time_from", "time_to")]
    if clash:
        raise ValueError(f"feature {storage.name!r}: filter parameter {clash[0]!r} is taken")
    FEATURES[storage.name] = storage
    ANALYZER_PATHS[storage.name] = analyzer


def param(name: str) -> tuple[FeatureStorage, FilterParam] | None:
    """The feature and filter parameter of this name, or None."""
    return next(((f, p) for f in FEATURES.values() for p in f.params if p.name == name), None)


def words_features() -> list[WordsFeature]:
    return [f for f in FEATURES.values() if isinstance(f, WordsFeature)]


register(OcrStorage(), "evr.indexer.analyzers.ocr:OcrAnalyzer")
register(PersonStorage(), "evr.indexer.analyzers.persons:PersonAnalyzer")
register(SpeechStorage(), "evr.indexer.analyzers.speech:SpeechAnalyzer")
register(ObjectStorage(), "evr.indexer.analyzers.objects:ObjectAnalyzer")
register(ColorStorage(), "evr.indexer.analyzers.colors:ColorAnalyzer")
register(MetaStorage(), "evr.indexer.analyzers.meta:MetaAnalyzer")
register(CaptionStorage(), "evr.indexer.analyzers.captions:CaptionAnalyzer")

__all__ = [
    "ANALYZER_PATHS",
    "Base",
    "ColorGrid",
    "DetectedObject",
    "FEATURES",
    "ObjectsInFrame",
    "FeatureStorage",
    "FilterParam",
    "Field",
    "Condition",
    "POSE_LABELS",
    "POSTURES",
    "PersonPose",
    "PersonsInFrame",
    "SPEECH_REACH_S",
    "SpeechSegment",
    "TextBox",
    "VideoMeta",
    "WordsFeature",
    "param",
    "register",
    "words_features",
]
