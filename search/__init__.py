"""Search: query -> vector search -> ranked hits."""
from .engine import Query, SearchEngine, read_image
from .errors import QueryError
from .hits import Hit
from .multilingual import QuerySettings

__all__ = ["Hit", "Query", "QueryError", "QuerySettings", "SearchEngine", "read_image"]
