"""Shared fixtures: the real sample videos, a small random-weight CLIP, and `evr` runners.

Every test runs offline. CLIP uses random weights (seeded, identical in every process) in a
small architecture, so tests exercise the real loading, indexing and search code but never
assert rankings that only trained weights would give.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evr.indexer.encoders import ClipEncoder
from evr.indexer.settings import ClipSettings
from evr.search import SearchEngine
from evr.search.ranking import nearest
from evr.storage import NewKeyframe, PersonPose, PersonsInFrame, Plan, Store, TextBox, VideoInfo
from evr.ui.cli import main


class _OldNames(importlib.abc.MetaPathFinder):
    """The rooms import as evr.indexer, evr.search, evr.storage and evr.ui. pytest puts the
    repository's root on sys.path (for `tests`), where `import storage` would load a second copy
    whose classes are not evr's: a test using an old name fails here, saying so."""

    def find_spec(self, name, path=None, target=None):
        if name in ("indexer", "search", "storage", "ui"):
            raise ImportError(f"import evr.{name}, not {name}")
        return None


sys.meta_path.insert(0, _OldNames())

REPO = Path(__file__).resolve().parents[1]

# The persons backend of the tests that check the plumbing of persons' results (not their counts):
# mediapipe (models bundled, offline) where its extra is installed, else torchvision's with random
# weights at its smallest sizes (no download, seconds on a CPU).
PERSONS_BACKEND = "mediapipe" if importlib.util.find_spec("mediapipe") else "torchvision"
PERSONS_ENV = {
    "EVR_PERSONS_ENABLED": "true",
    "EVR_PERSONS_BACKEND": PERSONS_BACKEND,
    **(
        {}
        if PERSONS_BACKEND == "mediapipe"
        else {"EVR_PERSONS_WEIGHTS": "none", "EVR_PERSONS_DETECT_SIZE": "160", "EVR_PERSONS_MASK_SIZE": "160"}
    ),
}

TEST_ENV = {
    "EVR_CLIP_MODEL": "ViT-S-32-alt",
    "EVR_CLIP_PRETRAINED": "none",
    "EVR_CLIP_DEVICE": "cpu",
    "EVR_CLIP_BATCH_SIZE": "16",
    "HF_HUB_OFFLINE": "1",
    # OCR and persons cost seconds per keyframe on a CPU: off for the core tests, switched on by
    # the tests of those analyzers (tests/test_analyzers.py); speech by tests/test_speech.py.
    "EVR_OCR_ENABLED": "false",
    "EVR_PERSONS_ENABLED": "false",
    "EVR_SPEECH_ENABLED": "false",
    "EVR_OBJECTS_ENABLED": "false",  # tests/test_objects.py switches the detector on
    # Decode worker processes cost a second or two to start per run, on runs of a few short
    # clips: one decoder beside the models here, and tests/test_streaming.py tests the workers.
    "EVR_INDEX_DECODE_WORKERS": "1",
}

# A small, varied set: MSR-VTT clips, a variable-frame-rate file, an mkv, a rotated file.
SAMPLE = [
    "msrvtt/video7010.mp4",
    "msrvtt/video7011.mp4",
    "msrvtt/video7012.mp4",
    "scene_cuts/goldeneye-vfr-drop3.mp4",
    "scene_cuts/issue-134-rotate.mp4",
    "asl_gestures/again.mkv",
]


TIERS = ("unit", "integration", "e2e")  # registered in pyproject.toml


def pytest_addoption(parser):
    parser.addoption(
        "--tiers",
        default=",".join(TIERS),
        help="run only the tests of these tiers (comma-separated; `make check`: unit,integration)",
    )


def pytest_collection_modifyitems(config, items):
    """A test's tier is its closest tier marker (its own, else its module's); a test without
    one is an error, so no test escapes the tiers."""
    wanted = set(config.getoption("--tiers").split(","))
    if wanted - set(TIERS):
        raise pytest.UsageError(
            f"--tiers: unknown {', '.join(sorted(wanted - set(TIERS)))} (known: {', '.join(TIERS)})"
        )
    tier = {item: next((m.name for m in item.iter_markers() if m.name in TIERS), None) for item in items}
    untiered = [item.nodeid for item, t in tier.items() if t is None]
    if untiered:
        raise pytest.UsageError(f"tests without a tier marker ({', '.join(TIERS)}): {', '.join(untiered[:5])}")
    deselected = [item for item in items if tier[item] not in wanted]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if tier[item] in wanted]


def _videos_dir() -> Path:
    candidates = [
        os.environ.get("EVR_TEST_VIDEOS"),
        REPO.parent / "shared" / "data" / "videos",
        REPO / "shared" / "data" / "videos",
    ]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    raise RuntimeError(
        "the sample videos are missing: expected ../shared/data/videos beside the repository (or set EVR_TEST_VIDEOS)"
    )


@pytest.fixture(scope="session")
def videos() -> Path:
    return _videos_dir()


@pytest.fixture(scope="session", autouse=True)
def offline_small_clip():
    with pytest.MonkeyPatch.context() as mp:
        for key, value in TEST_ENV.items():
            mp.setenv(key, value)
        yield


