"""The core of the SQLite schema (SQLAlchemy 2.x declarative models): videos, keyframes, shots,
vectors, the removal log, meta facts and the terms of the full-text tables. Each feature's own
tables live in its module under storage/features/ and join the same metadata when it registers.

Keyframe ids come from an AUTOINCREMENT column so an id is never reused after a video is
re-indexed or pruned: the vector index is keyed by keyframe id, and a reused id could silently
pair an old vector with a new frame. It also makes ids grow with every commit, which is how a
vector index file knows what it lacks: the keyframes above the last id it holds, and the
removals logged (by trigger) after the last one it applied.
"""

from __future__ import annotations

from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 7


class Base(DeclarativeBase):
    pass


class BoxColumns:
    """A box on a keyframe (a feature's table mixes it in: OCR's text boxes, persons, objects):
    fractions of the frame's width and height, (x0, y0) its top left corner."""

    x0: Mapped[float] = mapped_column(Float)
    y0: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)


class FsText(TypeDecorator):
    """Text that may hold a file name: Python keeps the bytes of a name that is not UTF-8 as
    surrogate escapes (PEP 383), which SQLite's UTF-8 text cannot carry. Such a value is stored
    as a BLOB of the name's own bytes (SQLite keeps a BLOB as it is in any column), any other as
    TEXT, so every name comes back as it went in and compares equal to itself."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape")

    def process_result_value(self, value, dialect):
        return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


class Meta(Base):
    """Key/value facts about the index as a whole (schema version, CLIP model, commit counter)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Video(Base):
    __tablename__ = "videos"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # What the video was read from: the video file (`evr index`), or an imported package's
    # map-keyframes CSV (`evr import aic`), whose stem is the video id as well.
    path: Mapped[str] = mapped_column(FsText, unique=True, index=True)
    stem: Mapped[str] = mapped_column(FsText, index=True)
    size: Mapped[int] = mapped_column(Integer)
    mtime_ns: Mapped[int] = mapped_column(Integer)
    # "indexing" while a run works on it (a crash leaves it so, and the next run redoes it),
    # "indexed" once its keyframes and vectors are committed, "failed" with `error` set.
    status: Mapped[str] = mapped_column(String, index=True)
    error: Mapped[str | None] = mapped_column(FsText, default=None)  # may name files
    decoder: Mapped[str | None] = mapped_column(String, default=None)
    duration: Mapped[float | None] = mapped_column(Float, default=None)
    fps: Mapped[float | None] = mapped_column(Float, default=None)
    frame_count: Mapped[int | None] = mapped_column(Integer, default=None)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    # Folder (relative to the thumbnail root) holding this video's current thumbnails.
    thumb_dir: Mapped[str | None] = mapped_column(String, default=None)
    # How its stored results were made (types.Plan as JSON): a file planned otherwise now (OCR
    # switched on, a backend changed) is worked on again.
    plan: Mapped[str | None] = mapped_column(Text, default=None)
    indexed_at: Mapped[float | None] = mapped_column(Float, default=None)
    # "decoded" (`evr index`) or "aic" (`evr import aic`: keyframes and vectors from the package).
    origin: Mapped[str] = mapped_column(String, default="decoded", server_default="decoded")
    # The file a player opens: the indexed file itself, an imported package's video, or NULL
    # when the package holds none.
    media_path: Mapped[str | None] = mapped_column(FsText, default=None)
    # The package's media-info JSON as given (title, publish_date, watch_url, ...), or NULL.
    media_info: Mapped[str | None] = mapped_column(Text, default=None)


class Keyframe(Base):
    __tablename__ = "keyframes"
    # Time windows of one video (temporal queries, a hit's neighbours) read this index's range.
    __table_args__ = (Index("ix_keyframes_video_time", "video_id", "timestamp"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    frame_idx: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[float] = mapped_column(Float)
    shot: Mapped[int] = mapped_column(Integer)  # Shot.shot of this video
    thumbnail: Mapped[str] = mapped_column(String)  # relative to the thumbnail root
    # Imported keyframes: the package's full-size image, which `evr analyze` reads (OCR and
    # persons need more than a thumbnail). NULL for decoded keyframes.
    source_image: Mapped[str | None] = mapped_column(FsText, default=None)


class Shot(Base):
    """A shot of a video: from its first frame up to the next shot's start (or the video's end).
    Keyframes name their shot by its number (`Keyframe.shot`), 0-based in time order."""

    __tablename__ = "shots"
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    shot: Mapped[int] = mapped_column(Integer, primary_key=True)
    start_frame: Mapped[int] = mapped_column(Integer)
    start: Mapped[float] = mapped_column(Float)  # seconds, as keyframe timestamps
    end: Mapped[float] = mapped_column(Float)


class Embedding(Base):
    """The CLIP vector of a keyframe, committed in the same transaction as the keyframe.

    SQLite is the source of truth; the vector index is a search structure rebuilt or caught up
    from these rows whenever it lags behind (after a crash between commit and save).
    """

    __tablename__ = "embeddings"
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), primary_key=True)
    # float16, little-endian, L2-normalised: half the bytes of float32, and cosine similarities
    # within 1e-3 of float32's; every search structure is built from these same values.
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class ModelVector(Base):
    """A keyframe's vector from one of the index's other image-text models (`[[models]]`, by
    its name), float16 like `Embedding`'s. Its vector index catches up by `seq`, the order the
    rows were written in, not by keyframe id: a model added to an existing index writes vectors
    of old keyframes after those of new ones."""

    __tablename__ = "model_vectors"
    __table_args__ = (UniqueConstraint("model", "keyframe_id"), {"sqlite_autoincrement": True})
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String)
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class VectorRemoval(Base):
    """Keyframes deleted, in order: a vector index applies those after its last one. Rows are
    written by the trigger below; the writer prunes the ones its saved index has applied."""

    __tablename__ = "vector_removals"
    __table_args__ = {"sqlite_autoincrement": True}
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    keyframe_id: Mapped[int] = mapped_column(Integer)


class FtsTerm(Base):
    """A term of a full-text table's folded texts, by the table it is from ("ocr_fts") and its
    length: storage/fulltext.py finds the terms near a query word here. Added with the texts
    and never removed: a term no text holds any more matches nothing."""

    __tablename__ = "fts_terms"
    __table_args__ = (PrimaryKeyConstraint("source", "length", "term"), {"sqlite_with_rowid": False})
    source: Mapped[str] = mapped_column(String)
    length: Mapped[int] = mapped_column(Integer)
    term: Mapped[str] = mapped_column(String)


# Whatever deletes a keyframe (a re-index, a failed or vanished video, a cascade), its removal
# is logged for the vector index. Features add their own triggers (storage/features/).
CORE_DDL = [
    """CREATE TRIGGER IF NOT EXISTS keyframe_removed AFTER DELETE ON keyframes BEGIN
    INSERT INTO vector_removals(keyframe_id) VALUES (old.id);
END"""
]
