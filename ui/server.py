"""The app's web server: Streamlit's own (ui/app.py, through `st.App`) plus two routes for media
the browser fetches once and keeps, rather than have every rerun read, hash and resend them
through Streamlit's in-memory media store:

    /evr/thumb/<path>      a keyframe thumbnail under the data folder's thumbs/; its path names
                           one indexing run, so the file never changes: cached for a year
    /evr/media/<token>     a video the app showed (or its H.264 preview), or a spoken summary,
                           which ui/media.py registered; byte ranges served, so the player seeks
                           without loading the whole file

`evr ui` runs it (`streamlit run ui/server.py`, which finds `app` here). Nothing else on disk is
reachable: a thumbnail path must stay inside thumbs/, and any other file must have been handed
out by the app in this process.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from urllib.parse import unquote

if __package__ in (None, ""):  # run as a script by `streamlit run`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.responses import FileResponse, Response
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


async def served(request) -> Response:
    path = media.served_file(request.path_params["name"])
    if path is None or not path.is_file():
        return Response(status_code=404)
    # The token names the file's path, size and time: a changed file gets another address.
    return FileResponse(path, media_type=media.media_type(path), headers={"Cache-Control": "private, max-age=86400"})


app = App(
    str(Path(__file__).with_name("app.py")),
    routes=[Route(f"{media.THUMB_ROUTE}/{{path:path}}", thumb), Route(f"{media.MEDIA_ROUTE}/{{name}}", served)],
)
