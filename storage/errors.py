"""The errors storage raises: each a problem with the data directory or the vector service
that the user must act on, with a message that says what to do."""

from __future__ import annotations


class StoreError(Exception):
    """A problem with the data directory that the user must act on."""


class ModelMismatchError(StoreError):
    pass


class NoIndexError(StoreError):
    """There is no index where the user pointed (a wrong storage.data_dir, or nothing indexed yet)."""


class UnknownVideoError(StoreError):
    """A video id the index does not hold (or not in the way asked for)."""


class UnknownModelError(StoreError):
    """A model name the index holds no vectors of (or not in the way asked for)."""


class DamagedIndexError(StoreError):
    """The database file is not a database, or is corrupt: no command can read it."""


class DamagedMetaError(DamagedIndexError):
    """A fact of the index's meta table holds a value no reader can use (hand-edited, or
    written by something else): the message names the key."""


class DataDirError(StoreError):
    """The data directory cannot be written: disk full, read-only or failing. The machine's
    fault, not the video's; what was being written is not committed."""


class VectorServiceError(StoreError):
    """The vector database (Milvus) cannot be reached or does not hold this index's vectors."""


class QueryTooLargeError(StoreError):
    """SQLite refused a statement as too large (too deep, too many variables): the query asked
    for too much at once. Said without the statement, which can be megabytes."""
