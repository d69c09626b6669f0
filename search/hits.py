"""A search hit and its stable JSON form (documented in README.md, "JSON output")."""
from __future__ import annotations

from dataclasses import dataclass

from storage import KeyframeRow


@dataclass(frozen=True)
class Hit:
    rank: int
    keyframe_id: int
    video_id: str  # file stem, as contest submissions name videos
    video_path: str
    frame_idx: int
    timestamp: float
    score: float
    thumbnail: str  # absolute path

    @classmethod
    def from_row(cls, rank: int, row: KeyframeRow, score: float) -> Hit:
        return cls(
            rank=rank,
            keyframe_id=row.keyframe_id,
            video_id=row.video_id,
            video_path=row.video_path,
            frame_idx=row.frame_idx,
            timestamp=row.timestamp,
            score=score,
            thumbnail=str(row.thumbnail),
        )

    def to_json(self) -> dict:
        return {
            "rank": self.rank,
            "keyframe_id": self.keyframe_id,
            "video_id": self.video_id,
            "video_path": self.video_path,
            "frame_idx": self.frame_idx,
            "timestamp": round(self.timestamp, 3),
            "score": round(self.score, 6),
            "thumbnail": self.thumbnail,
        }
