"""The `evr` commands, one function each: `COMMANDS[name](args, config)` -> exit code (those that
only read the index, `shots`, `storyboard`, `videos`, `stats`, `models`, in ui/reading.py). Each one
talks to the services (indexer's runs, SearchEngine, the DRES client), never to the store's
parts; errors are raised for ui/cli.py's one table to word."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path

from evr.ui.contest.export import FORMATS

from .config import AppConfig, load_config
from .contest.commands import cmd_dres
from .output import EXIT_FAILED, EXIT_OK, clock_text, fail, print_json, say
from .reading import cmd_models, cmd_shots, cmd_stats, cmd_storyboard, cmd_videos


def cmd_index(args, config: AppConfig) -> int:
    from evr.indexer.report import RunReport
    from evr.indexer.run import run
    from evr.indexer.scan import check_paths
    from evr.indexer.sources import VideoFiles
    from evr.indexer.work import stages
    from evr.storage import DataDirError

    check_paths(args.paths)  # before the data folder is made: a typo leaves nothing behind
    try:
        store = config.open_store(writer=True)
    except DataDirError as exc:  # a read-only or full data dir: still a report, for --json
        report = RunReport(VideoFiles.command, stages(), stopped=str(exc))
    else:
        with store:
            files = VideoFiles(config.index, args.paths, prune=args.prune, retry_failed=args.retry_failed)
            report = run(store, config.index, files, progress=False if args.no_progress else None)
    if args.json:
        print_json(report.to_json())
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
        _say_stopped(report, "`evr index`")
    return EXIT_FAILED if report.videos_failed or report.stopped else EXIT_OK


def cmd_search(args, config: AppConfig) -> int:
    from evr.search import Query, read_image

    if args.plan is not None:
        return _search_planned(args, config)
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
        models=args.models,
    )
    return _search(args, config, query)


def _search_planned(args, config: AppConfig) -> int:
    """`evr search --plan DESCRIPTION`: the planned query, with the other flags' filters and options."""
    from evr.search import QueryError
    from evr.search.planner import make_plan

    if args.text or args.image or args.like or args.then or args.more_like or args.less_like:
        raise QueryError("--plan is the query: give no text, --image, --like, --then or feedback beside it")
    plan = make_plan(args.plan, config.plan)
    say(f"plan ({plan.planner}): evr search {shlex.join(plan.command())}", file=sys.stderr)
    for said in plan.unsearched_said():
        say(f"note: {said}", file=sys.stderr)
    query = plan.query(
        _filter(args),
        within=args.within,
        lang=args.lang,
        k=args.k,
        group=args.group,
        per_video=args.per_video,
        models=args.models,
    )
    return _search(args, config, query)


def cmd_plan(args, config: AppConfig) -> int:
    from evr.search.planner import make_plan

    plan = make_plan(args.description, config.plan)
    if args.json:
        print_json({**plan.to_json(), "command": ["evr", "search", *plan.command()]})
        return EXIT_OK
    say(f"planner: {plan.planner}" + (f" ({'; '.join(plan.notes)})" if plan.notes else ""))
    for n, e in enumerate(plan.events, 1):
        parts = [e.visual or "(nothing seen)"]
        parts += [f'on screen "{e.ocr}"'] if e.ocr else []
        parts += [f'said "{e.speech}"'] if e.speech else []
        parts += [f"objects {', '.join(e.objects)}"] if e.objects else []
        parts += [f"colours {', '.join(e.colors)}"] if e.colors else []
        say(f"event {n}: " + " · ".join(parts))
    if plan.within_s:
        say(f"each within {plan.within_s:g} s of the one before")
    for said in plan.unsearched_said():
        say(f"note: {said}")
    say(f"run it: evr search {shlex.join(plan.command())}")
    return EXIT_OK


def _search(args, config: AppConfig, query) -> int:
    from evr.search import QueryError

    query.validate()
    if args.out and not args.export:
        raise QueryError(f"--out goes with --export {'|'.join(FORMATS)}")
    if (args.answer is not None) != (args.export == "qa"):
        raise QueryError("--export qa needs --answer TEXT, and --answer goes with --export qa")
    if args.out:
        _check_output_file(args.out, "--out")
    with config.open_engine() as engine:
        hits = engine.search(query)
        unanalyzed = engine.archive.unanalyzed(query) if not hits else []
    for name in unanalyzed:
        say(
            f"note: no video of this index was analyzed for {name} (the [{name}] analyzer was off, or could not "
            f"load, when they were indexed): turn it on and run `evr index` again on the videos, or `evr analyze` "
            "on an imported package",
            file=sys.stderr,
        )
    try:
        return _print_hits(args, hits)
    finally:
        _log_to_dres(config, query, hits)


