"""Speech: a video built here with espeak-ng speech at known times over real footage, transcribed
by pocketsphinx (the offline backend), searched by what is said; silent and soundless videos."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

from evr.indexer.analyzers.speech import SpeechAnalyzer, SpeechSettings
from evr.indexer.analyzers.speech.whisper_backend import _windows
from evr.indexer.audio import RATE, pcm_blocks
from evr.storage import KeyframeFilter, NewKeyframe, SpeechSegment, Store

from .conftest import REPO, evr, speech_search
from .test_store import INFO, unit

pytestmark = pytest.mark.e2e

# What is said in speech.mp4 and when (seconds): words pocketsphinx reads back from espeak-ng.
SAID = [("hello world", 6.0), ("two three four five", 13.0)]


def _ffmpeg(*args) -> None:
    subprocess.run(["ffmpeg", "-y", "-v", "error", *map(str, args)], check=True)


def speech_video(out: Path, footage: Path, said: list[tuple[str, float]], work: Path) -> Path:
    """`footage`'s pictures with a sound track of silence and these phrases (espeak-ng) at these
    times, as AAC in an mp4: what a news clip with a speaker looks like to the indexer."""
    inputs, filters = [], []
    for i, (words, at) in enumerate(said):
        wav = work / f"said{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(wav), words], check=True)
        inputs += ["-i", wav]
        filters.append(f"[{i + 1}:a]adelay={int(at * 1000)}[a{i}]")
    mix = "".join(f"[a{i}]" for i in range(len(said)))
    _ffmpeg(
        "-i",
        footage,
        *inputs,
        "-filter_complex",
        ";".join(filters) + f";{mix}amix=inputs={len(said)}:normalize=0,apad[a]",
        "-map",
        "0:v",
        "-map",
        "[a]",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-shortest",
        out,
    )
    return out


@pytest.fixture(scope="module")
def spoken(videos, tmp_path_factory):
    """An index of three videos: speech.mp4 (SAID over MSR-VTT footage), silent.mp4 (a silent
    sound track) and noaudio.mp4 (no audio stream at all)."""
    folder = tmp_path_factory.mktemp("speech_videos")
    speech_video(folder / "speech.mp4", videos / "msrvtt/video7010.mp4", SAID, tmp_path_factory.mktemp("wav"))
    _ffmpeg(
        "-i",
        videos / "msrvtt/video7011.mp4",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=44100:cl=stereo",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-shortest",
        folder / "silent.mp4",
    )
    _ffmpeg("-i", videos / "msrvtt/video7013.mp4", "-c", "copy", "-an", folder / "noaudio.mp4")
    data = tmp_path_factory.mktemp("speech_index")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVR_SPEECH_ENABLED", "true")
        mp.setenv("EVR_SPEECH_BACKEND", "pocketsphinx")
        mp.setenv("EVR_SPEECH_LANGUAGE", "en")  # pocketsphinx reads English only
        assert evr("--data-dir", data, "index", folder, "--no-progress") == (0, "")
    return data


def _words_said(data: Path) -> dict[str, list[tuple[str, float, float]]]:
    """Each transcribed word with its times, by video."""
    with sqlite3.connect(data / "evr.sqlite") as db:
        rows = db.execute(
            "SELECT v.stem, s.words FROM speech_segments s JOIN videos v ON v.id = s.video_id ORDER BY s.start"
        ).fetchall()
    out: dict[str, list] = {}
    for stem, words in rows:
        out.setdefault(stem, []).extend(tuple(w) for w in json.loads(words))
    return out


def _keyframe_times(data: Path, stem: str) -> dict[int, float]:
    with sqlite3.connect(data / "evr.sqlite") as db:
        return dict(
            db.execute(
                "SELECT k.id, k.timestamp FROM keyframes k JOIN videos v ON v.id = k.video_id WHERE v.stem = ?", (stem,)
            ).fetchall()
        )


def test_speech_is_transcribed_at_the_time_it_is_said_and_silence_is_not(spoken, capsys):
    said = _words_said(spoken)
    assert set(said) == {"speech"}  # nothing heard in the silent track, no track at all in the other
    words = said["speech"]
    for phrase, at in SAID:
        first = phrase.split()[0]
        times = [start for word, start, _ in words if word == first]
        assert times, f"{first!r} not in {words}"
        assert at <= times[0] <= at + 0.5  # espeak-ng starts its first word within a few frames
    code, stats = evr("--data-dir", spoken, "stats", "--json", capsys=capsys)
    assert code == 0 and stats["videos"] == 3 and stats["videos_failed"] == 0 and stats["speech_segments"] == 2
    with sqlite3.connect(spoken / "evr.sqlite") as db:
        analyzers = [json.loads(plan)["analyzers"] for (plan,) in db.execute("SELECT plan FROM videos")]
        counts = dict(
            db.execute(
                "SELECT v.stem, count(k.id) FROM videos v JOIN keyframes k ON k.video_id = v.id GROUP BY v.stem"
            ).fetchall()
        )
    assert all(a["speech"] == "pocketsphinx:en-us" for a in analyzers)
    assert set(counts) == {"speech", "silent", "noaudio"} and min(counts.values()) > 5


@pytest.mark.parametrize("phrase", [p for p, _ in SAID])
def test_speech_search_finds_the_video_and_the_keyframe_nearest_the_words(spoken, phrase, capsys):
    code, hits = evr("--data-dir", spoken, "search", "--speech", phrase.upper(), "--json", capsys=capsys)
    assert code == 0 and len(hits) == 1
    hit = hits[0]
    assert hit["video_id"] == "speech" and hit["match"] == "speech"
    assert hit["speech"]["text"] == phrase and hit["speech"]["language"] == "en"
    first_word_at = next(start for word, start, _ in _words_said(spoken)["speech"] if word == phrase.split()[0])
    times = _keyframe_times(spoken, "speech")
    nearest = min(times, key=lambda kid: abs(times[kid] - first_word_at))
    assert hit["keyframe_id"] == nearest
    assert abs(hit["timestamp"] - first_word_at) <= 1.0  # keyframes are at most 2 s apart


def test_a_text_query_fuses_the_transcript_and_speech_filters_by_time(spoken, capsys):
    times = _keyframe_times(spoken, "speech")
    code, hits = evr("--data-dir", spoken, "search", "hello world", "-k", 200, "--json", capsys=capsys)
    assert code == 0
    # Every keyframe is in the CLIP list (k covers them all), so the one that hears the words
    # has the best fused score: 1/61 from the transcript on top of its CLIP share.
    top = hits[0]
    assert top["video_id"] == "speech" and top["match"] == "clip+speech" and top["speech"]["text"] == "hello world"
    assert {h["match"] for h in hits[1:]} == {"clip"}
    segment = top["speech"]
    # As a filter: only the keyframes within 2 s of a segment that says every word.
    code, hits = evr(
        "--data-dir", spoken, "search", "a street", "--speech", "world hello", "-k", 200, "--json", capsys=capsys
    )
    assert code == 0 and hits
    expected = {kid for kid, t in times.items() if segment["start"] - 2 <= t <= segment["end"] + 2}
    assert {h["keyframe_id"] for h in hits} == expected
    assert all(h["speech"]["text"] == "hello world" for h in hits)
    code, hits = evr("--data-dir", spoken, "search", "a street", "--speech", "hello five", "--json", capsys=capsys)
    assert (code, hits) == (0, [])  # said, but not in one segment


def test_summaries_quote_what_is_said(spoken, capsys):
    code, hits = evr("--data-dir", spoken, "search", "--speech", "hello", "--json", capsys=capsys)
    code, summary = evr("--data-dir", spoken, "summarize", hits[0]["keyframe_id"], "--json", capsys=capsys)
    assert code == 0 and "Said: “hello world”." in summary["text"]
    code, summary = evr(
        "--data-dir", spoken, "summarize", hits[0]["keyframe_id"], "--lang", "vi", "--json", capsys=capsys
    )
    assert "Lời nói: “hello world”." in summary["text"]


def test_bad_speech_queries_get_a_message(spoken, capsys):
    code, _ = evr("--data-dir", spoken, "search", "--speech", "?!")
    assert code == 2 and "--speech has no words to look for" in capsys.readouterr().err


def test_speech_segments_are_replaced_with_their_video_and_leave_with_it(tmp_path):
    with Store(tmp_path, writer=True) as store:
        vid = store.writes.start_video("/v/a.mp4", 1, 1)
        frames = [NewKeyframe(i * 25, float(i), 0, b"jpeg", unit(i)) for i in range(10)]
        first = [
            SpeechSegment(
                2.0,
                3.0,
                "Hà Nội hôm nay",
                "vi",
                0.9,
                (("Hà", 2.0, 2.3), ("Nội", 2.3, 2.6), ("hôm", 2.6, 2.8), ("nay", 2.8, 3.0)),
            )
        ]
        store.writes.save_video(vid, INFO, frames, video_analyses={"speech": first})
        found = speech_search(store, "ha noi")  # accents and case folded, as OCR
        assert len(found) == 1 and store.catalog.keyframes([found[0][0]])[found[0][0]].timestamp == 2.0
        store.writes.save_video(
            vid, INFO, frames, video_analyses={"speech": [SpeechSegment(7.0, 8.0, "lũ lụt", "vi", 0.8)]}
        )
        assert speech_search(store, "ha noi") == []
        [(kid, _)] = speech_search(store, "lu lut")
        assert store.catalog.keyframes([kid])[kid].timestamp == 7.0  # no word times: the segment's start
        assert store.filters.ids(KeyframeFilter.of(speech="lũ lụt")).size == 5  # 5 s to 10 s: within 2 s
        assert store.health.stats()["speech_segments"] == 1
        store.writes.prune([])
        assert store.health.stats()["speech_segments"] == 0
    with sqlite3.connect(tmp_path / "evr.sqlite") as db:
        assert db.execute("SELECT count(*) FROM speech_fts").fetchone() == (0,)  # the trigger emptied it


def test_whisper_windows_cover_the_sound_and_cut_in_a_pause():
    rng = np.random.default_rng(0)
    loud = (rng.normal(0, 3000, 70 * RATE)).astype(np.int16)
    loud[52 * RATE : 52 * RATE + RATE // 5] = 0  # a 200 ms pause 52 s in
    blocks = [loud[i : i + RATE] for i in range(0, loud.size, RATE)]
    windows = list(_windows(blocks, window_s=60))
    starts = [start for start, _ in windows]
    assert starts == [0.0, pytest.approx(52.05, abs=1e-6)]  # the middle of the pause's first 100 ms
    assert np.array_equal(np.concatenate([w for _, w in windows]), loud)  # nothing lost or repeated


def test_speech_backend_choice_offline(monkeypatch, caplog):
    """Without Whisper's model, pocketsphinx transcribes only an archive configured as English:
    on any other speech it would hear English words that were never said."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    english = SpeechAnalyzer(SpeechSettings(backend="auto", language="en"))
    assert english.signature == "pocketsphinx:en-us"  # faster-whisper's model cannot be had here
    assert "hf download Systran/faster-whisper-small" in caplog.text
    for language in ("auto", "vi"):  # not English only: speech is off, said once
        caplog.clear()
        off = SpeechAnalyzer(SpeechSettings(backend="auto", language=language))
        assert off.signature == "" and off.analyze_file("x.mp4") is None
        assert caplog.text.count("speech is off for this run") == 1
        assert "pocketsphinx reads English only" in caplog.text


