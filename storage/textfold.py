"""Accent- and case-insensitive text for full-text search, Vietnamese included.

`fold("LŨ LỤT Ở HUẾ") == "lu lut o hue"`, `fold("Hà Nội") == "ha noi"`. Both the stored OCR text
and every query are folded the same way, so either side may carry accents or not. "đ" has no
Unicode decomposition (it is a letter of its own), so it is mapped by hand.
"""

from __future__ import annotations

import re
import unicodedata

_EXTRA = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l"})
# What FTS5's unicode61 tokenizer takes for a word: letters and digits (not "_", which \w holds).
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_EXTRA))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The folded words of a text; punctuation and FTS operators' symbols are not words."""
    return _WORD.findall(fold(text))


def fts_query(text: str) -> str | None:
    """A safe FTS5 MATCH expression: every word of the user's text, each quoted, all required.

    Quoting makes quotes, *, -, ^, :, parentheses and the words OR / AND / NOT / NEAR plain text,
    so no user string can raise an FTS5 syntax error. None when the text has no words."""
    tokens = words(text)
    return " ".join(f'"{t}"' for t in tokens) if tokens else None
