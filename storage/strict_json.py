"""JSON read as RFC 8259 defines it, for everything evr reads from outside (a package's files, a
contest server's answers, settings in the environment, the index's meta table).

Python's json module also takes NaN, Infinity and -Infinity, turns 1e400 into infinity, and ends
in a RecursionError on a document nested 100,000 brackets deep. None of those is JSON: each is a
`JsonError` (a ValueError) here, with the reason, so the caller reports one bad file or value
and goes on. What evr writes is strict too (search/printable.py's `json_text`).
"""

from __future__ import annotations

import json
import math
from typing import Any


class JsonError(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise JsonError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise JsonError(f"{text[:20]} is beyond the range of a number")
    return number


def loads(text: str | bytes) -> Any:
    """The value of a JSON document; JsonError for anything that is not strict JSON."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise JsonError("nested too deeply") from None
    except JsonError:
        raise
    except UnicodeDecodeError as exc:
        raise JsonError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # json.JSONDecodeError, an integer of over 4300 digits
        raise JsonError(str(exc)) from None
