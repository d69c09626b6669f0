"""OCR on a video rendered here, persons on real clips, the torchvision backend with random weights."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from evr.indexer.analyzers.persons import POSE_LABELS, PersonAnalyzer, PersonSettings

from .conftest import REPO, evr

pytestmark = pytest.mark.e2e


def render_text_video(path: Path, videos: Path) -> None:
    """6 s at 10 fps, 640x360: three shots cut from real clips; on-screen text in shots 2 and 3."""
    shots = [
        ("msrvtt/video7012.mp4", None),
        ("msrvtt/video7015.mp4", "BREAKING NEWS"),
        ("msrvtt/video7018.mp4", "LU LUT MIEN TRUNG"),
    ]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 360))
    for clip, caption in shots:
        cap = cv2.VideoCapture(str(videos / clip))
        for _ in range(20):
            ok, frame = cap.read()
            assert ok
            frame = cv2.resize(frame, (640, 360))
            if caption:
                cv2.rectangle(frame, (0, 280), (640, 340), (20, 20, 20), -1)
                cv2.putText(frame, caption, (20, 325), cv2.FONT_HERSHEY_DUPLEX, 1.3, (255, 255, 255), 2)
            out.write(frame)
        cap.release()
    out.release()


def test_easyocr_reads_a_batch_as_it_reads_each_frame(tmp_path, videos):
    """The batched reading (CRAFT over same-size frames at once, the recognizer on many crops;
    what a GPU gets) gives each frame the boxes reading it alone gives."""
    from evr.indexer.analyzers.ocr.easyocr_backend import EasyOcrBackend
    from evr.indexer.analyzers.ocr.settings import OcrSettings

    render_text_video(tmp_path / "captions.mp4", videos)
    cap = cv2.VideoCapture(str(tmp_path / "captions.mp4"))
    frames = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(60)][5::15]  # 4 frames, 3 with text
    cap.release()
    settings = OcrSettings(languages=["en"], backend="easyocr", device="cpu")
    languages, folder, _ = EasyOcrBackend.plan(settings)
    backend = EasyOcrBackend(settings, languages, folder)
    alone, together = backend.read_many(frames, batched=False), backend.read_many(frames, batched=True)
    assert any("BREAKING" in [b.text for b in boxes] for boxes in alone)
    for one, many in zip(alone, together):
        assert [b.text for b in one] == [b.text for b in many]
        assert all(
            abs(a.confidence - b.confidence) < 1e-3 and np.allclose(a.box, b.box, atol=1) for a, b in zip(one, many)
        )


def test_ocr_finds_the_keyframe_and_time_of_on_screen_text(tmp_path, videos, capsys, monkeypatch):
    monkeypatch.setenv("EVR_OCR_ENABLED", "true")
    monkeypatch.setenv("EVR_OCR_LANGUAGES", "en")
    folder, data = tmp_path / "v", tmp_path / "data"
    folder.mkdir()
    render_text_video(folder / "rendered.mp4", videos)
    code, report = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and report["keyframes_added"] >= 3 and report["stage_seconds"]["ocr"] > 0
    # The caption is on screen in the shot from 2 to 4 s: its keyframes, from the shot's first frame.
    # (The first source clip has a cut of its own at 1.4 s, so that shot is the third.)
    code, hits = evr("--data-dir", data, "search", "--ocr", "breaking news", "--json", capsys=capsys)
    assert code == 0 and hits and all(h["video_id"] == "rendered" for h in hits)
    assert all((h["shot_start"], h["shot_end"]) == (2.0, 4.0) for h in hits)
    assert min((h["frame_idx"], h["timestamp"]) for h in hits) == (20, 2.0)
    assert all(2.0 <= h["timestamp"] < 4.0 for h in hits)
    assert all("BREAKING" in h["ocr_text"].upper() for h in hits)
    # Vietnamese with accents finds the unaccented caption.
    code, hits = evr("--data-dir", data, "search", "--ocr", "lũ lụt miền trung", "--json", capsys=capsys)
    assert code == 0 and hits and min((h["frame_idx"], h["timestamp"]) for h in hits) == (40, 4.0)
    assert all(h["shot_start"] == 4.0 and 4.0 <= h["timestamp"] < 6.0 for h in hits)
    # The caption's boxes are stored where it was drawn (y 280-340 of 360); the footage has text too.
    with sqlite3.connect(data / "evr.sqlite") as db:
        boxes = db.execute("SELECT text, y0, y1, confidence FROM ocr_boxes").fetchall()
    caption = [b for b in boxes if any(w in b[0].upper() for w in ("BREAKING", "NEWS", "MIEN", "TRUNG"))]
    assert len(caption) >= 2 and all(0.7 < y0 < y1 < 0.97 for _, y0, y1, _ in caption)
    assert all(0.3 <= c <= 1 for *_, c in boxes)  # ocr.min_confidence holds
    # The frame without text has no OCR hit, and a text query fuses with the OCR match.
    code, hits = evr("--data-dir", data, "search", "breaking news", "--k", "3", "--json", capsys=capsys)
    assert hits[0]["shot_start"] == 2.0 and hits[0]["match"] in ("clip+ocr", "ocr")


def render_vietnamese_caption_video(path: Path, videos: Path) -> None:
    """4 s at 5 fps, 640x360, one shot of real footage with a news lower third: "LŨ LỤT Ở HUẾ"."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 22)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (640, 360))
    cap = cv2.VideoCapture(str(videos / "msrvtt/video7015.mp4"))
    for _ in range(20):
        ok, frame = cap.read()
        assert ok
        image = Image.fromarray(cv2.cvtColor(cv2.resize(frame, (640, 360)), cv2.COLOR_BGR2RGB))
        draw = ImageDraw.Draw(image)
        draw.rectangle([20, 278, 330, 318], fill=(190, 20, 30))
        draw.text((32, 284), "LŨ LỤT Ở HUẾ", font=font, fill="white")
        out.write(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR))
    cap.release()
    out.release()


