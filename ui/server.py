"""The app's web server: Streamlit's own (ui/app.py, through `st.App`) plus routes the browser
fetches from directly, rather than have every rerun read, hash and resend what they serve
through Streamlit's in-memory media store (or its script run):

    /evr/thumb/<path>      a keyframe thumbnail under the data folder's thumbs/; its path names
                           one indexing run, so the file never changes: cached for a year
    /evr/media/<token>     a video the app showed (or its H.264 preview), or a spoken summary,
                           which ui/media.py registered; byte ranges served, so the player seeks
                           without loading the whole file
    /evr/storyboard/<id>   every keyframe of the video with this row id, by shot (JSON): the
                           opened hit's storyboard, fetched once per video, a thousand keyframes
                           or more, without a script run
    /evr/marks?since=<n>   the team's marks on hits after the one numbered n (JSON): each browser
                           asks twice a second, so a teammate's mark shows without a rerun

`evr ui` runs it (`streamlit run ui/server.py`, which finds `app` here). Nothing else on disk is
reachable: a thumbnail path must stay inside thumbs/, and any other file must have been handed
out by the app in this process.
"""

from __future__ import annotations

import functools
from pathlib import Path
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from streamlit.web.server.starlette import App

from evr.ui import media


@functools.cache
def _thumb_root() -> Path | None:
    from evr.ui.config import ConfigError, load_config

    try:
        return (load_config().data_dir / "thumbs").resolve()
    except ConfigError:  # the page says what is wrong with the configuration
        return None


async def thumb(request) -> Response:
    root = _thumb_root()
    path = (root / unquote(request.path_params["path"])).resolve() if root else None
    if path is None or not path.is_relative_to(root) or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=31536000, immutable"})


@functools.cache
def _archive():
    """The index's read front, opened once for this server (SQLite reads see every commit)."""
    from evr.search.archive import Archive
    from evr.storage import Store
    from evr.ui.config import load_config

    config = load_config()
    return Archive(Store(config.data_dir)), config.data_dir


def _storyboard(video_db_id: int) -> dict | None:
    from evr.ui.hit_view import storyboard_view

    try:
        archive, data_dir = _archive()
    except Exception:  # no index, a bad configuration: the page says what is wrong
        return None
    board = archive.storyboard_of(video_db_id)
    return None if board is None else storyboard_view(board, data_dir)


async def storyboard(request) -> Response:
    view = await run_in_threadpool(_storyboard, request.path_params["video"])
    if view is None:
        return Response(status_code=404)
    return JSONResponse(view, headers={"Cache-Control": "no-cache"})  # a re-index changes it


def _marks(since: int) -> dict | None:
    try:
        archive, _ = _archive()
    except Exception:  # no index, a bad configuration: the page says what is wrong
        return None
    marks = archive.marks_since(since)
    return {"seq": marks[-1].seq if marks else since, "marks": [m.to_json() for m in marks]}


async def marks(request) -> Response:
    since = request.query_params.get("since", "0")
    if not since.isdigit() or len(since) > 18:
        return Response(status_code=400)
    found = await run_in_threadpool(_marks, int(since))
    if found is None:
        return Response(status_code=404)
    return JSONResponse(found, headers={"Cache-Control": "no-store"})


async def served(request) -> Response:
    path = media.served_file(request.path_params["name"])
    if path is None or not path.is_file():
        return Response(status_code=404)
    # The token names the file's path, size and time: a changed file gets another address.
    return FileResponse(path, media_type=media.media_type(path), headers={"Cache-Control": "private, max-age=86400"})


app = App(
    str(Path(__file__).with_name("app.py")),
    routes=[
        Route(f"{media.THUMB_ROUTE}/{{path:path}}", thumb),
        Route(f"{media.MEDIA_ROUTE}/{{name}}", served),
        Route(f"{media.BOARD_ROUTE}/{{video:int}}", storyboard),
        Route(media.MARKS_ROUTE, marks),
    ],
)
