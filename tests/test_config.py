"""config.toml < EVR_* environment < command-line flags, with clear errors for mistakes."""
from __future__ import annotations

from pathlib import Path

import pytest

from ui.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]


def test_repo_config_has_the_documented_keys():
    cfg = load_config(REPO / "config.toml", environ={})
    assert cfg.index.clip.model == "ViT-L-14" and cfg.index.clip.pretrained == "openai"
    assert cfg.index.clip.device == "auto" and cfg.index.clip.batch_size == 64
    assert cfg.index.keyframes.max_gap_s == 2.0 and cfg.index.keyframes.min_change == 0.05
    assert cfg.index.shots.adaptive_threshold == 3.0
    assert cfg.data_dir == REPO / "data"  # relative to the config file


def test_precedence_file_env_flag(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[clip]\nmodel = "ViT-B-32"\nbatch_size = 8\n[keyframes]\nmax_gap_s = 3\n[storage]\ndata_dir = "idx"\n')
    cfg = load_config(f, environ={})
    assert (cfg.index.clip.model, cfg.index.clip.batch_size, cfg.index.keyframes.max_gap_s) == ("ViT-B-32", 8, 3.0)
    assert cfg.data_dir == tmp_path / "idx"
    env = {"EVR_CLIP_BATCH_SIZE": "4", "EVR_DECODE_BACKENDS": "pyav,opencv", "EVR_CLIP_DEVICE": "cpu"}
    cfg = load_config(f, environ=env)
    assert cfg.index.clip.batch_size == 4 and cfg.index.decode.backends == ["pyav", "opencv"]
    cfg = load_config(f, overrides={"clip": {"device": "cuda"}, "storage": {"data_dir": str(tmp_path / "x")}},
                      environ=env)
    assert cfg.index.clip.device == "cuda" and cfg.data_dir == tmp_path / "x"


def test_evr_config_env_names_the_file(tmp_path):
    f = tmp_path / "other.toml"
    f.write_text('[clip]\npretrained = "none"\n')
    assert load_config(environ={"EVR_CONFIG": str(f)}).index.clip.pretrained == "none"


@pytest.mark.parametrize("text, message", [
    ('[clip]\nmodle = "x"\n', "unknown setting clip.modle"),
    ('[clipp]\nmodel = "x"\n', "unknown section [clipp]"),
    ('[clip]\nbatch_size = "many"\n', "clip.batch_size must be a int"),
    ('[keyframes]\nmax_gap_s = true\n', "keyframes.max_gap_s must be a float"),
    ('[clip\n', "cannot read config file"),
])
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