def _log_to_dres(config: AppConfig, query, hits) -> None:
    """While logged in to DRES (and [dres] log is on), send it this search's logs, after the
    results are out, waiting at most [dres] timeout_s in all; a failure said once on stderr."""
    from .contest.client import DresClient
    from .contest.query_log import QueryLogger

    client = DresClient(config.data_dir, config.dres)
    if not config.dres.log or client.session() is None:
        return
    sys.stdout.flush()
    logger = QueryLogger(client)
    logger.log(query, hits)
    logger.wait(config.dres.timeout_s)  # the evaluations and the two logs, together: no longer than one request


def _print_hits(args, hits) -> int:
    from evr.ui.contest.export import AIC_MAX_LINES, export

    if args.export:
        data = export(hits, args.export, args.answer or "")
        if args.out:
            args.out.write_text(data, encoding="utf-8")
            say(
                f"wrote {len(hits) if args.export == 'json' else min(len(hits), AIC_MAX_LINES)} hits to {args.out}",
                file=sys.stderr,
            )
        else:
            sys.stdout.write(data)
        return EXIT_OK
    if args.json:
        print_json([h.to_json() for h in hits])
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
    """Refuse an output file that cannot be written before any work is done: a folder, a FIFO
    (writing would wait for a reader forever), a device, a name the file system cannot hold."""
    import errno
    import stat

    from evr.indexer.files import kind_of
    from evr.search import QueryError

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise QueryError(
                f"{flag}: the file name is too long for the file system ({len(os.fsencode(path.name))} bytes)"
            ) from None
        raise QueryError(f"{flag} {path}: {exc.strerror or exc}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise QueryError(f"{flag} {path} is a folder: name a file")
    if mode is not None and not stat.S_ISREG(mode):
        raise QueryError(f"{flag} {path} is {kind_of(mode)}: name a regular file")
    if not path.parent.is_dir():
        raise QueryError(f"{flag} {path}: the folder {path.parent} does not exist")


def _describe(h) -> str:
    shot = f"  shot {h.shot}" if h.shot is not None else ""
    facts = [f"{h.video_id}  frame {h.frame_idx:<6} {clock_text(h.timestamp)}{shot}  keyframe {h.keyframe_id}"]
    if h.media("title"):
        facts.append(f'"{h.media("title")[:40]}"')
    return "  ".join(facts + h.facts())


def cmd_import(args, config: AppConfig) -> int:
    from evr.indexer.aic import find_package
    from evr.indexer.encoders import ClipEncoder
    from evr.indexer.run import run
    from evr.indexer.settings import ClipSettings
    from evr.indexer.sources import AicPackage

    model = ClipEncoder(ClipSettings(model=args.model, pretrained=args.pretrained)).info  # no weights needed
    videos = find_package(args.folder, config.index.run.extensions)  # before the data folder is made
    with config.open_store(writer=True) as store:
        package = AicPackage(config.index, videos, model, analyze=args.analyze)
        report = run(store, config.index, package, progress=False if args.no_progress else None)
    if args.json:
        print_json(report.to_json())
    else:
        say(
            f"imported {report.videos_imported} videos ({report.keyframes_added} keyframes), skipped "
            f"{report.videos_skipped} unchanged, failed {len(report.videos_failed)} in {report.seconds:.1f} s"
        )
        for failure in report.videos_failed:
            say(f"  failed: {failure['video_id']}: {failure['error']}")
        for warning in report.warnings:
            say(f"  warning: {warning['video_id']}: {warning['warning']}")
        if report.analyzed:
            _print_analysis(report.analyzed)
        if (model.name, model.pretrained) != (config.index.clip.model, config.index.clip.pretrained):
            say(
                f"note: text and image queries on this index need clip.model = {model.name!r} and "
                f"clip.pretrained = {model.pretrained!r}",
                file=sys.stderr,
            )
    if report.stopped:
        _say_stopped(report, "the import")
    failed = report.videos_failed or (report.analyzed and report.analyzed.videos_failed)
    return EXIT_FAILED if failed or report.stopped else EXIT_OK


def cmd_analyze(args, config: AppConfig) -> int:
    from evr.indexer.run import run
    from evr.indexer.sources import KeyframeAnalysis

    config.open_store().close()  # an index must be there: a writer would create an empty one
    with config.open_store(writer=True) as store:
        report = run(
            store,
            config.index,
            KeyframeAnalysis(config.index, args.video),
            progress=False if args.no_progress else None,
        )
    if args.json:
        print_json(report.to_json())
    else:
        _print_analysis(report)
    if report.stopped:
        _say_stopped(report, "`evr analyze`")
    return EXIT_FAILED if report.videos_failed or report.stopped else EXIT_OK


def _say_stopped(report, command: str) -> None:
    """Why a run stopped (a full or failing disk) and what to do, on stderr."""
    pending = f"; {report.videos_pending} videos are pending" if report.videos_pending else ""
    fail(f"{report.stopped}{pending}. Free space (or fix the disk), then run {command} again", EXIT_FAILED)


def _print_analysis(report) -> None:
    say(
        f"analyzed {report.videos_analyzed} videos ({report.keyframes_analyzed} keyframes), skipped "
        f"{report.videos_skipped} already analyzed, failed {len(report.videos_failed)} in {report.seconds:.1f} s"
    )
    for failure in report.videos_failed:
        say(f"  failed: {failure['video_id']}: {failure['error']}")


def cmd_summarize(args, config: AppConfig) -> int:
    from evr.search.query import check_keyframe_id

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
        print_json(out)
    else:
        say(summary.text)
    return EXIT_OK


def cmd_ui(args, config: AppConfig) -> int:
    server = Path(__file__).with_name("server.py")  # the app (app.py) and the routes of its media
    env = dict(os.environ)
    # The app reads the same configuration: hand it the file and the data dir this command resolved.
    if config.source is not None:
        env["EVR_CONFIG"] = str(config.source)
    env["EVR_STORAGE_DATA_DIR"] = str(config.data_dir)
    env["EVR_LOG_LEVEL"] = logging.getLevelName(logging.getLogger().getEffectiveLevel())  # -v, -q
    host, port = config.ui.host, config.ui.port
    say(f"evr: opening the app at http://{host}:{port} (Ctrl+C stops it)", file=sys.stderr)
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(server),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--server.fileWatcherType",
        "none",
        "--runner.postScriptGC",
        "false",
    ]  # served, not developed: no "Deploy", no file watching
    sys.stderr.flush()
    # Become the server (no child process): Ctrl+C and kill reach Streamlit itself.
    os.execve(sys.executable, cmd, env)


