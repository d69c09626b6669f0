"""What the opened hit shows of a keyframe (the browser draws it: ui/web/results.js): where it is,
the player's video and time (the hit's exact time; a shot to loop), the strip of neighbouring
keyframes, what happens there (the summary, read aloud on request), what the analyzers found,
and the answer a submission would send by default. Built when the browser asks for it (the
keyframe opened, and the next and previous hits), once per keyframe and summary language."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from evr.search import Hit, QueryError, SearchEngine
from evr.search.printable import printable
from evr.search.summary import Summarizer, clock
from evr.storage import Storyboard

from .config import AppConfig
from .contest.answers import kis_span, trake_answer
from .media import board_url, playable_video, served_url, thumb_url
from .overlay import draw_shapes
from .voice import VoiceError, speak

STRIP_SECONDS = 10  # the strip holds the keyframes this many seconds either side of the hit
STRIP_MAX = 9  # and at most this many of them, the hit in the middle


def hit_detail(
    engine: SearchEngine, config: AppConfig, summarizer: Summarizer, language: str, hit: Hit, chain: Hit | None = None
) -> dict:
    """The opened hit's view of `hit` (a ranked hit, an event of `chain`, or a keyframe picked in
    the strip), as the browser's viewer reads it."""
    shot = [hit.shot_start, hit.shot_end] if hit.shot_start is not None and hit.shot_end is not None else None
    whole = shot is not None and _shots_in(engine, hit.video_id) == 1
    video, video_error = None, None
    try:
        if hit.video_path is None:
            raise FileNotFoundError("the package has no video file for it")
        video = served_url(playable_video(Path(hit.video_path), config.data_dir / "previews"))
    except Exception as exc:  # a vanished or unreadable file must not break the page
        video_error = f"Cannot play {printable(hit.video_path or hit.video_id)}: {printable(exc)}"
    found, found_caption = _found(engine, hit)
    url = hit.media("watch_url") or ""
    start, end = kis_span(hit, config.dres.kis_window_s)
    return {
        "id": hit.keyframe_id,
        "heading": f"{printable(hit.video_id)} at {clock(hit.timestamp, 1)} (frame {hit.frame_idx}, "
        f"keyframe {hit.keyframe_id})",
        "where": " · ".join(
            printable(v) for v in (hit.media("title"), hit.media("author"), hit.media("publish_date")) if v
        ),
        "watch_url": url if url.startswith(("https://", "http://")) else None,  # no javascript: or other schemes
        "video_id": hit.video_id,
        "board": board_url(hit.video_db_id),  # the whole video's storyboard
        "time": hit.timestamp,
        "video": video,
        "video_error": video_error,
        "shot": shot,
        "whole": whole,
        "shot_label": (
            f"Shot {hit.shot}: {clock(shot[0], 1)} to {clock(shot[1], 1)}" + (" (the whole video)" if whole else "")
        )
        if shot
        else "",
        "strip": _strip(engine, hit, config.data_dir),
        "summary": summarizer.summarize(hit.keyframe_id, language).text,
        "audio": None,
        "spoken_by": "",
        "found": found,
        "found_caption": found_caption,
        "chain": chain is not None,
        "task": "trake" if chain is not None else "kis",
        "span": [round(start, 3), round(end, 3)],
        "trake": trake_answer(chain.chain)["text"] if chain is not None else None,
        "said": None,
    }


def spoken(detail: dict, language: str, config: AppConfig) -> dict:
    """The detail with its summary read aloud: the audio's address and which voice spoke."""
    try:
        voice = speak(detail["summary"], language, config.data_dir / "audio", config.voice)
    except VoiceError as exc:
        return {**detail, "spoken_by": f"Cannot read it aloud: {exc}"}
    engine = f"Spoken by {voice.engine}" + (" (offline voice)" if voice.offline else " (Google TTS)")
    return {**detail, "audio": served_url(voice.path), "spoken_by": engine}


def _shots_in(engine: SearchEngine, video_id: str) -> int | None:
    """How many shots the video has; None where the id is ambiguous (several files share it)."""
    try:
        return len(engine.archive.shots(video_id))
    except QueryError:
        return None


def _strip(engine: SearchEngine, hit: Hit, data_dir: Path) -> list[dict]:
    """The neighbouring keyframes, the hit in the middle, each labelled by its time as briefly as
    no two labels are alike (tenths; hundredths where keyframes lie closer)."""
    rows = engine.archive.neighbours(hit, STRIP_SECONDS)
    at = next((i for i, r in enumerate(rows) if r.keyframe_id == hit.keyframe_id), len(rows) // 2)
    first = max(0, min(at - STRIP_MAX // 2, len(rows) - STRIP_MAX))
    rows = rows[first : first + STRIP_MAX]
    labels = distinct_times([r.timestamp for r in rows])
    return [
        {
            "id": r.keyframe_id,
            "src": thumb_url(r.thumbnail, data_dir),
            "label": label,
            "here": r.keyframe_id == hit.keyframe_id,
            "tip": f"keyframe {r.keyframe_id}, frame {r.frame_idx}",
        }
        for r, label in zip(rows, labels)
    ]


def storyboard_view(board: Storyboard, data_dir: Path) -> dict:
    """A video's storyboard as the browser's viewer reads it: each shot labelled by its number
    and time, each keyframe by its time, with its thumbnail's address."""
    shots = []
    for sh in board.shots:
        label = "Keyframes" if sh.shot is None else f"Shot {sh.shot}: {clock(sh.start, 1)} to {clock(sh.end, 1)}"
        frames = [
            {
                "id": k.keyframe_id,
                "time": k.timestamp,
                "label": clock(k.timestamp, 1),
                "frame": k.frame_idx,
                "src": thumb_url(k.thumbnail, data_dir),
            }
            for k in sh.keyframes
        ]
        shots.append({"label": label, "keyframes": frames})
    return {"video_id": board.video_id, "keyframes": board.keyframes, "shots": shots}


def distinct_times(times: list[float]) -> list[str]:
    """Time labels as short as they can be while no two are alike."""
    for digits in (1, 2, 3):
        labels = [clock(t, digits) for t in times]
        if len(set(labels)) == len(labels):
            break
    return labels


def _found(engine: SearchEngine, hit: Hit) -> tuple[str | None, str]:
    """The keyframe with what the analyzers found drawn on it (text boxes, people, poses), as an
    image address, and the found things' labels; (None, "") when nothing was found."""
    shapes = {name: found for name, found in engine.archive.shapes(hit.keyframe_id).items() if found}
    if not shapes:
        return None, ""
    try:
        frame = np.asarray(Image.open(hit.thumbnail).convert("RGB"))
    except OSError:  # a lost thumbnail: the shapes on a grey frame
        frame = np.full((180, 320, 3), 190, np.uint8)
    drawn = draw_shapes(frame, shapes)
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])[1]
    caption = "; ".join(printable(s.label) for found in shapes.values() for s in found if s.box is not None)
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode(), caption
