"""The `evr` command line. Results go to stdout, logs and progress to stderr.

Exit codes: 0 success; 1 some videos failed to index (the rest are committed), a run stopped on a
failing disk (the rest stay pending) or a runtime error; 2 a usage, query or configuration error;
3 the CLIP weights cannot be loaded.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from search.printable import json_text, printable

from .config import AppConfig, ConfigError, load_config
from .dres import TASKS

log = logging.getLogger("evr")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_MODEL = 0, 1, 2, 3


def _common(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: given before or after the subcommand, the flag is kept, not reset to a default.
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="config file (default ./config.toml)")
    parser.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS, help="index folder (storage.data_dir)")
    parser.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more logging (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="errors only")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evr", description="Search video archives by text, image or example frame.")
    _common(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", help="index videos (folders are searched recursively); re-runs are incremental")
    _common(p)
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--prune", action="store_true", help="remove indexed videos whose files are gone")
    p.add_argument("--retry-failed", action="store_true", help="try again files that failed before and did not change")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override clip.device")
    p.add_argument("--workers", type=int, metavar="N", help="index N videos at a time on a local Ray cluster of N "
                   "workers (or N workers on --ray); 1 = in this process ([index] workers)")
    p.add_argument("--ray", metavar="ADDRESS", help='run the workers on this Ray cluster ("auto", "host:6379", '
                   '"ray://host:10001"; [index] ray_address)')
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the run report as JSON")

    p = sub.add_parser("search", help="search the index by text, by an image file, or by a keyframe")
    _common(p)
    p.add_argument("text", nargs="?", help="natural-language query")
    p.add_argument("--image", type=Path, metavar="FILE", help="query by example image")
    p.add_argument("--like", type=int, metavar="KEYFRAME_ID", help="frames similar to this keyframe")
    p.add_argument("-k", "--k", type=int, default=20, help="number of hits (with --group video: of videos)")
    p.add_argument("--group", choices=["video"], help="best hits per video")
    p.add_argument("--per-video", type=int, default=1, metavar="N", help="hits kept per video with --group video")
    f = p.add_argument_group("filters (combine with any query; all must hold)")
    _feature_filters(f)
    f.add_argument("--video", action="append", default=[], metavar="VIDEO_ID", help="only this video (repeatable)")
    f.add_argument("--from", dest="time_from", type=float, metavar="SECONDS", help="frames at or after this time")
    f.add_argument("--to", dest="time_to", type=float, metavar="SECONDS", help="frames at or before this time")
    t = p.add_argument_group("temporal (TRAKE)")
    t.add_argument("--then", action="append", default=[], metavar="TEXT",
                   help="an event that follows the previous one in the same video (repeatable: A --then B --then C)")
    t.add_argument("--within", type=float, default=10.0, metavar="SECONDS",
                   help="how soon after the previous event (default 10)")
    r = p.add_argument_group("relevance feedback (Rocchio on the CLIP vectors)")
    r.add_argument("--more-like", action="append", type=int, default=[], metavar="KEYFRAME_ID",
                   help="a relevant keyframe: pulls the query towards it (repeatable; alone, it is the query)")
    r.add_argument("--less-like", action="append", type=int, default=[], metavar="KEYFRAME_ID",
                   help="an irrelevant keyframe: pushes the query away from it and leaves it out (repeatable)")
    p.add_argument("--lang", metavar="CODE", help="the text query's language (en, vi, ...): skips detection; "
                   "non-English text goes to query.translate or query.text_encoder")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override clip.device")
    p.add_argument("--json", action="store_true", help="print hits as a JSON list")
    p.add_argument("--export", choices=["aic", "json"], help="write hits as an AI Challenge CSV "
                   "(video_id,frame_idx; at most 100 lines) or JSON")
    p.add_argument("--out", type=Path, metavar="FILE", help="file for --export (default: stdout)")

    p = sub.add_parser("import", help="import keyframes and features made elsewhere (an AI Challenge package)")
    _common(p)
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    p = kinds.add_parser("aic", help="an AI Challenge data package: keyframes, map-keyframes, clip-features-32, "
                         "media-info (and videos, for playback)")
    _common(p)
    p.add_argument("folder", type=Path, metavar="DIR", help="the package's folder (one batch or several)")
    p.add_argument("--model", default="ViT-B-32", help="open_clip model the features were made with (default ViT-B-32)")
    p.add_argument("--pretrained", default="openai", help="its weights tag (default openai); searches need the same "
                   "clip.model and clip.pretrained")
    p.add_argument("--analyze", action="store_true", help="then run OCR and persons on the keyframe images "
                   "(as `evr analyze` does)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the run report as JSON")

    p = sub.add_parser("analyze", help="run OCR and persons (as configured) on imported keyframes that lack them")
    _common(p)
    p.add_argument("--video", action="append", default=[], metavar="VIDEO_ID", help="only this video (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the run report as JSON")

    p = sub.add_parser("dres", help="a DRES contest server: log in, list evaluations, submit answers")
    _common(p)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("login", help="log in and keep the session (password: prompt or $EVR_DRES_PASSWORD)")
    _common(p)
    p.add_argument("--url", help="the server's address (default dres.url)")
    p.add_argument("--user", help="user name (default dres.username)")
    p = actions.add_parser("logout", help="end the session kept by `evr dres login`")
    _common(p)
    p = actions.add_parser("evaluations", help="the evaluations this user can see")
    _common(p)
    p.add_argument("--json", action="store_true")
    p = actions.add_parser("submit", help="submit keyframes as an answer to the current task; prints the verdict")
    _common(p)
    p.add_argument("keyframe_ids", nargs="+", type=int, metavar="KEYFRAME_ID",
                   help="the keyframe (KIS, QA), or the keyframes of one video in time order (TRAKE)")
    p.add_argument("--task", choices=TASKS, default="kis",
                   help="kis: video and time (default); qa: --answer with video and time; trake: video and frames")
    p.add_argument("--answer", metavar="TEXT", help="the answer of a QA task")
    p.add_argument("--evaluation", metavar="ID", help="the evaluation (default: the only active one)")
    p.add_argument("--again", action="store_true", help="send even if this answer was sent to this task before")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")

    p = sub.add_parser("summarize", help="a short summary of the event around a keyframe, optionally spoken")
    _common(p)
    p.add_argument("keyframe_id", type=int)
    p.add_argument("--lang", choices=["en", "vi"], help="summary language (default: summary.language)")
    p.add_argument("--speak", type=Path, metavar="FILE", help="also write it as spoken audio (gTTS mp3 or espeak-ng wav; "
                   "the extension is a hint, converted with ffmpeg when it differs)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("ui", help="open the search app in the browser (Streamlit)")
    _common(p)
    p.add_argument("--host", help="address to listen on (default ui.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default ui.port, 8501)")

    p = sub.add_parser("shots", help="the shots of a video: start, end and keyframes of each")
    _common(p)
    p.add_argument("video_id", help="the video's id (its file name without extension)")
    p.add_argument("--json", action="store_true", help='print [{"shot", "start", "end", "keyframes"}]')

    p = sub.add_parser("reindex", help="build the vector index anew from the stored vectors "
                       "(after changing [index] kind; `evr index` also does it when needed)")
    _common(p)
    p.add_argument("--vectors", choices=["faiss", "milvus"], help="fill this one ([vectors] backend says which "
                   "searches use)")

    p = sub.add_parser("stats", help="counts and a consistency check of the index")
    _common(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("doctor", help="device, libraries and model weights this machine has")
    _common(p)
    p.add_argument("--json", action="store_true")
    return parser


def _feature_filters(group) -> None:
    """Each registered feature's filter parameters as flags (storage/features/)."""
    from storage.features import FEATURES

    for feature in FEATURES.values():
        for param in feature.params:
            help = param.help + (f" ({', '.join(param.choices)})" if param.choices else "")
            if param.many:
                group.add_argument(param.flag, dest=f"filter_{param.name}", type=param.kind, action="append", default=[],
                                   metavar=param.metavar or None, help=help)
            else:
                group.add_argument(param.flag, dest=f"filter_{param.name}", type=param.kind,
                                   metavar=param.metavar or None, help=help)


