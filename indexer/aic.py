"""An AI Challenge data package, read and checked: `evr import aic` (indexer/sources/aic.py)
imports it into the index without decoding any video.

The package (../shared/contest/AIC_DATA.md) gives, per video id: the keyframe JPEGs
(`Keyframes_*/keyframes/<id>/001.jpg` or, in older packages, `Keyframes_*/<id>/0001.jpg`), a
map CSV (`map-keyframes/<id>.csv`: n, pts_time, fps, frame_idx), CLIP ViT-B/32 features
(`clip-features-32/<id>.npy`, row n-1 for keyframe n), YouTube metadata (`media-info/<id>.json`)
and, optionally, the video itself. Each video is checked whole before anything of it is
written, then committed in one transaction like an indexed one (storage.Store.save_video): a
malformed file fails that video, with the reason, and the others are imported. A video whose
files did not change since its import is skipped.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evr.storage import strict_json
from evr.storage.features.meta import VideoMeta, parse_date
from evr.storage.features.objects import DetectedObject, ObjectsInFrame, common_label

from .files import read_regular, why_unreadable

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
PACKAGE_OBJECTS = "aic:openimages"  # the objects analyzer's signature for a package's own detections
PACKAGE_META = "aic:media-info"  # the meta analyzer's, for a package's media-info
FEATURE_FOLDERS = ("clip-features-32", "clip-features")


class AicFormatError(ValueError):
    """A file of one video in the package is missing or malformed: that video is not imported."""


@dataclass
class AicVideo:
    """The files of one video id found in a package (None: not found)."""

    video_id: str
    map_csv: Path | None = None
    features: Path | None = None
    keyframe_dir: Path | None = None
    media_info: Path | None = None
    video_file: Path | None = None
    objects_dir: Path | None = None  # objects/<id>/: one detections JSON per keyframe (optional)
    duplicates: list[Path] = field(default_factory=list)  # a second file of a kind for this id

    def files(self) -> list[Path]:
        return [p for p in (self.map_csv, self.features, self.media_info, self.video_file) if p is not None]

    def fingerprint(self) -> tuple[int, int]:
        """(total size, latest mtime) of its files and keyframe images: any change re-imports it.
        A link that loops or leads nowhere counts as itself: reading it says what is wrong."""
        stats = [_stat(p) for p in self.files()]
        for folder in (self.keyframe_dir, self.objects_dir):
            if folder is not None:
                stats += [_stat(e) for e in os.scandir(folder)]
        return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)


def _stat(path: Path | os.DirEntry) -> os.stat_result:
    try:
        return path.stat()
    except OSError:
        return path.stat(follow_symlinks=False)


@dataclass(frozen=True)
class _Row:
    n: int
    pts_time: float
    fps: float | None
    frame_idx: int


def find_package(root: Path, video_extensions: list[str]) -> list[AicVideo]:
    """Every video id the package under `root` has any file of, sorted by id. Files are told
    apart by their folder: map-keyframes*/, clip-features-32/, media-info/, and a keyframe
    folder is a folder named by the id inside `keyframes/` or `Keyframes_*/`."""
    root = Path(root).expanduser().absolute()  # stored paths are absolute (symlinks kept as given)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    found: dict[str, AicVideo] = {}

    def put(video_id: str, kind: str, path: Path) -> None:
        video = found.setdefault(video_id, AicVideo(video_id))
        if getattr(video, kind) is None:
            setattr(video, kind, path)
        elif getattr(video, kind) != path:
            video.duplicates.append(path)

    extensions = {e.lower() for e in video_extensions}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        parent = here.name.lower()
        dirs.sort()
        if parent == "objects":
            for d in dirs:
                put(d, "objects_dir", here / d)
            dirs.clear()  # its files are read per video, not walked
        if parent == "keyframes" or parent.startswith("keyframes_"):
            for d in dirs:
                if d.lower() != "keyframes":  # the new layout's inner folder
                    put(d, "keyframe_dir", here / d)
        for name in sorted(files):
            path, suffix = here / name, Path(name).suffix.lower()
            stem = Path(name).stem
            if parent.startswith("map-keyframes") and suffix == ".csv":
                put(stem, "map_csv", path)
            elif parent in FEATURE_FOLDERS and suffix == ".npy":
                put(stem, "features", path)
            elif parent == "media-info" and suffix == ".json":
                put(stem, "media_info", path)
            elif suffix in extensions:
                put(stem, "video_file", path)
    if not found:
        raise AicFormatError(
            f"{root} holds no AIC package: no map-keyframes/, clip-features-32/ or keyframe "
            "folders (see README.md, 'AI Challenge')"
        )
    return [found[k] for k in sorted(found)]


def read_map(path: Path) -> list[_Row]:
    """The map CSV's rows sorted by n; AicFormatError names the line and the value at fault."""
    try:
        with io.StringIO(_read(path).decode("utf-8-sig"), newline="") as f:
            reader = csv.DictReader(f)
            columns = {c.strip().lower(): c for c in reader.fieldnames or []}
            missing = [c for c in ("n", "pts_time", "frame_idx") if c not in columns]
            if missing:
                raise AicFormatError(
                    f"{path.name}: no {', '.join(missing)} column (the header is "
                    f"{','.join(reader.fieldnames or []) or 'empty'})"
                )
            rows = [
                _Row(
                    _number(path, line, record, columns, "n", int),
                    _number(path, line, record, columns, "pts_time", float),
                    _number(path, line, record, columns, "fps", float),
                    _number(path, line, record, columns, "frame_idx", int),
                )
                for line, record in enumerate(reader, start=2)
            ]
    except UnicodeDecodeError:
        raise AicFormatError(f"{path.name} is not UTF-8 text") from None
    except csv.Error as exc:
        raise AicFormatError(f"{path.name}: {exc}") from None
    if not rows:
        raise AicFormatError(f"{path.name} has no rows")
    numbers = [r.n for r in rows]
    if len(set(numbers)) != len(numbers) or min(numbers) < 1:
        raise AicFormatError(f"{path.name}: the keyframe numbers n must be distinct and start at 1")
    frames = [r.frame_idx for r in rows]
    if len(set(frames)) != len(frames):  # one keyframe per frame: hits and answers name frames
        raise AicFormatError(f"{path.name}: frame_idx {next(f for f in frames if frames.count(f) > 1)} appears twice")
    return sorted(rows, key=lambda r: r.n)


