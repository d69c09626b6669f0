"""pocketsphinx: CMU's small HMM recognizer with the US English model its PyPI package ships.

The offline fallback (no download, any CPU) and the test backend. English only, and far less
accurate than Whisper (benchmarks/speech.py measures both). Streams: its voice activity detector
(Endpointer) finds each utterance as the samples arrive, and the decoder reads each utterance
whole (at most MAX_UTTERANCE_S), normalised by its own mean: fed piece by piece, it adapts its
normalisation from one utterance to the next and reads the first words of a file badly. Each
file gets a decoder of its own (0.3 s to build), so a file reads the same whatever the worker
transcribed before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import numpy as np

from evr.storage.features import SpeechSegment

from ...audio import RATE
from .settings import SpeechSettings

FRAMES_PER_S = 100  # the decoder's frame rate (its `frate`): word times are in these frames
MAX_UTTERANCE_S = 30.0  # speech with no pause (music, a crowd) is cut into utterances this long
_ALTERNATE = re.compile(r"\(\d+\)$")  # "that(2)": the dictionary's second pronunciation of "that"


class PocketsphinxBackend:
    name = "pocketsphinx"

    def __init__(self, settings: SpeechSettings):
        self.settings = settings
        self._decoder = None

    @staticmethod
    def unavailable(settings: SpeechSettings) -> str | None:
        """Why this backend cannot transcribe under these settings, or None."""
        # Only where English is all there is to hear: on other speech it returns English words
        # that were never said, and a text query would be fused with them.
        if settings.language != "en":
            return (
                f"pocketsphinx reads English only, and speech.language is {settings.language!r} "
                '(set it to "en" where every video speaks English)'
            )
        return None

    @property
    def signature(self) -> str:
        return "pocketsphinx:en-us"

    def load(self) -> None:
        """A decoder for the next file (building it checks the model)."""
        from pocketsphinx import Decoder

        if self._decoder is None:
            self._decoder = Decoder(samprate=RATE, loglevel="FATAL")

    def close(self) -> None:
        self._decoder = None

    def transcribe(self, blocks: Iterable[np.ndarray]) -> Iterator[SpeechSegment]:
        from pocketsphinx import Endpointer

        self.load()
        decoder, self._decoder = self._decoder, None  # this file's own: no state from the last one
        endpointer = Endpointer(sample_rate=RATE)
        frame = endpointer.frame_bytes // 2  # samples the endpointer reads at a time
        start: float | None = None  # where the current utterance began (seconds); None: no utterance
        speech: list[bytes] = []  # the current utterance's samples
        fed = 0  # and how many
        held = np.zeros(0, np.int16)
        last = False
        blocks = iter(blocks)
        while not last:
            block = next(blocks, None)
            last = block is None
            held = held if last else np.concatenate([held, block])
            while held.size >= frame or (last and held.size):
                piece, held = held[:frame], held[frame:]
                ending = last and not held.size  # the stream's last piece, possibly short
                out = endpointer.end_stream(piece.tobytes()) if ending else endpointer.process(piece.tobytes())
                if out is None:
                    continue
                if start is None:
                    start = endpointer.speech_start
                speech.append(out)
                fed += len(out) // 2
                if not endpointer.in_speech or fed >= MAX_UTTERANCE_S * RATE:
                    found = _utterance(decoder, start, b"".join(speech))
                    if found is not None:
                        yield found
                    start = start + fed / RATE if endpointer.in_speech else None
                    speech, fed = [], 0
        if speech:
            found = _utterance(decoder, start, b"".join(speech))
            if found is not None:
                yield found


def _utterance(decoder, start: float, pcm: bytes) -> SpeechSegment | None:
    """The words of one utterance (begun at `start` seconds), or None if it holds none."""
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    words, probs = [], []
    for seg in decoder.seg():
        if seg.word.startswith(("<", "[")):  # <s>, </s>, <sil>, [NOISE]: no word
            continue
        words.append(
            (
                _ALTERNATE.sub("", seg.word),
                round(start + seg.start_frame / FRAMES_PER_S, 3),
                round(start + (seg.end_frame + 1) / FRAMES_PER_S, 3),
            )
        )
        probs.append(seg.prob)
    if not words:
        return None
    return SpeechSegment(
        start=words[0][1],
        end=words[-1][2],
        text=" ".join(w for w, _, _ in words),
        language="en",
        confidence=round(float(np.mean(probs)), 4),
        words=tuple(words),
    )
