"""Colours: for every keyframe, the dominant colours of each cell of a 4x4 grid, named in a small
vocabulary (English and Vietnamese), stored as one 32-character string (two letters a cell:
the dominant colour, and a second one that covers a quarter of the cell or more, else "-").
Filter: `--color red` (somewhere), `--color red@top-left` (in that place: storage/regions.py),
repeatable, all must hold; alone, a query: keyframes ranked by how much of each place shows its
colour, which makes a colour layout ("blue@above, green@below") a query by similarity."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, delete, func, insert, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .. import regions
from ..schema import Base
from ..sqlutil import ids_param
from ..textfold import fold
from ..types import KeyframeFilter
from .base import Condition, FeatureStorage, Field, FilterParam, checked_by

GRID = 4  # cells a side
# name -> (its letter in the stored string, its Vietnamese name)
COLORS: dict[str, tuple[str, str]] = {
    "red": ("r", "đỏ"),
    "orange": ("o", "cam"),
    "yellow": ("y", "vàng"),
    "green": ("g", "xanh lá"),
    "cyan": ("c", "xanh ngọc"),
    "blue": ("b", "xanh dương"),
    "purple": ("p", "tím"),
    "pink": ("k", "hồng"),
    "brown": ("n", "nâu"),
    "black": ("z", "đen"),
    "grey": ("a", "xám"),
    "white": ("w", "trắng"),
}
NAME_OF_LETTER = {letter: name for name, (letter, _) in COLORS.items()}
NONE = "-"
# Every way a colour may be named in a filter, folded (no marks, lower case): English, Vietnamese.
_SPELLINGS = {
    **{fold(name): name for name in COLORS},
    **{fold(vi): name for name, (_, vi) in COLORS.items()},
    "gray": "grey",
    "xanh la cay": "green",
    "xanh lam": "blue",
    "xanh duong": "blue",
}


@dataclass(frozen=True)
class ColorGrid:
    """One keyframe's colours: per cell of the 4x4 grid, row by row, (dominant, second or None)."""

    cells: list[tuple[str, str | None]]

    def encoded(self) -> str:
        return "".join(COLORS[a][0] + (COLORS[b][0] if b else NONE) for a, b in self.cells)


class KeyframeColor(Base):
    """A keyframe's colour grid (no row: the colour analyzer did not run on it)."""

    __tablename__ = "keyframe_colors"
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), primary_key=True)
    grid: Mapped[str] = mapped_column(String)  # ColorGrid.encoded()


def color_name(text: str) -> str | None:
    """The vocabulary's name for a colour named in English or Vietnamese (marks optional)."""
    return _SPELLINGS.get(fold(text).strip())


def parse_spec(spec: str) -> tuple[str, tuple[float, float, float, float] | None]:
    """ "red" or "red@top-left" (Vietnamese names too) -> (colour, place or None); ValueError."""
    name, _, where = spec.partition("@")
    color = color_name(name)
    if color is None:
        raise ValueError(
            f"names no colour (one of: {', '.join(COLORS)}; or in Vietnamese: "
            f"{', '.join(vi for _, vi in COLORS.values())})"
        )
    return color, regions.place(where) if where else None


def cells_in(place: tuple[float, float, float, float] | None) -> list[int]:
    """The grid's cells whose centre is in the place (every cell: anywhere)."""
    return [
        r * GRID + c
        for r in range(GRID)
        for c in range(GRID)
        if place is None or regions.inside((c + 0.5) / GRID, (r + 0.5) / GRID, place)
    ]


def _cell_has(grid, cell: int, letter: str):
    """SQL: the cell's dominant or second colour is this letter."""
    return (func.substr(grid, 2 * cell + 1, 1) == letter) | (func.substr(grid, 2 * cell + 2, 1) == letter)


