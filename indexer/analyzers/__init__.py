"""Analyzers, each behind the contract of base.Analyzer, taken from the feature registry.

A feature registers once (storage.features.register: its storage and the import path of its
analyzer); its analyzer is a module or folder here (or anywhere importable) with a FrameAnalyzer
(reads keyframes) or FileAnalyzer (reads the video file) subclass and its settings.
"""

from __future__ import annotations

import importlib

from evr.storage.features import ANALYZER_PATHS

from ..settings import IndexSettings
from .base import Analyzer, BackendAnalyzer, FileAnalyzer, FrameAnalyzer


def analyzer_class(name: str) -> type[Analyzer]:
    """The analyzer class the registry names for this feature (imported on first use)."""
    module, _, cls = ANALYZER_PATHS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def analyzer_classes() -> dict[str, type[Analyzer]]:
    return {name: analyzer_class(name) for name in ANALYZER_PATHS}


def enabled_analyzers(settings: IndexSettings) -> dict[str, Analyzer]:
    """The analyzers the settings switch on, by name, not loaded yet."""
    built = {name: cls.from_settings(settings) for name, cls in analyzer_classes().items()}
    return {name: a for name, a in built.items() if a is not None}


def features_off() -> dict:
    """Every feature's settings switched off (`IndexSettings(features=features_off())`: CLIP only)."""
    return {name: cls.settings_class(enabled=False) for name, cls in analyzer_classes().items()}


__all__ = [
    "Analyzer",
    "BackendAnalyzer",
    "FileAnalyzer",
    "FrameAnalyzer",
    "analyzer_class",
    "analyzer_classes",
    "enabled_analyzers",
    "features_off",
]
