"""A video's sound as 16 kHz mono 16-bit PCM, streamed in blocks (memory stays flat).

PyAV (ffmpeg) decodes the first audio stream and its resampler converts any layout and rate to
what speech recognizers read. A file with no audio stream yields nothing. Sample 0 is the
file's start, the origin of keyframe timestamps: a sound track that starts late is preceded by
silence, one that starts early (encoder priming) loses its lead.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

RATE = 16_000  # samples per second: what pocketsphinx's and Whisper's models were trained on


class AudioError(Exception):
    """The audio stream cannot be decoded (from `after` seconds on)."""

    def __init__(self, message: str, after: float):
        super().__init__(message)
        self.after = after


def pcm_blocks(path: str, block_s: float = 1.0) -> Iterator[np.ndarray]:
    """int16 mono samples at RATE, `block_s` seconds a block (the last one shorter); nothing when
    the file has no audio stream. A decoding error raises AudioError, after the blocks before it."""
    import av

    block = int(RATE * block_s)
    pending: list[np.ndarray] = []
    held = 0
    done = 0  # samples yielded so far
    try:
        container = av.open(path)
    except av.FFmpegError as exc:
        raise AudioError(f"cannot open: {exc}", 0.0) from exc
    try:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        origin = (container.start_time or 0) / 1_000_000  # AV_TIME_BASE units, as the video decoders
        skip: int | None = None  # samples before the file's start still to drop
        try:
            for frame in container.decode(stream):
                if skip is None:
                    lead = int(round(((frame.time if frame.time is not None else origin) - origin) * RATE))
                    skip = max(0, -lead)
                    if lead > 0:
                        pending.append(np.zeros(lead, np.int16))
                        held += lead
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    dropped = min(skip, samples.size)
                    skip -= dropped
                    pending.append(samples[dropped:])
                    held += pending[-1].size
                while held >= block:
                    samples = np.concatenate(pending)
                    yield samples[:block]
                    done += block
                    pending, held = [samples[block:]], samples.size - block
            for out in resampler.resample(None):  # what the resampler still holds
                pending.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            raise AudioError(str(exc), done / RATE) from exc
        rest = np.concatenate(pending) if pending else np.zeros(0, np.int16)
        for start in range(0, rest.size, block):
            yield rest[start : start + block]
    finally:
        container.close()
