"""An example feature that lives only here, to prove a feature is a unit: its analyzer
(analyzer.py: extractor and settings), its storage (storage.py: table, put/clear, hit fields,
filter in SQL and as field conditions) and one registration call (`register()` below). Nothing else in
evr names it, yet it is configured ([brightness] in config.toml, EVR_BRIGHTNESS_*), indexed,
stored, filtered (`--min-brightness`) and shown in hits (`"brightness"` in `evr search --json`)."""

from __future__ import annotations


def register() -> None:
    from evr.storage.features import register as register_feature
    from evr.storage.schema import Base

    from .storage import BrightnessStorage, KeyframeBrightness

    if KeyframeBrightness.__tablename__ not in Base.metadata.tables:  # registered again after `unregister`
        KeyframeBrightness.__table__.to_metadata(Base.metadata)
    register_feature(BrightnessStorage(), "tests.example_feature.analyzer:BrightnessAnalyzer")


def unregister() -> None:
    """Take it out again (tests that follow see only the built-in features)."""
    from evr.storage.features import ANALYZER_PATHS, FEATURES
    from evr.storage.schema import Base

    from .storage import KeyframeBrightness

    FEATURES.pop("brightness", None)
    ANALYZER_PATHS.pop("brightness", None)
    Base.metadata.remove(KeyframeBrightness.__table__)
