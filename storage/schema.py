"""SQLite schema (SQLAlchemy 2.x declarative models).

Keyframe ids come from an AUTOINCREMENT column so an id is never reused after a video is
re-indexed or pruned: the vector index is keyed by keyframe id, and a reused id could silently
pair an old vector with a new frame. It also makes ids grow with every commit, which is how a
vector index file knows what it lacks: the keyframes above the last id it holds, and the
removals logged (by trigger) after the last one it applied.
"""
from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 5


class Base(DeclarativeBase):
    pass


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
    """Key/value facts about the index as a whole (schema version, CLIP model)."""

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
    # Which analyzers ran, e.g. "clip|ocr:en|persons:mediapipe": a file indexed under another
    # set (OCR switched on, a backend changed) is indexed again.
    analyzers: Mapped[str | None] = mapped_column(String, default=None)
    indexed_at: Mapped[float | None] = mapped_column(Float, default=None)
    # "decoded" (`evr index`) or "aic" (`evr import aic`: keyframes and vectors from the package).
    origin: Mapped[str] = mapped_column(String, default="decoded", server_default="decoded")
    # The file a player opens: the indexed file itself, an imported package's video, or NULL
    # when the package holds none.
    media_path: Mapped[str | None] = mapped_column(FsText, default=None)
    # The package's media-info JSON as given (title, publish_date, watch_url, ...), or NULL.
    media_info: Mapped[str | None] = mapped_column(Text, default=None)

    keyframes: Mapped[list[Keyframe]] = relationship(
        back_populates="video", cascade="all, delete-orphan", passive_deletes=True
    )
    shots: Mapped[list[Shot]] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    speech: Mapped[list[Speech]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class Keyframe(Base):
    __tablename__ = "keyframes"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    frame_idx: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[float] = mapped_column(Float)
    shot: Mapped[int] = mapped_column(Integer)  # Shot.shot of this video
    thumbnail: Mapped[str] = mapped_column(String)  # relative to the thumbnail root
    # Imported keyframes: the package's full-size image, which `evr analyze` reads (OCR and
    # persons need more than a thumbnail). NULL for decoded keyframes.
    source_image: Mapped[str | None] = mapped_column(FsText, default=None)
    # Analyzer results; NULL where the analyzer did not run.
    ocr_text: Mapped[str | None] = mapped_column(Text, default=None)  # all boxes, reading order
    person_count: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    person_area: Mapped[float | None] = mapped_column(Float, default=None)  # mask area / frame area
    person_mask: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)  # small 1-bit PNG

    video: Mapped[Video] = relationship(back_populates="keyframes")
    embedding: Mapped[Embedding] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )
    ocr_boxes: Mapped[list[OcrBox]] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    persons: Mapped[list[Person]] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    poses: Mapped[list[KeyframePose]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


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

    SQLite is the source of truth; the FAISS file is a search structure rebuilt or repaired
    from these rows whenever it lags behind (after a crash between commit and save).
    """

    __tablename__ = "embeddings"
    keyframe_id: Mapped[int] = mapped_column(
        ForeignKey("keyframes.id", ondelete="CASCADE"), primary_key=True
    )
    # float16, little-endian, L2-normalised: half the bytes of float32, and cosine similarities
    # within 1e-3 of float32's; every search structure is built from these same values.
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class _BoxInKeyframe:
    """A box in a keyframe; coordinates are fractions of the frame's width and height."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), index=True)
    x0: Mapped[float] = mapped_column(Float)
    y0: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)


class OcrBox(_BoxInKeyframe, Base):
    """One piece of on-screen text."""

    __tablename__ = "ocr_boxes"
    text: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)


class Person(_BoxInKeyframe, Base):
    """One detected person: box, 17 COCO keypoints, pose labels."""

    __tablename__ = "persons"
    score: Mapped[float] = mapped_column(Float)
    keypoints: Mapped[str] = mapped_column(Text)  # JSON [[x, y, visibility] x 17], x/y as fractions
    labels: Mapped[str] = mapped_column(Text)  # JSON list, e.g. ["standing", "arms_raised"]


class KeyframePose(Base):
    """A pose label that some person in the keyframe has: the pose filter's index (a range of
    the primary key per label), where Person.labels keeps each person's labels for display."""

    __tablename__ = "keyframe_poses"
    __table_args__ = (PrimaryKeyConstraint("label", "keyframe_id"), {"sqlite_with_rowid": False})
    label: Mapped[str] = mapped_column(String)
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), index=True)


class Speech(Base):
    """A stretch of speech in a video's sound track (indexer/analyzers/speech/). A video whose
    sound was transcribed and holds no speech has none; its signature says it was transcribed."""

    __tablename__ = "speech_segments"
    __table_args__ = (Index("ix_speech_video_start", "video_id", "start"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    start: Mapped[float] = mapped_column(Float)  # seconds, on the keyframes' clock
    end: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String)
    confidence: Mapped[float] = mapped_column(Float)
    words: Mapped[str] = mapped_column(Text)  # JSON [[word, start, end], ...]: where each word is said


class VectorRemoval(Base):
    """Keyframes deleted, in order: a vector index file applies those after its last one. Rows are
    written by the trigger below; the writer prunes the ones its saved file has applied."""

    __tablename__ = "vector_removals"
    __table_args__ = {"sqlite_autoincrement": True}
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    keyframe_id: Mapped[int] = mapped_column(Integer)


class FtsTerm(Base):
    """A term of a full-text table's folded texts, by the table it is from ("ocr", "speech") and
    its length: storage/fulltext.py finds the terms near a query word here. Added with the texts
    and never removed: a term no text holds any more matches nothing."""

    __tablename__ = "fts_terms"
    __table_args__ = (PrimaryKeyConstraint("source", "length", "term"), {"sqlite_with_rowid": False})
    source: Mapped[str] = mapped_column(String)
    length: Mapped[int] = mapped_column(Integer)
    term: Mapped[str] = mapped_column(String)


# Full-text indexes over folded text (storage/textfold.py): OCR (rowid = keyframe id) and speech
# (rowid = speech segment id).
OCR_FTS_DDL = "CREATE VIRTUAL TABLE IF NOT EXISTS ocr_fts USING fts5(text, tokenize = 'unicode61')"
SPEECH_FTS_DDL = "CREATE VIRTUAL TABLE IF NOT EXISTS speech_fts USING fts5(text, tokenize = 'unicode61')"
SPEECH_DELETED_DDL = """CREATE TRIGGER IF NOT EXISTS speech_deleted AFTER DELETE ON speech_segments BEGIN
    DELETE FROM speech_fts WHERE rowid = old.id;
END"""
# Whatever deletes a keyframe (a re-index, a failed or vanished video, a cascade): its OCR text
# leaves the full-text index (a virtual table takes no foreign key) and its removal is logged.
KEYFRAME_DELETED_DDL = """CREATE TRIGGER IF NOT EXISTS keyframe_deleted AFTER DELETE ON keyframes BEGIN
    DELETE FROM ocr_fts WHERE rowid = old.id;
    INSERT INTO vector_removals(keyframe_id) VALUES (old.id);
END"""
