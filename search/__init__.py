"""Search: query -> vector search -> ranked hits."""

from .archive import Overview
from .engine import SearchEngine
from .errors import QueryError
from .hits import Hit
from .multilingual import QuerySettings
from .query import Query, read_image

__all__ = ["Hit", "Overview", "Query", "QueryError", "QuerySettings", "SearchEngine", "read_image"]