def _filter(args):
    """The search's KeyframeFilter from its flags (the core's and each feature's)."""
    from storage import KeyframeFilter

    given = {name.removeprefix("filter_"): tuple(v) if isinstance(v, list) else v
             for name, v in vars(args).items() if name.startswith("filter_")}
    return KeyframeFilter.of(videos=tuple(args.video), time_from=args.time_from, time_to=args.time_to, **given)


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
        _print_json({"error": message, "exit_code": code})
    return _fail(message, code)


def _exit_for(exc: Exception) -> tuple[str, int]:
    """The one line and the exit code of an error: the first entry of the table that the
    error is an instance of; anything else is a bug, shown as such."""
    from indexer.aic import AicFormatError
    from indexer.encoders import ModelUnavailableError
    from indexer.runners import RayUnavailableError
    from search import QueryError
    from storage import ModelMismatchError, NoIndexError, StoreError, UnknownVideoError

    from .dres import DresError, DuplicateSubmission
    from .voice import VoiceError

    table: list[tuple[tuple[type[BaseException], ...], int, str]] = [
        ((ConfigError,), EXIT_USAGE, "configuration: "),
        ((ModelUnavailableError,), EXIT_NO_MODEL, ""),
        ((QueryError, FileNotFoundError, ModelMismatchError, NoIndexError, UnknownVideoError, AicFormatError,
          DuplicateSubmission), EXIT_USAGE, ""),
        ((StoreError, DresError, RayUnavailableError, VoiceError), EXIT_FAILED, ""),
    ]
    for kinds, code, prefix in table:
        if isinstance(exc, kinds):
            message = _as_flags(str(exc)) if isinstance(exc, QueryError) else str(exc)
            return prefix + message, code
    log.debug("unexpected error", exc_info=True)
    return f"{type(exc).__name__}: {exc} (run with -vv for details)", EXIT_FAILED


