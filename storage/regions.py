"""Where in the frame: the names a filter uses for a place (`car@left`, `red@top-left`), as
rectangles in fractions of the frame's width and height.

The nine cells of a 3x3 grid (top-left ... bottom-right, with `center` in the middle and
`top`, `bottom`, `left`, `right` for the middle cell of each side), and the four halves
(`top-half`, `bottom-half`, `left-half`, `right-half`). `above` and `below` are the top and
bottom halves (a colour layout: "blue above, green below"). A thing is in a place when its
centre is.
"""

from __future__ import annotations

THIRDS = ((0.0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1.0))
_ROWS = ("top", "middle", "bottom")
_COLUMNS = ("left", "center", "right")


def _cell_name(row: int, column: int) -> str:
    if row == 1 and column == 1:
        return "center"
    if row == 1:
        return _COLUMNS[column]
    if column == 1:
        return _ROWS[row]
    return f"{_ROWS[row]}-{_COLUMNS[column]}"


# name -> (x0, y0, x1, y1): the 3x3 grid's cells (row by row), then the halves.
REGIONS: dict[str, tuple[float, float, float, float]] = {
    _cell_name(r, c): (THIRDS[c][0], THIRDS[r][0], THIRDS[c][1], THIRDS[r][1]) for r in range(3) for c in range(3)
}
REGIONS.update(
    {
        "top-half": (0.0, 0.0, 1.0, 0.5),
        "bottom-half": (0.0, 0.5, 1.0, 1.0),
        "left-half": (0.0, 0.0, 0.5, 1.0),
        "right-half": (0.5, 0.0, 1.0, 1.0),
    }
)
ALIASES = {
    "centre": "center",
    "middle": "center",
    "above": "top-half",
    "below": "bottom-half",
    "top-centre": "top",
    "bottom-centre": "bottom",
    "top-center": "top",
    "bottom-center": "bottom",
    "middle-left": "left",
    "middle-right": "right",
}
GRID_CELLS = tuple(_cell_name(r, c) for r in range(3) for c in range(3))  # the app's 3x3 canvas, row by row


def region(name: str) -> tuple[float, float, float, float] | None:
    """The rectangle a place name stands for, or None for a name that is no place."""
    name = name.strip().lower().replace(" ", "-").replace("_", "-")
    return REGIONS.get(ALIASES.get(name, name))


def place(name: str) -> tuple[float, float, float, float]:
    """`region`, or ValueError naming the places there are (a filter's `...@WHERE`)."""
    found = region(name)
    if found is None:
        raise ValueError(f"names no place after @ (one of: {', '.join(names())})")
    return found


def canonical(name: str) -> str:
    name = name.strip().lower().replace(" ", "-").replace("_", "-")
    return ALIASES.get(name, name)


def inside(x: float, y: float, place: tuple[float, float, float, float]) -> bool:
    """Whether the point (fractions of the frame) is in the place (its lower edges included)."""
    x0, y0, x1, y1 = place
    return x0 <= x < x1 + (1e-9 if x1 >= 1 else 0) and y0 <= y < y1 + (1e-9 if y1 >= 1 else 0)


def names() -> list[str]:
    return [*REGIONS, *ALIASES]