def test_tesseract_reads_vietnamese_marks_and_search_folds_them(tmp_path, videos, capsys, monkeypatch):
    """Offline, easyocr has no Vietnamese weights: ocr.backend = "auto" takes tesseract, which
    keeps the marks in the stored text; searching with or without them finds the caption."""
    monkeypatch.setenv("EVR_OCR_ENABLED", "true")
    monkeypatch.setenv("EVR_OCR_LANGUAGES", "vi,en")
    monkeypatch.setenv("EASYOCR_MODULE_PATH", str(tmp_path / "no-easyocr-home"))  # no latin_g2.pth
    folder, data = tmp_path / "v", tmp_path / "data"
    folder.mkdir()
    render_vietnamese_caption_video(folder / "hue.mp4", videos)
    code, report = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and report["videos_indexed"] == 1
    with sqlite3.connect(data / "evr.sqlite") as db:
        (plan,) = db.execute("SELECT plan FROM videos").fetchone()
        texts = [t for (t,) in db.execute("SELECT text FROM ocr_boxes")]
    assert json.loads(plan)["analyzers"]["ocr"] == "tesseract+craft:vi+en"
    assert any("LŨ LỤT Ở HUẾ" in t for t in texts), texts
    for query in ("lu lut", "lũ lụt", "LŨ LỤT Ở HUẾ"):
        code, hits = evr("--data-dir", data, "search", "--ocr", query, "--json", capsys=capsys)
        assert code == 0 and hits and all("LŨ LỤT" in h["ocr_text"] for h in hits), (query, hits)


def test_tesseract_runs_after_decord_in_one_process(videos):
    """decord's bundled zlib, loaded first, used to make tesseract abort the whole process
    ("libpng error: bad parameters to zlib"): a test process that indexed before OCR did."""
    script = f"""
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from evr.indexer.decoders import open_video
from evr.indexer.analyzers.ocr import OcrAnalyzer, OcrSettings
source = open_video({str(videos / "msrvtt/video7010.mp4")!r}, ["decord"], 360)
assert source.info.backend == "decord"
next(iter(source.frames()))
image = Image.new("RGB", (640, 160), "white")
font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 40)
ImageDraw.Draw(image).text((20, 50), "LŨ LỤT Ở HUẾ", font=font, fill="black")
boxes = OcrAnalyzer(OcrSettings(backend="tesseract", languages=["vi"])).analyze([np.asarray(image)])[0]
print("|".join(b.text for b in boxes))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LŨ LỤT Ở HUẾ" in done.stdout


def test_missing_ocr_language_is_reported_and_the_rest_indexed(tmp_path, videos, capsys, monkeypatch, caplog):
    monkeypatch.setenv("EVR_OCR_ENABLED", "true")
    monkeypatch.setenv("EVR_OCR_BACKEND", "easyocr")
    monkeypatch.setenv("EVR_OCR_LANGUAGES", "vi,en")
    monkeypatch.setenv("EASYOCR_MODULE_PATH", str(tmp_path / "no-easyocr-home"))
    code, report = evr(
        "--data-dir",
        tmp_path / "d",
        "index",
        videos / "scene_cuts/counter.mp4",
        "--no-progress",
        "--json",
        capsys=capsys,
    )
    assert code == 0 and report["videos_indexed"] == 1
    assert "['vi']" in caplog.text and "latin_g2.pth" in caplog.text and "runs with ['en'] only" in caplog.text


def test_tesseract_without_a_language_model_says_which_package(tmp_path, monkeypatch, caplog):
    from evr.indexer.analyzers.ocr import OcrAnalyzer, OcrSettings

    monkeypatch.setattr("evr.indexer.analyzers.ocr.tesseract_backend.tessdata_dirs", lambda s: [tmp_path])
    (tmp_path / "eng.traineddata").write_bytes(b"")  # only English is there
    analyzer = OcrAnalyzer(OcrSettings(backend="tesseract", languages=["vi", "en"]))
    assert analyzer.backend.languages == ["en"] and analyzer.signature.endswith("en")
    assert "vie.traineddata" in caplog.text and "tesseract-ocr-vie" in caplog.text


@pytest.fixture(scope="module")
def persons_index(videos, tmp_path_factory):
    """Person counts of real clips: pedestrians, one signer, and clips with nobody in them."""
    folder = tmp_path_factory.mktemp("people")
    # The first 20 s of the pedestrian clip, re-encoded (as issue 7 reported it): one still shot.
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(videos / "opencv_samples/vtest.avi"),
            "-t",
            "20",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            str(folder / "vtest20.mp4"),
        ],
        check=True,
    )
    for rel in [
        "asl_gestures/again.mkv",
        "asl_gestures/bird.mkv",
        "scene_cuts/counter.mp4",
        "scene_cuts/testvideo.mp4",
        "scene_cuts/fades.mp4",
    ]:
        (folder / Path(rel).name).symlink_to(videos / rel)
    data = tmp_path_factory.mktemp("people-index")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVR_PERSONS_ENABLED", "true")
        mp.setenv("EVR_PERSONS_BACKEND", "mediapipe")
        from evr.ui.cli import main

        assert main(["--data-dir", str(data), "index", str(folder), "--no-progress"]) == 0
    with sqlite3.connect(data / "evr.sqlite") as db:
        counts = db.execute(
            "SELECT v.stem, p.count FROM keyframes k JOIN videos v ON v.id = k.video_id "
            "JOIN keyframe_persons p ON p.keyframe_id = k.id "
            "ORDER BY k.timestamp"
        ).fetchall()
        street_times = [
            t
            for (t,) in db.execute(
                "SELECT k.timestamp FROM keyframes k JOIN videos v "
                "ON v.id = k.video_id WHERE v.stem = 'vtest20' ORDER BY k.timestamp"
            )
        ]
        analyzers = {json.dumps(json.loads(r[0])["analyzers"]) for r in db.execute("SELECT plan FROM videos")}
    by_video: dict[str, list[int]] = {}
    for stem, n in counts:
        by_video.setdefault(stem, []).append(n)
    return data, by_video, analyzers, street_times


def test_a_still_street_shot_is_covered_every_max_gap(persons_index):
    """Issue 7: this clip got 1 keyframe, so people who walk in later were never searchable."""
    street_times = persons_index[3]
    assert len(street_times) >= 10
    assert street_times[0] == 0.0 and street_times[-1] >= 18.0
    assert max(b - a for a, b in zip(street_times, street_times[1:])) <= 2.0 + 0.1 + 1e-6  # max_gap_s + a frame


def test_person_counts_on_real_clips(persons_index):
    _, counts, analyzers, _ = persons_index
    assert {json.loads(a)["persons"] for a in analyzers} == {"mediapipe"}  # the backend is recorded
    street = counts["vtest20"]
    assert len(street) >= 8 and all(n >= 1 for n in street)
    assert max(street) >= 3 and sum(street) / len(street) >= 2  # several walkers, not 0 or 1
    for signer in ("again", "bird"):
        assert counts[signer] and all(n == 1 for n in counts[signer])
    for empty in ("counter", "fades"):
        assert counts[empty] and all(n == 0 for n in counts[empty]), (empty, counts[empty])
    # testvideo.mp4 has no people, but HOG + BlazePose see one in 3 of its 22 keyframes, textured
    # close-ups of a metal grille (a known false positive of the mediapipe backend).
    assert len(counts["testvideo"]) >= 15 and sum(n > 0 for n in counts["testvideo"]) <= 3


def test_min_persons_filter_through_the_cli(persons_index, capsys):
    data, counts, _, _ = persons_index
    expected = sum(n >= 2 for ns in counts.values() for n in ns)
    code, hits = evr(
        "--data-dir", data, "search", "people walking", "--min-persons", "2", "--k", "500", "--json", capsys=capsys
    )
    assert code == 0 and len(hits) == expected >= 5  # several moments of the street, not one
    assert all(h["person_count"] >= 2 and h["video_id"] == "vtest20" for h in hits)
    assert all(len(h["poses"]) == h["person_count"] for h in hits)
    assert all(label in POSE_LABELS for h in hits for person in h["poses"] for label in person)
    code, hits = evr(
        "--data-dir",
        data,
        "search",
        "--like",
        hits[0]["keyframe_id"],
        "--max-persons",
        "0",
        "--k",
        "500",
        "--json",
        capsys=capsys,
    )
    assert {h["video_id"] for h in hits} == {"counter", "testvideo", "fades"}


def test_torchvision_backend_builds_and_runs_with_random_weights(videos):
    analyzer = PersonAnalyzer(PersonSettings(backend="torchvision", weights="none", device="cpu", min_score=0.0))
    assert analyzer.signature == "torchvision"
    cap = cv2.VideoCapture(str(videos / "msrvtt/video7010.mp4"))
    frames = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(2)]
    results = analyzer.analyze(frames)
    assert len(results) == 2
    for r in results:
        assert 0.0 <= r.mask_area <= 1.0
        for p in r.persons:
            assert len(p.keypoints) == 17 and all(len(k) == 3 for k in p.keypoints)
            assert 0 <= p.box[0] <= p.box[2] <= 1.0001 and 0 <= p.box[1] <= p.box[3] <= 1.0001
            assert p.labels[0] in POSE_LABELS
    assert np.isfinite([p.score for r in results for p in r.persons]).all()


def test_torchvision_backend_keeps_the_persons_of_torchvisions_own_threshold(videos):
    """Keypoint R-CNN drops boxes scoring min_score or less before its keypoint head runs
    (box_score_thresh), not after it has run on every box over torchvision's 0.05: the persons
    kept are the same. Both analyzers get the same random weights (one seed); min_score is set
    between the scores they give, so that it keeps some boxes and drops others."""
    cap = cv2.VideoCapture(str(videos / "msrvtt/video7010.mp4"))
    frames = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(2)]

    def analyzer(min_score: float) -> PersonAnalyzer:
        import torch

        torch.manual_seed(0)
        built = PersonAnalyzer(
            PersonSettings(backend="torchvision", weights="none", device="cpu", min_score=min_score, detect_size=320)
        )
        built.backend.load()
        assert built.backend._keypoints.roi_heads.score_thresh == min_score
        return built

    every = analyzer(0.05).analyze(frames)
    scores = sorted({p.score for r in every for p in r.persons})
    assert len(scores) >= 4
    middle = len(scores) // 2
    min_score = (scores[middle - 1] + scores[middle]) / 2
    kept = analyzer(min_score).analyze(frames)
    assert 0 < sum(len(k.persons) for k in kept) < sum(len(e.persons) for e in every)
    for k, e in zip(kept, every):
        over = [p for p in e.persons if p.score > min_score]
        assert len(k.persons) == len(over)
        np.testing.assert_allclose([p.score for p in k.persons], [p.score for p in over], atol=1e-5)
        np.testing.assert_allclose([p.box for p in k.persons], [p.box for p in over], atol=1e-4)
        np.testing.assert_allclose([p.keypoints for p in k.persons], [p.keypoints for p in over], atol=1e-4)
        assert k.mask_area == e.mask_area


def test_torchvision_backend_batches_give_the_frames_own_results(videos):
    """A batch of frames of two sizes gives each frame what it gets alone (Keypoint R-CNN pads a
    batch; DeepLabV3 stacks frames of one size)."""
    analyzer = PersonAnalyzer(PersonSettings(backend="torchvision", weights="none", device="cpu", min_score=0.0))
    cap = cv2.VideoCapture(str(videos / "msrvtt/video7010.mp4"))
    frames = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(2)]
    frames.append(cv2.resize(frames[0], (frames[0].shape[1] // 2, frames[0].shape[0] // 2)))
    together = analyzer.analyze(frames)
    alone = [analyzer.analyze([f])[0] for f in frames]
    for a, b in zip(together, alone):
        assert len(a.persons) == len(b.persons)
        assert abs(a.mask_area - b.mask_area) < 0.01
        np.testing.assert_allclose([p.box for p in a.persons], [p.box for p in b.persons], atol=0.01)


def test_torchvision_backend_masks_only_frames_where_people_were_found(videos, monkeypatch):
    """DeepLabV3 runs on the frames where Keypoint R-CNN kept a person, and only on them: a frame
    without a person stores no mask. (Random weights; the threshold decides who is found.)"""
    cap = cv2.VideoCapture(str(videos / "msrvtt/video7010.mp4"))
    frames = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(2)]
    analyzer = PersonAnalyzer(
        PersonSettings(backend="torchvision", weights="none", device="cpu", min_score=1.0, detect_size=320)
    )
    analyzer.backend.load()
    masked = []
    real = analyzer.backend._person_masks
    monkeypatch.setattr(analyzer.backend, "_person_masks", lambda tensors: masked.append(len(tensors)) or real(tensors))
    none = analyzer.analyze(frames)  # no box scores over 1.0
    assert masked == [] and all(r.persons == [] and r.mask_area == 0.0 for r in none)
    analyzer.backend.min_score = 0.0
    analyzer.backend._keypoints.roi_heads.score_thresh = 0.0
    found = analyzer.analyze(frames)
    assert all(r.persons for r in found) and masked == [2]
