"""Search: query -> vector search -> ranked hits."""
from .engine import Query, QueryError, SearchEngine, read_image
from .hits import Hit

__all__ = ["Hit", "Query", "QueryError", "SearchEngine", "read_image"]
