"""Shared fixtures: the real sample videos, a small random-weight CLIP, and `evr` runners.

Every test runs offline. CLIP uses random weights (seeded, identical in every process) in a
small architecture, so tests exercise the real loading, indexing and search code but never
assert rankings that only trained weights would give.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ui.cli import main

REPO = Path(__file__).resolve().parents[1]

TEST_ENV = {
    "EVR_CLIP_MODEL": "ViT-S-32-alt",
    "EVR_CLIP_PRETRAINED": "none",
    "EVR_CLIP_DEVICE": "cpu",
    "EVR_CLIP_BATCH_SIZE": "16",
    "HF_HUB_OFFLINE": "1",
    # OCR and persons cost seconds per keyframe on a CPU: off for the core tests, switched on by
    # the tests of those analyzers (tests/test_analyzers.py).
    "EVR_OCR_ENABLED": "false",
    "EVR_PERSONS_ENABLED": "false",
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


def _videos_dir() -> Path:
    candidates = [os.environ.get("EVR_TEST_VIDEOS"), REPO.parent / "shared" / "data" / "videos",
                  REPO / "shared" / "data" / "videos"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    raise RuntimeError(
        "the sample videos are missing: expected ../shared/data/videos beside the repository "
        "(or set EVR_TEST_VIDEOS)"
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


def evr(*args: str, capsys=None) -> tuple[int, object]:
    """Run the CLI in this process; returns (exit code, parsed --json stdout or raw text)."""
    code = main([str(a) for a in args])
    out = capsys.readouterr().out if capsys is not None else ""
    try:
        return code, json.loads(out)
    except json.JSONDecodeError:
        return code, out


def evr_process(*args, timeout: float = 300, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `evr` entry point in a child process (what a user runs)."""
    env = {**os.environ, **TEST_ENV, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *map(str, args)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="session")
def indexed(sample_dir, tmp_path_factory) -> Path:
    """One index of the sample clips, shared by the read-only tests."""
    data = tmp_path_factory.mktemp("index")
    code = main(["--data-dir", str(data), "index", str(sample_dir), "--no-progress"])
    assert code == 0
    return data


def copy_video(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst
