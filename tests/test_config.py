"""config.toml < EVR_* environment < command-line flags, with clear errors for mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from evr.ui.config import ConfigError, load_config

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]


def test_repo_config_has_the_documented_keys():
    cfg = load_config(REPO / "config.toml", environ={})
    assert cfg.index.clip.model == "ViT-L-14" and cfg.index.clip.pretrained == "openai"
    assert cfg.index.clip.device == "auto" and cfg.index.clip.batch_size == 0
    assert cfg.index.keyframes.max_gap_s == 2.0 and cfg.index.keyframes.min_change == 0.05
    assert cfg.index.shots.adaptive_threshold == 3.0
    assert cfg.data_dir == REPO / "data"  # relative to the config file


def test_precedence_file_env_flag(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text(
        '[clip]\nmodel = "ViT-B-32"\nbatch_size = 8\n[keyframes]\nmax_gap_s = 3\n[storage]\ndata_dir = "idx"\n'
    )
    cfg = load_config(f, environ={})
    assert (cfg.index.clip.model, cfg.index.clip.batch_size, cfg.index.keyframes.max_gap_s) == ("ViT-B-32", 8, 3.0)
    assert cfg.data_dir == tmp_path / "idx"
    env = {"EVR_CLIP_BATCH_SIZE": "4", "EVR_DECODE_BACKENDS": "pyav,opencv", "EVR_CLIP_DEVICE": "cpu"}
    cfg = load_config(f, environ=env)
    assert cfg.index.clip.batch_size == 4 and cfg.index.decode.backends == ["pyav", "opencv"]
    cfg = load_config(
        f, overrides={"clip": {"device": "cuda"}, "storage": {"data_dir": str(tmp_path / "x")}}, environ=env
    )
    assert cfg.index.clip.device == "cuda" and cfg.data_dir == tmp_path / "x"


def test_evr_config_env_names_the_file(tmp_path):
    f = tmp_path / "other.toml"
    f.write_text('[clip]\npretrained = "none"\n')
    assert load_config(environ={"EVR_CONFIG": str(f)}).index.clip.pretrained == "none"


@pytest.mark.parametrize(
    "text, message",
    [
        ('[clip]\nmodle = "x"\n', "unknown setting clip.modle"),
        ('[clipp]\nmodel = "x"\n', "unknown section [clipp]"),
        ('[clip]\nbatch_size = "many"\n', "clip.batch_size must be a int"),
        ("[keyframes]\nmax_gap_s = true\n", "keyframes.max_gap_s must be a float"),
        ("[clip\n", "cannot read config file"),
    ],
)
def test_mistakes_are_reported(tmp_path, text, message):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f, environ={})
    assert message in str(err.value)


def test_bad_env_value_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"\$EVR_CLIP_BATCH_SIZE"):
        load_config(REPO / "config.toml", environ={"EVR_CLIP_BATCH_SIZE": "lots"})
    with pytest.raises(ConfigError, match="unknown setting clip.colour"):
        load_config(REPO / "config.toml", environ={"EVR_CLIP_COLOUR": "red"})
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", environ={})


def test_every_section_and_setting_is_in_config_toml_and_readme():
    """config.toml shows every section (the core's and each feature's) and the README's
    "Configuration" table names every setting, so a newcomer finds each in both places."""
    import dataclasses

    import tomllib

    from evr.ui.config import sections

    shipped = tomllib.loads((REPO / "config.toml").read_text())
    readme = (REPO / "README.md").read_text()
    assert set(shipped) == set(sections())
    for section, cls in sections().items():
        for f in dataclasses.fields(cls):
            assert f"`{section}.{f.name}`" in readme, f"README lacks {section}.{f.name}"


@pytest.mark.parametrize(
    "text, env, message",
    [
        ("[speech_index]\nenabled = false\n", {}, "[speech_index] is now [speech]"),
        ('[speech]\nengines = ["espeak-ng"]\n', {}, "speech.engines is now voice.engines ($EVR_VOICE_ENGINES)"),
        ('[index]\nkind = "flat"\n', {}, "index.kind is now vectors.kind ($EVR_VECTORS_KIND)"),
        ('[storage]\nvectors = "milvus"\n', {}, "storage.vectors is now vectors.backend ($EVR_VECTORS_BACKEND)"),
        ("", {"EVR_SPEECH_INDEX_ENABLED": "false"}, "use $EVR_SPEECH_ENABLED"),
        ("", {"EVR_STORAGE_MILVUS_URI": "m.db"}, "storage.milvus_uri is now vectors.milvus_uri"),
        ("", {"EVR_INDEX_NPROBE": "8"}, "index.nprobe is now vectors.nprobe ($EVR_VECTORS_NPROBE)"),
    ],
)
def test_an_older_name_says_its_new_name(tmp_path, text, env, message):
    """Settings that moved ([speech_index] -> [speech], the voice -> [voice], the vector index's
    settings -> [vectors]) are refused under their old names with the new one, never ignored."""
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f, environ=env)
    assert message in str(err.value)


def test_moved_settings_are_read_in_their_new_sections(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text(
        '[vectors]\nbackend = "milvus"\nmilvus_uri = "m.db"\nkind = "flat"\n[speech]\nenabled = false\n'
        '[voice]\nengines = ["espeak-ng"]\n[index]\nmax_attempts = 5\n'
    )
    cfg = load_config(f, environ={"EVR_OCR_LANGUAGES": "en"})
    assert (cfg.vectors.backend, cfg.vectors.kind, cfg.vectors.milvus_uri) == ("milvus", "flat", str(tmp_path / "m.db"))
    assert cfg.index.feature("speech").enabled is False and cfg.index.feature("ocr").languages == ["en"]
    assert cfg.voice.engines == ["espeak-ng"] and cfg.index.run.max_attempts == 5
