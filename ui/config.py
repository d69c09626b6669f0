"""Reading config.toml, EVR_* environment variables and command-line overrides into typed settings.

Precedence: command-line flags > environment > config file > built-in defaults.
Environment variables are named EVR_<SECTION>_<KEY>, e.g. EVR_CLIP_PRETRAINED=none or
EVR_STORAGE_DATA_DIR=/tmp/evr. The config file is --config FILE, else $EVR_CONFIG, else
./config.toml when it exists. A relative storage.data_dir in a config file is relative to that
file's folder; from the environment or a flag, to the current folder.
This module is the only reader of config.toml: the core receives the dataclasses it builds.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from indexer.settings import (
    DECODERS,
    DEVICES,
    OCR_BACKENDS,
    PERSON_BACKENDS,
    SPEECH_BACKENDS,
    ClipSettings,
    DecodeSettings,
    IndexSettings,
    KeyframeSettings,
    OcrSettings,
    PersonSettings,
    ShotSettings,
    SpeechIndexSettings,
    WorkerSettings,
    ocr_languages,
)
from search.multilingual import TEXT_ENCODERS, QuerySettings
from search.summary import LANGUAGES, SummarySettings
from storage.vectors import BACKENDS as VECTOR_BACKENDS
from storage.vectors import KINDS, VectorIndexSettings
from storage.vectors.milvus import INDEX_TYPES as MILVUS_INDEX_TYPES
from storage.vectors.ivf import MIN_VECTORS as IVF_MIN_VECTORS

from .dres import DresSettings, without_credentials
from .speech import ENGINES, SpeechSettings


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class StorageSettings:
    data_dir: str = "data"
    checkpoint_s: float = 10.0  # save the FAISS index at least this often during an index run
    vectors: str = VectorIndexSettings.backend  # faiss | milvus
    milvus_uri: str = VectorIndexSettings.milvus_uri
    milvus_collection: str = VectorIndexSettings.milvus_collection
    milvus_index: str = VectorIndexSettings.milvus_index


@dataclass(frozen=True)
class UiSettings:
    host: str = "127.0.0.1"
    port: int = 8501
    page_size: int = 24  # hits per page; "more results" adds another page (at most MAX_PAGE_SIZE)


MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class IndexSection:
    """[index]: which files are videos, and the vector index over their keyframes."""

    extensions: list[str] = field(default_factory=lambda: IndexSettings().extensions)
    kind: str = VectorIndexSettings.kind
    ivf_min_vectors: int = VectorIndexSettings.ivf_min_vectors
    nprobe: int = VectorIndexSettings.nprobe
    workers: int = WorkerSettings.workers
    ray_address: str = WorkerSettings.ray_address
    cpus_per_worker: float = WorkerSettings.cpus_per_worker
    gpus_per_worker: float = WorkerSettings.gpus_per_worker


# config.toml section -> settings class
SECTIONS: dict[str, type] = {
    "storage": StorageSettings,
    "index": IndexSection,
    "decode": DecodeSettings,
    "keyframes": KeyframeSettings,
    "shots": ShotSettings,
    "clip": ClipSettings,
    "ocr": OcrSettings,
    "persons": PersonSettings,
    "speech_index": SpeechIndexSettings,
    "query": QuerySettings,
    "summary": SummarySettings,
    "speech": SpeechSettings,
    "dres": DresSettings,
    "ui": UiSettings,
}


@dataclass(frozen=True)
class AppConfig:
    source: Path | None  # the config file read, if any
    data_dir: Path
    storage: StorageSettings
    index: IndexSettings
    vectors: VectorIndexSettings
    query: QuerySettings
    summary: SummarySettings
    speech: SpeechSettings
    dres: DresSettings
    ui: UiSettings

    def open_store(self, writer: bool = False):
        """The data directory's storage.Store, as these settings say."""
        from storage import Store

        return Store(self.data_dir, writer=writer, checkpoint_s=self.storage.checkpoint_s, index=self.vectors)

    @contextlib.contextmanager
    def open_engine(self):
        """A search engine on the configured index, closed after (CLIP loads only when a query
        needs it)."""
        from indexer.encoders import ClipEncoder
        from search import SearchEngine

        with self.open_store() as store:
            yield SearchEngine(store, ClipEncoder(self.index.clip), self.query)


