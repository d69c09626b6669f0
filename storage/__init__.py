"""Storage: the only code that reads or writes the SQLite database and the FAISS index file."""
from .store import (
    KeyframeFilter,
    PersonPose,
    PersonsInFrame,
    TextBox,
    KeyframeRow,
    ModelInfo,
    ModelMismatchError,
    NewKeyframe,
    RepairReport,
    Store,
    StoreError,
    VideoInfo,
    VideoState,
)

__all__ = [
    "KeyframeFilter",
    "PersonPose",
    "PersonsInFrame",
    "TextBox",
    "KeyframeRow",
    "ModelInfo",
    "ModelMismatchError",
    "NewKeyframe",
    "RepairReport",
    "Store",
    "StoreError",
    "VideoInfo",
    "VideoState",
]