def _as_flags(message: str) -> str:
    """A query error in the words of the command line: the core names a query's parameters
    (time_from, min_persons); here they are flags (--from, --min-persons)."""
    from storage.features import FEATURES

    flags = {"time_from": "--from", "time_to": "--to", "within": "--within", "lang": "--lang",
             "per_video": "--per-video", "more_like": "--more-like", "less_like": "--less-like",
             **{p.name: p.flag for f in FEATURES.values() for p in f.params}}
    return re.sub(r"(?<![\w-])(" + "|".join(map(re.escape, flags)) + r")\b", lambda m: flags[m.group(1)], message)


def _fail(message: str, code: int) -> int:
    say(f"evr: error: {message}", file=sys.stderr)
    return code


def say(*values, file=None) -> None:
    """Print a line, results and messages alike, through one escaping rule (search/printable.py):
    file names and the texts of files, packages and servers are untrusted."""
    print(*(printable(v) for v in values), file=file)


class _PrintableFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def _print_json(obj) -> None:
    sys.stdout.write(json_text(obj) + "\n")


# -- commands ---------------------------------------------------------------------------------


def cmd_index(args, config: AppConfig) -> int:
    from indexer.pipeline import Indexer, IndexReport
    from indexer.scan import check_paths
    from storage import DataDirError

    check_paths(args.paths)  # before the data folder is made: a typo leaves nothing behind
    try:
        store = config.open_store(writer=True)
    except DataDirError as exc:  # a read-only or full data dir: still a report, for --json
        report = IndexReport(stopped=str(exc))
    else:
        with store:
            report = Indexer(store, config.index).run(
                args.paths, prune=args.prune, retry_failed=args.retry_failed,
                progress=False if args.no_progress else None,
            )
    if args.json:
        _print_json(report.to_json())
    else:
        say(
            f"indexed {report.videos_indexed} videos ({report.keyframes_added} keyframes), "
            + (f"transcribed {report.videos_analyzed} already indexed, " if report.videos_analyzed else "")
            + f"skipped {report.videos_skipped} unchanged, failed {len(report.videos_failed)}, "
            f"pruned {len(report.videos_pruned)} in {report.seconds:.1f} s"
        )
        for failure in report.videos_failed:
            say(f"  failed: {failure['path']}: {failure['error']}")
        for p in report.videos_partial:
            say(f"  partial: {p['path']}: indexed {p['frames_decoded']} of {p['frames_expected']} frames: {p['error']}")
    if report.stopped:
        pending = f"; {report.videos_pending} videos are pending" if report.videos_pending else ""
        _fail(f"{report.stopped}{pending}. Free space (or fix the disk), then run `evr index` again", EXIT_FAILED)
    return EXIT_FAILED if report.videos_failed or report.stopped else EXIT_OK


