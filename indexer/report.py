"""What a run did (`RunReport`), and the keys of each command's `--json` report (README.md,
"JSON output", documents them)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

# The keys each command's `--json` report has (README.md documents them), in order.
REPORT_KEYS = {
    "index": (
        "videos_indexed",
        "videos_analyzed",
        "videos_skipped",
        "videos_failed",
        "videos_partial",
        "videos_pruned",
        "videos_pending",
        "thumbnails_restored",
        "stopped",
        "keyframes_added",
        "frames_decoded",
        "seconds",
        "stage_seconds",
        "embedded",
    ),
    "import": (
        "videos_imported",
        "videos_skipped",
        "videos_failed",
        "warnings",
        "videos_pending",
        "thumbnails_restored",
        "stopped",
        "keyframes_added",
        "seconds",
        "analyzed",
    ),
    "analyze": (
        "videos_analyzed",
        "videos_skipped",
        "videos_failed",
        "videos_pending",
        "thumbnails_restored",
        "stopped",
        "keyframes_analyzed",
        "seconds",
        "stage_seconds",
        "embedded",
    ),
    # The other models' vectors added to kept keyframes (indexer/sources/vectors.py), after an index or analyze run.
    "embed": (
        "videos_embedded",
        "videos_failed",
        "videos_pending",
        "stopped",
        "vectors_added",
        "seconds",
        "stage_seconds",
    ),
}


@dataclass
class RunReport:
    """What a run did. `command` picks the keys its JSON has (REPORT_KEYS)."""

    command: str
    stages: tuple[str, ...] = ()  # the stages `stage_seconds` shows, in order
    videos_indexed: int = 0
    videos_imported: int = 0
    # `evr analyze`: videos analyzed; `evr index`: indexed videos on which only the file
    # analyzers (speech) ran, their keyframes kept.
    videos_analyzed: int = 0
    videos_skipped: int = 0  # nothing to do: unchanged since they were done
    videos_failed: list[dict] = field(default_factory=list)  # {"path" or "video_id", "error"}
    # Indexed as far as they decode: {"path", "frames_decoded", "frames_expected", "error"}
    videos_partial: list[dict] = field(default_factory=list)
    videos_pruned: list[str] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)  # {"video_id", "warning"}: done all the same
    videos_pending: int = 0  # left for the next run, when this one stopped
    thumbnails_restored: int = 0  # indexed videos whose lost thumbnail folder was made again
    stopped: str | None = None  # why the run stopped before the end (a failing disk)
    keyframes_added: int = 0
    keyframes_analyzed: int = 0
    videos_embedded: int = 0  # videos whose keyframes got other models' vectors
    vectors_added: dict[str, int] = field(default_factory=dict)  # by model name
    frames_decoded: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    analyzed: RunReport | None = None  # `evr import aic --analyze`: the analysis run after
    embedded: RunReport | None = None  # the other models' vectors added after the run (indexer/sources/vectors.py)

    def to_json(self) -> dict:
        shown = {
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(self.stage_seconds.get(k, 0.0), 3) for k in self.stages},
            "analyzed": self.analyzed.to_json() if self.analyzed else None,
            "embedded": self.embedded.to_json() if self.embedded else None,
        }
        return {key: shown[key] if key in shown else getattr(self, key) for key in REPORT_KEYS[self.command]}
