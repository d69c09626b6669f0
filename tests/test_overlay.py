"""The app draws what the analyzers found on the opened hit's keyframe (ui/overlay.py)."""

from __future__ import annotations

import numpy as np
import pytest

from evr.storage.features.base import Shape
from evr.ui.overlay import COLOURS, draw_shapes

pytestmark = pytest.mark.unit


def test_boxes_points_and_masks_are_drawn_where_they_are():
    image = np.zeros((100, 200, 3), np.uint8)
    mask = np.zeros((10, 20), bool)
    mask[5:, 10:] = True  # the bottom right quarter, at a tenth of the size
    shapes = {
        "ocr": [Shape('text "LŨ LỤT"', box=(0.1, 0.2, 0.4, 0.5))],
        "persons": [
            Shape("person 0.90 standing", box=(0.5, 0.5, 0.9, 0.9), points=((0.25, 0.8, 1.0), (0.05, 0.05, 0.1))),
            Shape("people", mask=mask),
        ],
    }
    out = draw_shapes(image, shapes)
    assert not image.any()  # the image itself is left alone
    assert tuple(out[20, 20:80].max(axis=0)) == COLOURS[0]  # the text box's top edge, in OCR's colour
    assert tuple(out[80, 50]) == COLOURS[1]  # a keypoint seen
    assert not out[5, 10].any()  # a keypoint not seen (visibility 0.1) is not drawn
    assert out[75, 150].any() and not out[25, 150].any()  # tinted where people are, only there
    assert tuple(out[75, 150]) == tuple(int(0.4 * c) for c in COLOURS[1])


def test_no_shapes_leave_the_frame_as_it_is():
    image = np.full((50, 80, 3), 120, np.uint8)
    assert np.array_equal(draw_shapes(image, {"ocr": [], "persons": []}), image)


def test_labels_stay_inside_the_frame_and_clear_of_each_other():
    """Two people at one place, at the frame's right edge: both labels whole, one below the
    other (issue 32: they were drawn over each other and cut at the right edge)."""
    image = np.full((180, 320, 3), 120, np.uint8)
    boxes = [
        Shape("person 0.93 standing arms_raised", box=(0.8, 0.3, 0.99, 0.9)),
        Shape("person 0.88 sitting", box=(0.8, 0.3, 0.99, 0.9)),
    ]
    out = draw_shapes(image, {"persons": boxes})
    band = (out == 0).all(axis=2)  # the labels' dark bands
    one = (draw_shapes(image, {"persons": boxes[:1]}) == 0).all(axis=2).any(axis=1).sum()
    assert band.any(axis=1).sum() == 2 * one  # two bands, one below the other, not one over the other
    wide = np.full((180, 1000, 3), 120, np.uint8)  # the same label with room for it: its whole width
    whole = (draw_shapes(wide, {"persons": [Shape(boxes[0].label, box=(0.1, 0.3, 0.2, 0.9))]}) == 0).all(axis=2)
    assert band.any(axis=0).sum() == whole.any(axis=0).sum()  # shifted left, not cut at the right edge
