"""A search shared as a link (ui/share.py): what it carries, what it refuses, and the app opened
with one showing the same results as the search it was made from."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from evr.ui.share import SHARE_PARAM, Shareable, apply_link, pack, share_link, unpack

from .test_app import APP, PAGE, app, app_hits, app_index  # noqa: F401 (app and app_index are fixtures)

pytestmark = pytest.mark.integration

WIDGETS = Shareable(
    texts=["query"],
    numbers={"events": (int, 2, 5), "time_from": (float, 0, 1e9)},
    one_of={"mode": ("Text", "Temporal")},
    some_of={"videos": ("a", "b")},
    lists={"object": lambda spec: None if spec.startswith("person") else f"no object {spec}"},
)


def test_a_link_carries_the_widgets_and_the_feedback_and_nothing_else():
    state = {
        "query": "một người đàn ông",
        "events": 3,
        "time_from": 2.5,
        "mode": "Text",
        "videos": ["b"],
        "object": ["person:2@left"],
        "more_like": [4, 9],
        "less_like": [],
        "password": "not shared",
    }
    link = share_link("http://host:8501/?q=old#x", state, WIDGETS)
    assert link.startswith(f"http://host:8501/?{SHARE_PARAM}=")
    taken, left_out = unpack(link.split("=", 1)[1], WIDGETS)
    assert left_out == [] and taken == {k: v for k, v in state.items() if k not in ("less_like", "password")}
    restored: dict = {}
    assert apply_link(restored, pack(state, WIDGETS), WIDGETS) == []
    assert restored["shared_feedback"] == ([4, 9], []) and "more_like" not in restored


def test_a_value_no_widget_here_can_hold_is_left_out_and_named():
    typed = {
        "query": 7,  # a number where text goes
        "events": 9,  # above the widget's highest
        "time_from": float("nan"),
        "mode": "Image",  # not an option
        "videos": ["a", "zzz"],  # a video this index does not have
        "object": ["tank"],  # a spec the filter refuses
        "more_like": [True],
    }
    taken, left_out = unpack(pack(typed, WIDGETS), WIDGETS)
    assert taken == {} and sorted(left_out) == sorted(typed)
    assert unpack("not a token!", WIDGETS) == ({}, ["the whole link (it is cut short or was not made by evr)"])
    assert unpack("A" * 9000, WIDGETS)[0] == {}


@pytest.mark.e2e  # the app on tests/test_app.py's index, whose persons need mediapipe
def test_the_app_opened_from_a_link_shows_the_same_results(app, app_index, monkeypatch):
    app.text_input(key="query").input("a person").run()
    app.sidebar.number_input(key="time_from").set_value(1.0).run()
    liked = app_hits(app)[2]
    app.session_state["more_like"] = [liked]
    app.run()
    shown = app_hits(app)
    link = next(c.value for c in app.code if f"?{SHARE_PARAM}=" in c.value)
    teammate = AppTest.from_file(APP, default_timeout=120)
    teammate.query_params[SHARE_PARAM] = link.split("=", 1)[1]
    teammate.run()
    assert not teammate.exception and not teammate.warning
    assert teammate.text_input(key="query").value == "a person"
    assert teammate.number_input(key="time_from").value == 1.0
    assert list(teammate.session_state["more_like"]) == [liked]
    assert app_hits(teammate) == shown and len(shown) <= PAGE
