"""Storage: the only code that reads or writes the SQLite database and the vector index.

`types` holds the domain types the rest of evr builds and reads (they need no database);
`store` the data directory; `vectors` the vector index kinds behind one interface.
"""
from .errors import DamagedIndexError, DataDirError, ModelMismatchError, NoIndexError, StoreError, UnknownVideoError, VectorServiceError
from .store import ANALYSES, VIDEO_ANALYSES, RepairReport, Store
from .types import (
    ImportedVideo,
    KeyframeFilter,
    KeyframeImage,
    KeyframeRow,
    LostThumbnails,
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
    "DamagedIndexError",
    "DataDirError",
    "ImportedVideo",
    "KeyframeFilter",
    "KeyframeImage",
    "KeyframeRow",
    "LostThumbnails",
    "ModelInfo",
    "ModelMismatchError",
    "NewKeyframe",
    "NewShot",
    "NoIndexError",
    "PersonPose",
    "PersonsInFrame",
    "RepairReport",
    "ShotRow",
    "SpeechSegment",
    "Store",
    "StoreError",
    "TextBox",
    "UnknownVideoError",
    "VectorIndexSettings",
    "VectorServiceError",
    "VIDEO_ANALYSES",
    "VideoInfo",
    "VideoMedia",
    "VideoState",
]
