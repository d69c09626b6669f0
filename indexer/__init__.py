"""Indexer: decode -> keyframes -> analyzers -> storage."""
from .pipeline import Indexer, IndexReport
from .settings import ClipSettings, DecodeSettings, IndexSettings, KeyframeSettings, ShotSettings

__all__ = ["ClipSettings", "DecodeSettings", "IndexReport", "IndexSettings", "Indexer", "KeyframeSettings", "ShotSettings"]
