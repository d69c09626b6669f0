"""The `evr` command line: its flags, its errors and their exit codes (the commands themselves are
ui/commands.py). Results go to stdout, logs and progress to stderr.

Exit codes: 0 success; 1 some videos failed to index (the rest are committed), a run stopped on a
failing disk (the rest stay pending) or a runtime error; 2 a usage, query or configuration error;
3 the CLIP weights cannot be loaded.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import sys
from pathlib import Path

from evr.indexer.settings import DEVICES
from evr.search.printable import printable
from evr.search.query import GROUPS
from evr.search.summary import LANGUAGES
from evr.storage.vectors.base import BACKENDS as VECTOR_BACKENDS
from evr.ui.contest.export import EXPORTS, FORMATS

from .commands import COMMANDS
from .config import ConfigError, load_config
from .contest.answers import TASKS
from .output import EXIT_FAILED, EXIT_NO_MODEL, EXIT_OK, EXIT_USAGE, fail, print_json

log = logging.getLogger("evr")

REPORT = "print the run report as JSON"  # --json of the commands that run (index, import, analyze)


def _common(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: given before or after the subcommand, the flag is kept, not reset to a default.
    parser.add_argument(
        "--config", metavar="FILE", default=argparse.SUPPRESS, help="config file (default ./config.toml)"
    )
    parser.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS, help="index folder (storage.data_dir)")
    parser.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more logging (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="errors only")


def _command(
    sub, name: str, help: str, *, json: str | None = None, progress: bool = False, device: bool = False
) -> argparse.ArgumentParser:
    """A subcommand with the flags every command takes, and those it asks for: `--json` (its help
    says what is printed), `--no-progress`, `--device`."""
    p = sub.add_parser(name, help=help)
    _common(p)
    if device:
        p.add_argument("--device", choices=DEVICES, help="override clip.device")
    if progress:
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
    if json is not None:
        p.add_argument("--json", action="store_true", help=json)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evr", description="Search video archives by text, image or example frame.")
    _common(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _index_commands(sub)
    _search_command(sub)
    _plan_command(sub)
    _dres_commands(sub)
    _reading_commands(sub)
    return parser


def _index_commands(sub) -> None:
    p = _command(
        sub,
        "index",
        "index videos (folders are searched recursively); re-runs are incremental",
        json=REPORT,
        progress=True,
        device=True,
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--prune", action="store_true", help="remove indexed videos whose files are gone")
    p.add_argument("--retry-failed", action="store_true", help="try again files that failed before and did not change")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="index N videos at a time on a local Ray cluster of N "
        "workers (or N workers on --ray); 1 = in this process ([index] workers)",
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help='run the workers on this Ray cluster ("auto", "host:6379", "ray://host:10001"; [index] ray_address)',
    )

    p = _command(sub, "import", "import keyframes and features made elsewhere (an AI Challenge package)")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    p = _command(
        kinds,
        "aic",
        "an AI Challenge data package: keyframes, map-keyframes, clip-features-32, "
        "media-info (and videos, for playback)",
        json=REPORT,
        progress=True,
    )
    p.add_argument("folder", type=Path, metavar="DIR", help="the package's folder (one batch or several)")
    p.add_argument("--model", default="ViT-B-32", help="open_clip model the features were made with (default ViT-B-32)")
    p.add_argument(
        "--pretrained",
        default="openai",
        help="its weights tag (default openai); searches need the same clip.model and clip.pretrained",
    )
    p.add_argument(
        "--analyze", action="store_true", help="then run OCR and persons on the keyframe images (as `evr analyze` does)"
    )

    p = _command(
        sub,
        "analyze",
        "run OCR and persons (as configured) on imported keyframes that lack them",
        json=REPORT,
        progress=True,
    )
    p.add_argument("--video", action="append", default=[], metavar="VIDEO_ID", help="only this video (repeatable)")

    p = _command(
        sub,
        "reindex",
        "build the vector index anew from the stored vectors "
        "(after changing [index] kind; `evr index` also does it when needed)",
    )
    p.add_argument(
        "--vectors", choices=VECTOR_BACKENDS, help="fill this one ([vectors] backend says which searches use)"
    )


def _search_command(sub) -> None:
    p = _command(
        sub,
        "search",
        "search the index by text, by an image file, or by a keyframe",
        json="print hits as a JSON list",
        device=True,
    )
    p.add_argument("text", nargs="?", help="natural-language query")
    p.add_argument("--image", type=Path, metavar="FILE", help="query by example image")
    p.add_argument("--like", type=int, metavar="KEYFRAME_ID", help="frames similar to this keyframe")
    p.add_argument("-k", "--k", type=int, default=20, help="number of hits (with --group video: of videos)")
    p.add_argument(
        "--group",
        choices=[g for g in GROUPS if g],
        help="video: the best --per-video hits of each of k videos; limit: k hits in rank order, at most "
        "--per-video of them from one video",
    )
    p.add_argument("--per-video", type=int, default=1, metavar="N", help="hits kept per video with --group")
    f = p.add_argument_group("filters (combine with any query; all must hold)")
    _feature_filters(f)
    f.add_argument("--video", action="append", default=[], metavar="VIDEO_ID", help="only this video (repeatable)")
    f.add_argument("--from", dest="time_from", type=float, metavar="SECONDS", help="frames at or after this time")
    f.add_argument("--to", dest="time_to", type=float, metavar="SECONDS", help="frames at or before this time")
    t = p.add_argument_group("temporal (TRAKE)")
    t.add_argument(
        "--then",
        action="append",
        default=[],
        metavar="TEXT",
        help="an event that follows the previous one in the same video (repeatable: A --then B --then C)",
    )
    t.add_argument(
        "--within", type=float, default=10.0, metavar="SECONDS", help="how soon after the previous event (default 10)"
    )
    t.add_argument(
        "--plan",
        metavar="DESCRIPTION",
        help="a long description (Vietnamese or English) turned into the query: events, on-screen and "
        "spoken words, objects, colours ([plan]; see `evr plan`)",
    )
    r = p.add_argument_group("relevance feedback (Rocchio on the CLIP vectors)")
    r.add_argument(
        "--more-like",
        action="append",
        type=int,
        default=[],
        metavar="KEYFRAME_ID",
        help="a relevant keyframe: pulls the query towards it (repeatable; alone, it is the query)",
    )
    r.add_argument(
        "--less-like",
        action="append",
        type=int,
        default=[],
        metavar="KEYFRAME_ID",
        help="an irrelevant keyframe: pushes the query away from it and leaves it out (repeatable)",
    )
    p.add_argument(
        "--lang",
        metavar="CODE",
        help="the text query's language (en, vi, ...): skips detection; "
        "non-English text goes to query.translate or query.text_encoder",
    )
    p.add_argument(
        "--models",
        metavar="NAME,NAME",
        type=lambda v: tuple(n.strip() for n in v.split(",") if n.strip()),
        default=(),
        help="search with only these image-text models (clip = [clip]'s, else [[models]] "
        "names); default: every one, their rankings fused ([search] fusion)",
    )
    p.add_argument(
        "--export",
        choices=FORMATS,
        help="write hits as " + "; or ".join(f"{name}: {what}" for name, (_, what) in EXPORTS.items()),
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="file for --export (default: stdout)")
    p.add_argument("--answer", metavar="TEXT", help="the answer written on every line of --export qa")


def _dres_commands(sub) -> None:
    p = _command(sub, "dres", "a DRES contest server: log in, list evaluations, submit answers")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = _command(actions, "login", "log in and keep the session (password: prompt or $EVR_DRES_PASSWORD)")
    p.add_argument("--url", help="the server's address (default dres.url)")
    p.add_argument("--user", help="user name (default dres.username)")
    _command(actions, "logout", "end the session kept by `evr dres login`")
    _command(actions, "evaluations", "the evaluations this user can see", json="print them as JSON")
    p = _command(
        actions,
        "submit",
        "submit keyframes as an answer to the current task; prints the verdict",
        json="print the verdict as JSON",
    )
    p.add_argument(
        "keyframe_ids",
        nargs="+",
        type=int,
        metavar="KEYFRAME_ID",
        help="the keyframe (KIS, QA), or the keyframes of one video in time order (TRAKE)",
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        default="kis",
        help="kis: video and time (default); qa: --answer with video and time; trake: video and frames",
    )
    p.add_argument("--answer", metavar="TEXT", help="the answer of a QA task")
    _sending_flags(p)
    p = _command(
        actions,
        "submit-many",
        "submit each hit of a list as its own KIS answer (ad-hoc tasks); prints each verdict",
        json="print the verdicts as JSON",
    )
    p.add_argument(
        "list",
        type=Path,
        metavar="FILE",
        help="JSON: the hits of `evr search --json` or the app's export, or lines of "
        '{"keyframe_id": N} or {"video_id": "...", "timestamp": SECONDS}; - reads standard input',
    )
    _sending_flags(p)
    p = _command(actions, "task", "the running task: its name, type and time left", json="print it as JSON")
    p.add_argument("--evaluation", metavar="ID", help="the evaluation (default: the only active one)")


def _sending_flags(p) -> None:
    p.add_argument("--evaluation", metavar="ID", help="the evaluation (default: the only active one)")
    p.add_argument("--again", action="store_true", help="send even if this answer was sent to this task before")
    p.add_argument(
        "--force",
        action="store_true",
        help="send even when no task runs, or when the running task takes another kind of answer",
    )


def _plan_command(sub) -> None:
    p = _command(
        sub,
        "plan",
        "turn a long description into a query: its events, on-screen and spoken words, objects, colours",
        json="print the plan as JSON",
    )
    p.add_argument("description", help="the moment described (Vietnamese or English); `evr search --plan` runs it")


def _reading_commands(sub) -> None:
    p = _command(
        sub,
        "summarize",
        "a short summary of the event around a keyframe, optionally spoken",
        json="print the summary as JSON",
    )
    p.add_argument("keyframe_id", type=int)
    p.add_argument("--lang", choices=LANGUAGES, help="summary language (default: summary.language)")
    p.add_argument(
        "--speak",
        type=Path,
        metavar="FILE",
        help="also write it as spoken audio (gTTS mp3 or espeak-ng wav; "
        "the extension is a hint, converted with ffmpeg when it differs)",
    )

    p = _command(sub, "ui", "open the search app in the browser (Streamlit)")
    p.add_argument("--host", help="address to listen on (default ui.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default ui.port, 8501)")

    p = _command(
        sub,
        "shots",
        "the shots of a video: start, end and keyframes of each",
        json='print [{"shot", "start", "end", "keyframes"}]',
    )
    p.add_argument("video_id", help="the video's id (its file name without extension)")

    p = _command(
        sub,
        "storyboard",
        "every keyframe of a video, grouped by shot: where in the video a moment is",
        json='print {"video_id", "path", "duration", "keyframes", "shots": [{"shot", "start", "end", "keyframes"}]}',
    )
    p.add_argument("video_id", help="the video's id (its file name without extension)")

    p = _command(
        sub,
        "videos",
        "the videos of the index: status, length, size, decoder, keyframes, analyzers",
        json="print them as JSON",
    )
    p.add_argument("video", nargs="*", metavar="VIDEO_ID", help="only these (file names without extension)")

    p = _command(
        sub,
        "models",
        "the image-text models: configured ([clip], [[models]]) and in the index, with their vectors",
        json="print them as JSON",
    )
    p.add_argument("--drop", metavar="NAME", help="delete this model's vectors and vector index (not [clip]'s)")

    _command(sub, "stats", "counts and a consistency check of the index", json="print them as JSON")
    _command(sub, "doctor", "device, libraries and model weights this machine has", json="print the checks as JSON")


def _feature_filters(group) -> None:
    """Each registered feature's filter parameters as flags (storage/features/)."""
    from evr.storage.features import FEATURES

    for feature in FEATURES.values():
        for param in feature.params:
            help = param.help + (f" ({', '.join(param.choices)})" if param.choices else "")
            if param.many:
                group.add_argument(
                    param.flag,
                    dest=f"filter_{param.name}",
                    type=param.kind,
                    action="append",
                    default=[],
                    metavar=param.metavar or None,
                    help=help,
                )
            else:
                group.add_argument(
                    param.flag, dest=f"filter_{param.name}", type=param.kind, metavar=param.metavar or None, help=help
                )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    try:
        config = load_config(
            getattr(args, "config", None),
            {
                "clip": {"device": getattr(args, "device", None)},
                "index": {"workers": getattr(args, "workers", None), "ray_address": getattr(args, "ray", None)},
                "storage": {"data_dir": getattr(args, "data_dir", None)},
                "vectors": {"backend": getattr(args, "vectors", None)},
                "ui": {"host": getattr(args, "host", None), "port": getattr(args, "port", None)},
            },
        )
        return COMMANDS[args.command](args, config)
    except BrokenPipeError:  # `evr search ... | head`: the reader left, nothing more to say
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        message, code = "interrupted; run the same command again to resume", 130
    except Exception as exc:
        message, code = _exit_for(exc)
    if getattr(args, "json", False):  # a --json reader gets JSON, failure or not
        print_json({"error": message, "exit_code": code})
    return fail(message, code)


