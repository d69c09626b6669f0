"""Reading config.toml, EVR_* environment variables and command-line overrides into typed settings.

Precedence: command-line flags > environment > config file > built-in defaults.
Environment variables are named EVR_<SECTION>_<KEY>, e.g. EVR_CLIP_PRETRAINED=none or
EVR_STORAGE_DATA_DIR=/tmp/evr. The config file is --config FILE, else $EVR_CONFIG, else
./config.toml when it exists. A relative storage.data_dir (or vectors.milvus_uri file) in a
config file is relative to that file's folder; from the environment or a flag, to the current folder.

This module only reads: each section is a settings dataclass of the layer it configures, which
carries its own rules (storage/rules.py); a value that breaks one is a ConfigError naming the
setting and where its value came from, before any model loads. The sections are the core's and
each registered feature's (its analyzer's settings: [ocr], [persons], [speech], ...). The edges
are the only readers of config.toml: the core receives the dataclasses built here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from evr.indexer.analyzers import analyzer_classes
from evr.indexer.settings import (
    ClipSettings,
    DecodeSettings,
    IndexSettings,
    KeyframeSettings,
    ModelSettings,
    RunSettings,
    ShotSettings,
)
from evr.search.fusion import FusionSettings
from evr.search.multilingual import QuerySettings
from evr.search.planner import PlanSettings
from evr.search.summary import SummarySettings
from evr.storage import PRIMARY_MODEL, StorageSettings, VectorIndexSettings, strict_json
from evr.storage.rules import problem

from .contest.client import DresSettings
from .contest.http import without_credentials
from .settings import UiSettings
from .voice import VoiceSettings


class ConfigError(ValueError):
    pass


# config.toml section -> settings class, for the core; each feature adds its own (`sections`).
CORE_SECTIONS: dict[str, type] = {
    "storage": StorageSettings,
    "vectors": VectorIndexSettings,
    "index": RunSettings,
    "decode": DecodeSettings,
    "keyframes": KeyframeSettings,
    "shots": ShotSettings,
    "clip": ClipSettings,
    "query": QuerySettings,
    "plan": PlanSettings,
    "search": FusionSettings,
    "summary": SummarySettings,
    "voice": VoiceSettings,
    "dres": DresSettings,
    "ui": UiSettings,
}
# Names an older evr read, and what they are now: "speech" meant the voice that reads summaries
# (now [voice]) where it now means what is said in the videos (once [speech_index]); the vector
# index's settings were [index]'s and [storage]'s, where [index] is the index run's.
RENAMED_SECTIONS = {"speech_index": "speech"}
RENAMED = {
    ("speech", "engines"): "voice.engines",
    ("speech", "gtts_timeout_s"): "voice.gtts_timeout_s",
    ("index", "kind"): "vectors.kind",
    ("index", "ivf_min_vectors"): "vectors.ivf_min_vectors",
    ("index", "nprobe"): "vectors.nprobe",
    ("storage", "vectors"): "vectors.backend",
    ("storage", "milvus_uri"): "vectors.milvus_uri",
    ("storage", "milvus_collection"): "vectors.milvus_collection",
    ("storage", "milvus_index"): "vectors.milvus_index",
}


def sections() -> dict[str, type]:
    """Every section: the core's, then each registered feature's (its analyzer's settings)."""
    return {**CORE_SECTIONS, **{name: cls.settings_class for name, cls in analyzer_classes().items()}}


@dataclass(frozen=True)
class AppConfig:
    source: Path | None  # the config file read, if any
    data_dir: Path
    storage: StorageSettings
    vectors: VectorIndexSettings
    index: IndexSettings
    query: QuerySettings
    plan: PlanSettings
    search: FusionSettings
    summary: SummarySettings
    voice: VoiceSettings
    dres: DresSettings
    ui: UiSettings

    def open_store(self, writer: bool = False):
        """The data directory's storage.Store, as these settings say."""
        from evr.storage import Store

        return Store(self.data_dir, writer=writer, checkpoint_s=self.storage.checkpoint_s, index=self.vectors)

    @contextlib.contextmanager
    def open_engine(self):
        """A search engine on the configured index, closed after (CLIP loads only when a query
        needs it)."""
        with self.open_store() as store:
            yield self.search_engine(store)

    def search_engine(self, store, encoder_of=None):
        """A search engine on `store` with every configured image-text model, each made by
        `encoder_of(settings)` (the app's is cached per process; default: a new ClipEncoder)."""
        from evr.indexer.encoders import ClipEncoder
        from evr.search import SearchEngine

        encoders = {name: (encoder_of or ClipEncoder)(settings) for name, settings in self.index.image_models.items()}
        clip = encoders.pop(PRIMARY_MODEL)
        return SearchEngine(store, clip, self.query, encoders, self.search)


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    environ: dict[str, str] | None = None,
) -> AppConfig:
    environ = dict(os.environ if environ is None else environ)
    known = sections()
    source = _find_config_file(path, environ)
    values: dict[str, dict[str, Any]] = {}
    where: dict[tuple[str, str], str] = {}  # (section, key) -> where its value came from
    relative_to = {
        "storage.data_dir": source.parent if source else Path.cwd(),
        "vectors.milvus_uri": source.parent if source else Path.cwd(),
    }

    def put(section: str, key: str, value: Any, origin: str) -> None:
        values.setdefault(section, {})[key] = _typed(known, section, key, value, origin)
        where[(section, key)] = origin
        if f"{section}.{key}" in relative_to and origin != f"{source}":
            relative_to[f"{section}.{key}"] = Path.cwd()

    file = _read_file(source)
    models = _models(file.pop("models", []), f"{source}: [[models]]")
    if environ.get("EVR_MODELS") is not None:  # JSON: [{"name": ..., "model": ..., "pretrained": ...}, ...]
        try:
            listed = strict_json.loads(environ["EVR_MODELS"] or "[]")
        except strict_json.JsonError as exc:
            raise ConfigError(f"$EVR_MODELS must be a JSON list of models ({exc})") from None
        models = _models(listed, "$EVR_MODELS")
    for section, table in file.items():
        if section in RENAMED_SECTIONS:
            raise ConfigError(f"{source}: [{section}] is now [{RENAMED_SECTIONS[section]}]")
        if section not in known:
            raise ConfigError(f"{source}: unknown section [{section}] (known: {', '.join(known)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        for key, value in table.items():
            put(section, key, value, f"{source}")
    for name, text in environ.items():
        found = _setting_of(known, name)
        if found:
            put(*found, text, f"${name}")
    for section, table in (overrides or {}).items():
        for key, value in table.items():
            if value is not None:
                put(section, key, value, "command line")
    built = {}
    for section, cls in known.items():
        built[section] = cls(**values.get(section, {}))
        wrong = problem(built[section])
        if wrong:
            key, what = wrong
            if not key:
                raise ConfigError(f"[{section}] {what}")
            origin = where.get((section, key), "the default")
            raise ConfigError(f"{origin}: {section}.{key} {what}, got {_shown(getattr(built[section], key))}")
    vectors = built["vectors"]
    if vectors.milvus_uri and "://" not in vectors.milvus_uri:  # a Milvus Lite file: relative like data_dir
        lite = (relative_to["vectors.milvus_uri"] / Path(vectors.milvus_uri).expanduser()).resolve()
        vectors = dataclasses.replace(vectors, milvus_uri=str(lite))
    index = IndexSettings(
        decode=built["decode"],
        keyframes=built["keyframes"],
        shots=built["shots"],
        clip=built["clip"],
        run=built["index"],
        models=models,
        features={name: built[name] for name in known if name not in CORE_SECTIONS},
    )
    data_dir = (relative_to["storage.data_dir"] / Path(built["storage"].data_dir).expanduser()).resolve()
    return AppConfig(
        source=source,
        data_dir=data_dir,
        storage=built["storage"],
        vectors=vectors,
        index=index,
        query=built["query"],
        plan=built["plan"],
        search=built["search"],
        summary=built["summary"],
        voice=built["voice"],
        dres=built["dres"],
        ui=built["ui"],
    )


def _models(entries: Any, where: str) -> tuple[ModelSettings, ...]:
    """[[models]]: each entry a table of ModelSettings' keys, each name once."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{where} must be a list of tables ([[models]] name = ..., model = ..., pretrained = ...)")
    known = {f.name for f in dataclasses.fields(ModelSettings)}
    models = []
    for i, entry in enumerate(entries, start=1):
        unknown = sorted(set(entry) - known)
        if unknown or not all(isinstance(v, str) for v in entry.values()):
            raise ConfigError(
                f"{where} #{i}: "
                + (
                    f"unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})"
                    if unknown
                    else "every value must be a string"
                )
            )
        model = ModelSettings(**entry)
        wrong = problem(model)
        if wrong:
            raise ConfigError(f"{where} #{i}: {wrong[0]} {wrong[1]}, got {_shown(getattr(model, wrong[0]))}")
        models.append(model)
    names = [m.name for m in models]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{where}: the name {twice[0]!r} is given to more than one model")
    return tuple(models)


def _find_config_file(path: str | Path | None, environ: dict[str, str]) -> Path | None:
    explicit = path or environ.get("EVR_CONFIG")
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        return p.resolve()
    default = Path.cwd() / "config.toml"
    return default if default.is_file() else None


def _read_file(source: Path | None) -> dict:
    if source is None:
        return {}
    try:
        return tomllib.loads(source.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {source} is not UTF-8 text (is it really a TOML file?)") from None
    except RecursionError:  # tomllib reads nested arrays and tables by recursion
        raise ConfigError(f"config file {source} holds a value nested too deeply") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {source}: {exc}") from exc


def _setting_of(known: dict[str, type], name: str) -> tuple[str, str] | None:
    """The (section, key) an EVR_* variable sets, or None for a variable that is no setting."""
    if not name.startswith("EVR_") or name in ("EVR_CONFIG", "EVR_DRES_PASSWORD", "EVR_LOG_LEVEL"):
        return None
    rest = name[4:].lower()
    for old, new in RENAMED_SECTIONS.items():
        if rest.startswith(f"{old}_"):
            raise ConfigError(f"${name}: [{old}] is now [{new}]: use $EVR_{new.upper()}_{rest[len(old) + 1 :].upper()}")
    # The longest section that starts the name: EVR_DRES_TIMEOUT_S is [dres] timeout_s.
    for section in sorted(known, key=len, reverse=True):
        key = rest.removeprefix(f"{section}_")
        if key != rest and key:
            _field(known, section, key, f"${name}")
            return section, key
    return None


def _field(known: dict[str, type], section: str, key: str, where: str) -> dataclasses.Field:
    if (section, key) in RENAMED:
        new = RENAMED[(section, key)]
        env = "EVR_" + new.replace(".", "_").upper()
        raise ConfigError(f"{where}: {section}.{key} is now {new} (${env})")
    fields = {f.name: f for f in dataclasses.fields(known[section])}
    if key not in fields:
        raise ConfigError(
            f"{where}: unknown setting {section}.{key} (known in [{section}]: {', '.join(sorted(fields))})"
        )
    return fields[key]


def _typed(known: dict[str, type], section: str, key: str, value: Any, where: str) -> Any:
    """A value (TOML-typed, or a string from the environment or a flag) as the setting's type:
    a finite number, an integer SQLite can store, a list of strings."""
    f = _field(known, section, key, where)
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    kind = type(default)
    wrong = ConfigError(f"{where}: {section}.{key} must be a {kind.__name__} (like {default!r}), got {_shown(value)}")
    try:
        if isinstance(value, str) and kind is not str:
            if kind is bool:
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise wrong
                value = value.lower() in ("1", "true", "yes", "on")
            elif kind is list:
                value = (
                    strict_json.loads(value)
                    if value.strip().startswith("[")
                    else [v.strip() for v in value.split(",") if v.strip()]
                )
            elif kind is dict:  # a table, from the environment as JSON: {"clip": 1.0, "mclip": 2.0}
                value = strict_json.loads(value)
            else:
                value = kind(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
    except strict_json.JsonError as exc:
        raise ConfigError(
            f"{where}: {section}.{key} must be a {kind.__name__} in JSON (like {default!r}): {exc}"
        ) from None
    except (TypeError, ValueError):
        raise wrong from None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise wrong
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {section}.{key} must be a finite number, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise ConfigError(f"{where}: {section}.{key} is out of range: {value}")
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {section}.{key} must be a list of strings, got {value!r}")
    return value


def _shown(value: Any) -> str:
    """A value as an error message quotes it: an address's password is never shown, and a long
    value (a list nested thousands deep) is cut to its first 80 characters."""
    try:
        shown = repr(without_credentials(value) if isinstance(value, str) and "://" in value else value)
    except RecursionError:
        return "a value nested too deeply"
    return shown if len(shown) <= 80 else shown[:80] + "..."
