"""Text queries in any language: language detection, encoders aligned with the index's image
space (table.py), translation to English, and the routing between them (router.py)."""

from .router import EncodedText, QuerySettings, TextRouter
from .table import MULTILINGUAL_CLIP_MODELS, TEXT_ENCODERS, aligned_with

__all__ = ["EncodedText", "MULTILINGUAL_CLIP_MODELS", "QuerySettings", "TEXT_ENCODERS", "TextRouter", "aligned_with"]