def cmd_search(args, config: AppConfig) -> int:
    from search import Query, QueryError, read_image
    from search.export import AIC_MAX_LINES, export

    query = Query(
        text=args.text,
        image=read_image(args.image) if args.image else None,
        like=args.like,
        filters=_filter(args),
        then=tuple(args.then),
        within=args.within,
        more_like=tuple(args.more_like),
        less_like=tuple(args.less_like),
        lang=args.lang,
        k=args.k,
        group=args.group,
        per_video=args.per_video,
    )
    query.validate()
    if args.out and not args.export:
        raise QueryError("--out goes with --export aic|json")
    if args.out:
        _check_output_file(args.out, "--out")
    with config.open_engine() as engine:
        hits = engine.search(query)
    if args.export:
        data = export(hits, args.export)
        if args.out:
            args.out.write_text(data, encoding="utf-8")
            say(f"wrote {min(len(hits), AIC_MAX_LINES) if args.export == 'aic' else len(hits)} hits to {args.out}",
                file=sys.stderr)
        else:
            sys.stdout.write(data)
        return EXIT_OK
    if args.json:
        _print_json([h.to_json() for h in hits])
        return EXIT_OK
    if not hits:
        say("no results")
    elif hits[0].encoder:
        say(f"query read as '{hits[0].query_language or '?'}' by {hits[0].encoder}", file=sys.stderr)
    for h in hits:
        say(f"{h.rank:>3}  {h.score:7.4f}  {_describe(h)}")
        for event in h.chain[1:]:
            say(f"     then {event.score:7.4f}  {_describe(event)}")
    return EXIT_OK


def _check_output_file(path: Path, flag: str) -> None:
    """Refuse an output file that cannot be written before any work is done."""
    from search import QueryError

    if path.is_dir():
        raise QueryError(f"{flag} {path} is a folder: name a file")
    if not path.parent.is_dir():
        raise QueryError(f"{flag} {path}: the folder {path.parent} does not exist")


def _describe(h) -> str:
    shot = f"  shot {h.shot}" if h.shot is not None else ""
    facts = [f"{h.video_id}  frame {h.frame_idx:<6} {_clock(h.timestamp)}{shot}  keyframe {h.keyframe_id}"]
    if h.media("title"):
        facts.append(f'"{h.media("title")[:40]}"')
    return "  ".join(facts + h.facts())


