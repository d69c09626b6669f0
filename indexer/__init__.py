"""Indexer: decode -> keyframes -> analyzers -> storage."""
from .pipeline import Indexer, IndexReport
from .settings import ClipSettings, DecodeSettings, IndexSettings, KeyframeSettings

__all__ = ["ClipSettings", "DecodeSettings", "IndexReport", "IndexSettings", "Indexer", "KeyframeSettings"]
