"""The voice that reads summaries aloud ([voice]): gTTS when Google's service answers, else
espeak-ng, offline. (What is said in the videos is `speech`: indexer/analyzers/speech/.)

Audio is cached on disk by (text, language, engine), so a summary is synthesised once.
Engines are tried in the configured order; the result says which one spoke.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from evr.storage.rules import between, rule, some_of

log = logging.getLogger(__name__)

ENGINES = ("gtts", "espeak-ng")
_EXTENSION = {"gtts": ".mp3", "espeak-ng": ".wav"}
# espeak-ng voices for our summary languages (it has several Vietnamese ones; this is the northern).
_ESPEAK_VOICE = {"en": "en", "vi": "vi"}


class VoiceError(RuntimeError):
    pass


@dataclass(frozen=True)
class VoiceSettings:
    """[voice]"""

    engines: list[str] = rule(some_of(ENGINES), default_factory=lambda: list(ENGINES))  # tried in order
    gtts_timeout_s: float = rule(between(0, above=True), default=5.0)


@dataclass(frozen=True)
class Spoken:
    path: Path
    engine: str
    cached: bool

    @property
    def offline(self) -> bool:
        return self.engine != "gtts"


def speak(text: str, language: str, cache_dir: Path, settings: VoiceSettings = VoiceSettings()) -> Spoken:
    """Audio of `text`, from the first engine that works (or has it cached already)."""
    unknown = [e for e in settings.engines if e not in ENGINES]
    if unknown:
        raise VoiceError(f"unknown voice engine {', '.join(unknown)}; engines are: {', '.join(ENGINES)}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    errors = []
    for engine in settings.engines:
        key = hashlib.sha256(f"{engine}\n{language}\n{text}".encode()).hexdigest()[:32]
        path = cache_dir / f"{key}{_EXTENSION[engine]}"
        if path.is_file() and path.stat().st_size > 0:
            return Spoken(path, engine, cached=True)
        tmp = path.with_name(path.name + ".part")
        try:
            _SYNTHESISERS[engine](text, language, tmp, settings)
            tmp.replace(path)
            return Spoken(path, engine, cached=False)
        except Exception as exc:  # the next engine may work (gTTS needs a network)
            tmp.unlink(missing_ok=True)
            log.info("speech engine %s failed: %s", engine, exc)
            errors.append(f"{engine}: {exc}")
    raise VoiceError("no voice engine worked (" + "; ".join(errors) + "). Install espeak-ng for an offline voice.")


def _gtts(text: str, language: str, out: Path, settings: VoiceSettings) -> None:
    from gtts import gTTS

    gTTS(text=text, lang=language, timeout=settings.gtts_timeout_s).save(str(out))


def _espeak(text: str, language: str, out: Path, settings: VoiceSettings) -> None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise VoiceError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    voice = _ESPEAK_VOICE.get(language, language)
    subprocess.run([exe, "-v", voice, "-w", str(out), text], check=True, capture_output=True, timeout=60)


_SYNTHESISERS = {"gtts": _gtts, "espeak-ng": _espeak}


def write_audio(speech: Spoken, target: Path) -> Path:
    """Copy spoken audio to `target`. The extension is a hint: mp3 <-> wav is converted with
    ffmpeg when it is installed; otherwise the audio keeps its own format and extension."""
    target = Path(target)
    if target.suffix.lower() == speech.path.suffix or target.suffix.lower() not in (".mp3", ".wav"):
        shutil.copyfile(speech.path, target)
        return target
    if shutil.which("ffmpeg"):
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(speech.path), str(target)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return target
    fallback = target.with_suffix(speech.path.suffix)
    shutil.copyfile(speech.path, fallback)
    return fallback
