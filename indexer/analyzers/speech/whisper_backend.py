"""faster-whisper: OpenAI's Whisper on CTranslate2; multilingual (Vietnamese included), on the GPU
when there is one (float16), int8 on a CPU.

The sound is read `window_s` seconds at a time, each window cut at its quietest 100 ms near the
end so that no word is split, and Whisper transcribes each window (its own voice activity filter,
Silero, which the package ships, skips silence). Memory stays flat however long the video.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from evr.storage.features import SpeechSegment

from ...audio import RATE
from ...encoders import ModelUnavailableError
from .settings import SpeechSettings

log = logging.getLogger(__name__)

CUT_SEARCH_S = 10.0  # a window is cut at the quietest moment of its last this many seconds
CUT_STEP_S = 0.1


class WhisperBackend:
    name = "faster-whisper"

    def __init__(self, settings: SpeechSettings, model_path: str):
        self.settings = settings
        self.model_path = model_path
        self._model = None

    @staticmethod
    def locate(settings: SpeechSettings, download: bool) -> tuple[str | None, str | None]:
        """(the model's folder, None), or (None, why it is not here) without a network call
        unless `download`."""
        from faster_whisper.utils import _MODELS, download_model

        if Path(settings.model).expanduser().is_dir():
            folder = Path(settings.model).expanduser()
            if (folder / "model.bin").is_file():
                return str(folder), None
            return None, f"{folder} holds no faster-whisper model (model.bin)"
        repo = _MODELS.get(settings.model, settings.model)
        try:
            return download_model(settings.model, local_files_only=not download), None
        except Exception as exc:  # huggingface_hub's errors for offline, unknown repo, no space
            log.debug("faster-whisper model %s", settings.model, exc_info=True)
            if not download:
                return None, f"faster-whisper's model {settings.model!r} is not cached (`evr index` downloads it)"
            return None, (
                f"faster-whisper's model {settings.model!r} is not cached and cannot be downloaded "
                f"({type(exc).__name__}); fetch it where there is a network with `hf download {repo}` "
                "or set speech.model to a folder holding it"
            )

    @property
    def signature(self) -> str:
        return f"faster-whisper:{Path(self.settings.model).name}:{self.settings.language}"

    def load(self) -> None:
        if self._model is not None:
            return
        import ctranslate2
        from faster_whisper import WhisperModel

        device = self.settings.device
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        elif device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
            raise ModelUnavailableError('speech.device = "cuda" but CTranslate2 sees no CUDA GPU; use "auto" or "cpu"')
        # Whisper samples (temperatures 0.2 to 1.0) where a greedy reading fails its checks.
        # CTranslate2 seeds each of its threads' generators once, from this seed: so a run
        # that reads the same videos in the same order gets the same transcripts.
        ctranslate2.set_random_seed(0)
        try:
            self._model = WhisperModel(
                self.model_path, device=device, compute_type="float16" if device == "cuda" else "int8"
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelUnavailableError(f"cannot load faster-whisper's model from {self.model_path}: {exc}") from exc

    def close(self) -> None:
        self._model = None

    def transcribe(self, blocks: Iterable[np.ndarray]) -> Iterator[SpeechSegment]:
        self.load()
        language = None if self.settings.language == "auto" else self.settings.language
        for offset, window in _windows(blocks, self.settings.window_s):
            audio = window.astype(np.float32) / 32768.0
            last = window.size / RATE  # a timestamp past the window's end is Whisper's guess, not the sound's
            segments, info = self._model.transcribe(
                audio, language=language, vad_filter=True, word_timestamps=True, condition_on_previous_text=False
            )
            for seg in segments:
                text = seg.text.strip()
                if not text or seg.start >= last:
                    continue
                words = tuple(
                    (w.word.strip(), round(offset + min(w.start, last), 3), round(offset + min(w.end, last), 3))
                    for w in seg.words or ()
                    if w.word.strip()
                )
                yield SpeechSegment(
                    start=round(offset + seg.start, 3),
                    end=round(offset + min(seg.end, last), 3),
                    text=text,
                    language=info.language,
                    confidence=round(min(1.0, math.exp(seg.avg_logprob)), 4),
                    words=words,
                )


def _windows(blocks: Iterable[np.ndarray], window_s: float) -> Iterator[tuple[float, np.ndarray]]:
    """(start in seconds, samples) of consecutive windows of about `window_s` seconds, each but the
    last cut at its quietest CUT_STEP_S within its last CUT_SEARCH_S."""
    size, held, offset = int(window_s * RATE), [], 0
    count = 0
    for block in blocks:
        held.append(block)
        count += block.size
        if count < size:
            continue
        samples = np.concatenate(held)
        cut = _quietest(samples, max(0, samples.size - int(CUT_SEARCH_S * RATE)))
        yield offset / RATE, samples[:cut]
        offset += cut
        held, count = [samples[cut:]], samples.size - cut
    if count:
        yield offset / RATE, np.concatenate(held)


def _quietest(samples: np.ndarray, start: int) -> int:
    """The sample index (a step's middle) of the quietest CUT_STEP_S step from `start` on."""
    step = int(CUT_STEP_S * RATE)
    tail = samples[start : start + (samples.size - start) // step * step].astype(np.float32)
    if tail.size < step:
        return samples.size
    energy = (tail.reshape(-1, step) ** 2).mean(axis=1)
    return start + int(np.argmin(energy)) * step + step // 2
