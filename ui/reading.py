"""The `evr` commands that only read the index: a video's shots and storyboard, the videos, the
index's counts and health, its image-text models (`evr models --drop` aside, the one write)."""

from __future__ import annotations

import sys

from .config import AppConfig
from .output import EXIT_FAILED, EXIT_OK, clock_text, fail, print_json, say


def cmd_shots(args, config: AppConfig) -> int:
    with config.open_engine() as engine:
        shots = engine.archive.shots(args.video_id)
    if args.json:
        print_json([sh.to_json() for sh in shots])
        return EXIT_OK
    for sh in shots:
        say(
            f"{sh.shot:>4}  {clock_text(sh.start)} - {clock_text(sh.end)}  {len(sh.keyframes)} keyframes  "
            f"{' '.join(map(str, sh.keyframes))}"
        )
    return EXIT_OK


def cmd_storyboard(args, config: AppConfig) -> int:
    with config.open_engine() as engine:
        board = engine.archive.storyboard(args.video_id)
    if args.json:
        print_json(board.to_json())
        return EXIT_OK
    say(f"{board.video_id}  {board.path}  {board.keyframes} keyframes in {len(board.shots)} shots")
    for sh in board.shots:
        span = "no shots known" if sh.shot is None else f"{clock_text(sh.start)} - {clock_text(sh.end)}"
        times = " ".join(f"{clock_text(k.timestamp)}#{k.keyframe_id}" for k in sh.keyframes)
        say(f"{'' if sh.shot is None else sh.shot:>4}  {span}  {len(sh.keyframes)} keyframes  {times}")
    return EXIT_OK


def cmd_stats(args, config: AppConfig) -> int:
    from evr.storage import DamagedIndexError

    try:
        with config.open_engine() as engine:
            stats = engine.archive.stats()
            errors = engine.archive.video_errors()
    except DamagedIndexError as exc:  # damage is what stats reports: a --json reader gets the report
        if args.json:
            print_json({"consistent": False, "problems": [str(exc)], "data_dir": str(config.data_dir)})
        return fail(str(exc), EXIT_FAILED)
    if args.json:
        print_json(stats)
    else:
        for key, value in stats.items():
            if key == "models":
                for name, m in value.items():
                    say(
                        f"{'model ' + name:<18} {m['model']} ({m['pretrained']}): {m['vectors']:,} vectors, "
                        f"{m['vector_index']}"
                        + (f", {m['keyframes_without']:,} keyframes without one" if m["keyframes_without"] else "")
                    )
            elif key == "run":
                if value:
                    say(f"{'run under way':<18} evr {value['command']}: {value['done']} of {value['total']} videos")
            elif key != "problems":
                say(f"{key:<18} {value}")
        for problem in stats["problems"]:
            say(f"  problem: {problem}")
        for path, status, error in errors:
            say(f"  {'failed' if status == 'failed' else 'partial'}: {path}: {error}")
    # Exit 1 only for damage: vectors the index file does not hold yet are normal during a run.
    return EXIT_OK if stats["consistent"] else EXIT_FAILED


def cmd_models(args, config: AppConfig) -> int:
    """The models configured and those the index holds vectors of; --drop deletes one's vectors."""
    from evr.indexer.encoders.clip import weights_status
    from evr.search import QueryError

    from .doctor import mismatch

    if args.drop is not None:
        if not args.drop.strip():
            raise QueryError("--drop needs the name of a model (`evr models` lists them)")
        config.open_store().close()  # an index must be there: a writer would create an empty one
        with config.open_store(writer=True) as store:
            removed = store.drop_model(args.drop)
        say(f"deleted the {removed:,} vectors of {args.drop} and its vector index", file=sys.stderr)
        if args.drop in config.index.image_models:
            say(
                f"note: [[models]] still names {args.drop}: the next `evr index` computes its vectors again "
                "(remove it from the config to keep it out)",
                file=sys.stderr,
            )
        return EXIT_OK
    with config.open_engine() as engine:
        stored = engine.archive.stats()["models"]
    rows = []
    for name in dict.fromkeys([*config.index.image_models, *stored]):
        settings = config.index.image_models.get(name)
        present, weights = weights_status(settings) if settings else (None, None)
        index = stored.get(name)
        rows.append(
            {
                "name": name,
                "configured": settings is not None,
                "model": settings.model if settings else index["model"],
                "pretrained": settings.pretrained if settings else index["pretrained"],
                "weights_present": present,
                "weights": weights,
                "vectors": index["vectors"] if index else 0,
                "keyframes_without": index["keyframes_without"] if index else None,
                "vector_index": index["vector_index"] if index else None,
                "mismatch": mismatch(name, settings, index),
            }
        )
    if args.json:
        print_json(rows)
        return EXIT_OK
    for r in rows:
        where = f"{r['vectors']:,} vectors ({r['vector_index']})" if r["vector_index"] else "no vectors yet"
        if r["keyframes_without"]:
            where += f", {r['keyframes_without']:,} keyframes without one (`evr index` computes them)"
        state = (
            ("weights present" if r["weights_present"] else f"weights MISSING: {r['weights']}")
            if r["configured"]
            else "not configured: searches skip it (`evr models --drop` deletes its vectors)"
        )
        say(f"{r['name']:<10} {r['model']} / {r['pretrained']}  {where}; {state}")
        if r["mismatch"]:
            say(f"  MISMATCH: {r['mismatch']}")
    return EXIT_OK


def cmd_videos(args, config: AppConfig) -> int:
    with config.open_engine() as engine:
        rows = engine.archive.videos(args.video)
    if args.json:
        print_json([r.to_json() for r in rows])
        return EXIT_OK
    for r in rows:
        size = f"{r.width}x{r.height}" if r.width else "-"
        length = clock_text(r.duration) if r.duration is not None else "-"
        fps = f"{r.fps:.2f} fps" if r.fps else "-"
        ran = ", ".join(r.analyzers) or "CLIP only"
        say(
            f"{r.video_id:<24} {r.status:<8} {length:>8} {size:>10} {fps:>10} {r.keyframes:>5} keyframes  "
            f"{r.decoder or r.origin}  {ran}"
        )
        if r.error:
            say(f"  {r.error}")
    return EXIT_OK
