"""The planner without a model: a few rules a contest user applies by hand, so it always works,
offline and at once.

- Events: the description splits where it says what came next ("sau đó", "tiếp theo", "tiếp
  đến", "cuối cùng", "then", "after that", "afterwards", "finally"; ", rồi" and ". Next" after
  a pause, ". Next" opening a sentence). "trong vòng 10 giây" / "within 10 seconds" is the gap between events.
- Quoted text ("...", “...”, «...», '...') is on-screen words, unless a verb of saying ("nói",
  "phát biểu", "cho biết", "tuyên bố", "says", "said", ...) comes just before it: then it is
  spoken words.
- A number (digits, or Vietnamese and English number words) before an object's name (COCO's,
  English or Vietnamese, with or without marks) is an object count: "hai người" -> person:2,
  "3 xe máy" -> motorcycle:3.
- Colour names (English, Vietnamese) are colours that must show somewhere; unaccented Vietnamese
  ("do", which is also a common word) counts only after "màu" or "áo".
- What is left, the quotes and the words of saying taken out, is the visual description, in
  the description's own language (the multilingual encoders read Vietnamese; an English-only
  model needs a translator: [query] translate, or the `llm` planner, which writes English).

Each folded character stands for one original character (`_fold_chars`), so what is found in
the folded text is cut from the original."""

from __future__ import annotations

import re
import unicodedata

from evr.storage.features.colors import COLORS

from .plan import PlannedEvent, QueryPlan

NAME = "rules"

_STRONG_BREAKS = r"sau do|ngay sau do|tiep theo|tiep den|ke tiep|cuoi cung|then|after that|afterwards|finally"
_WEAK_BREAKS = r"roi|va sau do"  # after a pause or a quote
_SENTENCE_BREAKS = r"next|later"  # opening a sentence
_BREAK = re.compile(
    rf"(?:(?<=[.;!?,:])\s*|(?<=\s)|^)(?:and\s+|va\s+)?(?:{_STRONG_BREAKS})\b[\s,:]*"
    rf"|(?:(?<=[.;!?,\"”»'])\s*)(?:{_WEAK_BREAKS})\b[\s,:]*"
    rf"|(?:(?<=[.;!?])\s*)(?:{_SENTENCE_BREAKS})\b[\s,:]*"
)
_SAYING = re.compile(
    r"\b(noi|phat bieu|cho biet|tuyen bo|khang dinh|hat|hoi|tra loi|doc|says|said|saying|say|speaks|"
    r"announces|announced|tells|told|asks|asked|shouts|sings)\b[^\"“”«»']{0,25}$"
)
_QUOTES = re.compile(r"[\"“”]([^\"“”]{1,200})[\"“”]|«([^«»]{1,200})»|(?<![\w])'([^']{2,200})'(?![\w])")
# What opens an event, taken out of its visual text.
_LEAD = re.compile(rf"\s*(?:and\s+|va\s+)?(?:{_STRONG_BREAKS}|{_WEAK_BREAKS}|{_SENTENCE_BREAKS})\b[\s,:]*")
_WITHIN = re.compile(
    r"\b(?:trong vong|trong khoang|khong qua|within|in under|less than)\s*(\d+(?:[.,]\d+)?)\s*"
    r"(giay|s|sec|secs|seconds?|phut|minutes?|mins?)\b"
)
NUMBERS = {
    "mot": 1, "hai": 2, "ba": 3, "bon": 4, "tu": 4, "nam": 5, "sau": 6, "bay": 7, "tam": 8, "chin": 9, "muoi": 10,
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "several": 2, "many": 3, "nhieu": 3, "vai": 2,
}  # fmt: skip
# Object names as descriptions say them (folded) -> COCO's label. Longer names first.
OBJECTS = {
    "nguoi dan ong": "person", "nguoi phu nu": "person", "phong vien": "person", "nguoi": "person",
    "dan ong": "person", "phu nu": "person", "dua tre": "person", "tre em": "person", "em be": "person",
    "co gai": "person", "chang trai": "person", "canh sat": "person", "binh si": "person",
    "people": "person", "persons": "person", "person": "person", "men": "person", "man": "person",
    "women": "person", "woman": "person", "children": "person", "child": "person", "kids": "person",
    "boys": "person", "boy": "person", "girls": "person", "girl": "person", "reporters": "person",
    "reporter": "person", "policemen": "person", "soldiers": "person",
    "xe hoi": "car", "o to": "car", "xe con": "car", "cars": "car", "car": "car",
    "xe may": "motorcycle", "motorcycles": "motorcycle", "motorbikes": "motorcycle", "motorcycle": "motorcycle",
    "motorbike": "motorcycle", "xe dap": "bicycle", "bicycles": "bicycle", "bicycle": "bicycle", "bikes": "bicycle",
    "xe buyt": "bus", "buses": "bus", "bus": "bus", "xe tai": "truck", "trucks": "truck", "truck": "truck",
    "tau hoa": "train", "trains": "train", "train": "train", "may bay": "airplane", "planes": "airplane",
    "airplanes": "airplane", "airplane": "airplane", "thuyen": "boat", "ghe": "boat", "boats": "boat", "boat": "boat",
    "cho": "dog", "dogs": "dog", "dog": "dog", "meo": "cat", "cats": "cat", "cat": "cat",
    "ngua": "horse", "horses": "horse", "horse": "horse", "bo": "cow", "cows": "cow", "cow": "cow",
    "chim": "bird", "birds": "bird", "bird": "bird", "ghe ngoi": "chair", "chairs": "chair", "chair": "chair",
    "o": "umbrella", "umbrellas": "umbrella", "umbrella": "umbrella", "tivi": "tv", "tv": "tv",
    "dien thoai": "cell phone", "phones": "cell phone", "phone": "cell phone", "may tinh": "laptop",
    "laptops": "laptop", "laptop": "laptop", "chai": "bottle", "bottles": "bottle", "bottle": "bottle",
    "ban": "dining table", "tables": "dining table", "table": "dining table", "qua bong": "sports ball",
    "bong": "sports ball", "ball": "sports ball", "den giao thong": "traffic light", "traffic lights": "traffic light",
}  # fmt: skip
# Words that count things between a number and the thing ("hai chiếc xe", "ba con chó").
_CLASSIFIERS = r"(?:chiec|con|cai|nguoi|ngoi|toa|bo)\s+"


