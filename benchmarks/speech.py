"""Transcription speed against real time, per speech backend, and word accuracy on espeak-ng speech.

    python benchmarks/speech.py [--videos DIR] [--backends pocketsphinx faster-whisper]
                                [--whisper-model small] [--repeat 4]

Sixteen news-style English sentences are spoken by espeak-ng (US voice, 160 words a minute)
with 1.5 s of silence between them, laid as AAC over the picture of a real sample clip (looped),
and read back through the indexer's own path: the audio decoder (indexer/audio.py) streaming
into the backend. `--repeat N` speaks the sentences N times in one file, so the peak memory of a
long file can be compared with a short one's (the sound is streamed: it should not grow).

Word accuracy = 1 - word error rate: the edit distance between the words said and the words
transcribed (lower case, without punctuation), over the words said. "x real time" = seconds of
sound / seconds of transcription (above 1 is faster than real time). Both from one run.
faster-whisper needs its model (downloaded on first use): without it, its row says why.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from evr.indexer.analyzers.speech import PocketsphinxBackend, SpeechSettings, WhisperBackend
from evr.indexer.audio import RATE, pcm_blocks
from evr.storage.textfold import words

SENTENCES = [
    "the minister says the dike held through the night",
    "heavy rain flooded the main street this morning",
    "thousands of families were moved to higher ground",
    "the river rose two meters in less than six hours",
    "police closed the bridge to all traffic",
    "the president visited the hospital on monday",
    "schools will open again next week",
    "the price of rice went up by ten percent",
    "a fire broke out at the market after midnight",
    "firefighters arrived within fifteen minutes",
    "the weather will be sunny and warm tomorrow",
    "the football team won the final two to one",
    "farmers are worried about the dry season",
    "the new road will connect the two cities",
    "doctors asked people to stay at home",
    "the storm is moving north at twenty kilometers an hour",
]
GAP_S = 1.5


def build(out: Path, footage: Path, repeat: int, work: Path) -> float:
    """The sentences (x repeat) as the sound of `footage`'s looped picture; returns its seconds."""
    wavs = []
    for i, sentence in enumerate(SENTENCES):
        wav = work / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(wav), sentence], check=True)
        wavs.append(wav)
    listing = work / "list.txt"
    silence = work / "gap.wav"
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-t",
            str(GAP_S),
            "-i",
            "anullsrc=r=22050:cl=mono",
            str(silence),
        ],
        check=True,
    )
    listing.write_text("".join(f"file '{w}'\nfile '{silence}'\n" for w in wavs * repeat))
    speech = work / "speech.wav"
    subprocess.run(
        ["ffmpeg", "-y", "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing), str(speech)], check=True
    )
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-v",
            "error",
            "-stream_loop",
            "-1",
            "-i",
            str(footage),
            "-i",
            str(speech),
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-shortest",
            str(out),
        ],
        check=True,
    )
    return sum(b.size for b in pcm_blocks(str(out))) / RATE


def word_errors(said: list[str], heard: list[str]) -> int:
    """Levenshtein distance between two word sequences."""
    row = list(range(len(heard) + 1))
    for i, s in enumerate(said, start=1):
        prev, row[0] = row[0], i
        for j, h in enumerate(heard, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (s != h))
    return row[-1]


def backend_of(name: str, model: str):
    settings = SpeechSettings(backend=name, model=model, language="en")
    if name == "pocketsphinx":
        return PocketsphinxBackend(settings), None
    folder, why = WhisperBackend.locate(settings, download=True)
    return (WhisperBackend(settings, folder), None) if folder else (None, why)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "videos")
    ap.add_argument("--backends", nargs="+", default=["pocketsphinx", "faster-whisper"])
    ap.add_argument("--whisper-model", default="small")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video = work / "speech.mp4"
        seconds = build(video, args.videos / "msrvtt" / "video7010.mp4", args.repeat, work)
        said = [w for sentence in SENTENCES for w in words(sentence)] * args.repeat
        print(
            f"{len(SENTENCES) * args.repeat} sentences, {len(said)} words, {seconds:.1f} s of sound "
            "(espeak-ng en-us, 160 wpm), over msrvtt/video7010.mp4\n"
        )
        print("| backend | model | transcription s | x real time | word accuracy | segments | peak RSS MB |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for name in args.backends:
            backend, why = backend_of(name, args.whisper_model)
            model = args.whisper_model if name == "faster-whisper" else "en-us (bundled)"
            if backend is None:
                print(f"| {name} | {model} | not measured: {why} | | | | |")
                continue
            backend.load()
            started = time.perf_counter()
            segments = list(backend.transcribe(pcm_blocks(str(video))))
            took = time.perf_counter() - started
            heard = [w for seg in segments for w in words(seg.text)]
            accuracy = 1 - word_errors(said, heard) / len(said)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
            print(
                f"| {name} | {model} | {took:.1f} | {seconds / took:.1f} | {accuracy:.1%} | {len(segments)} | "
                f"{peak:.0f} |"
            )


if __name__ == "__main__":
    main()