def _number(path: Path, line: int, record: dict, columns: dict[str, str], name: str, kind: type):
    """One cell of the map as a finite, non-negative `kind` ("90.0" is a whole number);
    None for an empty or absent fps."""
    raw = (record.get(columns[name]) or "").strip() if name in columns else ""
    if name == "fps" and not raw:
        return None
    try:
        number = float(raw)
    except ValueError:
        raise AicFormatError(f"{path.name} line {line}: {name} {raw!r} is not a number") from None
    if not math.isfinite(number) or number < 0 or (kind is int and not number.is_integer()):
        raise AicFormatError(
            f"{path.name} line {line}: {name} {raw!r} is not a {'whole ' if kind is int else ''}number of 0 or more"
        )
    return kind(number)


def read_features(path: Path, rows: int, dim: int) -> np.ndarray:
    """The (rows, dim) features as L2-normalised float32."""
    try:
        features = np.load(io.BytesIO(_read(path)), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise AicFormatError(f"{path.name} is not a readable .npy array ({exc})") from None
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating):
        raise AicFormatError(
            f"{path.name} holds a {features.dtype} array of shape {features.shape}, not (keyframes, {dim}) floats"
        )
    if features.shape[0] != rows:
        raise AicFormatError(f"the map has {rows} rows but {path.name} has {features.shape[0]} features")
    if features.shape[1] != dim:
        raise AicFormatError(
            f"{path.name} has {features.shape[1]}-dimensional features; the declared model's are {dim}-dimensional"
        )
    features = features.astype(np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    if not np.all(np.isfinite(features)) or np.any(norms == 0):
        raise AicFormatError(f"{path.name} holds features that are zero, infinite or NaN")
    return features / norms


def _read(path: Path) -> bytes:
    """A package file's bytes; AicFormatError when it is not a regular file or cannot be read."""
    try:
        return read_regular(path)
    except OSError as exc:
        raise AicFormatError(f"cannot read {path.parent.name}/{path.name}: {why_unreadable(exc)}") from None


def _entries(folder: Path) -> list[os.DirEntry]:
    """The entries of a package folder by name; AicFormatError when it cannot be listed."""
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise AicFormatError(f"cannot list {folder.name}: {why_unreadable(exc)}") from None


def _keyframe_number(stem: str) -> int | None:
    """The keyframe number a file is named by ("001" -> 1), None for another name. Only ASCII
    digits: str.isdigit() also takes "²", which int() refuses."""
    return int(stem) if stem.isascii() and stem.isdigit() else None


def keyframe_images(folder: Path) -> dict[int, Path]:
    """Keyframe number -> image file (001.jpg, 0001.jpg: any zero padding). Other names are not
    keyframes; what each image is, is checked when it is read (image_thumbnail)."""
    images: dict[int, Path] = {}
    for entry in _entries(folder):
        p = Path(entry.path)
        n = _keyframe_number(p.stem)
        if p.suffix.lower() in IMAGE_SUFFIXES and n is not None:
            if n in images:
                raise AicFormatError(f"{folder.name}: {images[n].name} and {p.name} are both keyframe {n}")
            images[n] = p
    return images


def read_objects(folder: Path, min_score: float) -> dict[int, ObjectsInFrame]:
    """Keyframe number -> its detections, from the package's objects JSON files (TF-Hub's
    OpenImages Faster R-CNN output: detection_class_entities, detection_scores, detection_boxes as
    ymin, xmin, ymax, xmax fractions), those scoring at least `min_score`, labels in evr's
    vocabulary (storage/features/objects.py); AicFormatError for a file that is not such JSON."""
    found: dict[int, ObjectsInFrame] = {}
    for entry in _entries(folder):
        p = Path(entry.path)
        if p.suffix.lower() != ".json":
            continue
        n = _keyframe_number(p.stem)
        if n is None:
            raise AicFormatError(f"{folder.name}/{p.name} is not named by a keyframe number (001.json)")
        data = _read(p)  # its error names the file
        try:
            found[n] = ObjectsInFrame(_objects(strict_json.loads(data), min_score))
        except (KeyError, TypeError, ValueError) as exc:  # AicFormatError and strict_json's JsonError too
            why = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            raise AicFormatError(f"{folder.name}/{p.name} is not an objects JSON ({why})") from None
    return found


def _objects(data, min_score: float) -> list[DetectedObject]:
    """One objects file's detections scoring at least `min_score`; AicFormatError (or KeyError,
    TypeError, ValueError) for anything but three lists of one length: names, scores from 0 to 1
    and boxes of four finite numbers (TF-Hub's JSON writes the numbers as strings)."""
    names, scores, boxes = (data[k] for k in ("detection_class_entities", "detection_scores", "detection_boxes"))
    if not all(isinstance(v, list) for v in (names, scores, boxes)) or not len(names) == len(scores) == len(boxes):
        raise AicFormatError("its names, scores and boxes are not three lists of one length")
    objects = []
    for name, score, box in zip(names, scores, boxes):
        score = _finite(score, "a score")
        if not isinstance(name, str) or not 0 <= score <= 1:
            raise AicFormatError(f"the detection {str(name)[:40]!r} scores {score:g}: scores run from 0 to 1")
        if not isinstance(box, list) or len(box) != 4:
            raise AicFormatError(f"a box {str(box)[:60]} is not four numbers (ymin, xmin, ymax, xmax)")
        ymin, xmin, ymax, xmax = (min(1.0, max(0.0, _finite(v, "a box coordinate"))) for v in box)
        if score >= min_score:
            objects.append(
                DetectedObject(
                    common_label(name),
                    round(score, 4),
                    (round(xmin, 4), round(ymin, 4), round(xmax, 4), round(ymax, 4)),
                )
            )
    return objects


def _finite(value, what: str) -> float:
    """A JSON number, or a string holding one, as a finite float; AicFormatError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise AicFormatError(f"{what} {str(value)[:20]} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise AicFormatError(f"{what} {value[:20]!r} is not a number") from None
    if not math.isfinite(number):
        raise AicFormatError(f"{what} {str(value)[:20]} is not a finite number")
    return number


def read_media_info(path: Path) -> dict:
    try:
        info = strict_json.loads(_read(path))
    except strict_json.JsonError as exc:
        raise AicFormatError(f"{path.name} is not JSON ({exc})") from None
    if not isinstance(info, dict):
        raise AicFormatError(f"{path.name} holds a JSON {type(info).__name__}, not an object")
    return info


def media_meta(info: dict) -> VideoMeta:
    """The metadata a media-info holds (author, publish_date, title, keywords, description), as
    leniently as packages write it: a date as DD/MM/YYYY or YYYY-MM-DD (left out when it is
    neither), keywords as a list or one comma-separated string."""

    def said(key: str) -> str:
        value = info.get(key)
        return value.strip()[:2000] if isinstance(value, str) else ""

    keywords = info.get("keywords")
    if isinstance(keywords, str):
        keywords = keywords.split(",")
    try:
        published = parse_date(said("publish_date")) if said("publish_date") else None
    except ValueError:
        published = None
    return VideoMeta(
        title=said("title"),
        author=said("author"),
        published=published,
        keywords=tuple(k.strip() for k in keywords or () if isinstance(k, str) and k.strip())[:100],
        description=said("description"),
        source="media-info",
    )


def fps_of(rows: list[_Row]) -> float:
    """The frame rate the map implies when it has no fps column."""
    timed = [r for r in rows if r.pts_time > 0]
    return round(timed[-1].frame_idx / timed[-1].pts_time, 3) if timed else 25.0
