"""Reading config.toml, EVR_* environment variables and command-line overrides into typed settings.

Precedence: command-line flags > environment > config file > built-in defaults.
Environment variables are named EVR_<SECTION>_<KEY>, e.g. EVR_CLIP_PRETRAINED=none or
EVR_STORAGE_DATA_DIR=/tmp/evr. The config file is --config FILE, else $EVR_CONFIG, else
./config.toml when it exists. A relative storage.data_dir in a config file is relative to that
file's folder; from the environment or a flag, to the current folder.
This module is the only reader of config.toml: the core receives the dataclasses it builds.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.settings import (
    ClipSettings,
    DecodeSettings,
    IndexSettings,
    KeyframeSettings,
    OcrSettings,
    PersonSettings,
    ShotSettings,
)
from search.summary import SummarySettings

from .speech import SpeechSettings


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class StorageSettings:
    data_dir: str = "data"
    checkpoint_s: float = 10.0  # save the FAISS index at least this often during an index run


@dataclass(frozen=True)
class UiSettings:
    host: str = "127.0.0.1"
    port: int = 8501
    page_size: int = 24  # hits per page; "more results" adds another page


@dataclass(frozen=True)
class IndexFiles:
    extensions: list[str] = field(default_factory=lambda: IndexSettings().extensions)


# config.toml section -> settings class
SECTIONS: dict[str, type] = {
    "storage": StorageSettings,
    "index": IndexFiles,
    "decode": DecodeSettings,
    "keyframes": KeyframeSettings,
    "shots": ShotSettings,
    "clip": ClipSettings,
    "ocr": OcrSettings,
    "persons": PersonSettings,
    "summary": SummarySettings,
    "speech": SpeechSettings,
    "ui": UiSettings,
}


@dataclass(frozen=True)
class AppConfig:
    source: Path | None  # the config file read, if any
    data_dir: Path
    storage: StorageSettings
    index: IndexSettings
    summary: SummarySettings
    speech: SpeechSettings
    ui: UiSettings


def load_config(path: str | Path | None = None, overrides: dict[str, dict[str, Any]] | None = None,
                environ: dict[str, str] | None = None) -> AppConfig:
    environ = dict(os.environ if environ is None else environ)
    source = _find_config_file(path, environ)
    raw: dict[str, dict[str, Any]] = {}
    if source is not None:
        try:
            raw = tomllib.loads(source.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {source}: {exc}") from exc
    values: dict[str, dict[str, Any]] = {}
    for section, table in raw.items():
        if section not in SECTIONS:
            raise ConfigError(f"{source}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        for key, value in table.items():
            values.setdefault(section, {})[key] = _coerce(section, key, value, f"{source}")
    data_dir_base = source.parent if source is not None else Path.cwd()
    for name, text in environ.items():
        parsed = _parse_env_name(name)
        if parsed:
            section, key = parsed
            values.setdefault(section, {})[key] = _coerce(section, key, text, f"${name}")
            if (section, key) == ("storage", "data_dir"):
                data_dir_base = Path.cwd()
    for section, table in (overrides or {}).items():
        for key, value in table.items():
            if value is not None:
                values.setdefault(section, {})[key] = _coerce(section, key, value, "command line")
                if (section, key) == ("storage", "data_dir"):
                    data_dir_base = Path.cwd()
    built = {name: cls(**values.get(name, {})) for name, cls in SECTIONS.items()}
    storage = built["storage"]
    index = IndexSettings(
        decode=built["decode"], keyframes=built["keyframes"], shots=built["shots"], clip=built["clip"],
        ocr=built["ocr"], persons=built["persons"],
        extensions=[e if e.startswith(".") else f".{e}" for e in built["index"].extensions],
    )
    data_dir = (data_dir_base / Path(storage.data_dir).expanduser()).resolve()
    return AppConfig(source=source, data_dir=data_dir, storage=storage, index=index, summary=built["summary"],
                     speech=built["speech"], ui=built["ui"])


def _find_config_file(path: str | Path | None, environ: dict[str, str]) -> Path | None:
    explicit = path or environ.get("EVR_CONFIG")
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        return p.resolve()
    default = Path.cwd() / "config.toml"
    return default if default.is_file() else None


def _parse_env_name(name: str) -> tuple[str, str] | None:
    if not name.startswith("EVR_") or name == "EVR_CONFIG":
        return None
    rest = name[4:].lower()
    section, _, key = rest.partition("_")
    if section in SECTIONS and key:
        _field(section, key, f"${name}")
        return section, key
    return None


def _field(section: str, key: str, where: str) -> dataclasses.Field:
    fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
    if key not in fields:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{where}: unknown setting {section}.{key} (known in [{section}]: {known})")
    return fields[key]


def _coerce(section: str, key: str, value: Any, where: str) -> Any:
    """Convert a value (TOML-typed, or a string from env/flags) to the field's type."""
    f = _field(section, key, where)
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    kind = type(default)
    try:
        if isinstance(value, str) and kind is not str:
            if kind is bool:
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return value.lower() in ("1", "true", "yes", "on")
            if kind is list:
                value = json.loads(value) if value.strip().startswith("[") else [
                    v.strip() for v in value.split(",") if v.strip()
                ]
            else:
                return kind(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError
        return value
    except (TypeError, ValueError, json.JSONDecodeError):
        raise ConfigError(
            f"{where}: {section}.{key} must be a {kind.__name__} (like {default!r}), got {value!r}"
        ) from None
