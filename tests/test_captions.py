"""Captions as a feature (storage/features/captions.py, indexer/analyzers/captions/), on a tiny BLIP
built here (tests/tiny_captioner.py: every caption says "street"): written at index time, added
later by `evr analyze` from thumbnails or a package's images without decoding, searched by words
alone, fused with the image-text ranking, and shown on hits. The captions are noise: only the
plumbing is asserted."""

from __future__ import annotations

import shutil

import pytest

from evr.storage import Store

from .conftest import evr, import_aic, run
from .tiny_captioner import build_tiny_captioner

pytestmark = pytest.mark.e2e  # transformers generating on every keyframe


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    return build_tiny_captioner(tmp_path_factory.mktemp("tiny-captioner"))


@pytest.fixture
def captions_on(captioner, monkeypatch):
    monkeypatch.setenv("EVR_CAPTIONS_ENABLED", "true")
    monkeypatch.setenv("EVR_CAPTIONS_MODEL", str(captioner))
    monkeypatch.setenv("EVR_CAPTIONS_MAX_TOKENS", "6")


def caption_rows(data) -> dict[int, str | None]:
    """Every keyframe's caption (None: no captioner ran on it), by keyframe id."""
    with Store(data) as store:
        rows = store.catalog.keyframes(range(1, 10_000))
    assert rows
    return {kid: row.fields["caption"] for kid, row in rows.items()}


def test_captions_are_written_at_index_time_searched_and_fused(sample_dir, tmp_path, capsys, captions_on):
    data = tmp_path / "data"
    code, report = evr("--data-dir", data, "index", sample_dir, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and report["stage_seconds"]["captions"] > 0
    captions = caption_rows(data)
    assert captions and all(c == "street street street street street street" for c in captions.values())
    code, hits = evr("--data-dir", data, "search", "--caption", "streets", "--k", "100", "--json", capsys=capsys)
    assert code == 0 and len(hits) == len(captions)  # near-word matches: "streets" finds "street"
    assert all(h["match"] == "captions" and h["caption"].startswith("street") for h in hits)
    code, hits = evr("--data-dir", data, "search", "street", "--k", "5", "--json", capsys=capsys)
    assert code == 0 and any("captions" in h["match"].split("+") for h in hits)  # fused with CLIP's ranking
    code, stats = evr("--data-dir", data, "stats", "--json", capsys=capsys)
    assert stats["captions"] == len(captions)
    code, summary = evr("--data-dir", data, "summarize", hits[0]["keyframe_id"], "--json", capsys=capsys)
    assert code == 0 and "Described as: “street street" in summary["text"]


def test_analyze_adds_captions_to_an_index_without_decoding(indexed, tmp_path, capsys, captions_on):
    data = tmp_path / "data"
    shutil.copytree(indexed, data)
    before = caption_rows(data)
    assert set(before.values()) == {None}  # indexed without a captioner
    with Store(data) as store:
        videos, _ = store.catalog.counts()
    code, report = evr("--data-dir", data, "analyze", "--json", capsys=capsys)
    assert code == 0 and report["videos_analyzed"] == videos
    assert report["stage_seconds"].get("decode", 0) == 0 and report["stage_seconds"]["read"] > 0  # thumbnails read
    after = caption_rows(data)  # the same keyframes, captioned
    assert after.keys() == before.keys() and all(c.startswith("street") for c in after.values())
    code, report = evr("--data-dir", data, "analyze", "--json", capsys=capsys)  # nothing left to do
    assert code == 0 and report["videos_analyzed"] == 0


def test_analyze_captions_an_imported_packages_images(package, tmp_path, capsys, captions_on):
    data = tmp_path / "data"
    code, _ = import_aic(data, package[0], capsys)
    assert code == 0 and set(caption_rows(data).values()) == {None}
    code, report = evr("--data-dir", data, "analyze", "--json", capsys=capsys)
    assert code == 0 and report["videos_analyzed"] == len(package[1])
    assert all(c.startswith("street") for c in caption_rows(data).values())


def test_a_captioner_that_cannot_load_is_off_for_the_run_and_the_rest_is_indexed(
    sample_dir, tmp_path, capsys, caplog, monkeypatch
):
    monkeypatch.setenv("EVR_CAPTIONS_ENABLED", "true")
    monkeypatch.setenv("EVR_CAPTIONS_MODEL", str(tmp_path / "no-such-model"))
    data = tmp_path / "data"
    code, report = evr("--data-dir", data, "index", sample_dir, "--no-progress", "--json", capsys=capsys)
    assert code == 0 and report["videos_indexed"] > 0
    assert set(caption_rows(data).values()) == {None}
    said = [r.getMessage() for r in caplog.records if "captions are off for this run" in r.getMessage()]
    assert len(said) == 1 and "captions.enabled = false" in said[0]
    code, _, err = run(capsys, "--data-dir", data, "search", "--caption", "   ")
    assert code == 2 and "has no words to look for" in err