def cmd_import(args, config: AppConfig) -> int:
    from indexer.aic import AicImporter, find_package
    from indexer.analyze import KeyframeAnalysis
    from indexer.encoders import ClipEncoder
    from indexer.settings import ClipSettings

    model = ClipEncoder(ClipSettings(model=args.model, pretrained=args.pretrained)).info  # no weights needed
    videos = find_package(args.folder, config.index.run.extensions)  # before the data folder is made
    with config.open_store(writer=True) as store:
        analysis = KeyframeAnalysis(store, config.index) if args.analyze else None
        report = AicImporter(store, model, config.index, analysis).run(
            videos, progress=False if args.no_progress else None)
    if args.json:
        _print_json(report.to_json())
    else:
        say(f"imported {report.videos_imported} videos ({report.keyframes_added} keyframes), skipped "
            f"{report.videos_skipped} unchanged, failed {len(report.videos_failed)} in {report.seconds:.1f} s")
        for failure in report.videos_failed:
            say(f"  failed: {failure['video_id']}: {failure['error']}")
        for warning in report.warnings:
            say(f"  warning: {warning['video_id']}: {warning['warning']}")
        if report.analyzed:
            _print_analysis(report.analyzed)
        if (model.name, model.pretrained) != (config.index.clip.model, config.index.clip.pretrained):
            say(f"note: text and image queries on this index need clip.model = {model.name!r} and "
                f"clip.pretrained = {model.pretrained!r}", file=sys.stderr)
    if report.stopped:
        _fail(f"{report.stopped}. Free space (or fix the disk), then run the import again", EXIT_FAILED)
    failed = report.videos_failed or (report.analyzed and report.analyzed.videos_failed)
    return EXIT_FAILED if failed or report.stopped else EXIT_OK


def cmd_analyze(args, config: AppConfig) -> int:
    from indexer.analyze import KeyframeAnalysis

    config.open_store().close()  # an index must be there: a writer would create an empty one
    with config.open_store(writer=True) as store:
        report = KeyframeAnalysis(store, config.index).run(args.video, progress=False if args.no_progress else None)
    if args.json:
        _print_json(report.to_json())
    else:
        _print_analysis(report)
    return EXIT_FAILED if report.videos_failed else EXIT_OK


def _print_analysis(report) -> None:
    say(f"analyzed {report.videos_analyzed} videos ({report.keyframes_analyzed} keyframes), skipped "
        f"{report.videos_skipped} already analyzed, failed {len(report.videos_failed)} in {report.seconds:.1f} s")
    for failure in report.videos_failed:
        say(f"  failed: {failure['video_id']}: {failure['error']}")


def cmd_dres(args, config: AppConfig) -> int:
    import getpass
    import os

    from search import QueryError

    from .dres import DresClient, answer_for

    client = DresClient(config.data_dir, config.dres)
    if args.action == "login":
        url, user = args.url or config.dres.url, args.user or config.dres.username
        if not url or not user:
            raise QueryError("give --url and --user (or set dres.url and dres.username)")
        password = os.environ.get("EVR_DRES_PASSWORD") or getpass.getpass(f"DRES password for {user}: ")
        session = client.login(url, user, password)
        say(f"logged in to {session.url} as {session.username}", file=sys.stderr)
        return EXIT_OK
    if args.action == "logout":
        client.logout()
        say("logged out", file=sys.stderr)
        return EXIT_OK
    if args.action == "evaluations":
        evaluations = client.evaluations()
        if args.json:
            _print_json(evaluations)
        for e in [] if args.json else evaluations:
            tasks = ", ".join(t.get("name", "?") for t in e.get("taskTemplates", []))
            say(f"{e.get('id')}  {e.get('status', '?'):<10} {e.get('name')}  ({e.get('type')}; tasks: {tasks or 'none'})")
        return EXIT_OK
    if args.answer is not None and args.task != "qa":
        raise QueryError("--answer goes with --task qa")
    with config.open_engine() as engine:
        chain = engine.hits(args.keyframe_ids)
    answer = answer_for(args.task, chain, args.answer)
    evaluation = client.choose_evaluation(args.evaluation)
    verdict = client.submit(evaluation, answer, again=args.again)
    if args.json:
        _print_json(verdict.to_json())
    else:
        say(f"{verdict.verdict or 'no verdict yet'}" + (f": {verdict.description}" if verdict.description else ""))
    return EXIT_OK


