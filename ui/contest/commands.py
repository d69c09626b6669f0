"""`evr dres ...`: log in and out, list evaluations, say what task runs, submit one answer or a
list of them (ui/cli.py builds the parser)."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from evr.search import QueryError
from evr.storage import StoreError
from evr.ui.config import AppConfig
from evr.ui.output import EXIT_FAILED, EXIT_OK, print_json, say

from .answers import answer_for
from .batch import read_list, send_each
from .client import DresClient, DuplicateSubmission, TaskRefusal


def cmd_dres(args, config: AppConfig) -> int:
    client = DresClient(config.data_dir, config.dres)
    if args.action == "login":
        url, user = args.url or config.dres.url, args.user or config.dres.username
        if not url or not user:
            raise QueryError("give --url and --user (or set dres.url and dres.username)")
        password = os.environ.get("EVR_DRES_PASSWORD") or getpass.getpass(f"DRES password for {user}: ")
        session = client.login(url, user, password)
        offset = f" (the server's clock is {session.clock_offset_ms / 1000:+.1f} s from this one's)"
        say(f"logged in to {session.url} as {session.username}{offset}", file=sys.stderr)
        return EXIT_OK
    if args.action == "logout":
        client.logout()
        say("logged out", file=sys.stderr)
        return EXIT_OK
    if args.action == "evaluations":
        evaluations = client.evaluations()
        if args.json:
            print_json(evaluations)
        for e in [] if args.json else evaluations:
            tasks = ", ".join(t.get("name", "?") for t in e.get("taskTemplates", []))
            kind = f"({e.get('type')}; tasks: {tasks or 'none'})"
            say(f"{e.get('id')}  {e.get('status', '?'):<10} {e.get('name')}  {kind}")
        return EXIT_OK
    evaluation = client.choose_evaluation(args.evaluation)
    if args.action == "task":
        state = client.task_state(evaluation)
        if args.json:
            print_json(state.to_json())
        else:
            say(state.describe())
        return EXIT_OK
    if args.action == "submit-many":
        return _submit_many(args, config, client, evaluation)
    if args.answer is not None and args.task != "qa":
        raise QueryError("--answer goes with --task qa")
    with config.open_engine() as engine:
        chain = engine.archive.hits(args.keyframe_ids)
        answer = answer_for(
            args.task, chain, args.answer, window_s=config.dres.kis_window_s, qa_format=config.dres.qa_format
        )
        try:
            verdict = client.submit(evaluation, answer, args.task, again=args.again, force=args.force)
        except DuplicateSubmission as exc:
            raise DuplicateSubmission(f"{exc} (--again sends it anyway)") from exc
        except TaskRefusal as exc:
            raise TaskRefusal(f"{exc} (--force sends it anyway)") from exc
        _mark(engine, client, [(h.keyframe_id, verdict.verdict) for h in chain])
    if args.json:
        print_json(verdict.to_json())
    else:
        say(f"{verdict.verdict or 'no verdict yet'}" + (f": {verdict.description}" if verdict.description else ""))
    return EXIT_OK


def _submit_many(args, config: AppConfig, client: DresClient, evaluation: str) -> int:
    """Each hit of the list as its own KIS answer; a line (or a JSON object) per answer, and exit
    1 when any could not be sent for a reason other than having been sent before."""
    try:
        text = sys.stdin.read() if str(args.list) == "-" else Path(args.list).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QueryError(f"cannot read the list {args.list}: {exc}") from None
    with config.open_engine() as engine:
        hits = read_list(text, engine.archive)
        outcomes = send_each(client, evaluation, hits, config.dres.kis_window_s, force=args.force, again=args.again)
        _mark(engine, client, [(o.hit.keyframe_id, o.outcome) for o in outcomes if o.sent])
    if args.json:
        print_json([o.to_json() for o in outcomes])
    else:
        for n, o in enumerate(outcomes, 1):
            say(f"{n}. {o.line()}")
    return EXIT_FAILED if any(o.outcome in ("REFUSED", "FAILED") for o in outcomes) else EXIT_OK


def _mark(engine, client: DresClient, sent: list[tuple[int, str | None]]) -> None:
    """Mark what was sent for the team (the app's cards show it); a folder that cannot be
    written loses the marks, not the submissions."""
    session = client.session()
    who = f"{session.username if session else 'someone'} (command line)"
    try:
        for keyframe_id, verdict in sent:
            engine.archive.mark([keyframe_id], "submitted", who, verdict)
    except StoreError as exc:
        say(f"evr: warning: the team's marks were not kept: {exc}", file=sys.stderr)
