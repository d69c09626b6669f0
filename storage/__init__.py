"""Storage: the only code that reads or writes the SQLite database and the vector index.

`types` holds the domain types the rest of evr builds and reads (they need no database);
`store` the data directory; `vectors` the vector index kinds behind one interface.
"""
from .errors import DataDirError, ModelMismatchError, StoreError, VectorServiceError
from .store import ANALYSES, VIDEO_ANALYSES, RepairReport, Store
from .types import (
    ImportedVideo,
    KeyframeFilter,
    KeyframeImage,
    KeyframeRow,
    ModelInfo,
    NewKeyframe,
    NewShot,
    PersonPose,
    PersonsInFrame,
    ShotRow,
    SpeechSegment,
    TextBox,
    VideoInfo,
    VideoMedia,
    VideoState,
)
from .vectors import VectorIndexSettings

__all__ = [
    "ANALYSES",
    "DataDirError",
    "ImportedVideo",
    "KeyframeFilter",
    "KeyframeImage",
    "KeyframeRow",
    "ModelInfo",
    "ModelMismatchError",
    "NewKeyframe",
    "NewShot",
    "PersonPose",
    "PersonsInFrame",
    "RepairReport",
    "ShotRow",
    "SpeechSegment",
    "Store",
    "StoreError",
    "TextBox",
    "VectorIndexSettings",
    "VectorServiceError",
    "VIDEO_ANALYSES",
    "VideoInfo",
    "VideoMedia",
    "VideoState",
]
