"""[speech]: transcription of each video's sound track, by one of two backends (this package)."""

from __future__ import annotations

from dataclasses import dataclass

from evr.storage.rules import between, language_codes, one_of, rule, text

from ...settings import DEVICES

SPEECH_BACKENDS = ("auto", "faster-whisper", "pocketsphinx")  # one file each in this package


def _languages() -> tuple[str, ...]:
    return ("auto", *language_codes())


@dataclass(frozen=True)
class SpeechSettings:
    enabled: bool = True
    # auto: faster-whisper when its model is cached or can be downloaded now, else pocketsphinx
    # (English only, its model ships with it: the offline fallback) where the language is "en".
    backend: str = rule(one_of(SPEECH_BACKENDS), default="auto")
    # faster-whisper's model: a size ("tiny", "base", "small", "medium", "large-v3",
    # "distil-large-v3"), a Hugging Face repo id, or a folder holding a converted model.
    # "small" transcribes well above real time on a CPU; "large-v3" reads Vietnamese best (GPU).
    model: str = rule(text("a model size, a Hugging Face repo or a folder"), default="small")
    language: str = rule(one_of(_languages), default="auto")  # ISO 639-1 code, or auto: Whisper detects it
    device: str = rule(one_of(DEVICES), default="auto")
    # Whisper reads the sound this many seconds at a time, cut at the quietest moment near the
    # end: memory stays flat however long the video.
    window_s: float = rule(between(30, 3600), default=300.0)