class ColorStorage(FeatureStorage):
    name = "colors"
    params = (
        FilterParam(
            "color",
            str,
            "Colours (each must show)",
            "a colour somewhere, or in a place: red, "
            "red@top-left, xanh dương@below (repeatable; all must hold; alone, a query ranked by how "
            "much of each place shows its colour)",
            many=True,
            metavar="COLOR[@WHERE]",
            check=checked_by(parse_spec),
            query=True,
        ),
    )
    hit_fields = ("colors",)
    fields = (Field("colors", "labels"),)

    def put(self, s: Session, results: Sequence[tuple[int, ColorGrid]]) -> None:
        if results:
            s.execute(insert(KeyframeColor), [{"keyframe_id": kid, "grid": grid.encoded()} for kid, grid in results])

    def clear(self, s: Session, ids: Sequence[int]) -> None:
        s.execute(delete(KeyframeColor).where(KeyframeColor.keyframe_id.in_(ids_param(ids))))

    def hit_columns(self, keyframe) -> list:
        return [select(KeyframeColor.grid).where(KeyframeColor.keyframe_id == keyframe.id).scalar_subquery()]

    def hit_values(self, values: Sequence[Any]) -> dict[str, Any]:
        grid = values[0]
        return {"colors": None if grid is None else dominant(grid)}

    def facts(self, fields: dict[str, Any]) -> list[str]:
        found = fields.get("colors")
        return [f"colours {', '.join(found)}"] if found else []

    def condition(self, f: KeyframeFilter, keyframe_id, few: bool):
        grid = KeyframeColor.grid
        parts = [
            func.instr(grid, COLORS[color][0]) > 0
            if place is None
            else or_(*(_cell_has(grid, cell, COLORS[color][0]) for cell in cells_in(place)))
            for color, place in _specs(f)
        ]
        if not parts:
            return None
        if few:
            return [select(KeyframeColor.keyframe_id).where(KeyframeColor.keyframe_id == keyframe_id, *parts).exists()]
        return [keyframe_id.in_(select(KeyframeColor.keyframe_id).where(*parts))]

    def score(self, f: KeyframeFilter, keyframe_id):
        """Alone, the query's score of a keyframe: the mean over the specs of the share of the
        place's cells that show the colour (1: every cell of every place)."""
        specs = _specs(f)
        if not specs:
            return None
        grid = KeyframeColor.grid
        shares = []
        for color, place in specs:
            cells = cells_in(place)
            hits = sum((_cell_has(grid, cell, COLORS[color][0])).cast(Integer) for cell in cells)
            shares.append(hits * 1.0 / len(cells))
        mean = sum(shares[1:], shares[0]) / len(shares)
        return select(mean).where(KeyframeColor.keyframe_id == keyframe_id).scalar_subquery()

    def field_values(self, s: Session, keyframe_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        grids = dict(
            s.execute(
                select(KeyframeColor.keyframe_id, KeyframeColor.grid).where(
                    KeyframeColor.keyframe_id.in_(ids_param(keyframe_ids))
                )
            ).all()
        )
        return {
            int(kid): {"colors": sorted({NAME_OF_LETTER[ch] for ch in grids.get(int(kid), "") if ch != NONE})}
            for kid in keyframe_ids
        }

    def field_conditions(self, f: KeyframeFilter) -> tuple[list[Condition], bool]:
        """A colour anywhere is a field condition; a colour in a place is SQL's (the grid)."""
        specs = _specs(f)
        anywhere = sorted({color for color, place in specs if place is None})
        parts = [Condition("colors", "contains", color) for color in anywhere]
        return parts, any(place is not None for _, place in specs)


def _specs(f: KeyframeFilter) -> list[tuple[str, tuple[float, float, float, float] | None]]:
    """The filter's colour specs, parsed."""
    return [parse_spec(spec) for spec in f.get("color", ())]


def dominant(grid: str, most: int = 3) -> list[str]:
    """The colours that cover the most cells (as the dominant colour of a cell), most first."""
    counted = Counter(NAME_OF_LETTER[grid[i]] for i in range(0, len(grid), 2))
    return [name for name, _ in counted.most_common(most)]