def cmd_reindex(args, config: AppConfig) -> int:
    from evr.indexer.run import rebuild

    config.open_store().close()  # an index must be there: a writer would create an empty one
    with config.open_store(writer=True) as store:
        stats = rebuild(store, config.index)
    say(f"built the {stats['vector_index']} vector index over {stats['vectors']:,} keyframes", file=sys.stderr)
    if args.vectors and args.vectors != load_config(getattr(args, "config", None)).vectors.backend:
        say(
            f'note: searches use it once [vectors] backend = "{args.vectors}" (or EVR_VECTORS_BACKEND={args.vectors})',
            file=sys.stderr,
        )
    return EXIT_OK if stats["consistent"] else EXIT_FAILED


def cmd_doctor(args, config: AppConfig) -> int:
    from .doctor import diagnose

    report = diagnose(config)
    if args.json:
        print_json(report)
    else:
        for key, value in report.items():
            for i, line in enumerate(value if isinstance(value, list) else [value]):
                say(f"{key if i == 0 else '':<15} {line}")
    return EXIT_OK


COMMANDS = {
    "index": cmd_index,
    "import": cmd_import,
    "analyze": cmd_analyze,
    "dres": cmd_dres,
    "reindex": cmd_reindex,
    "search": cmd_search,
    "plan": cmd_plan,
    "summarize": cmd_summarize,
    "ui": cmd_ui,
    "shots": cmd_shots,
    "storyboard": cmd_storyboard,
    "stats": cmd_stats,
    "videos": cmd_videos,
    "doctor": cmd_doctor,
    "models": cmd_models,
}


def _filter(args):
    """The search's KeyframeFilter from its flags (the core's and each feature's)."""
    from evr.storage import KeyframeFilter

    given = {
        name.removeprefix("filter_"): tuple(v) if isinstance(v, list) else v
        for name, v in vars(args).items()
        if name.startswith("filter_")
    }
    return KeyframeFilter.of(videos=tuple(args.video), time_from=args.time_from, time_to=args.time_to, **given)
