"""The sources of a run (indexer/run.py), one shape (`Source`: plan -> work -> commit), one per
input: video files (`evr index`), an AI Challenge package (`evr import aic`), imported keyframes
to analyze (`evr analyze`), kept keyframes that lack another model's vectors (after both)."""

from .aic import AicPackage
from .analysis import KeyframeAnalysis
from .base import Source
from .files import VideoFiles, VideoTask
from .vectors import ModelVectors

__all__ = ["AicPackage", "KeyframeAnalysis", "ModelVectors", "Source", "VideoFiles", "VideoTask"]
