"""A feature is a unit: the example feature in tests/example_feature/ (an analyzer module, a
storage module, one registration call) is configured, indexed, stored, filtered and shown by
the real CLI, and nothing outside tests/ names it."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from PIL import Image

from evr.ui.cli import main
from tests import example_feature
from tests.conftest import REPO, copy_video, evr

pytestmark = pytest.mark.integration


@pytest.fixture
def brightness():
    example_feature.register()
    yield
    example_feature.unregister()


@pytest.fixture
def clips(videos, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("video7010.mp4", "video7011.mp4"):
        copy_video(videos / "msrvtt" / name, folder / name)
    return folder


def test_the_example_feature_is_indexed_stored_filtered_and_shown(brightness, clips, tmp_path, capsys):
    data = tmp_path / "data"
    code, report = evr("--data-dir", data, "index", clips, "--no-progress", "--json", capsys=capsys)
    # Registered after evr's modules were imported, its analyzer is still timed as a stage.
    assert code == 0 and list(report["stage_seconds"])[-2:] == ["brightness", "write"]
    code, hits = evr("--data-dir", data, "search", "a street", "--k", "1000", "--json", capsys=capsys)
    assert code == 0 and len(hits) > 4
    values = [h["brightness"] for h in hits]
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in values)
    # The stored value is the frame's mean luma: the thumbnail (a smaller JPEG of the same frame)
    # agrees to within a few percent.
    for hit in hits[:3]:
        rgb = np.asarray(Image.open(data / hit["thumbnail"]).convert("RGB"), dtype=np.float32)
        assert abs((rgb @ [0.299, 0.587, 0.114]).mean() / 255 - hit["brightness"]) < 0.03

    cut = float(np.median(values))
    code, kept = evr(
        "--data-dir", data, "search", "a street", "--k", "1000", "--min-brightness", cut, "--json", capsys=capsys
    )
    assert code == 0
    assert {h["keyframe_id"] for h in kept} == {h["keyframe_id"] for h in hits if h["brightness"] >= cut}
    assert 0 < len(kept) < len(hits)

    assert main(["--data-dir", str(data), "search", "a street", "--min-brightness", "2"]) == 2
    assert "--min-brightness" in capsys.readouterr().err


def test_the_example_feature_has_a_config_section(brightness, clips, tmp_path, capsys, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('[storage]\ndata_dir = "data"\n[brightness]\nenabled = false\n', encoding="utf-8")
    assert evr("--config", config, "index", clips, "--no-progress", capsys=capsys)[0] == 0
    code, hits = evr("--config", config, "search", "a street", "--json", capsys=capsys)
    assert code == 0 and hits and all(h["brightness"] is None for h in hits)

    monkeypatch.setenv("EVR_BRIGHTNESS_STEP", "0")
    assert main(["--config", str(config), "stats"]) == 2
    assert "brightness.step" in capsys.readouterr().err


def test_nothing_outside_tests_names_the_example_feature():
    named = subprocess.run(
        ["git", "grep", "-il", "brightness", "--", ".", ":!tests"], cwd=REPO, capture_output=True, text=True
    )
    assert named.returncode in (0, 1), named.stderr
    assert named.stdout == ""


def test_unregistered_the_feature_is_gone(clips, tmp_path, capsys):
    from evr.storage.features import FEATURES

    assert "brightness" not in FEATURES
    with pytest.raises(SystemExit) as refused:  # argparse: no such flag
        main(["--data-dir", str(tmp_path / "data"), "search", "x", "--min-brightness", "0.5"])
    assert refused.value.code == 2
