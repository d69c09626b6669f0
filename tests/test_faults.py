"""Faults and hostile input: a failing disk stops a run without losing anything, a live index
reads as healthy, every bad argument or setting is a usage error, odd files are reported plainly."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from evr.indexer.encoders.clip import ClipEncoder
from evr.search import QueryError, read_image
from evr.search.query import MAX_QUERY_PIXELS
from evr.storage import Store
from evr.storage import database as storage_database

from .conftest import REPO, TEST_ENV, evr, evr_process, run

pytestmark = pytest.mark.integration

CLIPS = ["video7010", "video7011", "video7012"]


@pytest.fixture
def three_clips(videos, tmp_path) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in CLIPS:
        (folder / f"{name}.mp4").symlink_to(videos / f"msrvtt/{name}.mp4")
    return folder


def thumb_dirs(data: Path) -> list[str]:
    return sorted(p.name for p in (data / "thumbs").iterdir())


def check_stopped_then_resumed(data: Path, folder: Path, capsys, reason: str) -> None:
    """After a stop on the second video: one error line, the JSON report, nothing failed or
    orphaned; a plain re-run then finishes the job."""
    code, report, err = run(capsys, "--data-dir", data, "index", folder, "--no-progress", "--json")
    assert code == 1
    assert report["videos_indexed"] == 1 and report["videos_pending"] == 2 and report["videos_failed"] == []
    assert reason in report["stopped"] and "free" in report["stopped"] and "Traceback" not in err
    assert err.count("evr: error:") == 1 and "run `evr index` again" in err
    code, stats = evr("--data-dir", data, "stats", "--json", capsys=capsys)
    assert code == 0 and (stats["videos"], stats["videos_failed"], stats["videos_incomplete"]) == (1, 0, 1)
    assert len(thumb_dirs(data)) == 1  # the stopped video left no thumbnails behind


def check_resumed(data: Path, folder: Path, capsys) -> None:
    code, report = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and (report["videos_indexed"], report["videos_skipped"]) == (2, 1) and not report["stopped"]
    code, stats = evr("--data-dir", data, "stats", "--json", capsys=capsys)
    assert code == 0 and stats["consistent"] and (stats["videos"], stats["videos_failed"]) == (3, 0)
    assert len(thumb_dirs(data)) == 3 and stats["keyframes"] == stats["vectors"]


def test_full_thumbnail_disk_stops_the_run_and_a_rerun_finishes(three_clips, tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    real_write = Path.write_bytes
    written_dirs: set[str] = set()

    def disk_fills_on_the_second_video(self, content):
        written_dirs.add(self.parent.name)
        if len(written_dirs) > 1 and self.suffix == ".jpg":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write(self, content)

    monkeypatch.setattr(Path, "write_bytes", disk_fills_on_the_second_video)
    check_stopped_then_resumed(data, three_clips, capsys, "No space left on device")
    monkeypatch.setattr(Path, "write_bytes", real_write)  # space freed
    check_resumed(data, three_clips, capsys)


def test_full_database_stops_the_run_and_a_rerun_finishes(three_clips, tmp_path, capsys, monkeypatch):
    """A real SQLITE_FULL: the database may not grow past its size after the first video."""
    data = tmp_path / "data"
    assert evr("--data-dir", data, "index", three_clips / f"{CLIPS[0]}.mp4", "--no-progress", capsys=capsys)[0] == 0
    with sqlite3.connect(data / "evr.sqlite") as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    real_pragmas = storage_database.sqlite_pragmas

    def capped(dbapi_conn, record):
        real_pragmas(dbapi_conn, record)
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    monkeypatch.setattr(storage_database, "sqlite_pragmas", capped)
    code, report, err = run(capsys, "--data-dir", data, "index", three_clips, "--no-progress", "--json")
    assert code == 1 and report["videos_skipped"] == 1 and report["videos_indexed"] == 0
    assert "the database or disk is full" in report["stopped"] and "evr.sqlite" in report["stopped"]
    assert report["videos_failed"] == [] and err.count("evr: error:") == 1 and "sqlalchemy" not in err.lower()
    monkeypatch.setattr(storage_database, "sqlite_pragmas", real_pragmas)
    code, report = evr("--data-dir", data, "index", three_clips, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and (report["videos_indexed"], report["videos_skipped"]) == (2, 1)
    code, stats = evr("--data-dir", data, "stats", "--json", capsys=capsys)
    assert stats["consistent"] and (stats["videos"], stats["videos_failed"], stats["videos_incomplete"]) == (3, 0, 0)


def test_read_only_data_dir_is_one_line_and_a_json_report(three_clips, tmp_path, capsys, monkeypatch):
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if "data" in self.parts:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    code, report, err = run(capsys, "--data-dir", tmp_path / "data", "index", three_clips, "--no-progress", "--json")
    assert code == 1 and "Read-only file system" in report["stopped"] and report["videos_indexed"] == 0
    assert err.count("evr: error:") == 1 and "Traceback" not in err


@pytest.mark.e2e  # whole evr processes
def test_reads_during_a_live_run_see_a_healthy_index(sample_dir, tmp_path):
    """FAISS is not saved during this run at all: every reader must answer from SQLite."""
    data = tmp_path / "data"
    env = {**os.environ, **TEST_ENV, "EVR_STORAGE_CHECKPOINT_S": "3600"}
    run = subprocess.Popen(
        [sys.executable, "-m", "evr.ui.cli", "--data-dir", str(data), "index", str(sample_dir), "--no-progress"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stats_seen, searches_with_hits = [], 0
    try:
        while run.poll() is None:
            if not (data / "evr.sqlite").exists():
                time.sleep(0.1)
                continue
            stats = evr_process("--data-dir", data, "stats", "--json")
            assert stats.returncode == 0, stats.stdout + stats.stderr
            assert "repaired" not in stats.stderr
            stats_seen.append(json.loads(stats.stdout))
            if stats_seen[-1]["keyframes"]:
                found = evr_process("--data-dir", data, "search", "a person", "--k", "3", "--json")
                assert found.returncode == 0 and "repaired" not in found.stderr, found.stderr
                searches_with_hits += bool(json.loads(found.stdout))
    finally:
        run.wait(timeout=300)
    assert run.returncode == 0, run.stderr
    live = [s for s in stats_seen if 0 < s["videos"] < 6]
    assert live and all(s["consistent"] and s["vectors"] == s["keyframes"] for s in live)
    assert any(s["vectors_pending"] > 0 for s in live)  # the file lagged, and that was fine
    assert searches_with_hits >= 1


@pytest.mark.e2e  # whole evr processes
def test_search_before_anything_is_committed_says_a_run_is_under_way(tmp_path):
    data = tmp_path / "data"
    with Store(data, writer=True):  # an index run that has not committed anything yet
        result = evr_process("--data-dir", data, "search", "a person")
    assert result.returncode == 1 and "an `evr index` run has just started" in result.stderr


@pytest.fixture
def no_model_loads(monkeypatch):
    def refuse(self):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(ClipEncoder, "load", refuse)
    monkeypatch.setattr(ClipEncoder, "_build", refuse)


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "x", "--from", "nan"], "--from must be a finite number"),
        (["search", "x", "--from", "inf"], "--from must be a finite number"),
        (["search", "x", "--to=-inf"], "--to must be a finite number"),
        (["search", "x", "--then", "y", "--within", "nan"], "--within must be a finite number"),
        (["search", "--like", "9223372036854775808"], "a keyframe id is a whole number from 1"),
        (["search", "--like", "0"], "a keyframe id is a whole number from 1"),
        (["search", "x", "--min-persons", "99999999999999999999"], "--min-persons must be a count"),
        (["search", "x", "--k", "1000000000"], "k must be between 1 and"),
        (["search", "x", "--group", "video", "--per-video=-1"], "--per-video must be between 1"),
        (["summarize", "9223372036854775808"], "a keyframe id is a whole number from 1"),
        (["search", "x", "--ocr", "!!!"], "no words"),
        (["search", "x", "--export", "aic", "--out", "/"], "--out / is a folder"),
        (["summarize", "1", "--speak", "/no/such/folder/x.wav"], "the folder /no/such/folder does not exist"),
    ],
)
def test_bad_arguments_are_usage_errors(indexed, capsys, no_model_loads, args, message):
    code, _, err = run(capsys, "--data-dir", indexed, *args)
    assert code == 2 and message in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "env, message",
    [
        ({"EVR_CLIP_DEVICE": "tpu"}, "clip.device must be one of auto, cpu, cuda"),
        ({"EVR_OCR_DEVICE": "gpu"}, "ocr.device must be one of"),
        ({"EVR_DECODE_BACKENDS": "decrod"}, "decode.backends has unknown 'decrod'"),
        (
            {"EVR_DECODE_BACKENDS": "[]"},
            "decode.backends must name at least one of nvdec, decord, pyav, opencv, torchcodec",
        ),
        ({"EVR_PERSONS_BACKEND": "mediapip"}, "persons.backend must be one of auto, torchvision, mediapipe"),
        ({"EVR_SUMMARY_LANGUAGE": "fr"}, "summary.language must be one of en, vi"),
        ({"EVR_OCR_LANGUAGES": "vi,xx"}, "ocr.languages has unknown 'xx'"),
        ({"EVR_VOICE_ENGINES": "say"}, "voice.engines has unknown 'say'"),
        ({"EVR_KEYFRAMES_SAMPLE_S": "nan"}, "keyframes.sample_s must be a finite number"),
        ({"EVR_KEYFRAMES_MAX_GAP_S": "0"}, "keyframes.max_gap_s must be more than 0"),
        ({"EVR_KEYFRAMES_MIN_CHANGE": "1.5"}, "keyframes.min_change must be at least 0 and at most 1"),
        ({"EVR_CLIP_BATCH_SIZE": "-1"}, "clip.batch_size must be at least 0"),
        ({"EVR_STORAGE_CHECKPOINT_S": "-inf"}, "storage.checkpoint_s must be a finite number"),
        ({"EVR_UI_PORT": "70000"}, "ui.port must be at least 1 and at most 65535"),
        ({"EVR_VECTORS_KIND": "hnsw"}, "vectors.kind must be one of auto, flat, ivf"),
        ({"EVR_VECTORS_IVF_MIN_VECTORS": "10"}, "vectors.ivf_min_vectors must be at least 10000"),
        ({"EVR_UI_PAGE_SIZE": "100000"}, "ui.page_size must be at least 1 and at most 500"),
        ({"EVR_SUMMARY_LABELS": "[1, 2]"}, "summary.labels must be a list of strings"),
    ],
)
@pytest.mark.parametrize("command", [["stats"], ["search", "a person"], ["index", "."]])
def test_bad_settings_are_configuration_errors(indexed, capsys, monkeypatch, no_model_loads, env, message, command):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, _, err = run(capsys, "--data-dir", indexed, *command)
    assert code == 2 and err.startswith("evr: error: configuration: $EVR_") and message in err, err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "content, message",
    [
        (bytes(range(256)) * 4, "is not UTF-8 text"),
        (b"[keyframes]\nmax_gap_s = nan\n", "keyframes.max_gap_s must be a finite number"),
        (b"[shots]\nfade_threshold = inf\n", "shots.fade_threshold must be a finite number"),
        (b"[clip]\nbatch_size = 99999999999999999999\n", "clip.batch_size is out of range"),
    ],
)
def test_bad_config_files_are_configuration_errors(indexed, tmp_path, capsys, no_model_loads, content, message):
    config = tmp_path / "config.toml"
    config.write_bytes(content)
    code, _, err = run(capsys, "--config", config, "--data-dir", indexed, "stats")
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_ui_port_flag_is_checked(indexed, capsys, no_model_loads):
    code, _, err = run(capsys, "--data-dir", indexed, "ui", "--port", "0")
    assert code == 2 and "ui.port must be at least 1" in err


def test_like_then_checks_the_query_model(indexed, capsys, monkeypatch):
    """The first event comes from a stored vector, the second is encoded: with another model
    (512 dimensions against the index's 256) it would be noise."""
    monkeypatch.setenv("EVR_CLIP_MODEL", "ViT-B-32")
    code, _, err = run(capsys, "--data-dir", indexed, "search", "--like", "1", "--then", "a car")
    assert code == 2 and "built with CLIP ViT-S-32-alt (none)" in err


def ffmpeg(*args) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


def cut_off_mp4(videos: Path, out: Path) -> None:
    """moov at the front, then cut: the header promises every frame, the data holds a third."""
    whole = out.with_name("whole-" + out.name)
    ffmpeg("-i", videos / "msrvtt/video7010.mp4", "-c", "copy", "-movflags", "+faststart", whole)
    data = whole.read_bytes()
    out.write_bytes(data[: len(data) * 3 // 10])
    whole.unlink()


def test_odd_files_are_indexed_or_reported_plainly(videos, tmp_path, capsys):
    folder = tmp_path / "odd"
    folder.mkdir()
    for size in ("1x1", "2x2", "3x5", "17x9"):  # decord returns padded rows for some: another decoder reads them
        ffmpeg(
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size={size}:rate=10",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv444p",
            folder / f"tiny{size}.mp4",
        )
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", folder / "audio_only.mp4")
    cut_off_mp4(videos, folder / "truncated.mp4")
    (folder / "loop.mp4").symlink_to("loop.mp4")
    (folder / "broken.mp4").symlink_to("nowhere.mp4")
    code, report = evr("--data-dir", tmp_path / "data", "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 1 and report["videos_indexed"] == 5
    failed = {Path(f["path"]).name: f["error"] for f in report["videos_failed"]}
    assert set(failed) == {"audio_only.mp4", "loop.mp4", "broken.mp4"}
    assert "symbolic link loop" in failed["loop.mp4"] and "broken symbolic link" in failed["broken.mp4"]
    decoders = failed["audio_only.mp4"].removeprefix("cannot decode: ").split("; ")
    assert [d.split(":")[0] for d in decoders] == ["decord", "pyav", "opencv"]
    assert all("\n" not in d and "Check failed" not in d and len(d) < 120 for d in decoders), decoders
    [partial] = report["videos_partial"]
    assert Path(partial["path"]).name == "truncated.mp4" and set(partial) == {
        "path",
        "frames_decoded",
        "frames_expected",
        "error",
    }
    assert 0 < partial["frames_decoded"] < partial["frames_expected"] * 0.5 and partial["error"]
    code, stats = evr("--data-dir", tmp_path / "data", "stats", capsys=capsys)
    assert code == 0 and "partial: " in stats and "truncated.mp4: indexed" in stats


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_cut_off_file_is_partial_and_avi_repeats_are_not(videos, tmp_path, capsys, monkeypatch, backend):
    """tree.avi's header counts 444 frames, of which 68 are pictures (the rest are empty chunks that
    repeat one) spread over its whole 29.6 s: complete. The cut-off MP4 stops at 4 s of 18."""
    monkeypatch.setenv("EVR_DECODE_BACKENDS", backend)
    folder = tmp_path / "v"
    folder.mkdir()
    cut_off_mp4(videos, folder / "truncated.mp4")
    (folder / "tree.avi").symlink_to(videos / "opencv_samples/tree.avi")
    code, report, _ = run(capsys, "--data-dir", tmp_path / "data", "index", folder, "--no-progress", "--json")
    assert code == 0 and report["videos_indexed"] == 2
    assert [Path(p["path"]).name for p in report["videos_partial"]] == ["truncated.mp4"]
    code, shots, _ = run(capsys, "--data-dir", tmp_path / "data", "shots", "truncated", "--json")
    assert code == 0 and shots[-1]["end"] < 6  # the indexed part ends where decoding stopped, not at 18 s


def big_png(path: Path, side: int) -> None:
    """A valid greyscale PNG of side x side pixels, written without holding it in memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\0" * (side + 1)  # filter byte + pixels
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


@pytest.mark.e2e  # whole evr processes
def test_oversized_query_image_is_refused_from_its_header(tmp_path):
    png = tmp_path / "huge.png"
    big_png(png, 20_000)
    assert png.stat().st_size < 2_000_000
    # In a fresh process, so its peak memory is this call's alone.
    probe = (
        "import resource, sys; from evr.search import read_image, QueryError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"try: read_image({str(png)!r}); sys.exit('accepted')\n"
        "except QueryError as e: print(e)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    message, grown_mb = out.stdout.strip().splitlines()
    assert "more than the 25 megapixels" in message and int(grown_mb) < 200
    with pytest.raises(QueryError, match="megapixels"):
        read_image(png.read_bytes())  # an upload in the app: the same check
    big_png(tmp_path / "just_over.png", 5001)  # under Pillow's own limit: our check refuses it
    with pytest.raises(QueryError, match="megapixels"):
        read_image(tmp_path / "just_over.png")
    small = tmp_path / "ok.png"
    big_png(small, 64)
    assert read_image(small).shape == (64, 64, 3) and 64 * 64 < MAX_QUERY_PIXELS