def load_config(path: str | Path | None = None, overrides: dict[str, dict[str, Any]] | None = None,
                environ: dict[str, str] | None = None) -> AppConfig:
    environ = dict(os.environ if environ is None else environ)
    source = _find_config_file(path, environ)
    raw: dict[str, dict[str, Any]] = {}
    if source is not None:
        try:
            raw = tomllib.loads(source.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"config file {source} is not UTF-8 text (is it really a TOML file?)") from None
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
    for name, settings in built.items():  # rules that span several settings of a section
        problem = settings.check() if hasattr(settings, "check") else None
        if problem:
            raise ConfigError(f"[{name}] {problem}")
    storage = built["storage"]
    section = built["index"]
    index = IndexSettings(
        decode=built["decode"], keyframes=built["keyframes"], shots=built["shots"], clip=built["clip"],
        ocr=built["ocr"], persons=built["persons"], speech=built["speech_index"],
        run=WorkerSettings(workers=section.workers, ray_address=section.ray_address,
                           cpus_per_worker=section.cpus_per_worker, gpus_per_worker=section.gpus_per_worker),
        extensions=[e if e.startswith(".") else f".{e}" for e in section.extensions],
    )
    milvus_uri = storage.milvus_uri
    if milvus_uri and "://" not in milvus_uri:  # a Milvus Lite file: relative like data_dir
        milvus_uri = str((data_dir_base / Path(milvus_uri).expanduser()).resolve())
    vectors = VectorIndexSettings(kind=section.kind, ivf_min_vectors=section.ivf_min_vectors, nprobe=section.nprobe,
                                  backend=storage.vectors, milvus_uri=milvus_uri,
                                  milvus_collection=storage.milvus_collection, milvus_index=storage.milvus_index)
    query = built["query"]
    if query.text_encoder_path and query.text_encoder in ("auto", "none"):
        raise ConfigError("query.text_encoder_path needs query.text_encoder to name the encoder whose files it "
                          f"holds (one of: {', '.join(TEXT_ENCODERS)})")
    data_dir = (data_dir_base / Path(storage.data_dir).expanduser()).resolve()
    return AppConfig(source=source, data_dir=data_dir, storage=storage, index=index, vectors=vectors,
                     query=built["query"], summary=built["summary"], speech=built["speech"], dres=built["dres"],
                     ui=built["ui"])


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
    if not name.startswith("EVR_") or name in ("EVR_CONFIG", "EVR_DRES_PASSWORD"):  # not settings
        return None
    rest = name[4:].lower()
    # The longest section that starts the name: EVR_SPEECH_INDEX_MODEL is [speech_index] model.
    for section in sorted(SECTIONS, key=len, reverse=True):
        key = rest.removeprefix(f"{section}_")
        if key != rest and key:
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
    """A value (TOML-typed, or a string from env/flags) as the field's type, checked against the
    setting's rule: a bad value stops here, with where it came from, before any model loads."""
    value = _typed(section, key, value, where)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {section}.{key} must be a finite number, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise ConfigError(f"{where}: {section}.{key} is out of range: {value}")
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {section}.{key} must be a list of strings, got {value!r}")
    check = RULES.get((section, key))
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{where}: {section}.{key} {problem}, got {_shown(value)!r}")
    return value


def _typed(section: str, key: str, value: Any, where: str) -> Any:
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


# -- the rule of each setting that has one: a function of the value -> what is wrong, or None --


def _one_of(allowed) -> Callable[[Any], str | None]:
    return lambda v: None if v in allowed else f"must be one of {', '.join(allowed)}"


def _some_of(allowed) -> Callable[[Any], str | None]:
    def check(values: list[str]) -> str | None:
        if not values:
            return f"must name at least one of {', '.join(allowed)}"
        bad = [v for v in values if v not in allowed]
        return f"has unknown {', '.join(map(repr, bad))} (known: {', '.join(allowed)})" if bad else None
    return check


def _between(low: float, high: float = math.inf, *, above: bool = False) -> Callable[[Any], str | None]:
    def check(v: float) -> str | None:
        if (v > low if above else v >= low) and v <= high:
            return None
        lowest = f"more than {low}" if above else f"at least {low}"
        return f"must be {lowest}" + (f" and at most {high}" if high != math.inf else "")
    return check


def _ocr_languages(values: list[str]) -> str | None:
    # Built only when the setting is given: reading easyocr's list is a file read and a parse.
    return _some_of(ocr_languages())(values)


def _query_languages(values: list[str]) -> str | None:
    from search.multilingual.language import known_codes

    return _some_of(known_codes())([v.lower() for v in values])


