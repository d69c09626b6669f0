"""Showing untrusted text (file names, on-screen text, summaries, error messages) in the app.

Streamlit renders strings as Markdown: an on-screen text `![x](http://host/x.png)` would make
every browser that shows the hit fetch an outside image, `**x**` would turn bold and a URL
would become a link. `plain` escapes every ASCII punctuation mark (CommonMark lets any of them
be backslash-escaped), which also disarms Streamlit's own `:color[...]`, `:emoji:` and `$math$`.
Escapes do not stop GitHub-flavoured Markdown from linking bare URLs, `www.` names and e-mail
addresses (it finds them in the text after escapes are undone: a browser test saw it), so an
invisible WORD JOINER (U+2060) goes into each `://`, `www.` and before each `@`. Control
characters and a file name's undecodable bytes are escaped first, as on every other output
(search/printable.py).
"""
from __future__ import annotations

import re

from search.printable import printable

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?i:(?<=www)(?=\.))|(?=@)")
WORD_JOINER = "\u2060"


def plain(text: object) -> str:
    """`text` as Markdown that shows exactly these characters, on one line, with no link."""
    text = _AUTOLINK.sub(WORD_JOINER, printable(" ".join(str(text).split())))
    return _PUNCTUATION.sub(r"\\\1", text)
