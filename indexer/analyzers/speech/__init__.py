"""What is said: each video's sound track transcribed into timed segments, by one of two backends.

- faster-whisper (whisper_backend.py): multilingual, Vietnamese included; its model is
  downloaded on first use (or read from the cache or a folder); the GPU when there is one.
- pocketsphinx (pocketsphinx_backend.py): English only, its model ships with the package: the
  offline fallback.

speech.backend = "auto" takes faster-whisper when its model is cached or can be downloaded
now, else pocketsphinx when the language allows, and says why. The sound is decoded by
indexer/audio.py and streamed through the backend, so memory does not grow with the video.
A file without an audio stream has no speech (an empty transcript); a sound track that breaks
off midway is transcribed as far as it decodes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from evr.storage.features import SpeechSegment

from ...audio import AudioError, pcm_blocks
from ..base import BackendAnalyzer, FileAnalyzer
from .pocketsphinx_backend import PocketsphinxBackend
from .settings import SpeechSettings
from .whisper_backend import WhisperBackend

log = logging.getLogger(__name__)


class SpeechAnalyzer(BackendAnalyzer, FileAnalyzer):
    name = "speech"
    settings_class = SpeechSettings
    settings: SpeechSettings

    def _choose(self) -> WhisperBackend | PocketsphinxBackend | None:
        s = self.settings
        whisper_why = None
        if s.backend in ("auto", "faster-whisper"):
            folder, whisper_why = WhisperBackend.locate(s, download=True)
            if folder is not None:
                return WhisperBackend(s, folder)
            if s.backend == "faster-whisper":
                log.warning("speech is off for this run: %s.", whisper_why)
                return None
        sphinx_why = PocketsphinxBackend.unavailable(s)
        if sphinx_why is None:
            if whisper_why:
                log.warning("speech: pocketsphinx (English only) transcribes this run: %s.", whisper_why)
            return PocketsphinxBackend(s)
        log.warning("speech is off for this run: %s.", "; ".join(w for w in (whisper_why, sphinx_why) if w))
        return None

    def analyze_file(self, path: str) -> list[SpeechSegment] | None:
        """The speech segments of the file in time order ([] when it has no sound or no speech);
        None when no backend can run."""
        if self.backend is None:
            return None
        return list(self.backend.transcribe(_readable_blocks(path)))


def _readable_blocks(path: str) -> Iterator[np.ndarray]:
    """The file's sound as far as it decodes: a broken audio stream ends it with a warning (the
    pictures of the file are indexed regardless)."""
    try:
        yield from pcm_blocks(path)
    except AudioError as exc:
        log.warning("%s: the sound is transcribed up to %.1f s only: %s", path, exc.after, exc)


__all__ = ["PocketsphinxBackend", "SpeechAnalyzer", "SpeechSettings", "WhisperBackend"]