def _speech_language(value: str) -> str | None:
    from search.multilingual.language import known_codes

    return _one_of(("auto", *known_codes()))(value)


def _text_encoder(value: str) -> str | None:
    # Read at check time: the table is a module dict (tests add a tiny encoder to it).
    return _one_of(("auto", "none", *TEXT_ENCODERS))(value)


def _shown(value: Any) -> Any:
    """A value as an error message may quote it: an address's password is never shown."""
    return without_credentials(value) if isinstance(value, str) and "://" in value else value


def _dres_url(value: str) -> str | None:
    if value == "":
        return None
    if not value.startswith(("http://", "https://")):
        return "must start with http:// or https://"
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        return "must hold no user name or password (dres.username; the password at the prompt or in $EVR_DRES_PASSWORD)"
    return None


RULES: dict[tuple[str, str], Callable[[Any], str | None]] = {
    ("storage", "checkpoint_s"): _between(0),
    ("storage", "vectors"): _one_of(VECTOR_BACKENDS),
    ("storage", "milvus_uri"): lambda v: None if v == "" or v.startswith(("http://", "https://", "tcp://")) or v.endswith(".db")
    else "must be a Milvus Lite file ending in .db, or a server URL (http://host:19530)",
    ("storage", "milvus_collection"): lambda v: None if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", v)
    else "must be a Milvus collection name (letters, digits, underscores; not starting with a digit)",
    ("storage", "milvus_index"): _one_of(tuple(MILVUS_INDEX_TYPES)),
    ("index", "extensions"): lambda v: None if v and all(e.strip(".") for e in v) else "must name file extensions",
    ("index", "kind"): _one_of(KINDS),
    ("index", "ivf_min_vectors"): _between(IVF_MIN_VECTORS),
    ("index", "nprobe"): _between(1, 65536),
    ("index", "workers"): _between(0, 4096),
    ("index", "ray_address"): lambda v: None if v in ("", "auto") or re.fullmatch(r"(ray://)?[^\s:/]+:\d{1,5}", v)
    else 'must be "", "auto", HOST:PORT or ray://HOST:PORT',
    ("index", "cpus_per_worker"): _between(0, 1024, above=True),
    ("index", "gpus_per_worker"): _between(0, 64),
    ("decode", "backends"): _some_of(DECODERS),
    ("decode", "max_short_side"): _between(0),
    ("keyframes", "sample_s"): _between(0, above=True),
    ("keyframes", "max_gap_s"): _between(0, above=True),
    ("keyframes", "min_change"): _between(0, 1),
    ("keyframes", "thumbnail_width"): _between(16, 4096),
    ("shots", "adaptive_threshold"): _between(0, above=True),
    ("shots", "min_content_val"): _between(0, 255),
    ("shots", "fade_threshold"): _between(0, 255),
    ("shots", "min_shot_s"): _between(0),
    ("shots", "detect_width"): _between(16, 4096),
    ("clip", "device"): _one_of(DEVICES),
    ("clip", "batch_size"): _between(1, 4096),
    ("ocr", "backend"): _one_of(OCR_BACKENDS),
    ("ocr", "languages"): _ocr_languages,
    ("ocr", "min_confidence"): _between(0, 1),
    ("ocr", "max_side"): _between(32),
    ("ocr", "device"): _one_of(DEVICES),
    ("persons", "backend"): _one_of(PERSON_BACKENDS),
    ("persons", "min_score"): _between(0, 1),
    ("persons", "weights"): _one_of(("default", "none")),
    ("persons", "device"): _one_of(DEVICES),
    ("speech_index", "backend"): _one_of(SPEECH_BACKENDS),
    ("speech_index", "model"): lambda v: None if v.strip() else "must name a model size, a Hugging Face repo or a folder",
    ("speech_index", "language"): _speech_language,
    ("speech_index", "device"): _one_of(DEVICES),
    ("speech_index", "window_s"): _between(30, 3600),
    ("query", "languages"): _query_languages,
    ("query", "text_encoder"): _text_encoder,
    ("summary", "window_s"): _between(0, above=True),
    ("summary", "language"): _one_of(LANGUAGES),
    ("summary", "top_tags"): _between(0, 100),
    ("speech", "engines"): _some_of(ENGINES),
    ("speech", "gtts_timeout_s"): _between(0, above=True),
    ("dres", "url"): _dres_url,
    ("dres", "timeout_s"): _between(0, 600, above=True),
    ("ui", "port"): _between(1, 65535),
    ("ui", "page_size"): _between(1, MAX_PAGE_SIZE),
}
