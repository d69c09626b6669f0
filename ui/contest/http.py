"""One request to a DRES server, and what it must never do: follow a redirect (it would carry
the password or the answer elsewhere), wait longer than its timeout as a whole (a server that
trickles its answer is cut off), read more than MAX_ANSWER_BYTES, or show a password or a session
id in a message. ui/contest/client.py speaks the API through it."""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import urlsplit, urlunsplit

MAX_ANSWER_BYTES = 4 * 1024 * 1024  # DRES's answers are small JSON: an evaluation list is kilobytes


class DresError(Exception):
    """One line for the user: what DRES (or the network) said, and what to do. `judged`: False
    when DRES certainly did not judge what was sent (it refused it, redirected it, or was never
    reached); True when it may have."""

    def __init__(self, message: str, status: int | None = None, judged: bool = True):
        super().__init__(message)
        self.status = status  # DRES's HTTP status, when it answered
        self.judged = judged


def call(method: str, url: str, path: str, *, action: str, timeout: float, **kwargs):
    """One request to DRES at `url` and its answer's JSON (None when it is not JSON), within
    timeout_s as a whole; DresError for anything but a 2xx answer."""
    outcome: dict = {}

    def exchange() -> None:
        try:
            outcome["answer"] = _exchange(method, url + path, timeout, kwargs)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    # The request runs in a thread the caller stops waiting for at the deadline: requests'
    # own timeout bounds each read, so a server sending a byte a second would hold it for
    # as long as it likes. The thread dies with the process, or at its next read timeout.
    worker = threading.Thread(target=exchange, daemon=True, name="evr-dres")
    worker.start()
    worker.join(timeout)
    sent_maybe = " (the submission may have arrived: it counts as sent)" if action == "submit" else ""
    if worker.is_alive():
        raise DresError(f"DRES at {url} did not answer within {timeout:g} s, could not {action}{sent_maybe}")
    if "error" in outcome:
        raise _network_error(outcome["error"], url, action, timeout, sent_maybe)
    status, data, location = outcome["answer"]
    if 200 <= status < 300:
        return data
    if 300 <= status < 400:
        where = without_session(location) if location else "another address"
        raise DresError(
            f"DRES at {url} answered {status}, a redirect to {where}, "
            f"to {action}: not followed (it would carry what was sent elsewhere); if the server "
            "moved, log in again with its new address",
            status,
            judged=False,
        )
    said = data.get("description") if isinstance(data, dict) else None
    said = f": {said}" if isinstance(said, str) and said else ""
    if status == 401:
        message = (
            f"DRES refused the user name or password (401){said}"
            if path.endswith("/login")
            else f"DRES does not know this session (401){said}; log in again with `evr dres login`"
        )
    elif status == 412:
        message = f"DRES rejected the submission (412){said}"
    else:
        message = f"DRES answered {status} to {action}{said}"
    # DRES judges nothing it answers 4xx to (a bad session, a bad or refused answer).
    raise DresError(message, status, judged=status >= 500)


def check_url(url: str) -> str:
    """The DRES address as given, checked: http(s), a host, and no user or password in it
    (a password there would be kept in session.json and shown in messages)."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise DresError(f"the DRES address must start with http:// or https://, not {without_credentials(url)!r}")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise DresError(f"the DRES address {without_credentials(url)} is malformed") from None
    if parts.username is not None or parts.password is not None:
        raise DresError(
            f"the DRES address {without_credentials(url)} holds a user name or password: give the "
            "user with --user (or dres.username) and the password at the prompt or in "
            "$EVR_DRES_PASSWORD"
        )
    if not parts.hostname:
        raise DresError(f"the DRES address {url!r} names no host")
    return url


def without_session(url: str) -> str:
    """An address with the value of any `session` parameter (a DRES session id: whoever holds it
    submits as this user) shown as ***, and any user name and password too."""
    return re.sub(r"(?i)([?&;]session=)[^&;#]*", r"\1***", without_credentials(url))


def without_credentials(url: str) -> str:
    """The address with any user name and password in it shown as ***."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed address: show none of it
        return "(a malformed address)"
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _exchange(method: str, url: str, timeout: float, kwargs: dict) -> tuple[int, object, str | None]:
    """(status, the answer's JSON or None, a redirect's Location): one request, no redirect
    followed, at most MAX_ANSWER_BYTES of answer read."""
    import requests  # here: every command reads this module's settings, few talk to DRES

    with requests.Session() as http:
        response = http.request(method, url, timeout=timeout, allow_redirects=False, stream=True, **kwargs)
        with response:
            body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
    if len(body) > MAX_ANSWER_BYTES:
        raise DresError(f"DRES at {url} sent an answer of more than {MAX_ANSWER_BYTES // 1024 // 1024} MB")
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    return response.status_code, data, response.headers.get("Location")


def _network_error(exc: BaseException, url: str, action: str, timeout: float, sent_maybe: str) -> DresError:
    import requests

    if isinstance(exc, DresError):
        return exc
    if isinstance(exc, requests.ConnectTimeout) or (
        isinstance(exc, requests.ConnectionError) and _never_connected(exc)
    ):
        return DresError(f"cannot reach DRES at {url} to {action}: {type(exc).__name__}", judged=False)
    if isinstance(exc, requests.Timeout):
        return DresError(f"DRES at {url} did not answer within {timeout:g} s, could not {action}{sent_maybe}")
    if isinstance(exc, requests.RequestException):
        return DresError(
            f"the connection to DRES at {url} failed while trying to {action}: {type(exc).__name__}{sent_maybe}"
        )
    return DresError(f"cannot {action} at DRES {url}: {type(exc).__name__}: {exc}")


def _never_connected(exc: BaseException) -> bool:
    """Whether a connection error happened before anything was sent (refused, no such host):
    requests wraps urllib3's MaxRetryError, whose reason says."""
    from urllib3.exceptions import NewConnectionError  # NameResolutionError is one too

    reason = exc.args[0] if exc.args else None
    return isinstance(getattr(reason, "reason", reason), NewConnectionError)
