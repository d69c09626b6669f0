"""The app's pickers for what is where in the frame: objects (a label, at least N, where) and a
colour canvas (pick a colour, click a cell of a 3x3 grid; "anywhere" for a colour somewhere).

Each keeps its filter's values as a list of specs in the session state under the parameter's
own name ("object": ["car:2@left"], "color": ["blue@top", "green@bottom"]), as the CLI writes
them, so the filter chips show them and "Clear filters" empties them like any other filter.
"""

from __future__ import annotations

import streamlit as st

from evr.storage.features.colors import COLORS
from evr.storage.regions import GRID_CELLS

from .text import plain

ANYWHERE = "anywhere"
PLACES = (ANYWHERE, *GRID_CELLS, "top-half", "bottom-half", "left-half", "right-half")
# COCO's labels (evr's detector): the picker offers them, and takes any other label typed in
# (an AI Challenge package's OpenImages names: "human face", "tree").
COCO = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)


def _specs(key: str) -> list[str]:
    return list(st.session_state.get(key) or [])


def _add(key: str, spec: str) -> None:
    if spec not in _specs(key):
        st.session_state[key] = [*_specs(key), spec]


def _toggle(key: str, spec: str) -> None:
    """A cell clicked: painted with the colour, or cleared when it held that colour already."""
    specs = _specs(key)
    place = spec.partition("@")[2]
    others = [s for s in specs if s.partition("@")[2] != place]
    st.session_state[key] = others if spec in specs else [*others, spec]


NOTHING_YET = (
    "No video of this index was analyzed for {what} yet (the [{name}] analyzer was off, or could not "
    "load, when it was indexed): this filter finds nothing until it is."
)


def object_picker(where, param, unanalyzed: bool = False) -> tuple[str, ...] | None:
    """Objects that must be in the frame, each a label, at least N, and where."""
    with where.expander(param.label, expanded=bool(_specs(param.name))):
        if unanalyzed:
            st.caption(NOTHING_YET.format(what="objects", name="objects"))
        label = st.selectbox(
            "Object",
            COCO,
            key="object_label",
            accept_new_options=True,
            help="a COCO label, or type another (an AI Challenge package's)",
        )
        # One above the other: side by side, the sidebar cut the place's name ("anywhe").
        count = int(st.number_input("At least", min_value=1, max_value=100, value=1, step=1, key="object_count"))
        place = st.selectbox("Where", PLACES, key="object_place")
        spec = (
            (label or "").strip().lower()
            + (f":{count}" if count > 1 else "")
            + (f"@{place}" if place != ANYWHERE else "")
        )
        st.button(f"Add {plain(spec)}", key="object_add", on_click=_add, args=(param.name, spec), disabled=not label)
        for s in _specs(param.name):
            st.caption(plain(s))
    return tuple(_specs(param.name)) or None


def color_canvas(where, param, unanalyzed: bool = False) -> tuple[str, ...] | None:
    """A colour layout: pick a colour, then click the cells of the frame that show it (again: clear)."""
    with where.expander(param.label, expanded=bool(_specs(param.name))):
        if unanalyzed:
            st.caption(NOTHING_YET.format(what="colours", name="colors"))
        color = st.radio(
            "Colour",
            list(COLORS),
            horizontal=True,
            key="color_pick",
            format_func=lambda name: f"{name} ({COLORS[name][1]})",
        )
        painted = {s.partition("@")[2]: s.partition("@")[0] for s in _specs(param.name) if "@" in s}
        # Each painted cell in its colour (the name stays on it, for those who do not see colours).
        st.html(
            "<style>"
            + "".join(
                f".st-key-color_cell_{cell} button {{background: {SWATCHES[name]}; color: {_ink(name)};}}"
                for cell, name in painted.items()
                if name in SWATCHES
            )
            + "</style>"
        )
        for row in range(3):
            for col, cell in zip(st.columns(3), GRID_CELLS[row * 3 : row * 3 + 3]):
                col.button(
                    painted.get(cell, "·"),
                    key=f"color_cell_{cell}",
                    help=cell,
                    width="stretch",
                    on_click=_toggle,
                    args=(param.name, f"{color}@{cell}"),
                )
        st.button(f"{color} anywhere", key="color_anywhere", on_click=_add, args=(param.name, color))
    return tuple(_specs(param.name)) or None


# How each colour of storage/features/colors.py looks on a cell of the canvas.
SWATCHES = {
    "red": "#e53935",
    "orange": "#fb8c00",
    "yellow": "#fdd835",
    "green": "#43a047",
    "cyan": "#00acc1",
    "blue": "#1e88e5",
    "purple": "#8e24aa",
    "pink": "#ec407a",
    "brown": "#6d4c41",
    "black": "#212121",
    "grey": "#9e9e9e",
    "white": "#ffffff",
}


def _ink(name: str) -> str:
    """Dark text on light swatches, white on dark ones."""
    return "#212121" if name in ("yellow", "white", "cyan", "grey", "orange") else "#ffffff"


PICKERS = {"object": object_picker, "color": color_canvas}  # filter parameter -> its widget
