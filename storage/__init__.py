"""Storage: the only code that reads or writes the SQLite database, the vector index and Milvus.

`store.Store` opens a data directory (its docstring maps the rooms); `types` holds the domain
types the rest of evr builds and reads (they need no database); `features` the registry of
features and their storage.
"""

from .errors import (
    DamagedIndexError,
    DataDirError,
    ModelMismatchError,
    NoIndexError,
    QueryTooLargeError,
    StoreError,
    UnknownModelError,
    UnknownVideoError,
    VectorServiceError,
)
from .features import FEATURES, PersonPose, PersonsInFrame, SpeechSegment, TextBox
from .health import RepairReport
from .marks import MARK_KINDS, Mark
from .store import StorageSettings, Store
from .types import (
    PRIMARY_MODEL,
    ImportedVideo,
    KeyframeFilter,
    KeyframeImage,
    KeyframeRow,
    LostThumbnails,
    MissingVectors,
    ModelInfo,
    NewKeyframe,
    NewShot,
    Plan,
    ShotRow,
    Storyboard,
    VideoInfo,
    VideoMedia,
    VideoRow,
    VideoState,
)
from .vectors import VectorIndexSettings

__all__ = [
    "DamagedIndexError",
    "DataDirError",
    "FEATURES",
    "ImportedVideo",
    "KeyframeFilter",
    "KeyframeImage",
    "KeyframeRow",
    "LostThumbnails",
    "MARK_KINDS",
    "Mark",
    "MissingVectors",
    "ModelInfo",
    "ModelMismatchError",
    "NewKeyframe",
    "NewShot",
    "NoIndexError",
    "PRIMARY_MODEL",
    "PersonPose",
    "PersonsInFrame",
    "Plan",
    "QueryTooLargeError",
    "RepairReport",
    "ShotRow",
    "Storyboard",
    "SpeechSegment",
    "StorageSettings",
    "Store",
    "StoreError",
    "TextBox",
    "UnknownModelError",
    "UnknownVideoError",
    "VectorIndexSettings",
    "VectorServiceError",
    "VideoInfo",
    "VideoMedia",
    "VideoRow",
    "VideoState",
]