@pytest.fixture(scope="session")
def sample_dir(videos, tmp_path_factory) -> Path:
    """A folder of symlinks to the sample clips (the shared folder is read-only)."""
    d = tmp_path_factory.mktemp("sample")
    for rel in SAMPLE:
        (d / Path(rel).name).symlink_to(videos / rel)
    return d


def _not_json(name: str):
    raise AssertionError(f"evr wrote {name}, which is not JSON (RFC 8259)")


def strict_json(text: str):
    """JSON as a strict parser reads it: NaN, Infinity and -Infinity fail the test."""
    return json.loads(text, parse_constant=_not_json)


def _parsed(out: str) -> object:
    """What evr printed: strict JSON when it is JSON at all (a --json output), else the text."""
    try:
        return strict_json(out)
    except json.JSONDecodeError:
        return out


def evr(*args: str, capsys=None) -> tuple[int, object]:
    """Run the CLI in this process; returns (exit code, parsed --json stdout or raw text)."""
    code = main([str(a) for a in args])
    return code, _parsed(capsys.readouterr().out if capsys is not None else "")


def run(capsys, *args) -> tuple[int, object, str]:
    """`evr ARGS` in this process: (exit code, stdout as JSON or text, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, _parsed(out), err


def evr_process(*args, timeout: float = 300, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `evr` entry point in a child process (what a user runs). A --json command's
    stdout must be strict JSON whatever its exit code: checked here for every such call."""
    env = {**os.environ, **TEST_ENV, **(env_extra or {})}
    result = subprocess.run(
        [sys.executable, "-m", "evr.ui.cli", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if "--json" in map(str, args) and result.stdout.strip():
        strict_json(result.stdout)
    return result


@pytest.fixture(scope="session")
def indexed(sample_dir, tmp_path_factory) -> Path:
    """One index of the sample clips, shared by the read-only tests."""
    data = tmp_path_factory.mktemp("index")
    code = main(["--data-dir", str(data), "index", str(sample_dir), "--no-progress"])
    assert code == 0
    return data


def vector_of(store: Store, keyframe_id: int) -> np.ndarray:
    """A keyframe's stored vector."""
    return store.catalog.stored_vectors([keyframe_id])[1][0]


def words_search(store: Store, feature: str, text: str, where=None, limit: int = 100) -> list[tuple[int, float]]:
    """The ranking search gives for words in a feature's text (exact, then near)."""
    from evr.search.ranking import words
    from evr.storage.features import FEATURES

    table = FEATURES[feature].fts_table
    match = (store.words.matches([table], text) or {}).get(table)
    return words(store, FEATURES[feature], match, where, limit) if match else []


def ocr_search(store: Store, text: str, where=None, limit: int = 100) -> list[tuple[int, float]]:
    return words_search(store, "ocr", text, where, limit)


def speech_search(store: Store, text: str, where=None, limit: int = 100) -> list[tuple[int, float]]:
    return words_search(store, "speech", text, where, limit)


__all__ = ["nearest", "ocr_search", "speech_search", "vector_of"]


def copy_video(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


# -- planted keyframes with exact answers (tests/test_search_planted.py, tests/test_milvus.py) --

HIDDEN17 = [(0.0, 0.0, 0.0)] * 17


@pytest.fixture(scope="module")
def clip():
    return ClipEncoder(ClipSettings(model="ViT-S-32-alt", pretrained="none", device="cpu"))


def random_unit(rng, dim):
    v = rng.normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def people(labels_per_person):
    return PersonsInFrame(
        [PersonPose((0.1, 0.1, 0.3, 0.9), 0.9, HIDDEN17, list(labels)) for labels in labels_per_person],
        0.1 if labels_per_person else 0.0,
        None,
    )


@pytest.fixture(scope="module")
def planted(clip, tmp_path_factory):
    """Two videos, 40 keyframes each, 1 s apart. Facts by keyframe number i:
    persons = i % 4, a sitting person when i % 5 == 0, text on a few frames."""
    rng = np.random.default_rng(7)
    data = tmp_path_factory.mktemp("planted")
    store = Store(data, writer=True)
    store.bind_model(clip.info)
    dim = clip.info.dim
    door, car, news, dog = clip.encode_texts(["a man opens a door", "a car drives away", "breaking news", "a dog runs"])
    texts = {("alpha", 3): "LŨ LỤT Ở HUẾ", ("alpha", 20): "HA NOI", ("beta", 7): "BREAKING NEWS tonight"}
    vectors = {
        ("alpha", 4): door,
        ("alpha", 10): car,
        ("alpha", 15): dog,  # A, B 6 s later, C 5 s after B
        ("beta", 0): door,
        ("beta", 25): car,
        ("beta", 28): dog,  # B 25 s after A: outside --within 10
        ("beta", 30): news,
    }
    facts = {}
    for name in ("alpha", "beta"):
        kfs = []
        for i in range(40):
            labels = [["sitting"] if (i % 5 == 0 and p == 0) else ["standing"] for p in range(i % 4)]
            kfs.append(
                NewKeyframe(
                    frame_idx=i * 25,
                    timestamp=float(i),
                    shot=i,
                    jpeg=b"jpeg",
                    vector=vectors.get((name, i), random_unit(rng, dim)),
                    analyses={
                        "ocr": [TextBox(texts[(name, i)], (0.1, 0.8, 0.9, 0.9), 0.9)] if (name, i) in texts else [],
                        "persons": people(labels),
                    },
                )
            )
        vid = store.writes.start_video(f"/videos/{name}.mp4", 1, 1)
        store.writes.save_video(
            vid, VideoInfo("decord", 40.0, 25.0, 1000, 640, 360), kfs, plan=Plan("decoded", analyzers={"ocr": "en"})
        )
        rows = store.catalog.keyframes(range(1, 1000))
        for kid, row in rows.items():
            facts[(row.video_id, int(row.timestamp))] = kid
    store.close()
    reader = Store(data)
    yield SearchEngine(reader, clip), facts
    reader.close()


@pytest.fixture
def two_models(tmp_path):
    """A store whose keyframes have planted vectors of both models: for the query keyframe Q,
    [clip] ranks X second (after Q itself), then Y, and Z below 20 others; the other model ranks
    Z second, then Y, and X below 20 others."""
    clip = ClipEncoder(ClipSettings("ViT-S-32-alt", "none", "cpu"))
    other = ClipEncoder(ClipSettings("ViT-S-32", "none", "cpu"))
    rng = np.random.default_rng(3)
    q_a, q_b = random_unit(rng, 256), random_unit(rng, 384)

    def near(q, similarity):
        noise = random_unit(rng, len(q))
        noise -= (noise @ q) * q
        v = similarity * q + np.sqrt(1 - similarity**2) * noise / np.linalg.norm(noise)
        return v.astype(np.float32)

    planted = {
        "Q": (q_a, q_b),
        "X": (near(q_a, 0.9), near(q_b, 0.1)),
        "Y": (near(q_a, 0.8), near(q_b, 0.8)),
        "Z": (near(q_a, 0.1), near(q_b, 0.9)),
    }
    # 20 others, their similarities apart by more than float16's rounding (no near-ties to break)
    planted.update({f"n{i}": (near(q_a, 0.5 - 0.01 * i), near(q_b, 0.5 - 0.01 * i)) for i in range(20)})
    store = Store(tmp_path / "data", writer=True, checkpoint_s=0)
    store.bind_models({"clip": clip.info, "b": other.info})
    vid = store.writes.start_video("/v/planted.mp4", 1, 1)
    store.writes.save_video(
        vid,
        VideoInfo("decord", 30.0, 25.0, 750, 320, 240),
        [
            NewKeyframe(frame_idx=i * 25, timestamp=float(i), shot=0, jpeg=b"jpeg", vector=a, model_vectors={"b": b})
            for i, (a, b) in enumerate(planted.values())
        ],
    )
    ids = dict(zip(planted, sorted(store.catalog.keyframes(range(1, 100)))))
    yield store, clip, other, ids
    store.close()


# -- the app's results, as the browser gets them (tests/test_app.py and others) ------------------


def results_element(at) -> dict:
    """The data an AppTest run handed the browser's results element (ui/results_view.py)."""
    found = at.get("bidi_component")
    assert found, "no results element on the page"
    return json.loads(found[0].proto.json)


def viewer_detail(hit, chain=None, language: str = "en") -> dict:
    """What the opened hit shows of `hit` (ui/hit_view.py), made with the settings the
    environment gives, as the app makes it when the browser asks."""
    from evr.ui.config import load_config
    from evr.ui.hit_view import hit_detail

    config = load_config()
    with config.open_engine() as engine:
        return hit_detail(engine, config, engine.summarizer(config.summary), language, hit, chain)


# -- an AI Challenge package (tests/aic_package.py), imported once --------------------------------


@pytest.fixture(scope="session")
def package(videos, tmp_path_factory):
    """Two batches: L01 in the older layout (Keyframes_L01/L01_V001/0001.jpg), L02 in the 2025 one."""
    from .aic_package import add_video, encoder  # it reads TEST_ENV, above

    root = tmp_path_factory.mktemp("aic")
    clip = encoder()
    made = [
        add_video(root, "L01", 1, videos / "msrvtt/video7010.mp4", old_layout=True, clip=clip),
        add_video(root, "L02", 1, videos / "msrvtt/video7011.mp4", clip=clip),
        add_video(root, "L02", 2, videos / "msrvtt/video7012.mp4", clip=clip),
    ]
    return root, {v.video_id: v for v in made}


def import_aic(data: Path, folder: Path, capsys, *extra: str):
    return evr(
        "--data-dir",
        data,
        "import",
        "aic",
        folder,
        "--model",
        TEST_ENV["EVR_CLIP_MODEL"],
        "--pretrained",
        "none",
        "--no-progress",
        "--json",
        *extra,
        capsys=capsys,
    )


@pytest.fixture(scope="session")
def imported(package, tmp_path_factory):
    data = tmp_path_factory.mktemp("aic-index")
    code, report = import_aic(data, package[0], None)  # no capsys in a session fixture: read from the store
    assert code == 0
    return data
