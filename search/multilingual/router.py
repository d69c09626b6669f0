"""Which encoder reads a text query: the index's own CLIP text tower, a multilingual encoder of
the same image space, or a translation to English first.

- English queries (and queries with no detectable language) go to the CLIP text tower.
- So does every query when clip.model's own text tower is multilingual (table.MULTILINGUAL_CLIP_MODELS).
- Other languages go, in this order, to the query.translate model (then the English tower) when
  one is set, to query.text_encoder, and, when neither has its weights here, to the English tower
  with a warning, logged once: never silently.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, replace

import numpy as np

from evr.indexer.encoders import ClipEncoder, ModelUnavailableError
from evr.indexer.settings import ClipSettings
from evr.storage.rules import language_codes, one_of, rule, some_of

from ..errors import QueryError
from . import table
from .language import LanguageDetector
from .mclip import MClipEncoder, base_config, mclip_config
from .sentence_transformer import SentenceTransformerEncoder
from .translate import Translator

log = logging.getLogger(__name__)

AUTO, NONE = "auto", "none"


def _languages(values: list[str]) -> str | None:
    return some_of(language_codes)([v.lower() for v in values])


def _encoders() -> tuple[str, ...]:
    # Read at check time: the table is a module dict (tests add a tiny encoder to it).
    return (AUTO, NONE, *table.TEXT_ENCODERS)


@dataclass(frozen=True)
class QuerySettings:
    """[query]: how text queries in other languages than English are encoded."""

    languages: list[str] = rule(_languages, default_factory=lambda: ["en", "vi"])  # what detection chooses among
    # "auto": the table's first encoder for the index's image space whose weights are present;
    # a name from the table; or "none".
    text_encoder: str = rule(one_of(_encoders), default=AUTO)
    # A folder with the files of the encoder text_encoder names ("" = the Hugging Face cache).
    text_encoder_path: str = ""
    # "" = off; a translation model to English (Hugging Face repository in the cache, or a local
    # folder), e.g. Helsinki-NLP/opus-mt-vi-en. When set, non-English queries are translated and
    # read by the English tower; the multilingual encoder is then the fallback.
    translate: str = ""

    def check(self) -> str | None:
        if self.text_encoder_path and self.text_encoder in (AUTO, NONE):
            return (
                "query.text_encoder_path needs query.text_encoder to name the encoder whose files it holds "
                f"(one of: {', '.join(table.TEXT_ENCODERS)})"
            )
        return None


@dataclass(frozen=True)
class EncodedText:
    vector: np.ndarray
    language: str | None  # ISO 639-1 code of the query; None when it has no detectable language
    encoder: str  # what made the vector (README, "JSON output")
    text: str  # what the encoder read: the query, or its translation
    # False when the query's language went to an English-only text tower for want of anything
    # better (`fallback` says why): beside a model that understood it, this one sits out.
    understood: bool = True


class TextRouter:
    def __init__(self, settings: QuerySettings, clip: ClipEncoder):
        self.settings = settings
        self.clip = clip
        self.detector = LanguageDetector(settings.languages)
        self._translator: Translator | None = None
        self._encoders: dict[str, object] = {}
        self._fallbacks: dict[str, str] = {}  # language -> why its queries went to the English tower
        self._shared: TextRouter = self  # who loads the detector's and translator's models
        self._said: set[str] = set()  # notes logged already

    def beside(self, clip: ClipEncoder) -> TextRouter:
        """A router for another image-text model of the same index ([[models]]), with the same
        rules, sharing this one's language detector and translation model (loaded once)."""
        settings = self.settings
        spec = table.TEXT_ENCODERS.get(settings.text_encoder)
        if spec is not None and spec.image_space != (clip.settings.model, clip.settings.pretrained):
            # query.text_encoder is [clip]'s: this model takes the table's own choice for its space.
            settings = replace(settings, text_encoder=AUTO, text_encoder_path="")
        other = TextRouter(settings, clip)
        other.detector, other._shared = self.detector, self
        return other

    @property
    def native_name(self) -> str:
        s = self.clip.settings
        return f"clip:{s.model}/{s.pretrained}"

    @property
    def native_multilingual(self) -> bool:
        return self.clip.settings.model in table.MULTILINGUAL_CLIP_MODELS

    # -- the pairing ------------------------------------------------------------------------

    def encoder_name(self) -> str | None:
        """The multilingual encoder for this index's image space, or None. Raises QueryError for a
        configured encoder the table does not pair with it."""
        s, clip = self.settings, self.clip.settings
        if s.text_encoder == NONE:
            return None
        if s.text_encoder == AUTO:
            return self._auto_choice
        spec = table.TEXT_ENCODERS.get(s.text_encoder)
        if spec is None:
            raise QueryError(
                f"query.text_encoder {s.text_encoder!r} is not in evr's table of aligned encoders "
                f"(known: {', '.join(table.TEXT_ENCODERS)})"
            )
        if spec.image_space != (clip.model, clip.pretrained):
            fits = table.aligned_with(clip.model, clip.pretrained)
            raise QueryError(
                f"query.text_encoder {s.text_encoder} was trained into the image space of "
                f"{'/'.join(spec.image_space)}, but this index is {clip.model}/{clip.pretrained}: its vectors "
                f"would not compare. "
                + (
                    f"Encoders for this index: {', '.join(fits)}."
                    if fits
                    else "evr knows no multilingual encoder for this index; set query.text_encoder "
                    '= "none" or query.translate.'
                )
            )
        return s.text_encoder

    @functools.cached_property
    def _auto_choice(self) -> str | None:
        """The table's first encoder for this image space whose files are here, else its first."""
        clip = self.clip.settings
        names = table.aligned_with(clip.model, clip.pretrained)
        present = [n for n in names if self.status(n)[0]]
        return (present or names or [None])[0]

    @property
    def translator(self) -> Translator | None:
        shared = self._shared
        if shared._translator is None and self.settings.translate:
            shared._translator = Translator(self.settings.translate, self.clip.device)
        return shared._translator

    def _vector(self, name: str, text: str) -> np.ndarray:
        encoder = self._encoder(name)
        if isinstance(encoder, ClipEncoder):
            return encoder.encode_texts([text])[0]
        return encoder.encode([text])[0]

    def _path(self, name: str) -> str:
        """text_encoder_path holds the files of the encoder text_encoder names, of no other."""
        return self.settings.text_encoder_path if name == self.settings.text_encoder else ""

    def _encoder(self, name: str):
        if name not in self._encoders:
            spec = table.TEXT_ENCODERS[name]
            folder = self._path(name)
            device = self.clip.device
            if spec.loader == "mclip":
                self._encoders[name] = MClipEncoder(name, folder, device)
            elif spec.loader == "sentence-transformers":
                self._encoders[name] = SentenceTransformerEncoder(name, folder, device)
            else:  # an open_clip model whose text tower was trained against this index's image tower
                model, _, pretrained = name.partition("/")
                self._encoders[name] = ClipEncoder(ClipSettings(model, folder or pretrained, self.clip.settings.device))
        return self._encoders[name]

    def status(self, name: str) -> tuple[bool, str]:
        """(weights present, where or what is missing) of a table encoder; downloads nothing."""
        from evr.indexer.encoders.clip import weights_status

        from .weights import model_folder

        spec = table.TEXT_ENCODERS[name]
        if spec.loader == "open_clip":
            model, _, pretrained = name.partition("/")
            return weights_status(ClipSettings(model, self._path(name) or pretrained))
        try:
            folder = model_folder(name, self._path(name), "query.text_encoder_path")
            if spec.loader == "mclip":
                base_config(mclip_config(folder)["modelBase"], name)
            return True, str(folder)
        except ModelUnavailableError as exc:
            return False, str(exc)

    def translator_status(self) -> tuple[bool, str]:
        try:
            return True, str(self.translator.folder())
        except ModelUnavailableError as exc:
            return False, str(exc)

    # -- encoding ---------------------------------------------------------------------------

    def language_of(self, text: str, language: str | None = None) -> str | None:
        """`language` when given (checked by Query.validate), else the detected one."""
        return self.detector.detect(text) if language is None else language.lower()

    def encode(self, text: str, language: str | None = None, quiet: bool = False) -> EncodedText:
        """The query's vector and who made it; `language` overrides detection. A fall back to
        the English tower is logged once, unless `quiet` (the caller decides: `said_fallback`)."""
        name = self.encoder_name()  # checks the pairing before anything loads
        lang = self.language_of(text, language)
        if lang in (None, "en") or self.native_multilingual:
            return EncodedText(self.clip.encode_texts([text])[0], lang, self.native_name, text)
        problems = []
        if self.translator is not None:
            try:
                english = self.translator.translate(text)
                return EncodedText(
                    self.clip.encode_texts([english])[0], lang, f"{self.translator.name}>{self.native_name}", english
                )
            except ModelUnavailableError as exc:
                problems.append(str(exc))
        if name is not None:
            try:
                return EncodedText(self._vector(name, text), lang, name, text)
            except ModelUnavailableError as exc:
                problems.append(str(exc))
        elif self.settings.text_encoder == NONE:
            problems.append('query.text_encoder = "none"')
        else:
            clip = self.clip.settings
            problems.append(
                f"evr knows no multilingual encoder for {clip.model}/{clip.pretrained} (the table: "
                f'README, "Languages"); set query.translate, or index with a multilingual CLIP model'
            )
        why = (
            f"'{lang}' queries are read by the English-only CLIP text tower ({self.native_name}), which does "
            f"not understand them: " + "; ".join(problems)
        )
        self._fallbacks[lang] = why
        if not quiet:
            self.said_fallback(lang)
        return EncodedText(self.clip.encode_texts([text])[0], lang, self.native_name, text, understood=False)

    def said_fallback(self, language: str | None) -> None:
        """Log, once per language, that its queries went to this English-only tower and why."""
        why = self._fallbacks.get(language or "")
        if why and why not in self._said:
            self._said.add(why)
            log.warning("%s", why)

    def sat_out(self, language: str | None, readers: str) -> None:
        """Log, once per language, that this model sat out a query the others understood."""
        note = f"'{language}' queries: {self.native_name} sat out (it reads English only), {readers} read them"
        if note not in self._said:
            self._said.add(note)
            log.info("%s", note)

    def fallback(self, language: str | None) -> str | None:
        """Why queries in this language went to the English tower, once that has happened; else None."""
        return self._fallbacks.get(language or "")
