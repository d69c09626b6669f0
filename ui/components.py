"""The app's results and opened hit as one element drawn in the browser (Streamlit's components
v2; its code in ui/web/).

Why not Streamlit's own elements: its browser side re-renders the whole page for every message of
a rerun, about 65 ms a render on a 2-core machine, and a click costs six to eight of them, so
with 24 cards of seven elements each every click took about a second, and a click inside the
dialog as long, whatever the server did (benchmarks/cockpit_latency.py; RESULTS.md). Here opening
a hit, moving between hits and asking to submit happen in the page at once; what needs the
server (the details of a keyframe, a like, a pick, a submission, a spoken summary) is one
"action" sent to Python (ui/actions.py), whose rerun brings back only what changed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

_WEB = Path(__file__).with_name("web")
VIEWER_CSS = (_WEB / "viewer.css").read_text(encoding="utf-8")
# One module: results.js (the grid, the opened hit, submitting, keys), then board.js (the
# storyboard) and team.js (picked hits sent at once, the team's marks), which use its names.
_JS = "\n".join((_WEB / name).read_text(encoding="utf-8") for name in ("results.js", "board.js", "team.js"))
_CSS = (_WEB / "results.css").read_text(encoding="utf-8")
_CLOCK_JS = (_WEB / "clock.js").read_text(encoding="utf-8")
_CLOCK_CSS = ".task-clock { margin: 0; font-variant-numeric: tabular-nums; } .task-clock.late { color: #c62828; }"
KEY = "results"  # its session state key: what the last click sent is st.session_state[KEY]["action"]


def results(data: dict, on_action: Callable[[dict], None]) -> None:
    """The grid and the opened hit from `data` (ui/results_view.py builds it); a click that needs
    the server calls `on_action` with what it sent, before the rerun it starts."""

    def changed() -> None:
        action = st.session_state[KEY].get("action")
        if action:
            on_action(action)

    # Registered with the running Streamlit on each use: the same definition again is a no-op, and
    # each runtime (a test's AppTest is one) has a registry of its own.
    mount = st.components.v2.component("evr_results", js=_JS, css=_CSS)
    mount(key=KEY, data={**data, "viewer_css": VIEWER_CSS}, on_action_change=changed)


def task_clock(data: dict) -> None:
    """The running task's line and its time left, counting down in the page between the reruns
    that read it again from DRES (ui/contest/panel.py); `data` as TaskState.to_json(), with
    `text` (the line) and `stamp` (new with each reading)."""
    st.components.v2.component("evr_clock", js=_CLOCK_JS, css=_CLOCK_CSS)(key="task_clock", data=data)
