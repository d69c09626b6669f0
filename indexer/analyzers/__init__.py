"""Analyzers, each behind the contract of base.Analyzer, and their registry.

A new analyzer is one module here with its FrameAnalyzer (reads keyframes) or FileAnalyzer
(reads the video file) subclass, listed in ANALYZERS, plus the storage of its results
(storage/schema.py and an entry in storage.ANALYSES or storage.VIDEO_ANALYSES).
"""
from __future__ import annotations

from ..settings import IndexSettings
from .base import Analyzer, BackendAnalyzer, FileAnalyzer, FrameAnalyzer
from .ocr import OcrAnalyzer
from .persons import PersonAnalyzer
from .speech import SpeechAnalyzer

ANALYZERS: dict[str, type[Analyzer]] = {cls.name: cls for cls in (OcrAnalyzer, PersonAnalyzer, SpeechAnalyzer)}


def enabled_analyzers(settings: IndexSettings) -> dict[str, Analyzer]:
    """The analyzers the settings switch on, by name, not loaded yet."""
    built = {name: cls.from_settings(settings) for name, cls in ANALYZERS.items()}
    return {name: a for name, a in built.items() if a is not None}


__all__ = ["ANALYZERS", "Analyzer", "BackendAnalyzer", "FileAnalyzer", "FrameAnalyzer", "enabled_analyzers"]