def _alternatives(names) -> str:
    """A regex group's alternatives, the longest first (so "xe may" wins over "xe")."""
    return "|".join(sorted(map(re.escape, names), key=len, reverse=True))


# An English colour may stand between the number and the thing ("a blue bus").
_OBJECT = re.compile(
    rf"\b(\d{{1,3}}|{'|'.join(NUMBERS)})\s+(?:{_CLASSIFIERS})?(?:(?:{'|'.join(COLORS)}|gray)\s+)?"
    rf"({_alternatives(OBJECTS)})\b"
)
_VI_COLORS = {vi: name for name, (_, vi) in COLORS.items()}  # with their marks: "đỏ", "xanh dương", ...
_COLOR_ACCENTED = re.compile(rf"(?<!\w)({_alternatives(_VI_COLORS)})(?!\w)")
_COLOR_ENGLISH = re.compile(r"\b(" + "|".join(COLORS) + r"|gray)\b")


def _fold_chars(text: str) -> str:
    """Lower case, marks removed, one character for one: "Đỏ" -> "do" (positions kept)."""
    out = []
    for c in text:
        base = unicodedata.normalize("NFD", c)[0] if c not in "đĐ" else "d"
        out.append(base.lower() if len(base.lower()) == 1 else c)
    return "".join(out)


_UNACCENTED = {_fold_chars(vi): name for vi, name in _VI_COLORS.items()}
_COLOR_UNACCENTED = re.compile(rf"\b(?:mau|ao|mac ao|ao mau)\s+({_alternatives(_UNACCENTED)})\b")