def cmd_summarize(args, config: AppConfig) -> int:
    from search.query import check_keyframe_id

    from .voice import speak, write_audio

    check_keyframe_id(args.keyframe_id)
    if args.speak:
        _check_output_file(args.speak, "--speak")
    with config.open_engine() as engine:
        summary = engine.summarizer(config.summary).summarize(args.keyframe_id, args.lang)
    out = summary.to_json()
    if args.speak:
        spoken = speak(summary.text, summary.language, config.data_dir / "audio", config.voice)
        written = write_audio(spoken, args.speak)
        out.update(audio=str(written.resolve()), engine=spoken.engine)
        say(f"spoken by {spoken.engine}{' (offline voice)' if spoken.offline else ''}: {written}", file=sys.stderr)
    if args.json:
        _print_json(out)
    else:
        say(summary.text)
    return EXIT_OK


def cmd_ui(args, config: AppConfig) -> int:
    import os

    app = Path(__file__).with_name("app.py")
    env = dict(os.environ)
    # The app reads the same configuration: hand it the file and the data dir this command resolved.
    if config.source is not None:
        env["EVR_CONFIG"] = str(config.source)
    env["EVR_STORAGE_DATA_DIR"] = str(config.data_dir)
    host, port = config.ui.host, config.ui.port
    say(f"evr: opening the app at http://{host}:{port} (Ctrl+C stops it)", file=sys.stderr)
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", host, "--server.port", str(port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    sys.stderr.flush()
    # Become the server (no child process): Ctrl+C and kill reach Streamlit itself.
    os.execve(sys.executable, cmd, env)


def cmd_shots(args, config: AppConfig) -> int:
    with config.open_engine() as engine:
        shots = engine.shots(args.video_id)
    if args.json:
        _print_json([sh.to_json() for sh in shots])
        return EXIT_OK
    for sh in shots:
        say(f"{sh.shot:>4}  {_clock(sh.start)} - {_clock(sh.end)}  {len(sh.keyframes)} keyframes  "
            f"{' '.join(map(str, sh.keyframes))}")
    return EXIT_OK


def cmd_stats(args, config: AppConfig) -> int:
    with config.open_engine() as engine:
        stats = engine.stats()
        errors = engine.video_errors()
    if args.json:
        _print_json(stats)
    else:
        for key, value in stats.items():
            if key != "problems":
                say(f"{key:<18} {value}")
        for problem in stats["problems"]:
            say(f"  problem: {problem}")
        for path, status, error in errors:
            say(f"  {'failed' if status == 'failed' else 'partial'}: {path}: {error}")
    # Exit 1 only for damage: vectors the index file does not hold yet are normal during a run.
    return EXIT_OK if stats["consistent"] else EXIT_FAILED


def cmd_reindex(args, config: AppConfig) -> int:
    from indexer.pipeline import Indexer

    config.open_store().close()  # an index must be there: a writer would create an empty one
    with config.open_store(writer=True) as store:
        stats = Indexer(store, config.index).rebuild()
    say(f"built the {stats['vector_index']} vector index over {stats['vectors']:,} keyframes", file=sys.stderr)
    if args.vectors and args.vectors != load_config(getattr(args, "config", None)).vectors.backend:
        say(f'note: searches use it once [vectors] backend = "{args.vectors}" (or EVR_VECTORS_BACKEND={args.vectors})',
            file=sys.stderr)
    return EXIT_OK if stats["consistent"] else EXIT_FAILED


def cmd_doctor(args, config: AppConfig) -> int:
    from .doctor import diagnose

    report = diagnose(config)
    if args.json:
        _print_json(report)
    else:
        for key, value in report.items():
            for i, line in enumerate(value if isinstance(value, list) else [value]):
                say(f"{key if i == 0 else '':<15} {line}")
    return EXIT_OK


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m):02d}:{s:04.1f}"


COMMANDS = {"index": cmd_index, "import": cmd_import, "analyze": cmd_analyze, "dres": cmd_dres,
            "reindex": cmd_reindex, "search": cmd_search, "summarize": cmd_summarize,
            "ui": cmd_ui, "shots": cmd_shots, "stats": cmd_stats, "doctor": cmd_doctor}

if __name__ == "__main__":
    sys.exit(main())
