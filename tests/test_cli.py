"""End to end through the `evr` command line, on real clips, with a random-weight CLIP."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from evr.indexer.decoders import open_video
from evr.storage import Store

from .conftest import REPO, SAMPLE, TEST_ENV, evr, evr_process
from .test_decoders import ffprobe_times

pytestmark = pytest.mark.integration

HIT_KEYS = {
    "rank",
    "keyframe_id",
    "video_id",
    "video_path",
    "frame_idx",
    "timestamp",
    "score",
    "match",
    "thumbnail",
    "ocr_text",
    "person_count",
    "person_area",
    "poses",
    "shot",
    "shot_start",
    "shot_end",
    "encoder",
    "query_language",
    "title",
    "publish_date",
    "watch_url",
    "speech",
    "models",
    "objects",
    "colors",
    "meta",
    "caption",
}


def keyframe_rows(data: Path) -> list[tuple[str, int, float, int]]:
    """(video stem, frame_idx, timestamp, keyframe id) of every stored keyframe."""
    with sqlite3.connect(data / "evr.sqlite") as db:
        return db.execute(
            "SELECT v.stem, k.frame_idx, k.timestamp, k.id FROM keyframes k JOIN videos v ON v.id = k.video_id "
            "ORDER BY v.stem, k.frame_idx"
        ).fetchall()


def test_search_json_contract(indexed, capsys):
    code, hits = evr(
        "--data-dir", indexed, "search", "a man riding a bicycle at night", "--k", "7", "--json", capsys=capsys
    )
    assert code == 0 and len(hits) == 7
    assert all(set(h) == HIT_KEYS for h in hits)
    assert [h["rank"] for h in hits] == list(range(1, 8))
    # A plain file's metadata: no tags, its modification date as its date.
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", h["meta"]["published"]) and h["meta"]["author"] == "" for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    stems = {Path(p).stem for p in SAMPLE}
    for h in hits:
        assert (
            h["match"] == "clip"
            and set(h["models"]) == {"clip"}
            and h["ocr_text"] is None
            and h["person_count"] is None
            and h["poses"] == []
        )
        assert h["video_id"] in stems and Path(h["video_path"]).stem == h["video_id"]
        assert Path(h["thumbnail"]).is_absolute() and Path(h["thumbnail"]).is_file()
        img = cv2.imread(h["thumbnail"])
        assert img is not None and img.shape[1] <= 320


def test_like_returns_the_keyframe_itself_first(indexed, capsys):
    for _, _, _, kid in keyframe_rows(indexed)[::7]:
        code, hits = evr("--data-dir", indexed, "search", "--like", kid, "--k", "3", "--json", capsys=capsys)
        assert code == 0 and hits[0]["keyframe_id"] == kid
        assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)


def test_image_of_a_frame_returns_that_frame_first(indexed, tmp_path, videos, capsys):
    stem, frame_idx, _, kid = next(r for r in keyframe_rows(indexed) if r[0] == "video7011" and r[1] > 0)
    src = open_video(str(videos / "msrvtt/video7011.mp4"), ["decord"], 720)
    frame = next(f for f in src.frames() if f.idx == frame_idx)
    src.close()
    png = tmp_path / "query.png"
    cv2.imwrite(str(png), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
    code, hits = evr("--data-dir", indexed, "search", "--image", png, "--k", "5", "--json", capsys=capsys)
    assert code == 0
    assert (hits[0]["keyframe_id"], hits[0]["video_id"], hits[0]["frame_idx"]) == (kid, stem, frame_idx)


def test_group_by_video(indexed, capsys):
    code, hits = evr(
        "--data-dir",
        indexed,
        "search",
        "people",
        "--group",
        "video",
        "--k",
        "3",
        "--per-video",
        "2",
        "--json",
        capsys=capsys,
    )
    assert code == 0
    order = list(dict.fromkeys(h["video_id"] for h in hits))
    assert len(order) == 3
    assert all(sum(h["video_id"] == v for h in hits) <= 2 for v in order)
    # Videos come in the order of their best hit.
    best = [max(h["score"] for h in hits if h["video_id"] == v) for v in order]
    assert best == sorted(best, reverse=True)


def test_stats_and_incremental_rerun(indexed, sample_dir, capsys):
    code, stats = evr("--data-dir", indexed, "stats", "--json", capsys=capsys)
    assert code == 0
    assert stats["videos"] == len(SAMPLE) and stats["consistent"] is True
    assert stats["keyframes"] == stats["vectors"] == len(keyframe_rows(indexed)) > len(SAMPLE)
    assert stats["model"] == "ViT-S-32-alt"
    code, report = evr("--data-dir", indexed, "index", sample_dir, "--no-progress", "--json", capsys=capsys)
    assert code == 0
    assert (report["videos_indexed"], report["videos_skipped"], report["keyframes_added"]) == (0, len(SAMPLE), 0)
    assert report["videos_failed"] == [] and isinstance(report["seconds"], float)


def test_videos_lists_what_the_decoder_learned_of_each_video(indexed, videos, capsys):
    code, rows = evr("--data-dir", indexed, "videos", "--json", capsys=capsys)
    assert code == 0
    assert sorted(r["video_id"] for r in rows) == sorted(Path(p).stem for p in SAMPLE)
    assert sum(r["keyframes"] for r in rows) == len(keyframe_rows(indexed))
    assert all(r["status"] == "indexed" and r["origin"] == "decoded" and r["decoder"] and r["indexed_at"] for r in rows)
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,avg_frame_rate",
            "-of",
            "json",
            str(videos / "msrvtt/video7010.mp4"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    code, (row,) = evr("--data-dir", indexed, "videos", "video7010", "--json", capsys=capsys)
    num, den = map(int, stream["avg_frame_rate"].split("/"))
    assert (row["width"], row["height"]) == (stream["width"], stream["height"])
    assert abs(row["fps"] - num / den) < 0.01
    assert main_code(["--data-dir", str(indexed), "videos", "no-such-video"]) == 2
    assert "no video with id 'no-such-video'" in capsys.readouterr().err


def test_vfr_keyframe_timestamps_are_right_within_one_frame(indexed, videos):
    truth = ffprobe_times(videos / "scene_cuts/goldeneye-vfr-drop3.mp4")
    rows = [r for r in keyframe_rows(indexed) if r[0] == "goldeneye-vfr-drop3"]
    assert len(rows) >= 3
    for _, frame_idx, timestamp, _ in rows:
        assert abs(timestamp - truth[frame_idx]) <= 1 / 24


def test_changed_file_is_reindexed_and_gone_file_pruned(tmp_path, videos, capsys):
    folder, data = tmp_path / "videos", tmp_path / "data"
    folder.mkdir()
    clip = folder / "clip.mp4"
    shutil.copyfile(videos / "msrvtt/video7010.mp4", clip)
    code, first = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and first["videos_indexed"] == 1
    old_ids = {r[3] for r in keyframe_rows(data)}
    shutil.copyfile(videos / "msrvtt/video7013.mp4", clip)  # same name, new content
    code, second = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and second["videos_indexed"] == 1 and second["videos_skipped"] == 0
    new_ids = {r[3] for r in keyframe_rows(data)}
    assert new_ids and not new_ids & old_ids
    code, stats = evr("--data-dir", data, "stats", "--json", capsys=capsys)
    assert stats["keyframes"] == len(new_ids) and stats["consistent"]
    clip.unlink()
    code, third = evr("--data-dir", data, "index", folder, "--prune", "--no-progress", "--json", capsys=capsys)
    assert code == 0 and third["videos_pruned"] == [str(clip.resolve())]
    code, stats = evr("--data-dir", data, "stats", "--json", capsys=capsys)
    assert (stats["videos"], stats["keyframes"], stats["vectors"], stats["consistent"]) == (0, 0, 0, True)
    assert not any((data / "thumbs").iterdir())


def test_corrupt_files_are_reported_and_the_rest_indexed(tmp_path, videos, capsys):
    folder, data = tmp_path / "videos", tmp_path / "data"
    folder.mkdir()
    shutil.copyfile(videos / "msrvtt/video7012.mp4", folder / "good.mp4")
    (folder / "garbage.mp4").write_bytes(os.urandom(50_000))
    (folder / "empty.avi").write_bytes(b"")
    code, report = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 1
    assert report["videos_indexed"] == 1 and report["keyframes_added"] > 0
    failed = {Path(f["path"]).name: f["error"] for f in report["videos_failed"]}
    assert set(failed) == {"garbage.mp4", "empty.avi"}
    assert all(e.startswith("cannot decode:") for e in failed.values())
    # Unchanged failures are not retried on every run; --retry-failed does.
    code, report = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and report["videos_skipped"] == 3
    code, report = evr("--data-dir", data, "index", folder, "--retry-failed", "--no-progress", "--json", capsys=capsys)
    assert code == 1 and len(report["videos_failed"]) == 2
    code, stats = evr("--data-dir", data, "stats", "--json", capsys=capsys)
    assert stats["videos"] == 1 and stats["videos_failed"] == 2 and stats["consistent"]


@pytest.mark.e2e  # whole evr processes
def test_kill_during_indexing_then_resume(tmp_path, sample_dir, indexed):
    data = tmp_path / "data"
    env = {**os.environ, **TEST_ENV, "EVR_STORAGE_CHECKPOINT_S": "3600"}  # FAISS unsaved until the end
    proc = subprocess.Popen(
        [sys.executable, "-m", "evr.ui.cli", "--data-dir", str(data), "index", str(sample_dir), "--no-progress"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and proc.poll() is None:
        if (data / "evr.sqlite").exists():
            try:
                with sqlite3.connect(data / "evr.sqlite") as db:
                    done = db.execute("SELECT count(*) FROM videos WHERE status = 'indexed'").fetchone()[0]
            except sqlite3.OperationalError:  # tables not created yet
                done = 0
        if done >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the indexer finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= done < len(SAMPLE)
    # Killed before any FAISS save: the file lags, which is no damage.
    after_kill = evr_process("--data-dir", data, "stats", "--json")
    stats = json.loads(after_kill.stdout)
    assert after_kill.returncode == 0 and stats["consistent"] and stats["vectors_pending"] == stats["keyframes"] > 0
    result = evr_process("--data-dir", data, "index", sample_dir, "--no-progress", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["videos_skipped"] >= 2 and report["videos_indexed"] == len(SAMPLE) - report["videos_skipped"]
    stats = json.loads(evr_process("--data-dir", data, "stats", "--json").stdout)
    assert stats["consistent"] is True and stats["videos"] == len(SAMPLE)
    # Same keyframes as an uninterrupted run: nothing duplicated, nothing lost.
    resumed = [r[:3] for r in keyframe_rows(data)]
    assert resumed == [r[:3] for r in keyframe_rows(indexed)]
    with Store(data) as store:
        live = {p.name for p in (data / "thumbs").iterdir()}
        assert len(live) == len(SAMPLE)  # no orphan thumbnail folders
        assert store.health.stats()["consistent"]


@pytest.mark.e2e  # whole evr processes
def test_missing_weights_give_one_clear_message(tmp_path, videos):
    clip = videos / "msrvtt/video7010.mp4"
    result = evr_process(
        "--data-dir",
        tmp_path / "a",
        "index",
        clip,
        env_extra={"EVR_CLIP_PRETRAINED": str(tmp_path / "nowhere/weights.bin")},
    )
    assert result.returncode == 3
    assert "weights.bin does not exist" in result.stderr and "Traceback" not in result.stderr
    # A hub tag that is not cached, with no network: the message says how to get the weights.
    result = evr_process(
        "--data-dir",
        tmp_path / "b",
        "index",
        clip,
        env_extra={"EVR_CLIP_MODEL": "ViT-B-32", "EVR_CLIP_PRETRAINED": "openai", "HF_HOME": str(tmp_path / "hf")},
    )
    assert result.returncode == 3, result.stderr
    assert "could not be loaded" in result.stderr and "network" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("evr: error:") == 1


def test_model_mismatch_and_bad_queries_are_refused(indexed, tmp_path, capsys, monkeypatch):
    cases = [
        (["search", ""], 2, "empty"),
        (["search", "x", "--like", "3"], 2, "give one of"),
        (["search", "--like", "99999999"], 2, "no keyframe with id 99999999"),
        (["search", "--image", str(tmp_path / "none.png")], 2, "no such image file"),
        (["search", "x", "--k", "0"], 2, "k must be between 1 and"),
    ]
    for args, code, message in cases:
        assert main_code(["--data-dir", str(indexed), *args]) == code
        assert message in capsys.readouterr().err
    for command in (["search", "x"], ["stats"], ["shots", "x"]):  # no index there: the user's mistake, 2
        assert main_code(["--data-dir", str(tmp_path / "empty"), *command]) == 2
        assert "no index" in capsys.readouterr().err
    assert not (tmp_path / "empty").exists()
    monkeypatch.setenv("EVR_CLIP_MODEL", "ViT-B-32")
    assert main_code(["--data-dir", str(indexed), "search", "a dog"]) == 2
    assert "built with CLIP ViT-S-32-alt (none)" in capsys.readouterr().err


@pytest.mark.e2e  # whole evr processes
def test_results_on_stdout_logs_on_stderr(indexed):
    result = evr_process("search", "a red car", "--data-dir", indexed, "--k", "2", "--json")
    assert result.returncode == 0
    assert len(json.loads(result.stdout)) == 2  # stdout is pure JSON
    assert "RANDOM weights" in result.stderr  # the honest warning goes to stderr


def main_code(argv: list[str]) -> int:
    from evr.ui.cli import main

    return main(argv)


def test_summarize_json_and_speech(indexed, tmp_path, capsys):
    kid = keyframe_rows(indexed)[3][3]
    code, out = evr("--data-dir", indexed, "summarize", kid, "--lang", "vi", "--json", capsys=capsys)
    assert code == 0
    assert set(out) == {"keyframe_id", "video_id", "timestamp", "window", "text", "language", "tags"}
    assert out["keyframe_id"] == kid and out["language"] == "vi" and len(out["tags"]) == 3
    start, end = out["window"]
    assert start <= out["timestamp"] <= end and end - start <= 10.0 + 1e-6
    assert out["text"].startswith(f"Video {out['video_id']}, lúc ") and "Cảnh giống:" in out["text"]
    wav = tmp_path / "out.wav"
    code, out = evr("--data-dir", indexed, "summarize", kid, "--lang", "vi", "--json", "--speak", wav, capsys=capsys)
    assert code == 0 and out["engine"] == "espeak-ng" and out["audio"] == str(wav)  # offline: gTTS cannot answer
    assert wav.read_bytes()[:4] == b"RIFF" and wav.read_bytes()[8:12] == b"WAVE"
    mp3 = tmp_path / "out.mp3"  # the extension is a hint: converted
    code, out = evr("--data-dir", indexed, "summarize", kid, "--speak", mp3, "--json", capsys=capsys)
    head = mp3.read_bytes()[:3]
    assert code == 0 and (head == b"ID3" or head[:2] in (b"\xff\xfb", b"\xff\xf3"))
    assert main_code(["--data-dir", str(indexed), "summarize", "99999999"]) == 2


def test_export_aic_csv(indexed, tmp_path, capsys):
    out = tmp_path / "answers.csv"
    code, _ = evr(
        "--data-dir", indexed, "search", "a dog running", "--k", "150", "--export", "aic", "--out", out, capsys=capsys
    )
    code2, hits = evr("--data-dir", indexed, "search", "a dog running", "--k", "150", "--json", capsys=capsys)
    assert code == code2 == 0 and hits
    assert out.read_text() == "".join(f"{h['video_id']},{h['frame_idx']}\n" for h in hits)  # no header
    code, text = evr(
        "--data-dir",
        indexed,
        "search",
        "a person",
        "--then",
        "a car",
        "--within",
        "30",
        "--k",
        "5",
        "--export",
        "aic",
        capsys=capsys,
    )
    rows = [line.split(",") for line in text.splitlines()]
    assert code == 0 and rows and all(len(r) == 3 and int(r[2]) > int(r[1]) for r in rows)
    code, text = evr(
        "--data-dir", indexed, "search", "a dog running", "--k", "3", "--export", "qa", "--answer", "42", capsys=capsys
    )
    assert code == 0 and text == "".join(f"{h['video_id']},{h['frame_idx']},42\n" for h in hits[:3])
    assert main_code(["--data-dir", str(indexed), "search", "a dog", "--export", "qa"]) == 2  # no answer
    assert main_code(["--data-dir", str(indexed), "search", "a dog", "--export", "qa", "--answer", "a\x1bb"]) == 2
    code, text = evr(
        "--data-dir", indexed, "search", "a dog running", "--k", "1", "--export", "qa", "--answer", "a,b", capsys=capsys
    )  # quoted as CSV quotes a field holding a comma
    assert code == 0 and text == f'{hits[0]["video_id"]},{hits[0]["frame_idx"]},"a,b"\n'
    code, data = evr("--data-dir", indexed, "search", "a dog", "--k", "2", "--export", "json", capsys=capsys)
    assert code == 0 and [h["rank"] for h in data] == [1, 2]
    assert main_code(["--data-dir", str(indexed), "search", "x", "--out", str(out)]) == 2


def test_files_sharing_a_video_id_are_indexed_with_a_warning(tmp_path, videos, capsys, caplog):
    for sub, clip in (("day1", "video7010"), ("day2", "video7011")):
        (tmp_path / "v" / sub).mkdir(parents=True)
        shutil.copyfile(videos / f"msrvtt/{clip}.mp4", tmp_path / "v" / sub / "clip.mp4")
    code, report = evr("--data-dir", tmp_path / "d", "index", tmp_path / "v", "--no-progress", "--json", capsys=capsys)
    assert code == 0 and report["videos_indexed"] == 2
    assert "video_id 'clip' is shared by 2 files" in caplog.text


def test_storyboard_holds_every_keyframe_of_the_video_by_shot(indexed, capsys):
    """`evr storyboard VIDEO --json` is the video's shots (as `evr shots` gives them) with every
    keyframe of the index's video in each, in time order, and each keyframe's row."""
    code, board = evr("--data-dir", indexed, "storyboard", "goldeneye-vfr-drop3", "--json", capsys=capsys)
    assert code == 0
    code, shots = evr("--data-dir", indexed, "shots", "goldeneye-vfr-drop3", "--json", capsys=capsys)
    assert code == 0 and len(shots) > 1
    assert [{**s, "keyframes": [k["keyframe_id"] for k in s["keyframes"]]} for s in board["shots"]] == shots
    with Store(indexed) as store:
        video = store.catalog.video_state(board["path"])
        rows = store.catalog.keyframes([k["keyframe_id"] for s in board["shots"] for k in s["keyframes"]])
        every = store.catalog.keyframes_between(video.id, 0, 1e9)
    assert board["keyframes"] == len(every) == len(rows)
    frames = [k for s in board["shots"] for k in s["keyframes"]]
    assert [k["timestamp"] for k in frames] == sorted(k["timestamp"] for k in frames)
    assert all(
        (k["frame_idx"], k["timestamp"], k["thumbnail"])
        == (
            rows[k["keyframe_id"]].frame_idx,
            round(rows[k["keyframe_id"]].timestamp, 3),
            str(rows[k["keyframe_id"]].thumbnail),
        )
        for k in frames
    )
    code, text = evr("--data-dir", indexed, "storyboard", "goldeneye-vfr-drop3", capsys=capsys)
    assert code == 0 and text.splitlines()[0].startswith(
        f"goldeneye-vfr-drop3  {board['path']}  {len(frames)} keyframes"
    )
    code, _ = evr("--data-dir", indexed, "storyboard", "no-such-video", capsys=capsys)
    assert code == 2