def plan(description: str) -> QueryPlan:
    """The plan these rules read in a description (PlanError-free: a description with no words
    gives a plan of its text alone, which the caller's checks refuse)."""
    text = " ".join(description.split())
    quotes: list[tuple[int, int, str, bool]] = []  # (start, end, words, spoken)
    folded = _fold_chars(text)
    for found in _QUOTES.finditer(text):
        said = next(g for g in found.groups() if g is not None).strip()
        spoken = bool(_SAYING.search(folded[max(0, found.start() - 60) : found.start()]))
        quotes.append((found.start(), found.end(), said, spoken))
    within = _within(folded)
    events = []
    for start, end in _segments(folded, quotes):
        events.append(_event(text, folded, start, end, [q for q in quotes if start <= q[0] < end]))
    events = [e for e in events if e.visual or e.ocr or e.speech or e.objects or e.colors]
    return QueryPlan(tuple(events), within if len(events) > 1 else None, NAME)


def _segments(folded: str, quotes) -> list[tuple[int, int]]:
    """The events' spans: cut at each break outside quotes."""
    cuts = [0]
    for found in _BREAK.finditer(folded):
        if found.start() > 0 and not any(s <= found.start() < e for s, e, _, _ in quotes):
            cuts.append(found.start())
    cuts.append(len(folded))
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _event(text: str, folded: str, start: int, end: int, quotes) -> PlannedEvent:
    part, low = text[start:end], folded[start:end]
    ocr = " ".join(w for s, e, w, spoken in quotes if not spoken)
    speech = " ".join(w for s, e, w, spoken in quotes if spoken)
    objects: dict[str, int] = {}
    for found in _OBJECT.finditer(_without_quotes(low, start, quotes)):
        number = found.group(1)
        count = int(number) if number.isdigit() else NUMBERS[number]
        label = OBJECTS[found.group(2)]
        objects[label] = max(objects.get(label, 0), count)
    colors = []
    body = _without_quotes(part, start, quotes)
    found_colors = [_VI_COLORS[m.group(1).lower()] for m in _COLOR_ACCENTED.finditer(body.lower())]
    found_colors += [m.group(1).replace("gray", "grey") for m in _COLOR_ENGLISH.finditer(body.lower())]
    found_colors += [_UNACCENTED[m.group(1)] for m in _COLOR_UNACCENTED.finditer(_without_quotes(low, start, quotes))]
    for c in found_colors:
        if c not in colors:
            colors.append(c)
    return PlannedEvent(
        visual=_visual(part, low, start, quotes),
        ocr=ocr,
        speech=speech,
        objects=tuple(f"{label}:{n}" if n > 1 else label for label, n in objects.items()),
        colors=tuple(colors),
    )


def _without_quotes(part: str, offset: int, quotes) -> str:
    """The text with each quote blanked (same length: positions stay)."""
    chars = list(part)
    for s, e, _, _ in quotes:
        for i in range(max(s - offset, 0), min(e - offset, len(chars))):
            chars[i] = " "
    return "".join(chars)


def _visual(part: str, low: str, offset: int, quotes) -> str:
    """The event's text without its quotes, the words that introduce them, the break that opens
    it and the gap it names."""
    keep = list(part)
    for s, e, _, spoken in quotes:
        a = s - offset
        # "he says '...'", "with the words '...'": what introduces the words goes with them.
        lead = (_SAYING if spoken else _INTRO).search(low[max(0, a - 60) : a])
        if lead:
            a = max(0, a - 60) + lead.start()
        for i in range(max(a, 0), min(e - offset, len(keep))):
            keep[i] = " "
    lead = _LEAD.match(low)
    if lead:
        for i in range(lead.end()):
            keep[i] = " "
    for found in _WITHIN.finditer(low):
        for i in range(found.start(), found.end()):
            keep[i] = " "
    visual = " ".join("".join(keep).split())
    visual = re.sub(r"\s+([,.;:!?])", r"\1", visual)
    return visual.strip(" ,.;:!?-–")


# What introduces on-screen words (folded), taken out with them.
_INTRO = re.compile(
    r"\b(?:co dong chu|voi dong chu|dong chu|with the (?:words|text|caption)|that reads|which reads|reading|reads)"
    r"\s*[,.:]?\s*$"
)


def _within(folded: str) -> float | None:
    found = _WITHIN.search(folded)
    if not found:
        return None
    value = float(found.group(1).replace(",", "."))
    return value * 60 if found.group(2).startswith(("phut", "min")) else value
