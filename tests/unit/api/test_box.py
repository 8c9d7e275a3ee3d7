"""The one box parser of the API: every hostile value is a clear InputError, never a 500."""

from __future__ import annotations

import pytest

from surveil.api.forms import MAX_BOX_COORDINATE, clamp_box, parse_box
from surveil.domain import InputError


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0,0,2147483648,10", "over 100000"),
        ("0,0,1e308,10", "over 100000"),
        ("-5,0,10,10", "non-negative"),
        ("nan,0,10,10", "non-negative"),
        ("0,0,inf,10", "non-negative"),
        ("0,0,-inf,10", "non-negative"),
        ("10,10,5,5", "x2 > x1"),
        ("0,10,10,5", "y2 > y1"),
        ("a,b,c,d", "four non-negative numbers"),
        ("1,2,3", "four non-negative numbers"),
        ("1,2,3,4,5", "four non-negative numbers"),
        ("", "four non-negative numbers"),
        ("0x10,0,20,20", "four non-negative numbers"),
    ],
)
def test_bad_boxes_are_refused_with_a_message(text: str, says: str) -> None:
    with pytest.raises(InputError, match=says):
        parse_box(text)


def test_good_boxes_parse_up_to_the_bound() -> None:
    assert parse_box("1,2,30.5,40") == (1.0, 2.0, 30.5, 40.0)
    assert parse_box(f"0,0,{MAX_BOX_COORDINATE},{MAX_BOX_COORDINATE}")[2] == MAX_BOX_COORDINATE


def test_clamp_cuts_to_the_image_and_refuses_a_box_outside_it() -> None:
    assert clamp_box((10.2, 20.7, 50.5, 60.0), 640, 480, what="keyframe") == (10, 20, 51, 60)
    assert clamp_box((600, 400, 90_000, 90_000), 640, 480, what="keyframe") == (600, 400, 640, 480)
    with pytest.raises(InputError, match="outside the 640x480 keyframe"):
        clamp_box((700, 0, 800, 10), 640, 480, what="keyframe")
