"""Reading summaries aloud: gTTS when Google's service answers, else espeak-ng, offline.

Audio is cached on disk by (text, language, engine), so a summary is synthesised once.
Engines are tried in the configured order; the result says which one spoke.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ENGINES = ("gtts", "espeak-ng")
_EXTENSION = {"gtts": ".mp3", "espeak-ng": ".wav"}
# espeak-ng voices for our summary languages (it has several Vietnamese ones; this is the northern).
_ESPEAK_VOICE = {"en": "en", "vi": "vi"}


class SpeechError(RuntimeError):
    pass


@dataclass(frozen=True)
class SpeechSettings:
    engines: list[str] = field(default_factory=lambda: list(ENGINES))
    gtts_timeout_s: float = 5.0


@dataclass(frozen=True)
class Speech:
    path: Path
    engine: str
    cached: bool

    @property
    def offline(self) -> bool:
        return self.engine != "gtts"


def speak(text: str, language: str, cache_dir: Path, settings: SpeechSettings = SpeechSettings()) -> Speech:
    """Audio of `text`, from the first engine that works (or has it cached already)."""
    unknown = [e for e in settings.engines if e not in ENGINES]
    if unknown:
        raise SpeechError(f"unknown speech engine {', '.join(unknown)}; engines are: {', '.join(ENGINES)}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    errors = []
    for engine in settings.engines:
        key = hashlib.sha256(f"{engine}\n{language}\n{text}".encode()).hexdigest()[:32]
        path = cache_dir / f"{key}{_EXTENSION[engine]}"
        if path.is_file() and path.stat().st_size > 0:
            return Speech(path, engine, cached=True)
        tmp = path.with_name(path.name + ".part")
        try:
            _SYNTHESISERS[engine](text, language, tmp, settings)
            tmp.replace(path)
            return Speech(path, engine, cached=False)
        except Exception as exc:  # the next engine may work (gTTS needs a network)
            tmp.unlink(missing_ok=True)
            log.info("speech engine %s failed: %s", engine, exc)
            errors.append(f"{engine}: {exc}")
    raise SpeechError("no speech engine worked (" + "; ".join(errors) + "). Install espeak-ng for offline speech.")


def _gtts(text: str, language: str, out: Path, settings: SpeechSettings) -> None:
    from gtts import gTTS

    gTTS(text=text, lang=language, timeout=settings.gtts_timeout_s).save(str(out))


def _espeak(text: str, language: str, out: Path, settings: SpeechSettings) -> None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpeechError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    voice = _ESPEAK_VOICE.get(language, language)
    subprocess.run([exe, "-v", voice, "-w", str(out), text], check=True, capture_output=True, timeout=60)


_SYNTHESISERS = {"gtts": _gtts, "espeak-ng": _espeak}


def write_audio(speech: Speech, target: Path) -> Path:
    """Copy spoken audio to `target`. The extension is a hint: mp3 <-> wav is converted with
    ffmpeg when it is installed; otherwise the audio keeps its own format and extension."""
    target = Path(target)
    if target.suffix.lower() == speech.path.suffix or target.suffix.lower() not in (".mp3", ".wav"):
        shutil.copyfile(speech.path, target)
        return target
    if shutil.which("ffmpeg"):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(speech.path), str(target)], check=True,
                       capture_output=True, timeout=120)
        return target
    fallback = target.with_suffix(speech.path.suffix)
    shutil.copyfile(speech.path, fallback)
    return fallback
