"""Showing untrusted text (file names, on-screen text, summaries, error messages) in the app.

Streamlit renders strings as Markdown: an on-screen text `![x](http://host/x.png)` would make
every browser that shows the hit fetch an outside image, `**x**` would turn bold and a URL
would become a link. `plain` escapes every ASCII punctuation mark (CommonMark lets any of them
be backslash-escaped), which also disarms Streamlit's own `:color[...]`, `:emoji:` and `$math$`.
Escapes do not stop what works on the text after escapes are undone: GitHub-flavoured Markdown
links bare URLs, `www.` names and e-mail addresses (a browser test saw it), Streamlit's own
typography turns a free-standing `--` into an em dash, `->` and `<-` into arrows, `>=`, `<=` and
`~=` into signs, and `:streamlit:` into its logo. So an invisible WORD JOINER (U+2060) goes into
each `://`, `www.`, before each `@`, after each `:`, and between two of `<->=~` in a row. Control
characters and a file name's undecodable bytes are escaped first, as on every other output
(search/printable.py).
"""

from __future__ import annotations

import re

from evr.search.printable import printable

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_AUTOLINK = re.compile(r"(?<=:)|(?i:(?<=www)(?=\.))|(?=@)|(?<=[<>=~-])(?=[<>=-])")
WORD_JOINER = "\u2060"


def plain(text: object) -> str:
    """`text` as Markdown that shows exactly these characters, on one line, with no link."""
    text = _AUTOLINK.sub(WORD_JOINER, printable(" ".join(str(text).split())))
    return _PUNCTUATION.sub(r"\\\1", text)
