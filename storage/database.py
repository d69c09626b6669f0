"""The data folder: its SQLite file, the writer's lock, sessions and transactions, disk errors.

Layout of a data folder:
    evr.sqlite      videos, keyframes, their vectors and every feature's results (source of truth)
    vectors.faiss   the vector index over those vectors, keyed by keyframe id (storage/mirror.py)
    thumbs/         one folder per indexed video run: thumbs/v<video id>-<run>/<frame_idx>.jpg
    evr.lock        held by the one process that writes

A reader on a folder it cannot write (an archive on a read-only mount) opens the database
immutable: SQLite then takes no lock and needs no -shm file, which it could not create there.
A database that is not one, or is corrupt, is one DamagedIndexError whatever statement met it.
A full, read-only or failing disk is one DataDirError that says what could not be written.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from .errors import DamagedIndexError, DataDirError, NoIndexError, QueryTooLargeError, StoreError

log = logging.getLogger(__name__)

# OS errors that say the disk, not the data, is at fault.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM}
# SQLite's primary result codes for the same (https://sqlite.org/rescode.html).
_SQLITE_DISK_ERRORS = {
    13: "the database or disk is full",
    8: "the database is read-only",
    10: "disk I/O error",
    14: "the database file cannot be opened",
}
_SQLITE_CORRUPT, _SQLITE_TOOBIG, _SQLITE_NOTADB = 11, 18, 26
# What SQLite says of a statement too large to run (its code is the generic SQLITE_ERROR).
_TOO_LARGE = ("Expression tree is too large", "too many SQL variables", "too many terms in compound SELECT")


class Database:
    """Open a data folder's database. `writer=True` creates the folder and takes its lock (one
    writer at a time); a reader needs an existing index."""

    def __init__(self, data_dir: Path, writer: bool = False):
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.db_path = self.data_dir / "evr.sqlite"
        self.thumb_root = self.data_dir / "thumbs"
        self.writer = writer
        self._lock_file = None
        if writer:
            with self.writing(self.data_dir):
                self.data_dir.mkdir(parents=True, exist_ok=True)
                self.thumb_root.mkdir(exist_ok=True)
                self._take_lock()
        elif not self.db_path.exists():
            raise NoIndexError(
                f"no index in {self.data_dir}: run `evr index <folder>` first "
                "(or point storage.data_dir at an existing index)"
            )
        self.read_only = not writer and not _writable(self.data_dir)
        # The pool a file database gets (the URL names none: the creator opens the file).
        self.engine = create_engine("sqlite://", creator=self._connect, poolclass=QueuePool)
        event.listen(self.engine, "connect", sqlite_pragmas if writer else _reader_pragmas)
        event.listen(self.engine, "handle_error", self._damaged)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        """A session for reading (`with db.session() as s:`)."""
        return self._sessions()

    @contextmanager
    def transaction(self, needed: int = 0) -> Iterator[Session]:
        """One write transaction: committed whole or not at all; a failing disk is one
        DataDirError (`needed`: about how many bytes it writes, for the message)."""
        with self.writing(self.db_path, needed), self._sessions.begin() as s:
            yield s

    @contextmanager
    def writing(self, target: Path, needed: int = 0) -> Iterator[None]:
        """Turn a failing disk under `target` into one DataDirError that says what could not be
        written, why, how much space is free there and how much was needed."""
        try:
            yield
        except (OSError, OperationalError) as exc:
            if isinstance(exc, OperationalError):
                code = getattr(exc.orig, "sqlite_errorcode", None)
                reason = _SQLITE_DISK_ERRORS.get(code & 0xFF) if code is not None else None
            else:
                reason = exc.strerror if exc.errno in _DISK_ERRNOS else None
                target = Path(exc.filename) if exc.filename else target
            if reason is None:
                raise
            try:
                free = f"{size_text(shutil.disk_usage(self.data_dir).free)} free"
            except OSError:
                free = "free space unknown"
            needs = f", about {size_text(needed)} needed" if needed else ""
            raise DataDirError(f"cannot write {target}: {reason} ({free}{needs})") from exc

    def writer_active(self) -> bool:
        """Whether an `evr index` run holds this folder's lock right now."""
        if self._lock_file is not None:
            return True
        try:
            with open(self.data_dir / "evr.lock") as f:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released when f closes
        except BlockingIOError:
            return True
        except OSError:  # no lock file: no writer ever ran here
            pass
        return False

    def close(self) -> None:
        self.engine.dispose()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _take_lock(self) -> None:
        self._lock_file = open(self.data_dir / "evr.lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise StoreError(f"another `evr index` is writing to {self.data_dir}; wait for it to finish") from None

    def _connect(self) -> sqlite3.Connection:
        uri = self.db_path.as_uri()  # any folder name, spaces, '?' and bytes that are not UTF-8 included
        if self.read_only:
            # A WAL a writer left behind (killed) holds commits: read it, where SQLite can.
            wal = self.db_path.with_name("evr.sqlite-wal")
            uri += "?mode=ro" if wal.exists() and wal.stat().st_size else "?immutable=1"
        # The app's sessions share one store across threads (the vector mirror has its own lock).
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    def _damaged(self, context) -> Exception | None:
        """SQLAlchemy's error hook: a database file that is not one, or is corrupt, is one line
        that says so, whatever statement met it; a statement SQLite finds too large is one line
        too (SQLAlchemy's own message carries the whole statement and its parameters, which
        only the debug log may show)."""
        original = context.original_exception
        code = getattr(original, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return DamagedIndexError(
                f"the index database {self.db_path} is damaged ({original}): restore it from a "
                "backup, or move the data folder away and index the videos again"
            )
        if (code is not None and code & 0xFF == _SQLITE_TOOBIG) or any(words in str(original) for words in _TOO_LARGE):
            log.debug("SQLite refused as too large: %s %s", context.statement, context.parameters)
            return QueryTooLargeError(
                f"the index cannot answer a query this large ({original}): ask with fewer conditions"
            )
        return None


def sqlite_pragmas(dbapi_conn, _record) -> None:
    """The writer's connection settings (tests cap the database's size by wrapping this)."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    # Takes effect only as a new file's first statement: 8 KB pages hold five 1.5 KB vector rows
    # where 4 KB pages hold two (2 KB per vector).
    cur.execute("PRAGMA page_size=8192")
    cur.execute("PRAGMA journal_mode=WAL")  # readers (the app) never block the indexer
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _reader_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.execute("PRAGMA foreign_keys=ON")


def _writable(folder: Path) -> bool:
    """Whether this process may write in `folder` (not on a read-only mount, not refused)."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return False
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def size_text(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