def _exit_for(exc: Exception) -> tuple[str, int]:
    """The one line and the exit code of an error: the first entry of the table that the
    error is an instance of; anything else is a bug, shown as such."""
    from evr.indexer.aic import AicFormatError
    from evr.indexer.encoders import ModelUnavailableError
    from evr.indexer.runners import RayUnavailableError
    from evr.search import QueryError
    from evr.storage import (
        ModelMismatchError,
        NoIndexError,
        QueryTooLargeError,
        StoreError,
        UnknownModelError,
        UnknownVideoError,
    )

    from .contest.client import DresError, DuplicateSubmission, TaskRefusal
    from .voice import VoiceError

    table: list[tuple[tuple[type[BaseException], ...], int, str]] = [
        ((ConfigError,), EXIT_USAGE, "configuration: "),
        ((ModelUnavailableError,), EXIT_NO_MODEL, ""),
        (
            (
                QueryError,
                FileNotFoundError,
                ModelMismatchError,
                NoIndexError,
                UnknownVideoError,
                AicFormatError,
                DuplicateSubmission,
                TaskRefusal,
                QueryTooLargeError,
                UnknownModelError,
            ),
            EXIT_USAGE,
            "",
        ),
        ((StoreError, DresError, RayUnavailableError, VoiceError), EXIT_FAILED, ""),
    ]
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:  # a path the user gave
        name = os.fsdecode(exc.filename or "")
        return f"a file name is too long for the file system: {name[:60]}{'...' if len(name) > 60 else ''}", EXIT_USAGE
    for kinds, code, prefix in table:
        if isinstance(exc, kinds):
            message = _as_flags(str(exc)) if isinstance(exc, QueryError) else str(exc)
            return prefix + message, code
    log.debug("unexpected error", exc_info=True)
    # SQLAlchemy's message holds the whole statement and its parameters: the debug log has them.
    said = getattr(exc, "orig", None) if type(exc).__module__.startswith("sqlalchemy") else None
    shown = (
        f"the index could not answer: {type(said).__name__}: {said}"
        if said is not None
        else f"{type(exc).__name__}: {exc}"
    )
    return f"{shown[:500]} (run with -vv for details)", EXIT_FAILED


def _as_flags(message: str) -> str:
    """A query error in the words of the command line: the core names a query's parameters
    (time_from, min_persons); here they are flags (--from, --min-persons)."""
    from evr.storage.features import FEATURES

    flags = {
        "time_from": "--from",
        "time_to": "--to",
        "within": "--within",
        "lang": "--lang",
        "per_video": "--per-video",
        "more_like": "--more-like",
        "less_like": "--less-like",
        **{p.name: p.flag for f in FEATURES.values() for p in f.params},
    }
    return re.sub(r"(?<![\w-])(" + "|".join(map(re.escape, flags)) + r")\b", lambda m: flags[m.group(1)], message)


class _PrintableFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is logged: `main` may run many times in one
    process (tests, an embedding program), each with its own stderr, and the first one's may be
    closed by then."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = _StderrHandler()
    handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # Index progress where no bar is drawn (a log file): shown unless --quiet.
    logging.getLogger("evr.progress").setLevel(logging.ERROR if quiet else min(level, logging.INFO))


if __name__ == "__main__":
    sys.exit(main())
