"""Character accuracy of each OCR backend on Vietnamese news captions, with and without marks.

    python benchmarks/ocr_vietnamese.py [--videos DIR] [--backends easyocr tesseract] [--save DIR]

Twelve news-style lower thirds (a headline bar and a smaller line under it, in the styles of
Vietnamese TV: white on red or blue, dark on white, white with an outline straight on the
picture, a yellow ticker) are drawn with DejaVu Sans over frames of the real sample clips, at
1280x720 and 640x360. Each backend reads the frames through the indexer's OcrAnalyzer (the same
resizing and confidence filter as an index run).

Character accuracy = 1 - (edit distance / characters), over the caption lines, each line scored
against the line read that is closest to it. "with marks" compares the text as written;
"without marks" after folding both sides (storage.textfold: what `--ocr` search matches).
"extra characters" counts what was read outside the captions (text of the footage, or noise).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from evr.indexer.analyzers.ocr import OcrAnalyzer, OcrSettings
from evr.storage.textfold import fold

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")  # Debian's fonts-dejavu-core

# (clip, frame, size, style, headline, second line)
CAPTIONS = [
    (
        "msrvtt/video7010.mp4",
        40,
        (1280, 720),
        "red",
        "LŨ LỤT NGHIÊM TRỌNG Ở MIỀN TRUNG",
        "Hàng nghìn hộ dân phải sơ tán khẩn cấp",
    ),
    (
        "msrvtt/video7011.mp4",
        60,
        (1280, 720),
        "blue",
        "THỦ TƯỚNG THĂM TỈNH QUẢNG NGÃI",
        "Chỉ đạo khắc phục hậu quả bão số 5",
    ),
    (
        "msrvtt/video7012.mp4",
        30,
        (1280, 720),
        "white",
        "GIÁ XĂNG DẦU TĂNG MẠNH",
        "Người dân lo lắng về chi phí sinh hoạt",
    ),
    (
        "msrvtt/video7013.mp4",
        90,
        (1280, 720),
        "outline",
        "Tin nóng: Cháy lớn tại chợ Đồng Xuân",
        "Lực lượng cứu hỏa đã có mặt kịp thời",
    ),
    (
        "msrvtt/video7014.mp4",
        20,
        (1280, 720),
        "ticker",
        "Bóng đá: Việt Nam thắng Thái Lan 2-1",
        "Trận chung kết diễn ra tối thứ Bảy",
    ),
    (
        "msrvtt/video7015.mp4",
        50,
        (1280, 720),
        "red",
        "ĐƯỜNG PHỐ HÀ NỘI NGẬP SÂU SAU MƯA",
        "Giao thông ùn tắc kéo dài nhiều giờ",
    ),
    ("msrvtt/video7016.mp4", 70, (640, 360), "blue", "HỘI NGHỊ KINH TẾ ĐÀ NẴNG", "Thu hút đầu tư nước ngoài"),
    ("msrvtt/video7017.mp4", 40, (640, 360), "white", "HỌC SINH TRỞ LẠI TRƯỜNG", "Năm học mới bắt đầu từ ngày 5/9"),
    ("msrvtt/video7018.mp4", 80, (640, 360), "outline", "Động đất ở Kon Tum", "Chưa có thiệt hại về người"),
    (
        "intel_samples/one-by-one-person-detection.mp4",
        300,
        (1280, 720),
        "red",
        "PHỎNG VẤN NHÂN CHỨNG",
        "Ông Nguyễn Văn Hùng, người dân phường Bến Nghé",
    ),
    (
        "opencv_samples/vtest.avi",
        200,
        (1280, 720),
        "ticker",
        "Dự báo thời tiết: Nam Bộ có mưa rào",
        "Nhiệt độ cao nhất 34 độ C",
    ),
    (
        "scene_cuts/testvideo.mp4",
        100,
        (1280, 720),
        "blue",
        "XUẤT KHẨU GẠO ĐẠT KỶ LỤC",
        "Sản lượng tăng 12% so với cùng kỳ",
    ),
]

STYLES = {  # bar colour, headline colour, second bar colour, second line colour
    "red": ((190, 20, 30), (255, 255, 255), (245, 245, 245), (20, 20, 20)),
    "blue": ((10, 50, 140), (255, 255, 255), (255, 205, 0), (10, 10, 10)),
    "white": ((240, 240, 240), (160, 10, 10), (30, 30, 30), (255, 255, 255)),
    "outline": (None, (255, 255, 255), None, (255, 240, 120)),
    "ticker": ((250, 200, 0), (0, 0, 0), (0, 0, 0), (250, 200, 0)),
}


def frame_of(videos: Path, clip: str, index: int, size: tuple[int, int]) -> np.ndarray:
    cap = cv2.VideoCapture(str(videos / clip))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"cannot read frame {index} of {clip}")
    return cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


def draw_lower_third(rgb: np.ndarray, style: str, headline: str, second: str) -> np.ndarray:
    """A headline bar and a second line in the lower third, as Vietnamese TV news draws them."""
    image = Image.fromarray(rgb)
    w, h = image.size
    draw = ImageDraw.Draw(image)
    bar, ink, bar2, ink2 = STYLES[style]
    big = ImageFont.truetype(str(FONT_DIR / "DejaVuSans-Bold.ttf"), round(h * 0.052))
    small = ImageFont.truetype(str(FONT_DIR / "DejaVuSans.ttf"), round(h * 0.04))
    x, y1, y2 = round(w * 0.05), round(h * 0.76), round(h * 0.875)
    for font, text, y, fill, ink_ in ((big, headline, y1, bar, ink), (small, second, y2, bar2, ink2)):
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        pad = round(h * 0.015)
        if fill is not None:
            draw.rectangle([left - pad, top - pad, right + pad, bottom + pad], fill=fill)
        stroke = round(h * 0.004) if fill is None else 0
        draw.text((x, y), text, font=font, fill=ink_, stroke_width=stroke, stroke_fill=(0, 0, 0))
    return np.asarray(image)


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def score(truth: list[str], read: list[str], transform) -> tuple[int, int, int]:
    """(edit distance over the truth lines, their characters, characters read outside them)."""
    read = [transform(t) for t in read]
    used, errors, chars = set(), 0, 0
    for line in map(transform, truth):
        best = min(range(len(read)), key=lambda i: edit_distance(line, read[i]), default=None)
        errors += len(line) if best is None else edit_distance(line, read[best])
        chars += len(line)
        if best is not None:
            used.add(best)
    extra = sum(len(t) for i, t in enumerate(read) if i not in used)
    return errors, chars, extra


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=Path("../shared/data/videos"))
    ap.add_argument("--backends", nargs="+", default=["easyocr", "tesseract"])
    ap.add_argument("--save", type=Path, help="also write the rendered frames here (PNG)")
    args = ap.parse_args()
    frames = []
    for i, (clip, index, size, style, headline, second) in enumerate(CAPTIONS):
        rgb = draw_lower_third(frame_of(args.videos, clip, index, size), style, headline, second)
        frames.append((rgb, [headline, second]))
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb).save(args.save / f"caption{i:02d}.png")
    print(f"{len(frames)} frames, {sum(len(t) for _, lines in frames for t in lines)} caption characters\n")
    print(
        "| backend (languages) | accuracy with marks | accuracy without marks | lines exact | "
        "extra characters | s/frame (CPU) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.backends:
        analyzer = OcrAnalyzer(OcrSettings(backend=name, languages=["vi", "en"], device="cpu"))
        if analyzer.backend is None:
            print(f"| {name} | cannot run here (see the log) | | | | |")
            continue
        analyzer.load()
        totals = np.zeros(5)
        exact = lines = 0
        started = time.perf_counter()
        for rgb, truth in frames:
            read = [b.text for b in analyzer.analyze([rgb])[0]]
            marks = score(truth, read, str)
            plain = score(truth, read, fold)
            totals += [marks[0], marks[1], plain[0], plain[1], marks[2]]
            exact += sum(t in read for t in truth)
            lines += len(truth)
        seconds = (time.perf_counter() - started) / len(frames)
        print(
            f"| {analyzer.signature} | {1 - totals[0] / totals[1]:.1%} | {1 - totals[2] / totals[3]:.1%} | "
            f"{exact}/{lines} | {int(totals[4])} | {seconds:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
