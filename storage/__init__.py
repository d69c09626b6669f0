"""Storage: the only code that reads or writes the SQLite database and the FAISS index file."""
from .store import (
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
