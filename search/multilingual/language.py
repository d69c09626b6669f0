"""The language of a query, among the configured ones (lingua: its models ship in the wheel, and
it tells Vietnamese from English with or without marks: "nguoi dan ong di xe dap" is Vietnamese)."""

from __future__ import annotations

from evr.storage.rules import language_codes as known_codes

__all__ = ["LanguageDetector", "known_codes"]


class LanguageDetector:
    def __init__(self, languages: list[str]):
        self.languages = [code.lower() for code in languages]
        self._detector = None

    def detect(self, text: str) -> str | None:
        """An ISO 639-1 code, or None when the text has no language (digits, one ambiguous word)."""
        if len(self.languages) == 1:
            return self.languages[0]
        if self._detector is None:
            from lingua import IsoCode639_1, LanguageDetectorBuilder

            codes = [IsoCode639_1.from_str(code) for code in self.languages]
            self._detector = LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()
        found = self._detector.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found is not None else None