def test_sound_is_streamed_at_16_khz(videos):
    blocks = list(pcm_blocks(str(videos / "msrvtt/video7010.mp4"), block_s=0.5))
    assert {b.dtype for b in blocks} == {np.dtype(np.int16)} and all(b.size == RATE // 2 for b in blocks[:-1])
    assert abs(sum(b.size for b in blocks) / RATE - 18.0) < 0.1  # the clip's 18 s of sound
    assert list(pcm_blocks(str(videos / "msrvtt/video7013.mp4"))) == []  # no audio stream


def test_the_app_filters_by_spoken_words_and_shows_them(spoken, monkeypatch, capsys):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EVR_STORAGE_DATA_DIR", str(spoken))
    at = AppTest.from_file(str(REPO / "ui" / "app.py"), default_timeout=120)
    at.run()
    at.sidebar.text_input(key="speech").input("hello world").run()  # alone, the words are the query
    assert not at.exception
    code, hits = evr("--data-dir", spoken, "search", "--speech", "hello world", "--json", capsys=capsys)
    assert [h.keyframe_id for h in at.session_state["hits"]] == [h["keyframe_id"] for h in hits]
    from .conftest import results_element

    cards = results_element(at)["cards"]
    assert len(cards) == 1 and any('said "hello world' in line for line in cards[0]["lines"])
    at.text_input(key="query").input("a street").run()  # with a query, a filter
    code, hits = evr(
        "--data-dir", spoken, "search", "a street", "--speech", "hello world", "-k", 24, "--json", capsys=capsys
    )
    assert [h.keyframe_id for h in at.session_state["hits"]] == [h["keyframe_id"] for h in hits] and len(hits) > 1


def test_analyze_transcribes_imported_videos_from_the_package_s_files(videos, tmp_path, capsys, monkeypatch):
    from .aic_package import add_video
    from .test_contest import import_aic

    clip = speech_video(tmp_path / "news.mp4", videos / "msrvtt/video7010.mp4", SAID[:1], tmp_path)
    root = tmp_path / "pkg"
    add_video(root, "L05", 1, clip, frames=[15, 75, 150])  # 1 s, 5 s, 10 s at 15 fps
    data = tmp_path / "data"
    code, report = import_aic(data, root, capsys)
    assert code == 0 and report["videos_imported"] == 1
    monkeypatch.setenv("EVR_SPEECH_ENABLED", "true")
    monkeypatch.setenv("EVR_SPEECH_BACKEND", "pocketsphinx")
    monkeypatch.setenv("EVR_SPEECH_LANGUAGE", "en")
    code, report = evr("--data-dir", data, "analyze", "--no-progress", "--json", capsys=capsys)
    assert code == 0 and report["videos_analyzed"] == 1
    code, hits = evr("--data-dir", data, "search", "--speech", "hello", "--json", capsys=capsys)
    assert code == 0 and [(h["video_id"], h["frame_idx"]) for h in hits] == [("L05_V001", 75)]  # nearest 6 s
    assert hits[0]["speech"]["text"] == "hello world"
    code, again = evr("--data-dir", data, "analyze", "--no-progress", "--json", capsys=capsys)
    assert code == 0 and again["videos_skipped"] == 1  # transcribed already


def test_the_faster_whisper_backend_runs_end_to_end_on_a_random_weight_model(spoken, tmp_path, capsys, monkeypatch):
    """The faster-whisper path of `evr index` (model folder, windows, Silero's voice filter, word
    times, storage), on a tiny random-weight Whisper: what it says is noise, where is checked."""
    from .tiny_whisper import build_tiny_whisper

    model = build_tiny_whisper(tmp_path / "whisper")
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("speech", "silent", "noaudio"):  # the videos of the `spoken` index
        (folder / f"{name}.mp4").symlink_to(Path(_media_path(spoken, name)))
    data = tmp_path / "data"
    monkeypatch.setenv("EVR_SPEECH_ENABLED", "true")
    monkeypatch.setenv("EVR_SPEECH_BACKEND", "faster-whisper")
    monkeypatch.setenv("EVR_SPEECH_MODEL", str(model))
    monkeypatch.setenv("EVR_SPEECH_LANGUAGE", "en")
    monkeypatch.setenv("EVR_SPEECH_WINDOW_S", "30")  # the 18 s clip in one window
    code, report = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and report["videos_indexed"] == 3 and report["stage_seconds"]["speech"] > 0, report
    with sqlite3.connect(data / "evr.sqlite") as db:
        analyzers = [json.loads(plan)["analyzers"] for (plan,) in db.execute("SELECT plan FROM videos")]
        assert len(analyzers) == 3 and all(a["speech"] == "faster-whisper:model:en" for a in analyzers)
        segments = db.execute(
            "SELECT v.stem, s.start, s.end, s.language FROM speech_segments s JOIN videos v ON v.id = s.video_id"
        ).fetchall()
    # Silero's voice filter passes only the speech: nothing from the silent track, and each
    # segment inside the clip's 18 s.
    assert segments and {stem for stem, *_ in segments} == {"speech"}
    assert all(0 <= start <= end <= 18.2 and language == "en" for _, start, end, language in segments)


def _media_path(data: Path, stem: str) -> str:
    with sqlite3.connect(data / "evr.sqlite") as db:
        return db.execute("SELECT path FROM videos WHERE stem = ?", (stem,)).fetchone()[0]


def test_pocketsphinx_reads_a_file_the_same_whatever_came_before(spoken, videos):
    from evr.indexer.analyzers.speech import PocketsphinxBackend

    backend = PocketsphinxBackend(SpeechSettings(language="en"))
    speech = _media_path(spoken, "speech")
    first = list(backend.transcribe(pcm_blocks(speech)))
    list(backend.transcribe(pcm_blocks(str(videos / "msrvtt/video7012.mp4"))))  # music and voices
    assert list(backend.transcribe(pcm_blocks(speech))) == first  # confidences included


def test_faster_whisper_gives_the_same_transcript_every_run(spoken, tmp_path):
    """Whisper falls back to sampling where a greedy reading fails its checks, as the random
    model's always do: the seeded backend still reads the same sound the same way each time it
    loads (this once failed on a loaded machine: no segments where there were some before)."""
    from evr.indexer.analyzers.speech import WhisperBackend

    from .tiny_whisper import build_tiny_whisper

    model = str(build_tiny_whisper(tmp_path / "whisper"))
    speech = _media_path(spoken, "speech")
    readings = []
    for _ in range(3):
        backend = WhisperBackend(SpeechSettings(model=model, language="en", window_s=30), model)
        readings.append(list(backend.transcribe(pcm_blocks(speech))))
        backend.close()
    assert readings[0] and readings[0] == readings[1] == readings[2]


def test_switching_speech_on_transcribes_indexed_videos_and_keeps_their_keyframes(
    spoken, tmp_path, capsys, monkeypatch
):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("speech", "noaudio"):
        (folder / f"{name}.mp4").symlink_to(Path(_media_path(spoken, name)))
    data = tmp_path / "data"
    code, first = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and first["videos_indexed"] == 2
    before = {**_keyframe_times(data, "speech"), **_keyframe_times(data, "noaudio")}
    monkeypatch.setenv("EVR_SPEECH_ENABLED", "true")
    monkeypatch.setenv("EVR_SPEECH_BACKEND", "pocketsphinx")
    monkeypatch.setenv("EVR_SPEECH_LANGUAGE", "en")
    code, second = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and (second["videos_indexed"], second["videos_analyzed"]) == (0, 2)
    assert second["frames_decoded"] == 0 and second["keyframes_added"] == 0 and second["stage_seconds"]["speech"] > 0
    assert {**_keyframe_times(data, "speech"), **_keyframe_times(data, "noaudio")} == before  # same ids, same times
    code, hits = evr("--data-dir", data, "search", "--speech", "hello world", "--json", capsys=capsys)
    assert code == 0 and [h["video_id"] for h in hits] == ["speech"] and hits[0]["keyframe_id"] in before
    code, third = evr("--data-dir", data, "index", folder, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and third["videos_skipped"] == 2  # transcribed: nothing left to do
    with sqlite3.connect(data / "evr.sqlite") as db:
        assert {json.loads(plan)["analyzers"]["speech"] for (plan,) in db.execute("SELECT plan FROM videos")} == {
            "pocketsphinx:en-us"
        }
